"""The Invited users table: every referral in the store, read a page at a time.

A store may hold 100,000 referrals, so the model never loads them all. It knows the row count (one SQL
`count`), and reads rows in pages of `page_size` through `store.query` as the view asks for them, keeping
the few most recently used pages. Sorting and filtering are SQL (`order_by`, `text`, `status`), never a
proxy model over Python objects.

Live updates are coalesced: `note_changed(*rf_user_ids)` only records the ids; at most once per interval
the model re-reads the count and what it holds, then tells the view exactly what happened: rows inserted
(`beginInsertRows`, at the top when the newest rows sort first), the cells whose look changed
(`dataChanged`: a new state repaints two or three cells, not the row), and selections that follow their
referral when it moves. Only the changed or new rows are read whole (`Store.get_many`); where rows may have
moved, the held pages' ids are read first (`Store.query_ids`, from the indexes). In the default order
(newest sign-up first, by Referral Factory id, no filter) a change cannot move a row: a thousand changes a
second far from the view cost one count. A model reset happens only when the owner changes the filter or
the sort.

Painting is the costliest thing the window does while the sync runs, so each row's look (text, colours,
link, icon of every cell) is worked out once, when the row is first shown, and `multiData` hands a cell
all the roles a paint asks for in one call.
"""

from __future__ import annotations

import functools
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QModelRoleDataSpan,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
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
# what a row's look holds for each cell; tooltips are written only when one is shown
_LOOK_ROLES = frozenset({
    Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.FontRole,
    Qt.ItemDataRole.DecorationRole, LINK_ROLE,
})  # fmt: skip
_ANSWERED_ROLES = _LOOK_ROLES | {Qt.ItemDataRole.ToolTipRole, REFERRAL_ROLE}

PAGE_SIZE = 100
MAX_PAGES = 8
# A live refresh re-reads only the pages used most recently (what the view shows); the others are
# dropped and read afresh if the view comes back to them.
REFRESH_PAGES = 3
COALESCE_MS = 100
MAX_COALESCE_MS = 1000


@dataclass(frozen=True)
class RowLook:
    """What the table shows of one referral: its description, and each cell's roles (role -> value)."""

    referral: Referral
    described: Description
    cells: tuple[dict[int, Any], ...]

    @classmethod
    def of(cls, referral: Referral) -> RowLook:
        described = describe(referral)
        return cls(referral, described, tuple(_cell(column, referral, described) for column in COLUMNS))


class ReferralTableModel(QAbstractTableModel):
    # a live refresh read the held rows again (after its dataChanged, which names only the cells whose
    # look changed): what shows the selected referral reads it again
    refreshed = Signal()

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
        # id(referral) -> its look (which holds the referral, so the id is not reused while it is kept)
        self._looks: dict[int, RowLook] = {}
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

    def note_changed(self, *rf_user_ids: int) -> None:
        """Referrals changed in the store: refresh soon (bursts become one refresh)."""
        if self._closed:
            return
        self._pending.update(rf_user_ids)
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
        if role not in _ANSWERED_ROLES or not index.isValid():
            return None
        referral = self.referral_at(index.row())
        if referral is None:
            return None
        if role == REFERRAL_ROLE:
            return referral
        look = self._look(referral)
        if role == Qt.ItemDataRole.ToolTipRole:
            return _tooltip(COLUMNS[index.column()].key, referral, look.described)
        return look.cells[index.column()].get(role)

    def multiData(self, index: ModelIndex, roleDataSpan: QModelRoleDataSpan) -> None:
        # a paint asks for seven roles of every visible cell at once: answering them in one call, from a
        # look worked out once per row, keeps a repaint of the table to a couple of hundred Python calls
        referral = self.referral_at(index.row()) if index.isValid() else None
        if referral is None:
            return
        cell = self._look(referral).cells[index.column()]
        for position in range(len(roleDataSpan)):
            item = roleDataSpan[position]
            role = item.role()
            value = cell.get(role) if role in _LOOK_ROLES else self.data(index, role)
            if value is not None:
                item.setData(value)

    def restyle(self) -> None:
        """The palette changed (light and dark): work out every row's colours again."""
        self._looks.clear()
        if self._total:
            self.dataChanged.emit(self.index(0, 0), self.index(self._total - 1, len(COLUMNS) - 1))

    def _look(self, referral: Referral) -> RowLook:
        """How `referral` (an immutable row as read) is shown, kept while it is held."""
        held = self._looks.get(id(referral))
        if held is None or held.referral is not referral:
            if len(self._looks) >= 2 * self.max_pages * self.page_size:
                self._looks.clear()  # rows long since dropped from the pages
            held = RowLook.of(referral)
            self._looks[id(referral)] = held
        return held

    # --- reading the store ----------------------------------------------------------------------------

    def _count(self) -> int:
        return self.store.count(text=self._text or None, **self._state_filter())

    def _state_filter(self) -> dict[str, Any]:
        if self._status is None or isinstance(self._status, str):
            return {"status": self._status}
        return {"status": self._status.statuses, "is_test": self._status.test}

    def _page_of(self, offset: int, limit: int) -> dict[str, Any]:
        """The store's page `query` and `query_ids` take for rows offset to offset + limit."""
        return {
            "text": self._text or None,
            **self._state_filter(),
            "order_by": COLUMNS[self._sort_column].order_by,
            "descending": self._descending,
            "limit": limit,
            "offset": offset,
        }

    def _query(self, offset: int, limit: int) -> list[Referral]:
        return self.store.query(**self._page_of(offset, limit))

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

    def _read_pages(self, numbers: set[int], keep: Iterable[Referral]) -> OrderedDict[int, list[Referral]]:
        """The given pages, read afresh, neighbouring pages together: their ids in order, then whole only
        the rows not in `keep` (held referrals known unchanged: every write to a referral is announced
        through `note_changed`). A kept row is the same object, so its look is not worked out again."""
        kept = {r.rf_user_id: r for r in keep}
        fresh: OrderedDict[int, list[Referral]] = OrderedDict()
        ordered = sorted(n for n in numbers if n * self.page_size < self._total)
        runs: list[list[int]] = []
        for number in ordered:
            if runs and runs[-1][-1] == number - 1:
                runs[-1].append(number)
            else:
                runs.append([number])
        for run in runs:
            ids = self.store.query_ids(**self._page_of(run[0] * self.page_size, len(run) * self.page_size))
            read = self.store.get_many([i for i in ids if i not in kept])
            rows = [kept[i] if i in kept else read[i] for i in ids if i in kept or i in read]
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
            self._refresh_all(total, changed_ids)
        # a slow store (huge table, unindexed sort) gets fewer refreshes instead of a stalled window
        spent_ms = (time.perf_counter() - started) * 1000
        self._timer.setInterval(int(min(max(self.coalesce_ms, 3 * spent_ms), MAX_COALESCE_MS)))

    def _rows_cannot_move(self) -> bool:
        """True when a change to a referral can change only its own row: the order is by Referral Factory
        id, which never changes, and no filter can drop or admit a row without the count changing."""
        return COLUMNS[self._sort_column].order_by == "rf_user_id" and self._status is None and not self._text

    def _refresh_rows_of(self, changed_ids: set[int]) -> None:
        """Read again only the changed referrals that the pages in use hold: most changes are to rows far
        from the view, and cost nothing then."""
        stale = {n for n, page in self._pages.items() if any(r.rf_user_id in changed_ids for r in page)}
        recent = sorted(stale & set(list(self._pages)[-REFRESH_PAGES:]))
        for number in stale.difference(recent):
            del self._pages[number]  # read afresh if the view comes back to it
        wanted = {r.rf_user_id for n in recent for r in self._pages[n] if r.rf_user_id in changed_ids}
        fresh = self.store.get_many(wanted) if wanted else {}  # referrals are never deleted
        changes: list[tuple[int, Referral | None, Referral]] = []
        for number in recent:
            page, first = self._pages[number], number * self.page_size
            changes += [(first + i, r, fresh[r.rf_user_id]) for i, r in enumerate(page) if r.rf_user_id in fresh]
            self._pages[number] = [fresh.get(r.rf_user_id, r) for r in page]
        self._announce(changes)

    def _refresh_all(self, total: int, changed_ids: set[int]) -> None:
        """Re-read the pages in use, announcing inserted and removed rows, moved selections and changes.
        Rows pushed down out of those pages by new ones are read when the view next asks for them."""
        recent = list(self._pages.items())[-REFRESH_PAGES:]
        held = {n * self.page_size + i: r for n, page in recent for i, r in enumerate(page)}
        shift = self._apply_count_change(total)
        before = {row + shift: referral for row, referral in held.items() if row + shift < self._total}
        unchanged = [r for r in held.values() if r.rf_user_id not in changed_ids]
        fresh = self._read_pages({number for number, _page in recent}, keep=unchanged)
        now_at = {n * self.page_size + i: r for n, page in fresh.items() for i, r in enumerate(page)}
        self._follow_moves(before, now_at, fresh)
        self._announce([(row, before.get(row), referral) for row, referral in sorted(now_at.items())])

    def _announce(self, rows: list[tuple[int, Referral | None, Referral]]) -> None:
        """Tell the view which cells changed, given (row, the referral it held before, the one it holds
        now) in row order. A row that was shown repaints only the cells whose look differs (a new state
        is two or three cells, not the row); one that was not is announced whole. `refreshed` follows."""
        spans: list[tuple[int, int, tuple[int, int]]] = []  # first row, last row, (first, last column)
        for row, before, now in rows:
            if before == now:
                continue
            columns = self._changed_columns(before, now)
            if spans and spans[-1][1] == row - 1 and spans[-1][2] == columns:
                spans[-1] = (spans[-1][0], row, columns)
            else:
                spans.append((row, row, columns))
        for first_row, last_row, (first_column, last_column) in spans:
            self.dataChanged.emit(self.index(first_row, first_column), self.index(last_row, last_column))
        if spans:
            self.refreshed.emit()

    def _changed_columns(self, before: Referral | None, now: Referral) -> tuple[int, int]:
        """The first and last column whose look differs; every column when `before` was never shown or
        only what no cell shows changed (the referral itself, a tooltip)."""
        shown = self._looks.get(id(before)) if before is not None else None
        if shown is not None and shown.referral is before:
            now_cells = self._look(now).cells
            differing = [n for n, cell in enumerate(shown.cells) if cell != now_cells[n]]
            if differing:
                return differing[0], differing[-1]
        return 0, len(COLUMNS) - 1

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


def _cell(column: Column, r: Referral, described: Description) -> dict[int, Any]:
    cell: dict[int, Any] = {Qt.ItemDataRole.DisplayRole: _display(column.key, r, described)}
    link = _link(column, r, described)
    if link is not None:
        cell[LINK_ROLE] = link
        cell[Qt.ItemDataRole.FontRole] = _link_font()
    if column.key == "status":
        cell[Qt.ItemDataRole.ForegroundRole] = standing_colour(described.standing)
        cell[Qt.ItemDataRole.DecorationRole] = standing_icon(described.standing)
    elif column.key == "reason" or (column.link and not described.records_exist):
        cell[Qt.ItemDataRole.ForegroundRole] = _quiet_colour()
    elif link is not None:
        cell[Qt.ItemDataRole.ForegroundRole] = _link_colour()
    return cell


def _link(column: Column, r: Referral, described: Description) -> tuple[str, int | str] | None:
    if column.link is None or not described.records_exist:
        return None
    record = getattr(r, f"{column.link}_id")
    return (column.link, record) if record not in (None, "") else None


@functools.cache
def _link_font() -> QFont:
    font = QFont()
    font.setUnderline(True)
    return font


def _link_colour() -> QColor:
    return QGuiApplication.palette().color(QPalette.ColorRole.Link)


def _quiet_colour() -> QColor:
    return QGuiApplication.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
