"""A table header whose sort arrow points the way owners read it: down (▼) for largest or newest first,
up (▲) for smallest or oldest first, as in file managers and spreadsheets.

Qt draws its header arrows the other way round (its "ascending" is a downward arrow under Fusion), so
the Invited users table, sorted newest first, showed an arrow pointing up.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHeaderView, QStyleOptionHeader, QWidget

FLIPPED = {
    QStyleOptionHeader.SortIndicator.SortUp: QStyleOptionHeader.SortIndicator.SortDown,
    QStyleOptionHeader.SortIndicator.SortDown: QStyleOptionHeader.SortIndicator.SortUp,
}


class SortHeader(QHeaderView):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.setSectionsClickable(True)  # as the header a table view makes for itself

    def initStyleOptionForIndex(self, option: QStyleOptionHeader, logicalIndex: int) -> None:
        super().initStyleOptionForIndex(option, logicalIndex)
        option.sortIndicator = FLIPPED.get(option.sortIndicator, option.sortIndicator)
