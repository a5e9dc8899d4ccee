"""The Invited users table: every referral in the store, read a page at a time.

A store may hold 100,000 referrals, so the model never loads them all. It knows the row count (one SQL
`count`), and reads rows in pages of `page_size` through `store.query` as the view asks for them, keeping
the few most recently used pages. Sorting and filtering are SQL (`order_by`, `text`, `status`), never a
proxy model over Python objects.

Live updates are coalesced: `note_changed(*rf_user_ids)` only records the ids; at most once per interval
the model re-reads the count and the pages in use (those holding the rows in view, then the most recently
used), then tells its views exactly what happened: rows inserted (`beginInsertRows`, at the top when the
newest rows sort first), the cells whose look changed (`dataChanged`: a new state is two or three cells,
not the row), and rows that moved (`reordered`, so that selections follow their referral). Only the changed
or new rows are read whole (`Store.get_many`); where rows may have moved, the pages' ids are read first
(`Store.query_ids`, from the indexes). In the default order (newest sign-up first, by Referral Factory id,
no filter) a change cannot move a row: a thousand changes a second far from the view cost one count. A
model reset happens only when the owner changes the filter or the sort.

The table does not paint from this model: `ShownRows` copies the cells of the rows in view
(`shown_cells`, from each row's look, worked out once) into Qt's item storage, and tells this model which
rows those are (`show_rows`), so that their pages are kept and always refreshed.
"""

from __future__ import annotations

import functools
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QGuiApplication, QIcon, QPalette

from rf_desktop.core.store import Referral, Store
from rf_desktop.core.vocabulary import STANDINGS, Description, Standing, describe
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
ALL_COLUMNS = range(len(COLUMNS))
# Sorting by these, newest first, puts rows that just arrived at the top.
NEWEST_FIRST_KEYS = frozenset({"signed_up", "updated"})

REFERRAL_ROLE = Qt.ItemDataRole.UserRole + 1
LINK_ROLE = Qt.ItemDataRole.UserRole + 2
# what a row's look holds for each cell; tooltips are written only when one is asked for
_LOOK_ROLES = (
    Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.FontRole,
    Qt.ItemDataRole.DecorationRole, LINK_ROLE,
)  # fmt: skip
_ANSWERED_ROLES = frozenset({*_LOOK_ROLES, Qt.ItemDataRole.ToolTipRole, REFERRAL_ROLE})
# every role a copy of a cell holds, None where a cell has none (so a copy clears what it had); tooltips
# are asked for when one is shown
_NO_SHOWN_ROLES: dict[int, Any] = dict.fromkeys((*_LOOK_ROLES, REFERRAL_ROLE))

PAGE_SIZE = 100
MAX_PAGES = 8
# A live refresh re-reads the pages in view and, up to this many in all, the others used most recently;
# the rest are dropped and read afresh if a view comes back to them.
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
        described, inks = describe(referral), _inks()
        return cls(referral, described, tuple(_cell(column, referral, described, inks) for column in COLUMNS))


class ReferralTableModel(QAbstractTableModel):
    # a live refresh read the held rows again (after its dataChanged, which names only the cells whose
    # look changed): what shows the selected referral reads it again
    refreshed = Signal()
    # rows re-sorted by a live refresh: {row before: row now}, for views' selections to follow
    reordered = Signal(object)

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
        self._in_view = range(0)  # the rows a view shows (`show_rows`)
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

    def shown_cells(self, row: int, columns: range = ALL_COLUMNS) -> dict[int, dict[int, Any]]:
        """Every role the table paints of the cells of `row` in `columns` ({column: {role: value}}), and
        the referral; None for roles a cell has not; nothing past the last row."""
        referral = self.referral_at(row)
        if referral is None:
            return {}
        cells = self._look(referral).cells
        return {column: {**_NO_SHOWN_ROLES, **cells[column], REFERRAL_ROLE: referral} for column in columns}

    def show_rows(self, first: int, last: int) -> None:
        """A view shows rows `first` to `last`: their pages are kept, and every live refresh reads them
        again (a view that copies cells relies on being told of every change to them)."""
        self._in_view = range(max(first, 0), last + 1)
        for number in self._view_pages():
            if number in self._pages:
                self._pages.move_to_end(number)

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

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
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

    def restyle(self) -> None:
        """The palette changed (light and dark): work out every row's colours again."""
        _inks.cache_clear()
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
        in_view = self._view_pages()
        unseen = [n for n in self._pages if n not in in_view]  # least recently used first
        for oldest in unseen[: max(0, len(self._pages) - self.max_pages)]:
            del self._pages[oldest]
        return page

    def _view_pages(self) -> set[int]:
        if not self._in_view:
            return set()
        return set(range(self._in_view[0] // self.page_size, self._in_view[-1] // self.page_size + 1))

    def _pages_in_use(self) -> list[int]:
        """The held pages a live refresh reads again: those in view, and the most recently used others up
        to `REFRESH_PAGES` in all."""
        in_view = self._view_pages()
        others = [n for n in self._pages if n not in in_view]
        room = max(0, REFRESH_PAGES - len(in_view))
        return (others[-room:] if room else []) + [n for n in self._pages if n in in_view]

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
        recent = sorted(stale.intersection(self._pages_in_use()))
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
        """Re-read the pages in use and those in view (which new rows above may have moved), announcing
        inserted and removed rows, moves and changes. Other rows pushed down out of those pages by new
        ones are read when a view next asks for them."""
        recent = [(number, self._pages[number]) for number in self._pages_in_use()]
        held = {n * self.page_size + i: r for n, page in recent for i, r in enumerate(page)}
        shift = self._apply_count_change(total)
        before = {row + shift: referral for row, referral in held.items() if row + shift < self._total}
        unchanged = [r for r in held.values() if r.rf_user_id not in changed_ids]
        fresh = self._read_pages({n for n, _page in recent} | self._view_pages(), keep=unchanged)
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
            if at_top and self._in_view:  # a view's rows move down with the rows it shows
                self._in_view = range(self._in_view.start + total - old, self._in_view.stop + total - old)
            self.endInsertRows()
            return total - old if at_top else 0
        if total < old:
            self.beginRemoveRows(QModelIndex(), total, old - 1)
            self._total = total
            self._pages.clear()
            self.endRemoveRows()
        return 0

    def _follow_moves(self, before: dict[int, Referral], now_at: dict[int, Referral], fresh: Pages) -> None:
        """Swap in the fresh pages; rows that moved (re-sorted) are announced, and selections follow them."""
        new_row_of = {referral.rf_user_id: row for row, referral in now_at.items()}
        moves = {
            row: new_row_of[referral.rf_user_id]
            for row, referral in before.items()
            if new_row_of.get(referral.rf_user_id, row) != row
        }

        def swap() -> None:
            self._pages = fresh

        follow_rows(self, moves, swap)
        if moves:
            self.reordered.emit(moves)


def follow_rows(model: QAbstractItemModel, moves: dict[int, int], change: Callable[[], object] = lambda: None) -> None:
    """Move `model`'s persistent indexes (a view's selection and current cell) from the rows in `moves`
    ({row before: row now}) to where those rows went, `change` making the move in the model's data: a
    layout change when any index moves, only `change` when none does."""
    if not any(index.row() in moves for index in model.persistentIndexList()):
        change()
        return
    model.layoutAboutToBeChanged.emit()  # a selection model keeps its selection as indexes of its own now
    change()
    for index in model.persistentIndexList():
        if index.row() in moves:
            model.changePersistentIndex(index, model.index(moves[index.row()], index.column()))
    model.layoutChanged.emit()


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


def _cell(column: Column, r: Referral, described: Description, inks: Inks) -> dict[int, Any]:
    cell: dict[int, Any] = {Qt.ItemDataRole.DisplayRole: _display(column.key, r, described)}
    link = _link(column, r, described)
    if link is not None:
        cell[LINK_ROLE] = link
        cell[Qt.ItemDataRole.FontRole] = inks.link_font
    if column.key == "status":
        cell[Qt.ItemDataRole.ForegroundRole], cell[Qt.ItemDataRole.DecorationRole] = inks.standings[
            described.standing.key
        ]
    elif column.key == "reason" or (column.link and not described.records_exist):
        cell[Qt.ItemDataRole.ForegroundRole] = inks.quiet
    elif link is not None:
        cell[Qt.ItemDataRole.ForegroundRole] = inks.link
    return cell


def _link(column: Column, r: Referral, described: Description) -> tuple[str, int | str] | None:
    if column.link is None or not described.records_exist:
        return None
    record = getattr(r, f"{column.link}_id")
    return (column.link, record) if record not in (None, "") else None


@dataclass(frozen=True)
class Inks:
    """The colours, font and icons of the rows' looks, read from the palette once until it changes: the sync
    changes rows all the time, and each reading is a call into Qt that may wait for the interpreter lock."""

    link: QColor
    quiet: QColor
    link_font: QFont
    standings: dict[str, tuple[QColor, QIcon]]  # standing key -> its colour and its dot


@functools.cache
def _inks() -> Inks:
    palette = QGuiApplication.palette()
    link_font = QFont()
    link_font.setUnderline(True)
    return Inks(
        link=palette.color(QPalette.ColorRole.Link),
        quiet=palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text),
        link_font=link_font,
        standings={s.key: (standing_colour(s), standing_icon(s)) for s in STANDINGS},
    )
