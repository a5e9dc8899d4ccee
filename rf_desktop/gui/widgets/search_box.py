"""A search field that waits for the typing to pause before it asks for a (SQL) search."""

from __future__ import annotations

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QLineEdit, QWidget

from rf_desktop.gui import icons

DEBOUNCE_MS = 200


class SearchBox(QLineEdit):
    """`searchChanged(text)` fires once the text has been still for `debounce_ms` (at once on clear)."""

    searchChanged = Signal(str)

    def __init__(
        self, placeholder: str, parent: QWidget | None = None, debounce_ms: int = DEBOUNCE_MS
    ) -> None:
        super().__init__(parent)
        self.setPlaceholderText(placeholder)
        self.setClearButtonEnabled(True)
        self.search_icon = self.addAction(icons.icon("search"), QLineEdit.ActionPosition.LeadingPosition)
        self.setAccessibleName(placeholder)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(debounce_ms)
        self._timer.timeout.connect(self._emit)
        self._last = ""
        self.textChanged.connect(self._on_text_changed)
        self.returnPressed.connect(self._emit)

    def refresh_icons(self) -> None:
        self.search_icon.setIcon(icons.icon("search"))

    def _on_text_changed(self, text: str) -> None:
        if not text:
            self._emit()
        else:
            self._timer.start()

    def _emit(self) -> None:
        self._timer.stop()
        text = self.text().strip()
        if text != self._last:
            self._last = text
            self.searchChanged.emit(text)
