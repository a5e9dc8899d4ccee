"""The Sync log table: newest first, older rows read on demand, new rows added live.

The store reads the log backwards by id (`log_rows(before_id=...)`), so the model holds what has been
shown and fetches the next older chunk when the view scrolls near the end (`canFetchMore`/`fetchMore`).
Rows announced by the engine are buffered and inserted at the top at most once per interval, so a burst
of a thousand log lines costs one insert.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QGuiApplication, QPalette

from rf_desktop.core.store import LogRow, Store
from rf_desktop.core.vocabulary import describe
from rf_desktop.gui import theme
from rf_desktop.gui.models.formatting import long_time, short_id, short_time
from rf_desktop.gui.models.status_icons import level_icon

ModelIndex = QModelIndex | QPersistentModelIndex


@dataclass(frozen=True)
class LevelFilter:
    """One choice of the level filter: `store_level` is what `store.log_rows(level=...)` takes (rows at
    that level or above); `levels` are the levels shown."""

    label: str
    store_level: str | None
    levels: frozenset[str]


LEVEL_FILTERS = (
    LevelFilter("All", None, frozenset({"info", "warning", "error"})),
    LevelFilter("Info", "info", frozenset({"info"})),
    LevelFilter("Warnings and errors", "warning", frozenset({"warning", "error"})),
    LevelFilter("Errors", "error", frozenset({"error"})),
)

COLUMNS = ("Time", "Level", "Referral", "What happened", "Person", "Lead", "Deal", "Details")
TIME, LEVEL, REFERRAL, ACTION, PERSON, LEAD, DEAL, MESSAGE = range(len(COLUMNS))
LEVEL_LABELS = {"info": "Info", "warning": "Warning", "error": "Error"}

LOG_ROW_ROLE = Qt.ItemDataRole.UserRole + 1
LINK_ROLE = Qt.ItemDataRole.UserRole + 2  # ("person" | "lead" | "deal", id): the record a click opens
LINK_COLUMNS = {PERSON: "person", LEAD: "lead", DEAL: "deal"}
CHUNK = 500
FLUSH_MS = 100
# referrals named in the Referral column, remembered so scrolling does not query each row again
NAME_CACHE_SIZE = 5000


@dataclass(frozen=True)
class Named:
    """How a log row names its referral, and whether its Pipedrive records can still be opened."""

    name: str
    email: str
    records_exist: bool = True

    @property
    def text(self) -> str:
        return f"{self.name} · {self.email}" if self.email and self.email != self.name else self.name


class LogTableModel(QAbstractTableModel):
    def __init__(
        self, store: Store, *, chunk: int = CHUNK, flush_ms: int = FLUSH_MS, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.store = store
        self.chunk = chunk
        self._rows: list[LogRow] = []
        self._level = LEVEL_FILTERS[0]
        self._text = ""
        self._exhausted = False
        self._incoming: list[LogRow] = []
        self._names: dict[int, Named] = {}
        self._closed = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(flush_ms)
        self._timer.timeout.connect(self.flush)
        self._load_first_chunk()

    # --- what the page asks for -----------------------------------------------------------------------

    @property
    def level_filter(self) -> LevelFilter:
        return self._level

    @property
    def text_filter(self) -> str:
        return self._text

    def set_filter(self, level: LevelFilter | None = None, text: str | None = None) -> None:
        new_level = self._level if level is None else level
        new_text = self._text if text is None else text.strip()
        if (new_level, new_text) == (self._level, self._text):
            return
        self._level, self._text = new_level, new_text
        self.reload()

    def reload(self) -> None:
        """Read the newest rows again (after a filter change, or when rows were pruned)."""
        self.beginResetModel()
        self._load_first_chunk()
        self.endResetModel()

    def row_at(self, row: int) -> LogRow | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def add(self, row: LogRow) -> None:
        """A row the engine just wrote: shown at the top within one flush interval."""
        if self._closed:
            return
        self._incoming.append(row)
        if not self._timer.isActive():
            self._timer.start()

    def flush(self) -> None:
        self._timer.stop()
        newest = self._rows[0].id if self._rows else 0
        rows = [r for r in reversed(self._incoming) if r.id > newest and self._matches(r)]
        self._incoming.clear()
        if not rows or self._closed:
            return
        self.beginInsertRows(QModelIndex(), 0, len(rows) - 1)
        self._rows[:0] = rows
        self.endInsertRows()

    def close(self) -> None:
        """Stop adding rows (the store is about to close)."""
        self._closed = True
        self._timer.stop()

    # --- Qt's side ------------------------------------------------------------------------------------

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008 (Qt API)
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008 (Qt API)
        return 0 if parent.isValid() else len(COLUMNS)

    def canFetchMore(self, parent: ModelIndex) -> bool:
        return not parent.isValid() and not self._exhausted and not self._closed

    def fetchMore(self, parent: ModelIndex) -> None:
        if parent.isValid() or self._exhausted or self._closed:
            return
        older = self._read()
        if not older:
            return
        self.beginInsertRows(QModelIndex(), len(self._rows), len(self._rows) + len(older) - 1)
        self._rows.extend(older)
        self.endInsertRows()

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section] if 0 <= section < len(COLUMNS) else None
        return None

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self.row_at(index.row())
        if row is None:
            return None
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(column, row)
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == TIME:
                return long_time(row.time)
            link = self._link(column, row)
            if link is not None:
                return f"Open {link[0]} {link[1]} in Pipedrive"
            if column in LINK_COLUMNS and self._display(column, row):
                return f"{LINK_COLUMNS[column].capitalize()} {self._record(column, row)} (removed from Pipedrive)"
            if column in (MESSAGE, ACTION, REFERRAL):
                return self._display(column, row) or None
            return None
        if role == LINK_ROLE:
            return self._link(column, row)
        if role == Qt.ItemDataRole.ForegroundRole and self._link(column, row) is not None:
            return _link_colour()
        if role == Qt.ItemDataRole.FontRole and self._link(column, row) is not None:
            font = QFont()
            font.setUnderline(True)
            return font
        if role == Qt.ItemDataRole.ForegroundRole and column == LEVEL and row.level != "info":
            return (theme.BAD if row.level == "error" else theme.WARN).colour()
        if role == Qt.ItemDataRole.DecorationRole and column == LEVEL:
            return level_icon(row.level)
        if role == LOG_ROW_ROLE:
            return row
        return None

    # --- reading the store ----------------------------------------------------------------------------

    def _read(self) -> list[LogRow]:
        """The next older rows that pass the filter (the store filters "this level or above"; a filter on
        one level drops the rest here, reading on until something is left or the log ends)."""
        while not self._exhausted:
            rows: list[LogRow] = self.store.log_rows(
                level=self._level.store_level,
                text=self._text or None,
                limit=self.chunk,
                before_id=self._oldest_read,
            )
            if len(rows) < self.chunk:
                self._exhausted = True
            if rows:
                self._oldest_read = rows[-1].id
            shown = [r for r in rows if r.level in self._level.levels]
            if shown:
                return shown
        return []

    def _load_first_chunk(self) -> None:
        self._exhausted = False
        self._oldest_read: int | None = None
        self._incoming.clear()
        self._rows = self._read()

    def _matches(self, row: LogRow) -> bool:
        if row.level not in self._level.levels:
            return False
        if not self._text:
            return True
        needle = self._text.casefold()
        haystack = (row.message, row.action, str(row.rf_user_id or ""), self._name(row.rf_user_id))
        return any(needle in (part or "").casefold() for part in haystack)

    def _display(self, column: int, row: LogRow) -> str:
        if column == TIME:
            return short_time(row.time, seconds=True)
        if column == LEVEL:
            return LEVEL_LABELS.get(row.level, row.level.capitalize())
        if column == REFERRAL:
            if row.rf_user_id is None:
                return ""
            named = self._named(row.rf_user_id).text
            return f"{named} (test)" if row.is_test else named
        if column == ACTION:
            return row.action[:1].upper() + row.action[1:]
        if column == PERSON:
            return short_id(row.person_id)
        if column == LEAD:
            return short_id(row.lead_id)
        if column == DEAL:
            return short_id(row.deal_id)
        if column == MESSAGE:
            return row.message
        return ""

    @staticmethod
    def _record(column: int, row: LogRow) -> int | str | None:
        return {PERSON: row.person_id, LEAD: row.lead_id, DEAL: row.deal_id}.get(column)

    def _link(self, column: int, row: LogRow) -> tuple[str, int | str] | None:
        record = self._record(column, row)
        if record in (None, ""):
            return None
        if row.rf_user_id is not None and not self._named(row.rf_user_id).records_exist:
            return None
        assert record is not None
        return LINK_COLUMNS[column], record

    def _name(self, rf_user_id: int | None) -> str:
        return "" if rf_user_id is None else self._named(rf_user_id).text

    def _named(self, rf_user_id: int) -> Named:
        named = self._names.get(rf_user_id)
        if named is None:
            referral = self.store.get(rf_user_id)
            if referral is None:
                named = Named(f"Referral {rf_user_id} (no longer tracked)", "")
            else:
                name = referral.first_name or referral.email or f"Referral {rf_user_id}"
                named = Named(name, referral.email, describe(referral).records_exist)
            if len(self._names) >= NAME_CACHE_SIZE:
                self._names.clear()
            self._names[rf_user_id] = named
        return named

    def forget(self, *rf_user_ids: int) -> None:
        """The referrals changed (a test cleaned up, a name corrected): name them afresh."""
        forgotten = [rf_user_id for rf_user_id in rf_user_ids if self._names.pop(rf_user_id, None) is not None]
        if forgotten and self._rows:
            self.dataChanged.emit(self.index(0, REFERRAL), self.index(len(self._rows) - 1, DEAL))


def _link_colour() -> QColor:
    return QGuiApplication.palette().color(QPalette.ColorRole.Link)
