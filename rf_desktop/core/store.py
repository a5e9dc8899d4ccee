"""The SQLite store: settings, the referrals we track (the outbox), the sync log.

One file in WAL mode. Every write commits before the method returns, and `synchronous=FULL` makes that
commit survive a power cut: the no-duplicates protocol (ARCHITECTURE.md) relies on an `intent` being on
disk before the create it announces is sent.

`PRAGMA user_version` holds the schema major. Opening an older file copies it to `<db>.bak-v<old>` and
runs the numbered migrations, each in its own transaction; a file written by a newer rf-desktop is refused
rather than guessed at. Tokens are never written here: settings have no token field.

The store is synchronous and fast: lookups and pages use indexes; the window's text search matches
anywhere in a value, which no index can serve, and scans (milliseconds for 100,000 referrals). One
connection is shared behind a lock, so the sync engine, the window and an export running in a worker
thread can all use it. A reader (`Store.reader`) has a connection and a lock of its own: WAL lets it read
the last commit while the shared connection writes and syncs it to disk, so the window's reads never wait.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from rf_desktop.core.config import Settings
from rf_desktop.core.schema import PipedriveSchema
from rf_desktop.core.store_errors import (
    HOW_TO_MOVE,
    DamagedDatabaseError,
    DiskFullError,
    ReadOnlyDatabaseError,
    StoreError,
    ensure_folder,
)
from rf_desktop.core.turn_lock import TurnLock

BACKUP_SUFFIX = ".bak"
BACKUP_MAX_AGE = timedelta(hours=24)
class Status(StrEnum):
    PENDING = "pending"  # recorded, not sent yet
    SENDING = "sending"  # a push started (and, after a crash, was interrupted)
    SENT = "sent"  # person and lead/deal exist; no rule to watch
    WAITING = "waiting"  # lead/deal exists; watching Pipedrive for the rule
    QUALIFIED = "qualified"  # Referral Factory accepted the qualification
    FAILED = "failed"  # the last attempt failed (retried unless permanent)
    SKIPPED = "skipped"  # deliberately not sent (e.g. duplicate policy)


PENDING, SENDING, SENT, WAITING, QUALIFIED, FAILED, SKIPPED = (
    Status.PENDING,
    Status.SENDING,
    Status.SENT,
    Status.WAITING,
    Status.QUALIFIED,
    Status.FAILED,
    Status.SKIPPED,
)
STATUSES: tuple[str, ...] = tuple(s.value for s in Status)


class Reason(StrEnum):
    """What kind of trouble the referral's `status_reason` sentence describes, so code can act on it
    without reading the sentence."""

    RATE_LIMITED = "rate_limited"  # Pipedrive or Referral Factory asked us to slow down
    AUTH = "auth"  # a token was refused
    MISSING_TOKEN = "missing_token"  # noqa: S105 (a token was never added)
    MAPPING = "mapping"  # the referral's values or the mapping do not fit the Pipedrive fields
    REFUSED = "refused"  # the service refused the record itself
    NO_EMAIL = "no_email"  # nothing to match a Pipedrive person by
    UNREACHABLE = "unreachable"  # the service could not be reached
    TRANSIENT = "transient"  # a passing failure (a timeout, a server error)
    TEST_REMOVED = "test_removed"  # a test referral whose records its clean-up removed


REASONS: tuple[str, ...] = tuple(r.value for r in Reason)
INTENTS = ("person", "item", "qualify")
LOG_LEVELS = ("info", "warning", "error")  # in rising order of severity


@dataclass(frozen=True)
class Referral:
    """One Referral Factory user we track. Timestamps are ISO 8601 UTC text (see `to_iso`)."""

    rf_user_id: int
    campaign_id: int
    campaign_name: str = ""
    user_type: str = "person_invited"
    first_name: str = ""
    email: str = ""
    code: str = ""
    url: str = ""
    source: str = ""
    signed_up_at: str = ""
    meta: dict[str, str] = field(default_factory=dict)  # campaign form fields, label -> value
    referrer_id: int | None = None
    referrer_first_name: str | None = None
    referrer_email: str | None = None
    referrer_code: str | None = None
    referrer_url: str | None = None
    status: Status = PENDING
    status_reason: str | None = None
    # the kind of the status_reason; kept in step with it: a reason written without a kind clears it
    reason_kind: Reason | None = None
    person_id: int | None = None
    lead_id: str | None = None
    deal_id: int | None = None
    deal_stage_id: int | None = None
    deal_pipeline_id: int | None = None
    deal_status: str | None = None
    intent: str | None = None
    attempts: int = 0
    next_attempt_at: str | None = None
    permanent: bool = False
    qualified_at: str | None = None
    is_test: bool = False
    recorded_at: str | None = None
    updated_at: str | None = None

    @property
    def item_id(self) -> str | int | None:
        """The lead id (UUID text) or the deal id, whichever exists."""
        return self.lead_id if self.lead_id is not None else self.deal_id


@dataclass(frozen=True)
class LogRow:
    id: int
    time: str
    level: str
    rf_user_id: int | None
    action: str
    person_id: int | None
    lead_id: str | None
    deal_id: int | None
    message: str
    is_test: bool


# --- timestamps: one fixed-width UTC format, so text order is time order ---


def to_iso(moment: datetime) -> str:
    """`2025-01-31T09:30:00.000000Z`. Naive datetimes are taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def from_iso(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _normalise_time(value: str | datetime | None, column: str) -> str | None:
    if value is None or value == "":
        return None
    try:
        return to_iso(value if isinstance(value, datetime) else from_iso(value))
    except (TypeError, ValueError):
        raise ValueError(f"{column} must be an ISO 8601 time, not {value!r}") from None


# --- schema and migrations ---

_REFERRAL_COLUMNS = (*(f.name for f in fields(Referral) if f.name != "meta"), "meta_json")
_TIME_COLUMNS = frozenset({"next_attempt_at", "qualified_at", "recorded_at", "updated_at"})
_BOOL_COLUMNS = frozenset({"permanent", "is_test"})
_TEXT_COLUMNS = frozenset({"campaign_name", "first_name", "email", "code", "url", "source", "signed_up_at"})
_SPECIAL_COLUMNS = (*_TIME_COLUMNS, *_BOOL_COLUMNS, *_TEXT_COLUMNS, "status", "intent", "reason_kind")
_SET_KV = "INSERT INTO kv VALUES (?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value WHERE value!=excluded.value"
_UPDATABLE = frozenset(f.name for f in fields(Referral)) - {"rf_user_id", "recorded_at", "updated_at"}
# every column the Invited users table shows can sort it; unindexed ones are a top-N scan with LIMIT,
# tens of milliseconds at 100,000 rows
_ORDERABLE = frozenset(
    {"recorded_at", "updated_at", "rf_user_id", "first_name", "email", "code", "status", "campaign_name",
     "signed_up_at", "qualified_at", "referrer_first_name", "person_id", "lead_id", "deal_id"}
)  # fmt: skip


def _quoted(values: Iterable[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def _migration_1(db: Database) -> None:
    """The first schema: referrals, sync_log, kv, and the indexes the window and the engine query by."""
    db.executescript(f"""
        CREATE TABLE referrals (
            rf_user_id INTEGER PRIMARY KEY,
            campaign_id INTEGER NOT NULL,
            campaign_name TEXT NOT NULL DEFAULT '',
            user_type TEXT NOT NULL DEFAULT 'person_invited',
            first_name TEXT NOT NULL DEFAULT '',
            email TEXT NOT NULL DEFAULT '',
            code TEXT NOT NULL DEFAULT '',
            url TEXT NOT NULL DEFAULT '',
            source TEXT NOT NULL DEFAULT '',
            signed_up_at TEXT NOT NULL DEFAULT '',
            meta_json TEXT NOT NULL DEFAULT '{{}}',
            referrer_id INTEGER,
            referrer_first_name TEXT,
            referrer_email TEXT,
            referrer_code TEXT,
            referrer_url TEXT,
            status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ({_quoted(STATUSES)})),
            status_reason TEXT,
            person_id INTEGER,
            lead_id TEXT,
            deal_id INTEGER,
            deal_stage_id INTEGER,
            deal_pipeline_id INTEGER,
            deal_status TEXT,
            intent TEXT CHECK (intent IN ({_quoted(INTENTS)})),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT,
            permanent INTEGER NOT NULL DEFAULT 0,
            qualified_at TEXT,
            is_test INTEGER NOT NULL DEFAULT 0,
            recorded_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX referrals_recorded ON referrals (recorded_at);
        CREATE INDEX referrals_status_recorded ON referrals (status, recorded_at);
        CREATE INDEX referrals_status_next_attempt ON referrals (status, next_attempt_at);
        CREATE INDEX referrals_updated ON referrals (updated_at);
        CREATE INDEX referrals_campaign ON referrals (campaign_id);
        CREATE INDEX referrals_code ON referrals (code);
        CREATE INDEX referrals_lead ON referrals (lead_id);
        CREATE INDEX referrals_deal ON referrals (deal_id);

        CREATE TABLE sync_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            time TEXT NOT NULL,
            level TEXT NOT NULL CHECK (level IN ({_quoted(LOG_LEVELS)})),
            rf_user_id INTEGER,
            action TEXT NOT NULL,
            person_id INTEGER,
            lead_id TEXT,
            deal_id INTEGER,
            message TEXT NOT NULL,
            is_test INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX sync_log_time ON sync_log (time);
        CREATE INDEX sync_log_level ON sync_log (level, id);
        CREATE INDEX sync_log_referral ON sync_log (rf_user_id, id);

        CREATE TABLE kv (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
    """)


def _migration_2(db: Database) -> None:
    """Indexes for sorting the Invited users table by any column: without them a sort of 100,000 rows by
    name or email scans the table for every page (0.15-0.75 s); with them a page reads in milliseconds."""
    for column in ("first_name", "email", "campaign_name", "referrer_first_name", "status", "person_id"):
        db.execute(f"CREATE INDEX IF NOT EXISTS referrals_sort_{column} ON referrals ({column}, rf_user_id)")


def _migration_3(db: Database) -> None:
    """The kind of a referral's status reason (`Reason`), beside the sentence the owner reads."""
    db.execute(f"ALTER TABLE referrals ADD COLUMN reason_kind TEXT CHECK (reason_kind IN ({_quoted(REASONS)}))")


def _migration_4(db: Database) -> None:
    """Test referrals counted per status from an index: the window's counts read every row without it."""
    db.execute("CREATE INDEX IF NOT EXISTS referrals_test_status ON referrals (is_test, status)")


# Migration N brings a database from schema N-1 to N. Append; never edit a released one.
MIGRATIONS: list[Callable[[Database], None]] = [_migration_1, _migration_2, _migration_3, _migration_4]


def _like(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, with the user's % and _ taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class Store:
    def __init__(
        self, path: str | Path, *, clock: Callable[[], datetime] | None = None, _reading_only: bool = False
    ) -> None:
        """Open (creating or upgrading) the store at `path`; ":memory:" for a throwaway store."""
        self.path = str(path)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = TurnLock()
        self._last_stamp = ""
        self._memory = self.path == ":memory:"
        if _reading_only:
            self._db = Database(sqlite3.connect(self.path, check_same_thread=False))
            self._db.execute("PRAGMA busy_timeout = 5000")
            # a write through a reader is a mistake: refuse it rather than compete with the writer
            self._db.execute("PRAGMA query_only = 1")
            return
        if not self._memory:
            ensure_folder(Path(self.path).parent)
            self._refuse_read_only()
        try:
            # check_same_thread=False: access is serialised by self._lock instead
            conn = sqlite3.connect(self.path, check_same_thread=False)
        except sqlite3.Error as exc:
            raise self._classified(exc) or StoreError(
                f"Could not open the database {self.path} ({exc}). Check that you may write to its folder, "
                f"{HOW_TO_MOVE}."
            ) from exc
        self._db = Database(conn)
        try:
            self._prepare()
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise self._classified(exc) or StoreError(
                f"{self.path} is not an rf-desktop database, or it is damaged ({exc}). Choose another "
                "database file."
            ) from exc
        except BaseException:
            conn.close()
            raise

    @property
    def backup_path(self) -> Path:
        """The automatic copy of the database, made at most once a day when it is opened."""
        return Path(self.path + BACKUP_SUFFIX)

    def _backup_note(self) -> str:
        backup = self.backup_path
        if self._memory or not backup.exists():
            return ""
        taken = datetime.fromtimestamp(backup.stat().st_mtime, UTC)
        return f" The automatic copy from {taken:%Y-%m-%d %H:%M} UTC is at {backup}."

    def _refuse_read_only(self) -> None:
        """SQLite reports a folder it cannot write its journal to as a damaged file; say what it is."""
        path = Path(self.path)
        if not os.access(path.parent, os.W_OK):
            what, target = "the folder", path.parent
        elif path.exists() and not os.access(path, os.W_OK):
            what, target = "the database", path
        else:
            return
        raise ReadOnlyDatabaseError(
            f"rf-desktop may not write to {what} {target}, so it cannot keep referrals there. Nothing was "
            f"changed. Make it writable (for example `chmod u+w {target}`), {HOW_TO_MOVE}."
        )

    def _classified(self, exc: sqlite3.Error) -> StoreError | None:
        """A StoreError that says what happened and what to do, for the SQLite errors an owner can fix."""
        name = getattr(exc, "sqlite_errorname", "") or ""
        if name.startswith("SQLITE_FULL"):
            return DiskFullError(
                f"The disk holding {self.path} is full, so rf-desktop stopped before writing anything half-way. "
                f"Everything recorded so far is kept in {self.path}.{self._backup_note()} Free some space on "
                "that disk, then run rf-desktop again."
            )
        if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")):
            return ReadOnlyDatabaseError(
                f"rf-desktop may not write to the database {self.path} or its folder ({exc}). Nothing was "
                f"changed. Make both writable, {HOW_TO_MOVE}."
            )
        if name.startswith("SQLITE_CORRUPT"):
            return self._damaged(f"is damaged (SQLite says: {exc})")
        if name.startswith("SQLITE_NOTADB"):
            return self._damaged(f"is not an rf-desktop database, or it is damaged ({exc})")
        return None

    def _damaged(self, what: str) -> DamagedDatabaseError:
        note = self._backup_note()
        restore = (
            f" To go back to that copy, move {Path(self.path).name} aside and rename "
            f"{self.backup_path.name} to {Path(self.path).name}."
            if note
            else f" Move {Path(self.path).name} aside (keep it: it may still be rescued) and rf-desktop starts a "
            "new database."
        )
        unused = "rf-desktop did not use it and changed nothing."
        return DamagedDatabaseError(f"{self.path} {what}. {unused}{note}{restore}")

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """A write that fails because the disk is full or the file became read-only or damaged raises the
        StoreError that says so, instead of a bare sqlite3 error."""
        try:
            yield
        except sqlite3.Error as exc:
            classified = self._classified(exc)
            if classified is None:
                raise
            raise classified from exc

    def _prepare(self) -> None:
        execute = self._db.execute
        execute("PRAGMA busy_timeout = 5000")
        version = int(execute("PRAGMA user_version").fetchone()[0])
        latest = len(MIGRATIONS)
        if version > latest:
            raise StoreError(
                f"This database was written by a newer rf-desktop (schema {version}). Update rf-desktop, "
                "or choose another database file."
            )
        if version == 0 and execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise StoreError(
                f"{self.path} is not an rf-desktop database. Choose another database file (rf-desktop "
                "creates a new one when the file does not exist)."
            )
        if version > 0:
            # a damaged file used silently loses referrals later; refuse it while nothing depends on it
            rows = execute("PRAGMA quick_check(3)").fetchall()
            if [row[0] for row in rows] != ["ok"]:
                lines = (line for row in rows for line in str(row[0]).splitlines())
                findings = "; ".join(line for line in lines if not line.startswith("***"))
                raise self._damaged(f"is damaged (SQLite's integrity check says: {findings})")
        if not self._memory:
            self._db.enable_wal()
            execute("PRAGMA synchronous = FULL")
        if version < latest:
            self._migrate(version, latest)
        if version > 0 and not self._memory:
            self._backup_daily()

    def _backup_daily(self) -> None:
        """Keep a copy of the database that is at most a day old, so a disk or file failure loses little."""
        backup = self.backup_path
        if backup.exists():
            age = datetime.now(UTC) - datetime.fromtimestamp(backup.stat().st_mtime, UTC)
            if age < BACKUP_MAX_AGE:
                return
        self._backup_to(backup)

    def _migrate(self, version: int, latest: int) -> None:
        backup = None
        if version > 0 and not self._memory:
            backup = Path(f"{self.path}.bak-v{version}")
            self._backup_to(backup)
        for number in range(version + 1, latest + 1):
            try:
                with self._db.atomic():
                    MIGRATIONS[number - 1](self._db)
                    self._db.execute(f"PRAGMA user_version = {number}")
            except Exception as exc:
                where = f" A copy of the database from before the upgrade is at {backup}." if backup else ""
                raise StoreError(
                    f"Could not upgrade the database to schema {number}: {exc}.{where} Please report this."
                ) from exc

    def _backup_to(self, dest: Path) -> None:
        # the backup API copies a consistent snapshot, WAL content included; a plain file copy might not
        tmp = dest.with_name(dest.name + ".tmp")
        target = sqlite3.connect(tmp)
        try:
            self._db.conn.backup(target)
        finally:
            target.close()
        shutil.move(tmp, dest)

    def reader(self) -> Store:
        """A connection of its own for reading only (writes through it fail). In WAL mode it reads the last
        commit while this store writes, and never waits for this store's lock nor for a commit's disk
        sync, so the window stays responsive while worker threads write. Close it when done. A ":memory:"
        store has no file another connection could open, so it is its own reader."""
        if self._memory:
            return self
        return Store(self.path, clock=self._clock, _reading_only=True)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _now(self) -> str:
        """Now, strictly later than any stamp this store gave before, so `changed_since` misses nothing."""
        stamp = to_iso(self._clock())
        if stamp <= self._last_stamp:
            stamp = to_iso(from_iso(self._last_stamp) + timedelta(microseconds=1))
        self._last_stamp = stamp
        return stamp

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        # reads go straight to the connection: a SELECT opens no transaction, so nothing needs committing
        with self._lock:
            cursor = self._db.conn.execute(sql, params)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    # --- settings and key/value ---

    def get_settings(self) -> Settings | None:
        data = self.get_kv("settings")
        return Settings.from_json(data) if data is not None else None

    def save_settings(self, settings: Settings) -> None:
        self.set_kv("settings", settings.to_json())

    def get_schema(self) -> PipedriveSchema | None:
        """The cached Pipedrive schema; None when there is none or it is unreadable (fetch it again)."""
        data = self.get_kv("pipedrive_schema")
        if data is None:
            return None
        try:
            return PipedriveSchema.from_json(data)
        except ValueError:
            return None

    def save_schema(self, schema: PipedriveSchema | None) -> None:
        """Keep the schema (None forgets it: it is fetched again)."""
        self.set_kv("pipedrive_schema", schema.to_json() if schema is not None else None)

    def get_kv(self, key: str, default: Any = None) -> Any:
        rows = self._rows("SELECT value FROM kv WHERE key = ?", [key])
        return json.loads(rows[0]["value"]) if rows else default

    def set_kv(self, key: str, value: Any) -> None:
        """Keep `value` under `key`; the value it already has changes no row, so its commit syncs nothing."""
        with self._lock, self._writing():
            self._db.execute(_SET_KV, [key, json.dumps(value)])

    # --- referrals ---

    @staticmethod
    def _referral_row(referral: Referral, now: str) -> dict[str, Any]:
        # only the columns that need converting are touched: intake may record thousands at once
        row = dict(referral.__dict__)
        row["meta_json"] = json.dumps(row.pop("meta"), ensure_ascii=False)
        for name in _SPECIAL_COLUMNS:
            row[name] = Store._column_value(name, row[name])
        row["recorded_at"] = row["recorded_at"] or now
        row["updated_at"] = row["updated_at"] or now
        return row

    @staticmethod
    def _column_value(name: str, value: Any) -> Any:
        if name in _TIME_COLUMNS:
            return _normalise_time(value, name)
        if name in _BOOL_COLUMNS:
            return int(bool(value))
        if name in _TEXT_COLUMNS and value is None:
            return ""
        if isinstance(value, StrEnum):
            return value.value
        return value

    def record_referral(self, referral: Referral) -> bool:
        """Insert the referral unless it is already recorded; True when it was new. An existing row (and
        the progress it records) is never overwritten."""
        return self.record_referrals([referral]) == 1

    def record_referrals(self, referrals: Iterable[Referral]) -> int:
        """Insert many referrals in one transaction (existing ones are left alone); the number inserted."""
        columns = ", ".join(_REFERRAL_COLUMNS)
        marks = ", ".join(f":{c}" for c in _REFERRAL_COLUMNS)
        insert = f"INSERT OR IGNORE INTO referrals ({columns}) VALUES ({marks})"  # noqa: S608 (fixed names)
        with self._lock:
            now = self._now()
            rows = [self._referral_row(r, now) for r in referrals]
            if not rows:
                return 0
            with self._writing(), self._db.atomic():
                return self._db.conn.executemany(insert, rows).rowcount

    def get(self, rf_user_id: int) -> Referral | None:
        rows = self._rows("SELECT * FROM referrals WHERE rf_user_id = ?", [rf_user_id])
        return _referral(rows[0]) if rows else None

    def get_many(self, rf_user_ids: Collection[int]) -> dict[int, Referral]:
        """The referrals with these ids that exist, by id."""
        ids = list(rf_user_ids)
        found: dict[int, Referral] = {}
        for start in range(0, len(ids), 900):  # the oldest SQLite takes at most 999 parameters
            chunk = ids[start : start + 900]
            sql = f"SELECT * FROM referrals WHERE rf_user_id IN ({', '.join('?' * len(chunk))})"  # noqa: S608
            found.update((row["rf_user_id"], _referral(row)) for row in self._rows(sql, chunk))
        return found

    def update(self, rf_user_id: int, **changes: Any) -> Referral:
        """Change some columns of one referral (and its `updated_at`), committed at once. Times may be
        given as datetimes or ISO text; `meta` as a dict."""
        unknown = set(changes) - _UPDATABLE
        if unknown:
            raise ValueError(f"Referral has no updatable column {', '.join(sorted(unknown))}")
        if "status_reason" in changes:
            changes.setdefault("reason_kind", None)
        values: dict[str, Any] = {}
        for name, value in changes.items():
            if name == "meta":
                values["meta_json"] = json.dumps(value, ensure_ascii=False)
            else:
                values[name] = self._column_value(name, value)
        with self._lock, self._writing():
            values["updated_at"] = self._now()
            assignments = ", ".join(f"{name} = :{name}" for name in values)
            cursor = self._db.execute(
                f"UPDATE referrals SET {assignments} WHERE rf_user_id = :rf_user_id",  # noqa: S608 (names checked)
                {**values, "rf_user_id": rf_user_id},
            )
            if cursor.rowcount == 0:
                raise StoreError(f"There is no referral {rf_user_id} in the database.")
            updated = self.get(rf_user_id)
        assert updated is not None
        return updated

    def due_for_push(self, now: datetime, limit: int = 100) -> list[Referral]:
        """Referrals to push now, oldest first: pending ones, interrupted ones (`sending`; when `intent` is
        set the create may already have happened), and failed ones not marked permanent — each once its
        scheduled retry time (if any) has come."""
        rows = self._rows(
            """
            SELECT * FROM referrals
            WHERE (status IN ('pending', 'sending') OR (status = 'failed' AND permanent = 0))
              AND (next_attempt_at IS NULL OR next_attempt_at <= ?)
            ORDER BY recorded_at, rf_user_id
            LIMIT ?
            """,
            [to_iso(now), limit],
        )
        return [_referral(row) for row in rows]

    def count_due(self, now: datetime) -> int:
        """How many referrals `due_for_push` would return without a limit (for progress)."""
        rows = self._rows(
            """
            SELECT COUNT(*) AS n FROM referrals
            WHERE (status IN ('pending', 'sending') OR (status = 'failed' AND permanent = 0))
              AND (next_attempt_at IS NULL OR next_attempt_at <= ?)
            """,
            [to_iso(now)],
        )
        return int(rows[0]["n"])

    def next_retry_at(self) -> datetime | None:
        """When the earliest scheduled retry is due (None when nothing waits for a retry)."""
        rows = self._rows(
            """
            SELECT MIN(next_attempt_at) AS due FROM referrals
            WHERE (status IN ('pending', 'sending') OR (status = 'failed' AND permanent = 0))
              AND next_attempt_at IS NOT NULL
            """
        )
        return from_iso(rows[0]["due"]) if rows and rows[0]["due"] else None

    def count_unfinished(self) -> int:
        """Referrals still waiting on a passing error: a send not done yet (pending, interrupted, or failed
        and to be retried), or a qualification asked for whose answer is not known."""
        rows = self._rows(
            """
            SELECT COUNT(*) AS n FROM referrals
            WHERE status IN ('pending', 'sending') OR (status = 'failed' AND permanent = 0)
               OR (status = 'waiting' AND intent = 'qualify')
            """
        )
        return int(rows[0]["n"])

    def waiting_to_settle(self) -> list[Referral]:
        """Waiting referrals whose qualification needs no rule: one in flight (`intent` qualify), or one that
        Referral Factory already shows as qualified. Read without reading every waiting referral."""
        rows = self._rows(
            "SELECT * FROM referrals WHERE status = 'waiting' AND (intent = 'qualify' OR qualified_at IS NOT NULL)"
            " ORDER BY recorded_at, rf_user_id"
        )
        return [_referral(row) for row in rows]

    def find_by_lead(self, lead_id: str) -> Referral | None:
        return self._first("lead_id", lead_id)

    def find_by_deal(self, deal_id: int) -> Referral | None:
        return self._first("deal_id", deal_id)

    def find_by_code(self, code: str) -> Referral | None:
        return self._first("code", code) if code else None

    def _first(self, column: str, value: Any) -> Referral | None:
        rows = self._rows(
            f"SELECT * FROM referrals WHERE {column} = ? ORDER BY rf_user_id LIMIT 1",  # noqa: S608 (fixed names)
            [value],
        )
        return _referral(rows[0]) if rows else None

    def counts(self, *, is_test: bool | None = None) -> dict[str, int]:
        """Referrals per status; every status is present."""
        where, params = self._filters(None, None, is_test)
        rows = self._rows(f"SELECT status, count(*) AS n FROM referrals {where} GROUP BY status", params)  # noqa: S608
        found = {row["status"]: row["n"] for row in rows}
        return {status: found.get(status, 0) for status in STATUSES}

    @staticmethod
    def _filters(
        text: str | None, status: str | Collection[str] | None, is_test: bool | None
    ) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if text and text.strip():
            pattern = _like(text.strip())
            clauses.append(
                "(email LIKE ? ESCAPE '\\' OR first_name LIKE ? ESCAPE '\\' OR code LIKE ? ESCAPE '\\' "
                "OR campaign_name LIKE ? ESCAPE '\\')"
            )
            params += [pattern] * 4
        if isinstance(status, str):
            clauses.append("status = ?")
            params.append(status)
        elif status is not None:
            statuses = sorted(status)
            clauses.append(f"status IN ({', '.join('?' for _ in statuses)})")
            params += statuses
        if is_test is not None:
            clauses.append("is_test = ?")
            params.append(int(is_test))
        return ("WHERE " + " AND ".join(clauses) if clauses else ""), params

    def query(
        self,
        *,
        text: str | None = None,
        status: str | Collection[str] | None = None,
        order_by: str = "recorded_at",
        descending: bool = True,
        limit: int | None = None,
        offset: int = 0,
        is_test: bool | None = None,
    ) -> list[Referral]:
        """One page of referrals for the window. `text` matches email, first name, code or campaign name
        anywhere, ignoring case; `status` is one status or any of several."""
        rows = self._ordered("*", text, status, order_by, descending, limit, offset, is_test)
        return [_referral(row) for row in rows]

    def query_ids(self, **page: Any) -> list[int]:
        """The ids `query(**page)` gives, in its order: read from the indexes alone, far cheaper than rows."""
        return [row["rf_user_id"] for row in self._ordered("rf_user_id", **page)]

    def _ordered(
        self,
        columns: str,
        text: str | None = None,
        status: str | Collection[str] | None = None,
        order_by: str = "recorded_at",
        descending: bool = True,
        limit: int | None = None,
        offset: int = 0,
        is_test: bool | None = None,
    ) -> list[dict[str, Any]]:
        if order_by not in _ORDERABLE:
            raise ValueError(f"Cannot sort referrals by {order_by!r}")
        where, params = self._filters(text, status, is_test)
        direction = "DESC" if descending else "ASC"
        sql = (
            f"SELECT {columns} FROM referrals {where} "  # noqa: S608 (order_by checked against _ORDERABLE)
            f"ORDER BY {order_by} {direction}, rf_user_id {direction} LIMIT ? OFFSET ?"
        )
        return self._rows(sql, [*params, -1 if limit is None else limit, offset])

    def count(
        self,
        *,
        text: str | None = None,
        status: str | Collection[str] | None = None,
        is_test: bool | None = None,
    ) -> int:
        where, params = self._filters(text, status, is_test)
        return int(self._rows(f"SELECT count(*) AS n FROM referrals {where}", params)[0]["n"])  # noqa: S608

    def changed_since(self, updated_at: str) -> list[Referral]:
        """Referrals changed after `updated_at` (a stamp this store gave; "" for all), oldest change first."""
        since = _normalise_time(updated_at, "updated_at") or ""
        rows = self._rows("SELECT * FROM referrals WHERE updated_at > ? ORDER BY updated_at", [since])
        return [_referral(row) for row in rows]

    def max_rf_user_id(self, campaign_id: int) -> int | None:
        rows = self._rows("SELECT max(rf_user_id) AS m FROM referrals WHERE campaign_id = ?", [campaign_id])
        return rows[0]["m"] if rows else None

    # --- the sync log ---

    def log(
        self,
        level: str,
        action: str,
        message: str,
        *,
        rf_user_id: int | None = None,
        person_id: int | None = None,
        lead_id: str | None = None,
        deal_id: int | None = None,
        is_test: bool = False,
    ) -> LogRow:
        if level not in LOG_LEVELS:
            raise ValueError(f"Log level must be one of {', '.join(LOG_LEVELS)}, not {level!r}")
        with self._lock, self._writing():
            row = {
                "time": self._now(),
                "level": level,
                "rf_user_id": rf_user_id,
                "action": action,
                "person_id": person_id,
                "lead_id": lead_id,
                "deal_id": deal_id,
                "message": message,
                "is_test": int(is_test),
            }
            columns = ", ".join(row)
            marks = ", ".join(f":{name}" for name in row)
            cursor = self._db.execute(f"INSERT INTO sync_log ({columns}) VALUES ({marks})", row)  # noqa: S608
            assert cursor.lastrowid is not None
            return _log_row({"id": cursor.lastrowid, **row})

    @staticmethod
    def _log_filters(level: str | None, text: str | None) -> tuple[list[str], list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if level is not None:
            if level not in LOG_LEVELS:
                raise ValueError(f"Log level must be one of {', '.join(LOG_LEVELS)}, not {level!r}")
            levels = LOG_LEVELS[LOG_LEVELS.index(level) :]
            clauses.append(f"level IN ({', '.join('?' for _ in levels)})")
            params += levels
        if text and text.strip():
            needle = text.strip()
            pattern = _like(needle)
            clauses.append(
                "(message LIKE ? ESCAPE '\\' OR action LIKE ? ESCAPE '\\' OR lead_id = ? "
                "OR CAST(rf_user_id AS TEXT) = ? OR CAST(person_id AS TEXT) = ? OR CAST(deal_id AS TEXT) = ?)"
            )
            params += [pattern, pattern, needle, needle, needle, needle]
        return clauses, params

    def log_rows(
        self,
        *,
        level: str | None = None,
        text: str | None = None,
        limit: int | None = None,
        before_id: int | None = None,
        rf_user_id: int | None = None,
    ) -> list[LogRow]:
        """Newest first. `level` keeps that level and the more severe ones; `before_id` pages backwards;
        `rf_user_id` keeps one referral's rows."""
        clauses, params = self._log_filters(level, text)
        if rf_user_id is not None:
            clauses.append("rf_user_id = ?")
            params.append(rf_user_id)
        if before_id is not None:
            clauses.append("id < ?")
            params.append(before_id)
        where = "WHERE " + " AND ".join(clauses) if clauses else ""
        rows = self._rows(
            f"SELECT * FROM sync_log {where} ORDER BY id DESC LIMIT ?",  # noqa: S608 (built from fixed clauses)
            [*params, -1 if limit is None else limit],
        )
        return [_log_row(row) for row in rows]

    def iter_log(
        self, *, level: str | None = None, text: str | None = None, chunk: int = 1000
    ) -> Iterator[LogRow]:
        """Oldest first, `chunk` rows at a time, so an export of any size runs in constant memory."""
        clauses, params = self._log_filters(level, text)
        last_id = 0
        while True:
            where = " AND ".join([*clauses, "id > ?"])
            rows = self._rows(
                f"SELECT * FROM sync_log WHERE {where} ORDER BY id LIMIT ?",  # noqa: S608 (fixed clauses)
                [*params, last_id, chunk],
            )
            if not rows:
                return
            for row in rows:
                yield _log_row(row)
            last_id = rows[-1]["id"]

    def log_count(self, *, level: str | None = None, text: str | None = None) -> int:
        clauses, params = self._log_filters(level, text)
        where = "WHERE " + " AND ".join(clauses) if clauses else ""
        return int(self._rows(f"SELECT count(*) AS n FROM sync_log {where}", params)[0]["n"])  # noqa: S608

    def prune_log(self, older_than_days: int) -> int:
        """Delete log rows older than this many days; the number deleted."""
        cutoff = to_iso(self._clock() - timedelta(days=older_than_days))
        with self._lock, self._writing():
            return self._db.execute("DELETE FROM sync_log WHERE time < ?", [cutoff]).rowcount


def _referral(row: dict[str, Any]) -> Referral:
    values = {name: row[name] for name in _REFERRAL_COLUMNS if name != "meta_json"}
    values["status"] = Status(values["status"])
    if values["reason_kind"] is not None:
        values["reason_kind"] = Reason(values["reason_kind"])
    values["permanent"] = bool(values["permanent"])
    values["is_test"] = bool(values["is_test"])
    return Referral(meta=json.loads(row["meta_json"]), **values)


def _log_row(row: dict[str, Any]) -> LogRow:
    return LogRow(**{**row, "is_test": bool(row["is_test"])})
