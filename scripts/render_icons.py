"""Render the app's SVG icons (rf_desktop/resources/icons) to what the installers ship, in resources/icons:
the PNG set in png/<size>x<size>/, the app icon as a multi-size rf-desktop.ico (Windows) and
rf-desktop.icns (macOS).

The PNGs serve the Linux desktop entry (hicolor layout), installers and systems without an SVG icon
engine. Run after changing an SVG:  QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/render_icons.py
"""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QBuffer, QByteArray, QIODevice
from PySide6.QtGui import QColor, QGuiApplication, QImage

from rf_desktop.gui import icons

TARGET = Path(__file__).resolve().parents[1] / "resources" / "icons"
# Line icons outside the app have no palette to follow: a dark grey that reads on light and dark panels.
LINE_COLOUR = QColor("#3c4450")
# Windows picks the closest size for each place (title bar, taskbar, Explorer views).
ICO_SIZES = (16, 20, 24, 32, 40, 48, 64, 128, 256)
# macOS icon types by pixel size (the same pixels serve a size and half that size on Retina screens).
ICNS_TYPES = {16: b"icp4", 32: b"icp5", 64: b"icp6", 128: b"ic07", 256: b"ic08", 512: b"ic09", 1024: b"ic10"}


def png_bytes(image: QImage) -> bytes:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return bytes(data.data())


def ico(images: dict[int, bytes]) -> bytes:
    """An .ico holding one PNG per size (Windows Vista and later read PNG entries)."""
    header = struct.pack("<HHH", 0, 1, len(images))
    offset = len(header) + 16 * len(images)
    entries, payload = b"", b""
    for size, png in images.items():
        side = size % 256  # 0 means 256
        entries += struct.pack("<BBBBHHII", side, side, 0, 0, 1, 32, len(png), offset + len(payload))
        payload += png
    return header + entries + payload


def icns(images: dict[int, bytes]) -> bytes:
    body = b"".join(ICNS_TYPES[size] + struct.pack(">I", 8 + len(png)) + png for size, png in images.items())
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def main() -> int:
    app = QGuiApplication(sys.argv)
    svgs = sorted(entry.name[: -len(".svg")] for entry in icons.icons_dir().iterdir() if entry.name.endswith(".svg"))
    for name in svgs:
        svg = icons.tinted_svg(name, LINE_COLOUR)
        for size in icons.PNG_SIZES:
            target = TARGET / "png" / f"{size}x{size}" / f"{name}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(png_bytes(icons.render_svg(svg, size)))
    app_svg = icons.tinted_svg(icons.APP_ICON, LINE_COLOUR)
    (TARGET / f"{icons.APP_ICON}.ico").write_bytes(
        ico({size: png_bytes(icons.render_svg(app_svg, size)) for size in ICO_SIZES})
    )
    (TARGET / f"{icons.APP_ICON}.icns").write_bytes(
        icns({size: png_bytes(icons.render_svg(app_svg, size)) for size in ICNS_TYPES})
    )
    print(f"wrote {len(svgs) * len(icons.PNG_SIZES)} PNGs under {TARGET / 'png'} and the app icon as .ico and .icns")
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
