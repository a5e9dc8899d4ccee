"""A small rounded label with a coloured dot: the sync state in the status bar."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget

from rf_desktop.gui import theme


class StatusPill(QWidget):
    """Paints "● Running" on a tinted rounded background; the colour says the state at a glance."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._text = ""
        self._colour = QColor(theme.QUIET.light)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)

    @property
    def text(self) -> str:
        return self._text

    @property
    def colour(self) -> QColor:
        return QColor(self._colour)

    def set_status(self, text: str, colour: QColor) -> None:
        self._text = text
        self._colour = QColor(colour)
        self.setAccessibleName(text)
        self.updateGeometry()
        self.update()

    def sizeHint(self) -> QSize:
        metrics = self.fontMetrics()
        height = metrics.height() + 6
        return QSize(metrics.horizontalAdvance(self._text) + height + 14, height)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        radius = rect.height() / 2
        fill = QColor(self._colour)
        fill.setAlphaF(0.16)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(fill)
        painter.drawRoundedRect(rect, radius, radius)
        dot = rect.height() * 0.36
        painter.setBrush(self._colour)
        painter.drawEllipse(QRectF(rect.left() + radius - dot / 2, rect.center().y() - dot / 2, dot, dot))
        painter.setPen(self.palette().color(QPalette.ColorRole.WindowText))
        text_rect = rect.adjusted(radius + dot / 2 + 4, 0, -radius / 2, 0)
        align = Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft
        painter.drawText(text_rect, int(align), self._text)
        painter.end()
