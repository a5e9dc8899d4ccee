"""Render the SVG icons in resources/icons to the PNG set in resources/icons/png/<size>x<size>/, and the
app icon to rf-desktop.ico (Windows) and rf-desktop.icns (macOS) for the installers.

The PNGs serve the Linux .desktop entry (hicolor layout), installers and systems without an SVG icon
engine. Run after changing an SVG:  QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/render_icons.py
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtGui import QColor, QGuiApplication

from rf_desktop.gui import icons

# Line icons outside the app have no palette to follow: a dark grey that reads on light and dark panels.
LINE_COLOUR = QColor("#3c4450")
# (suffix, size): Windows scales a 256-pixel .ico down well; macOS wants a large .icns
APP_ICON_FILES = (("ico", 256), ("icns", 512))


def main() -> int:
    app = QGuiApplication(sys.argv)
    source = icons.resources_dir() / "icons"
    written = 0
    for svg_file in sorted(source.glob("*.svg")):
        svg = icons.tinted_svg(svg_file.stem, LINE_COLOUR)
        for size in icons.PNG_SIZES:
            target = source / "png" / f"{size}x{size}" / f"{svg_file.stem}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            if not icons.render_svg(svg, size).save(str(target)):
                print(f"could not write {target}", file=sys.stderr)
                return 1
            written += 1
    app_svg = icons.tinted_svg(icons.APP_ICON, LINE_COLOUR)
    for suffix, size in APP_ICON_FILES:
        target = source / f"{icons.APP_ICON}.{suffix}"
        if not icons.render_svg(app_svg, size).save(str(target)):
            print(f"could not write {target}", file=sys.stderr)
            return 1
    print(f"wrote {written} PNGs under {source / 'png'} and the app icon as .ico and .icns")
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
