"""Small coloured dots beside a state, so the eye finds the rows that need attention without reading.

The colours follow the owner's states (`core.vocabulary`), so everything one word covers has one colour.
"""

from __future__ import annotations

import functools

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap

from rf_desktop.core import vocabulary
from rf_desktop.core.vocabulary import Standing
from rf_desktop.gui import theme

_SIZES = (12, 16, 24, 32)
STANDING_TONES = {
    vocabulary.TO_SEND.key: theme.QUIET,
    vocabulary.IN_PIPEDRIVE.key: theme.BUSY,
    vocabulary.QUALIFIED_NOW.key: theme.GOOD,
    vocabulary.NOT_SENT.key: theme.WARN,
    vocabulary.NEEDS_ATTENTION.key: theme.BAD,
    vocabulary.TEST.key: theme.QUIET,
}


def standing_colour(standing: Standing) -> QColor:
    return STANDING_TONES.get(standing.key, theme.QUIET).colour()


def standing_icon(standing: Standing) -> QIcon:
    return _dot(standing_colour(standing).name())


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
