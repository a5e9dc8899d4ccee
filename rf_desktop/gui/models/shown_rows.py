"""What the Invited users table paints: the rows in view of a `ReferralTableModel`, copied into Qt's own
item storage (a `QStandardItemModel`), so that a paint runs no Python at all.

A paint of the table asks its model for every role of every visible cell. Answered by a Python model,
that is a couple of hundred calls into Python a paint, and each waits for the interpreter lock while the
sync's worker threads hold it: a full repaint took 7 to 8 ms alone and 12 to 35 ms beside them. Answered
from Qt's item storage it takes about 4 ms, whatever the other threads do.

The Python model stays the one that knows the rows (SQL pages, sorting, filtering, live refreshes). This
model follows its shape (the row count, inserts and removals, resets, rows that move when re-sorted) and
holds the cells of the rows in view only: `FillingTableView` calls `fill` with the rows it is about to
paint, which also tells the Python model to keep those rows fresh, and a change the Python model announces
is copied at once. A cell is copied whole (`setItemData` with every role, absent ones as None), and Qt tells
the view only of the cells whose data differ.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QObject, QSignalBlocker, Qt
from PySide6.QtGui import QStandardItemModel

from rf_desktop.gui.models.referrals import ALL_COLUMNS, COLUMNS, ReferralTableModel, follow_rows


class ShownRows(QStandardItemModel):
    def __init__(self, source: ReferralTableModel, parent: QObject | None = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.source = source
        self.setHorizontalHeaderLabels([column.title for column in COLUMNS])
        self._take_row_count()
        self._held: set[int] = set()  # the rows whose cells are copied in
        source.modelReset.connect(self._reset)
        source.rowsInserted.connect(self._inserted)
        source.rowsRemoved.connect(self._removed)
        source.dataChanged.connect(self._changed)
        source.reordered.connect(lambda moves: follow_rows(self, moves))

    def fill(self, first: int, last: int) -> None:
        """Hold the cells of rows `first` to `last` (the rows about to be painted), and only those. Called
        from the paint itself, so the view is not told: it is painting them now."""
        first, last = max(first, 0), min(last, self.rowCount() - 1)
        self.source.show_rows(first, last)
        missing = [row for row in range(first, last + 1) if row not in self._held]
        gone = [row for row in self._held if not first <= row <= last]
        if not missing and not gone:
            return
        with QSignalBlocker(self):
            for row in gone:
                for column in range(len(COLUMNS)):
                    self.takeItem(row, column)
                self._held.discard(row)
            for row in missing:
                self._copy(row)

    def tooltip(self, row: int, column: int) -> str | None:
        """The cell's tooltip, worked out when one is shown (for every copied cell it cost as much as the
        rest of the copy)."""
        tip = self.source.index(row, column).data(Qt.ItemDataRole.ToolTipRole)
        return tip if isinstance(tip, str) else None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self.source.sort(column, order)  # the store sorts; the rows arrive through the reset

    def _copy(self, row: int, columns: range = ALL_COLUMNS) -> None:
        cells = self.source.shown_cells(row, columns)
        for column, roles in cells.items():
            self.setItemData(self.index(row, column), roles)
        if cells:
            self._held.add(row)

    # --- following the Python model -----------------------------------------------------------------------

    def _take_row_count(self) -> None:
        self.setRowCount(0)
        self.setRowCount(self.source.rowCount())
        # New sign-ups arrive at the top. Inserting and removing a row there now leaves Qt's row storage room
        # in front; otherwise the first sign-up would move every row's storage (6 ms at 100,000 rows).
        self.insertRow(0)
        self.removeRow(0)

    def _reset(self) -> None:
        self.beginResetModel()
        with QSignalBlocker(self):  # one reset tells the view everything
            self._take_row_count()
        self._held.clear()
        self.endResetModel()

    def _inserted(self, _parent: QModelIndex, first: int, last: int) -> None:
        count = last - first + 1
        self.insertRows(first, count)
        self._held = {row + count if row >= first else row for row in self._held}

    def _removed(self, _parent: QModelIndex, first: int, last: int) -> None:
        count = last - first + 1
        self.removeRows(first, count)
        self._held = {row - count if row > last else row for row in self._held if not first <= row <= last}

    def _changed(self, top_left: QModelIndex, bottom_right: QModelIndex, _roles: object = None) -> None:
        columns = range(top_left.column(), bottom_right.column() + 1)
        for row in sorted(self._held):
            if top_left.row() <= row <= bottom_right.row():
                self._copy(row, columns)
