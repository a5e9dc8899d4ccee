"""The app's icons: simple SVGs in `rf_desktop/resources/icons`, tinted to the palette and rendered crisp at any
size.

Line icons draw with `currentColor`, which Qt's SVG renderer does not resolve; they are rendered with the
palette's text colour instead, so they read well in light and dark themes. Coloured icons (the app icon,
the tray states) are rendered as drawn.

The SVGs are package data, read through importlib.resources, so a source checkout, an installed wheel and
the frozen app find them the same way.
"""

from __future__ import annotations

import functools
import logging
from importlib.resources import files
from importlib.resources.abc import Traversable

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QImage, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer

log = logging.getLogger(__name__)

# Pixmap sizes added to every QIcon (Qt scales from the nearest larger one for anything else).
ICON_SIZES = (16, 20, 24, 32, 48, 64, 128)
# The PNG set shipped for the .desktop file and the installers.
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256)
APP_ICON = "rf-desktop"


def icons_dir() -> Traversable:
    """The folder of SVG icons inside the installed package."""
    return files("rf_desktop") / "resources" / "icons"


def svg_path(name: str) -> Traversable:
    return icons_dir() / f"{name}.svg"


def render_svg(svg: bytes, size: int) -> QImage:
    """The SVG drawn into a transparent square image of `size` pixels."""
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    renderer = QSvgRenderer(QByteArray(svg))
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    return image


def tinted_svg(name: str, colour: QColor) -> bytes:
    """The icon's SVG source with `currentColor` replaced by `colour`."""
    return svg_path(name).read_bytes().replace(b"currentColor", colour.name().encode())


def icon(name: str) -> QIcon:
    """The named icon, tinted for the current palette (an empty icon, logged once, when it is missing)."""
    palette = QGuiApplication.palette()
    normal = palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.WindowText)
    disabled = palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText)
    return QIcon(_build_icon(name, normal.name(), disabled.name()))


@functools.lru_cache(maxsize=256)
def _build_icon(name: str, normal: str, disabled: str) -> QIcon:
    if not svg_path(name).is_file():
        log.warning("icon %r is missing from %s", name, icons_dir())
        return QIcon()
    result = QIcon()
    for mode, colour in ((QIcon.Mode.Normal, normal), (QIcon.Mode.Disabled, disabled)):
        svg = tinted_svg(name, QColor(colour))
        for size in ICON_SIZES:
            result.addPixmap(QPixmap.fromImage(render_svg(svg, size)), mode)
    return result


def app_icon() -> QIcon:
    return icon(APP_ICON)
