"""A table view over `ShownRows` that copies the rows in view into it just before painting them, so that
the paint itself reads only Qt's item storage."""

from __future__ import annotations

from PySide6.QtGui import QPaintEvent
from PySide6.QtWidgets import QTableView

from rf_desktop.gui.models.shown_rows import ShownRows


class FillingTableView(QTableView):
    def fill_rows_in_view(self) -> None:
        """Copy the rows in view into the model, as the next paint does."""
        model = self.model()
        if isinstance(model, ShownRows) and model.rowCount():
            first = self.rowAt(0)
            last = self.rowAt(self.viewport().height() - 1)
            model.fill(max(first, 0), last if last >= 0 else model.rowCount() - 1)

    def paintEvent(self, event: QPaintEvent) -> None:
        self.fill_rows_in_view()
        super().paintEvent(event)
