"""Small coloured dots beside a status, so the eye finds the failed rows without reading."""

from __future__ import annotations

import functools

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap

from rf_desktop.gui import theme

_SIZES = (12, 16, 24, 32)


def status_icon(status: str) -> QIcon:
    return _dot(theme.status_colour(status).name())


def level_icon(level: str) -> QIcon:
    tone = {"error": theme.BAD, "warning": theme.WARN}.get(level, theme.QUIET)
    return _dot(tone.colour().name())


@functools.lru_cache(maxsize=64)
def _dot(colour: str) -> QIcon:
    icon = QIcon()
    for size in _SIZES:
        pixmap = QPixmap(size, size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(colour))
        margin = size * 0.22
        painter.drawEllipse(QRectF(margin, margin, size - 2 * margin, size - 2 * margin))
        painter.end()
        icon.addPixmap(pixmap)
    return icon
