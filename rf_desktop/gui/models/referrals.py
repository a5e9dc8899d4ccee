"""The Invited users table: every referral in the store, read a page at a time.

A store may hold 100,000 referrals, so the model never loads them all. It knows the row count (one SQL
`count`), and reads rows in pages of `page_size` through `store.query` as the view asks for them, keeping
the few most recently used pages. Sorting and filtering are SQL (`order_by`, `text`, `status`), never a
proxy model over Python objects.

Live updates are coalesced: `note_changed(rf_user_id)` only records the id; at most once per interval the
model re-reads the count and the pages it holds, then tells the view exactly what happened: rows
inserted (`beginInsertRows`, at the top when the newest rows sort first), rows whose content changed
(`dataChanged`, row spans), and selections that follow their referral when it moves. In the default order
(newest sign-up first, by Referral Factory id, no filter) a change cannot move a row, so only the held pages
that hold a changed referral are read again: a thousand changes a second far from the view cost one count.
A model reset happens only when the owner changes the filter or the sort.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
)
from PySide6.QtGui import QColor, QFont, QGuiApplication, QPalette

from rf_desktop.core.store import Referral, Store
from rf_desktop.core.vocabulary import Description, Standing, describe
from rf_desktop.gui.models.formatting import long_time, short_id, short_time, signed_up_text, signed_up_tooltip
from rf_desktop.gui.models.status_icons import standing_colour, standing_icon

ModelIndex = QModelIndex | QPersistentModelIndex
Pages = OrderedDict[int, list[Referral]]


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    order_by: str
    link: str | None = None  # the Pipedrive record a click opens: "person", "lead" or "deal"


COLUMNS = (
    Column("name", "Referral user", "first_name"),
    Column("email", "Email", "email"),
    Column("referrer", "Referrer", "referrer_first_name"),
    Column("campaign", "Campaign", "campaign_name"),
    # Referral Factory numbers users as they sign up, and `signed_up_at` is only a date: the id gives the
    # exact order, and it is the table's primary key, so the default sort costs nothing at 100,000 rows
    Column("signed_up", "Signed up", "rf_user_id"),
    Column("person", "Person", "person_id", link="person"),
    Column("lead", "Lead", "lead_id", link="lead"),
    Column("deal", "Deal", "deal_id", link="deal"),
    Column("updated", "Last change", "updated_at"),
    Column("status", "Status", "status"),
    Column("reason", "Why", "status"),  # last, so it takes the room left: reasons are sentences
)
COLUMN_INDEX = {column.key: number for number, column in enumerate(COLUMNS)}
# Sorting by these, newest first, puts rows that just arrived at the top.
NEWEST_FIRST_KEYS = frozenset({"signed_up", "updated"})

REFERRAL_ROLE = Qt.ItemDataRole.UserRole + 1
LINK_ROLE = Qt.ItemDataRole.UserRole + 2
_ANSWERED_ROLES = frozenset({
    Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.ForegroundRole,
    Qt.ItemDataRole.FontRole, Qt.ItemDataRole.DecorationRole, REFERRAL_ROLE, LINK_ROLE,
})  # fmt: skip

PAGE_SIZE = 100
MAX_PAGES = 8
# A live refresh re-reads only the pages used most recently (what the view shows); the others are
# dropped and read afresh if the view comes back to them.
REFRESH_PAGES = 3
COALESCE_MS = 100
MAX_COALESCE_MS = 1000


class ReferralTableModel(QAbstractTableModel):
    def __init__(
        self,
        store: Store,
        *,
        page_size: int = PAGE_SIZE,
        max_pages: int = MAX_PAGES,
        coalesce_ms: int = COALESCE_MS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.store = store
        self.page_size = page_size
        self.max_pages = max_pages
        self.coalesce_ms = coalesce_ms
        self._text = ""
        self._status: Standing | str | None = None
        self._sort_column = COLUMN_INDEX["signed_up"]
        self._descending = True
        self._pages: OrderedDict[int, list[Referral]] = OrderedDict()
        self._total = 0
        self._pending: set[int] = set()
        # id(referral) -> (the referral, kept so the id is not reused while held; its description)
        self._descriptions: dict[int, tuple[Referral, Description]] = {}
        self._closed = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.refresh)
        self._total = self._count()

    # --- what the page asks for -----------------------------------------------------------------------

    @property
    def text_filter(self) -> str:
        return self._text

    @property
    def status_filter(self) -> Standing | str | None:
        return self._status

    @property
    def sort_column(self) -> int:
        return self._sort_column

    def set_filter(self, text: str | None = None, status: Standing | str | None = "") -> None:
        """Filter by free text and/or state: one of the owner's states, or one status of the store (None:
        every state; "" leaves it unchanged)."""
        new_text = self._text if text is None else text.strip()
        new_status = self._status if status == "" else status
        if (new_text, new_status) == (self._text, self._status):
            return
        self._text, self._status = new_text, new_status
        self._reload()

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        descending = order == Qt.SortOrder.DescendingOrder
        if (column, descending) == (self._sort_column, self._descending) or not 0 <= column < len(COLUMNS):
            return
        self._sort_column, self._descending = column, descending
        self._reload()

    def referral_at(self, row: int) -> Referral | None:
        if not 0 <= row < self._total:
            return None
        page = self._page(row // self.page_size)
        offset = row % self.page_size
        return page[offset] if offset < len(page) else None

    def note_changed(self, rf_user_id: int) -> None:
        """A referral changed in the store: refresh soon (bursts become one refresh)."""
        if self._closed:
            return
        self._pending.add(rf_user_id)
        if not self._timer.isActive():
            self._timer.start()

    def close(self) -> None:
        """Stop refreshing (the store is about to close)."""
        self._closed = True
        self._timer.stop()

    # --- Qt's side ------------------------------------------------------------------------------------

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008 (Qt API)
        return 0 if parent.isValid() else self._total

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008 (Qt API)
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(COLUMNS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section].title
        return None

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        # a paint asks for a dozen roles of every visible cell: the ones the table never answers cost
        # nothing, and a row is described once, not once per cell and role
        if role not in _ANSWERED_ROLES or not index.isValid():
            return None
        referral = self.referral_at(index.row())
        if referral is None:
            return None
        if role == REFERRAL_ROLE:
            return referral
        column = COLUMNS[index.column()]
        described = self._described(referral)
        if role == Qt.ItemDataRole.DisplayRole:
            return _display(column.key, referral, described)
        if role == Qt.ItemDataRole.ToolTipRole:
            return _tooltip(column.key, referral, described)
        if role == LINK_ROLE:
            return _link(column, referral, described)
        if role == Qt.ItemDataRole.ForegroundRole:
            if column.key == "status":
                return standing_colour(described.standing)
            if column.key == "reason" or (column.link and not described.records_exist):
                return _quiet_colour()
            if _link(column, referral, described) is not None:
                return _link_colour()
            return None
        if role == Qt.ItemDataRole.FontRole and _link(column, referral, described) is not None:
            font = QFont()
            font.setUnderline(True)
            return font
        if role == Qt.ItemDataRole.DecorationRole and column.key == "status":
            return standing_icon(described.standing)
        return None

    def _described(self, referral: Referral) -> Description:
        """`describe(referral)`, kept while the referral (an immutable row as read) is held."""
        held = self._descriptions.get(id(referral))
        if held is None or held[0] is not referral:
            if len(self._descriptions) >= 2 * self.max_pages * self.page_size:
                self._descriptions.clear()  # rows long since dropped from the pages
            held = (referral, describe(referral))
            self._descriptions[id(referral)] = held
        return held[1]

    # --- reading the store ----------------------------------------------------------------------------

    def _count(self) -> int:
        return self.store.count(text=self._text or None, **self._state_filter())

    def _state_filter(self) -> dict[str, Any]:
        if self._status is None or isinstance(self._status, str):
            return {"status": self._status}
        return {"status": self._status.statuses, "is_test": self._status.test}

    def _query(self, offset: int, limit: int) -> list[Referral]:
        return self.store.query(
            text=self._text or None,
            **self._state_filter(),
            order_by=COLUMNS[self._sort_column].order_by,
            descending=self._descending,
            limit=limit,
            offset=offset,
        )

    def _page(self, number: int) -> list[Referral]:
        page = self._pages.get(number)
        if page is not None:
            self._pages.move_to_end(number)
            return page
        page = self._query(number * self.page_size, self.page_size)
        self._pages[number] = page
        while len(self._pages) > self.max_pages:
            self._pages.popitem(last=False)
        return page

    def _read_pages(self, numbers: set[int]) -> OrderedDict[int, list[Referral]]:
        """The given pages, read afresh; neighbouring pages in one query each run."""
        fresh: OrderedDict[int, list[Referral]] = OrderedDict()
        ordered = sorted(n for n in numbers if n * self.page_size < self._total)
        runs: list[list[int]] = []
        for number in ordered:
            if runs and runs[-1][-1] == number - 1:
                runs[-1].append(number)
            else:
                runs.append([number])
        for run in runs:
            rows = self._query(run[0] * self.page_size, len(run) * self.page_size)
            for position, number in enumerate(run):
                fresh[number] = rows[position * self.page_size : (position + 1) * self.page_size]
        return fresh

    def _reload(self) -> None:
        self.beginResetModel()
        self._pages.clear()
        self._pending.clear()
        self._total = self._count()
        self.endResetModel()

    # --- live updates -----------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Bring the rows in line with the store, announcing inserts, removals, moves and changes."""
        self._timer.stop()
        if self._closed:
            return
        started = time.perf_counter()
        changed_ids, self._pending = self._pending, set()
        total = self._count()
        if total == self._total and self._rows_cannot_move():
            self._refresh_rows_of(changed_ids)
        else:
            self._refresh_all(total)
        # a slow store (huge table, unindexed sort) gets fewer refreshes instead of a stalled window
        spent_ms = (time.perf_counter() - started) * 1000
        self._timer.setInterval(int(min(max(self.coalesce_ms, 3 * spent_ms), MAX_COALESCE_MS)))

    def _rows_cannot_move(self) -> bool:
        """True when a change to a referral can change only its own row: the order is by Referral Factory
        id, which never changes, and no filter can drop or admit a row without the count changing."""
        return COLUMNS[self._sort_column].order_by == "rf_user_id" and self._status is None and not self._text

    def _refresh_rows_of(self, changed_ids: set[int]) -> None:
        """Re-read only the held pages that hold a changed referral: most changes are to rows far from the
        view, and cost nothing then."""
        stale = {n for n, page in self._pages.items() if any(r.rf_user_id in changed_ids for r in page)}
        recent = set(list(self._pages)[-REFRESH_PAGES:])
        for number in stale - recent:
            del self._pages[number]  # read afresh if the view comes back to it
        changed: list[int] = []
        for number, page in self._read_pages(stale & recent).items():
            old = self._pages[number]
            self._pages[number] = page
            first = number * self.page_size
            changed += [first + i for i, r in enumerate(page) if i >= len(old) or old[i] != r]
        for first, last in _spans(changed):
            self.dataChanged.emit(self.index(first, 0), self.index(last, len(COLUMNS) - 1))

    def _refresh_all(self, total: int) -> None:
        """Re-read the pages in use, announcing inserted and removed rows, moved selections and changes."""
        recent = list(self._pages.items())[-REFRESH_PAGES:]
        held = {n * self.page_size + i: r for n, page in recent for i, r in enumerate(page)}
        shift = self._apply_count_change(total)
        before = {row + shift: referral for row, referral in held.items() if row + shift < self._total}
        fresh = self._read_pages({row // self.page_size for row in before})
        now_at = {n * self.page_size + i: r for n, page in fresh.items() for i, r in enumerate(page)}
        self._follow_moves(before, now_at, fresh)
        changed = sorted(row for row, referral in now_at.items() if before.get(row) != referral)
        for first, last in _spans(changed):
            self.dataChanged.emit(self.index(first, 0), self.index(last, len(COLUMNS) - 1))

    def _apply_count_change(self, total: int) -> int:
        """Insert or remove rows to match the store's count (`total`); returns how far held rows moved down."""
        old = self._total
        if total > old:
            at_top = COLUMNS[self._sort_column].key in NEWEST_FIRST_KEYS and self._descending
            first = 0 if at_top else old
            self.beginInsertRows(QModelIndex(), first, first + total - old - 1)
            self._total = total
            self._pages.clear()
            self.endInsertRows()
            return total - old if at_top else 0
        if total < old:
            self.beginRemoveRows(QModelIndex(), total, old - 1)
            self._total = total
            self._pages.clear()
            self.endRemoveRows()
        return 0

    def _follow_moves(
        self, before: dict[int, Referral], now_at: dict[int, Referral], fresh: Pages
    ) -> None:
        """Swap in the fresh pages; a selected referral that moved (re-sorted) stays selected."""
        new_row_of = {referral.rf_user_id: row for row, referral in now_at.items()}
        moves: list[tuple[QModelIndex, int]] = []
        for index in self.persistentIndexList():
            old = before.get(index.row())
            new_row = new_row_of.get(old.rf_user_id) if old is not None else None
            if new_row is not None and new_row != index.row():
                moves.append((index, new_row))
        if not moves:
            self._pages = fresh
            return
        self.layoutAboutToBeChanged.emit()
        self._pages = fresh
        for index, row in moves:
            self.changePersistentIndex(index, self.index(row, index.column()))
        self.layoutChanged.emit()


def _spans(rows: list[int]) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for row in rows:
        if spans and spans[-1][1] == row - 1:
            spans[-1] = (spans[-1][0], row)
        else:
            spans.append((row, row))
    return spans


def _display(key: str, r: Referral, described: Description) -> str:
    if key == "name":
        name = r.first_name or r.email or f"Referral {r.rf_user_id}"
        return f"{name} (test)" if r.is_test else name
    if key == "email":
        return r.email or ""
    if key == "referrer":
        return r.referrer_first_name or r.referrer_email or ""
    if key == "campaign":
        return r.campaign_name or (str(r.campaign_id) if r.campaign_id else "")
    if key == "signed_up":
        return signed_up_text(r.signed_up_at, r.recorded_at)
    if key == "person":
        return short_id(r.person_id)
    if key == "lead":
        return short_id(r.lead_id)
    if key == "deal":
        return short_id(r.deal_id)
    if key == "status":
        return described.word
    if key == "reason":
        return described.reason
    if key == "updated":
        return short_time(r.updated_at)
    return ""


def _tooltip(key: str, r: Referral, described: Description) -> str | None:
    if key in ("status", "reason"):
        return f"{described.word}: {described.standing.meaning}\n{described.reason}\nNext: {described.next_step}"
    if key == "signed_up":
        return signed_up_tooltip(r.signed_up_at, r.recorded_at)
    if key == "updated":
        return long_time(r.updated_at)
    if key in ("person", "lead", "deal"):
        record = getattr(r, f"{key}_id")
        if record in (None, ""):
            return None
        if not described.records_exist:
            return f"{key.capitalize()} {record} was removed from Pipedrive by the test's clean-up"
        return f"Open {key} {record} in Pipedrive"
    if key == "email" and r.email:
        return r.email
    if key == "referrer" and r.referrer_email:
        return r.referrer_email
    text = _display(key, r, described)
    return text or None


def _link(column: Column, r: Referral, described: Description) -> tuple[str, int | str] | None:
    if column.link is None or not described.records_exist:
        return None
    record = getattr(r, f"{column.link}_id")
    return (column.link, record) if record not in (None, "") else None


def _link_colour() -> QColor:
    return QGuiApplication.palette().color(QPalette.ColorRole.Link)


def _quiet_colour() -> QColor:
    return QGuiApplication.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
