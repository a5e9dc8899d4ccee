"""A table view over `ShownRows` that copies the rows in view into it just before painting them, so that
the paint itself reads only Qt's item storage, and asks for a cell's tooltip only when one is shown."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QModelIndex, QPersistentModelIndex
from PySide6.QtGui import QHelpEvent, QPaintEvent
from PySide6.QtWidgets import QAbstractItemView, QStyledItemDelegate, QStyleOptionViewItem, QTableView, QToolTip

from rf_desktop.gui.models.shown_rows import ShownRows


class FillingTableView(QTableView):
    def __init__(self) -> None:
        super().__init__()
        self.setItemDelegate(TooltipDelegate(self))

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


class TooltipDelegate(QStyledItemDelegate):
    """Qt's own painting (nothing of it is overridden, so a paint calls no Python); a tooltip is asked of
    `ShownRows.tooltip` when the pointer rests on a cell."""

    def helpEvent(
        self,
        event: QHelpEvent,
        view: QAbstractItemView,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> bool:
        model = index.model()
        if event.type() != QEvent.Type.ToolTip or not isinstance(model, ShownRows):
            return super().helpEvent(event, view, option, index)
        tip = model.tooltip(index.row(), index.column()) or ""
        QToolTip.showText(event.globalPos(), tip, view.viewport(), option.rect)  # no text hides a tooltip
        return bool(tip)
