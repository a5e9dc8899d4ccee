"""The SQLite store: schema and migrations, the outbox queries, the log, and 100,000 referrals."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

from rf_desktop.core import store as store_module
from rf_desktop.core.config import Settings
from rf_desktop.core.schema import PipedriveSchema, Pipeline
from rf_desktop.core.store import (
    FAILED,
    PENDING,
    QUALIFIED,
    SENDING,
    SENT,
    SKIPPED,
    STATUSES,
    WAITING,
    LogRow,
    Reason,
    Referral,
    Status,
    Store,
    from_iso,
    to_iso,
)
from rf_desktop.core.store_errors import FolderNotCreatedError, StoreError

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[Store]:
    with Store(tmp_path / "rf.sqlite3", clock=clock) as opened:
        yield opened


def referral(user_id: int, **fields: object) -> Referral:
    values: dict[str, object] = {
        "campaign_id": 1,
        "campaign_name": "Spring",
        "first_name": f"Person {user_id}",
        "email": f"person{user_id}@example.com",
        "code": f"CODE{user_id}",
        "url": f"https://example.referral-factory.com/CODE{user_id}",
        "source": "Referred",
        "signed_up_at": "2025-02-28",
        **fields,
    }
    return Referral(rf_user_id=user_id, **values)  # type: ignore[arg-type]


# --- opening, schema, migrations ---


def test_a_new_file_gets_the_documented_schema_in_wal_mode(store: Store, tmp_path: Path) -> None:
    db = Database(tmp_path / "rf.sqlite3")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(store_module.MIGRATIONS)
    assert set(db.table_names()) >= {"referrals", "sync_log", "kv"}
    assert db["referrals"].columns_dict.keys() == {
        "rf_user_id",
        "campaign_id",
        "campaign_name",
        "user_type",
        "first_name",
        "email",
        "code",
        "url",
        "source",
        "signed_up_at",
        "meta_json",
        "referrer_id",
        "referrer_first_name",
        "referrer_email",
        "referrer_code",
        "referrer_url",
        "status",
        "status_reason",
        "reason_kind",
        "person_id",
        "lead_id",
        "deal_id",
        "deal_stage_id",
        "deal_pipeline_id",
        "deal_status",
        "intent",
        "attempts",
        "next_attempt_at",
        "permanent",
        "qualified_at",
        "is_test",
        "recorded_at",
        "updated_at",
    }
    assert list(db["sync_log"].columns_dict) == [
        "id",
        "time",
        "level",
        "rf_user_id",
        "action",
        "person_id",
        "lead_id",
        "deal_id",
        "message",
        "is_test",
    ]
    assert list(db["kv"].columns_dict) == ["key", "value"]
    indexed = {tuple(i.columns) for i in db["referrals"].indexes}
    for columns in [("status", "recorded_at"), ("recorded_at",), ("lead_id",), ("deal_id",), ("code",)]:
        assert columns in indexed
    db.close()


def test_in_memory_store(clock: FakeClock) -> None:
    with Store(":memory:", clock=clock) as memory:
        assert memory.record_referral(referral(1))
        assert memory.get(1) is not None


def test_reopening_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "rf.sqlite3"
    with Store(path) as first:
        first.record_referral(referral(1))
        first.set_kv("x", {"a": [1, 2]})
    with Store(path) as second:
        assert second.get(1) is not None
        assert second.get_kv("x") == {"a": [1, 2]}
    assert not list(tmp_path.glob("*.bak-v*"))  # nothing to migrate, nothing backed up


def test_writes_are_visible_to_another_connection_at_once(store: Store, tmp_path: Path) -> None:
    store.record_referral(referral(1))
    store.update(1, status=SENDING, intent="person")
    other = sqlite3.connect(tmp_path / "rf.sqlite3")
    assert other.execute("SELECT status, intent FROM referrals").fetchone() == ("sending", "person")
    other.close()


def test_a_reader_sees_every_commit_and_refuses_writes(store: Store) -> None:
    with store.reader() as reader:
        assert reader.count() == 0
        store.record_referral(referral(1))
        store.update(1, status=FAILED, status_reason="Pipedrive refused it")
        store.set_kv("x", [1])
        assert reader.counts()[FAILED] == 1
        assert reader.get(1) == store.get(1)
        assert reader.get_kv("x") == [1]
        with pytest.raises(StoreError):
            reader.set_kv("x", [2])
        with pytest.raises(StoreError):
            reader.update(1, status=SENT)
    assert store.get_kv("x") == [1] and store.get(1).status == FAILED  # type: ignore[union-attr]


def test_a_reader_never_waits_for_a_write_under_way(tmp_path: Path) -> None:
    """The store's lock held by a write in another thread, and a transaction open on another connection:
    the reader answers at once with the last commit (waiting would take the 5 s busy timeout)."""
    inside_write, finish_write = threading.Event(), threading.Event()

    def clock() -> datetime:  # the store reads the clock with its lock held, in the middle of a write
        if threading.current_thread().name == "writer":
            inside_write.set()
            finish_write.wait(10)
        return datetime.now(UTC)

    with Store(tmp_path / "rf.sqlite3", clock=clock) as store, store.reader() as reader:
        store.record_referrals([referral(1), referral(2)])
        writer = threading.Thread(target=lambda: store.update(1, status=SENT), name="writer")
        writer.start()
        assert inside_write.wait(10)
        other = sqlite3.connect(tmp_path / "rf.sqlite3")
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE referrals SET status = 'failed' WHERE rf_user_id = 2")
        started = datetime.now(UTC)
        assert [r.status for r in reader.query(order_by="rf_user_id", descending=False)] == [PENDING, PENDING]
        assert reader.counts()[PENDING] == 2
        assert datetime.now(UTC) - started < timedelta(seconds=1)
        other.commit()
        other.close()
        finish_write.set()
        writer.join()
        assert [r.status for r in reader.query(order_by="rf_user_id", descending=False)] == [SENT, FAILED]


def test_a_thread_writing_row_after_row_lets_others_have_their_turn(tmp_path: Path) -> None:
    """Each call from another thread waits for at most the writes asked for before it, however fast the
    writer comes back for more."""
    with Store(tmp_path / "rf.sqlite3") as store:
        store.record_referrals([referral(1)])
        writes = [0]
        stop = threading.Event()

        def write_row_after_row() -> None:
            while not stop.is_set():
                store.update(1, attempts=writes[0])
                writes[0] += 1

        writer = threading.Thread(target=write_row_after_row)
        writer.start()
        overtaken = []
        for n in range(300):
            before = writes[0]
            store.set_kv("turn", n)
            overtaken.append(writes[0] - before)
        stop.set()
        writer.join()
        assert max(overtaken) <= 3, overtaken


def test_a_memory_store_is_its_own_reader(clock: FakeClock) -> None:
    with Store(":memory:", clock=clock) as memory:
        assert memory.reader() is memory


def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rf.sqlite3"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 7")
    conn.close()
    with pytest.raises(StoreError) as caught:
        Store(path)
    assert str(caught.value) == (
        "This database was written by a newer rf-desktop (schema 7). Update rf-desktop, or choose another "
        "database file."
    )


def test_a_foreign_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE photos (id INTEGER)")
    conn.close()
    with pytest.raises(StoreError, match="is not an rf-desktop database"):
        Store(path)


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"hello, this is not SQLite at all" * 100)
    with pytest.raises(StoreError, match="not an rf-desktop database, or it is damaged"):
        Store(path)


def test_a_missing_folder_is_created(tmp_path: Path) -> None:
    with Store(tmp_path / "missing" / "rf.sqlite3") as store:
        store.set_kv("k", 1)
    assert (tmp_path / "missing" / "rf.sqlite3").is_file()


def test_a_folder_that_cannot_be_created_says_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(FolderNotCreatedError, match=r"Could not create the folder .*a-file/data .*`--db FILE`"):
        Store(tmp_path / "a-file" / "data" / "rf.sqlite3")


def _add_tags_column(db: Database) -> None:
    db.execute("ALTER TABLE referrals ADD COLUMN tags TEXT")


def test_migrating_copies_the_old_file_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "rf.sqlite3"
    current = len(store_module.MIGRATIONS)
    with Store(path) as old:
        old.record_referral(referral(1))
    monkeypatch.setattr(store_module, "MIGRATIONS", [*store_module.MIGRATIONS, _add_tags_column])
    with Store(path) as new:
        assert new.get(1) is not None
    db = Database(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == current + 1
    assert "tags" in db["referrals"].columns_dict
    db.close()
    backup = Database(tmp_path / f"rf.sqlite3.bak-v{current}")
    assert backup.execute("PRAGMA user_version").fetchone()[0] == current
    assert "tags" not in backup["referrals"].columns_dict
    assert backup.execute("SELECT rf_user_id FROM referrals").fetchall() == [(1,)]
    backup.close()


def _insert_old_row(path: Path, rf_user_id: int, status: str, reason: str | None) -> None:
    """A referral row as an older rf-desktop wrote it (only the columns every schema has)."""
    db = Database(path)
    stamp = "2025-01-01T00:00:00.000000Z"
    db.execute(
        "INSERT INTO referrals (rf_user_id, campaign_id, first_name, email, status, status_reason, meta_json,"
        " recorded_at, updated_at) VALUES (?, 1, ?, ?, ?, ?, '{}', ?, ?)",
        [rf_user_id, f"Person {rf_user_id}", f"person{rf_user_id}@example.com", status, reason, stamp, stamp],
    )
    db.conn.commit()
    db.close()


def test_a_schema_2_file_gains_the_reason_kind_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "rf.sqlite3"
    db = Database(path)
    for migration in store_module.MIGRATIONS[:2]:
        migration(db)
    db.execute("PRAGMA user_version = 2")
    db.close()
    _insert_old_row(path, 1, "failed", "Pipedrive refused it.")
    with Store(path) as store:
        old = store.get(1)
        assert old is not None and old.status is Status.FAILED and old.reason_kind is None
        updated = store.update(1, status_reason="Waiting.", reason_kind=Reason.RATE_LIMITED)
        assert updated.reason_kind is Reason.RATE_LIMITED
        # a reason written without its kind must not keep the kind of the one it replaces
        assert store.update(1, status_reason="Retry requested.").reason_kind is None
        with pytest.raises(sqlite3.IntegrityError):
            store.update(1, reason_kind="a kind nobody classified")
    assert (tmp_path / "rf.sqlite3.bak-v2").exists()


def _broken(db: Database) -> None:
    db.execute("ALTER TABLE referrals ADD COLUMN half_done TEXT")
    raise RuntimeError("disk on fire")


def test_a_failed_migration_rolls_back_and_points_at_the_backup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "rf.sqlite3"
    current = len(store_module.MIGRATIONS)
    Store(path).close()
    monkeypatch.setattr(store_module, "MIGRATIONS", [*store_module.MIGRATIONS, _broken])
    with pytest.raises(
        StoreError, match=rf"Could not upgrade the database to schema {current + 1}: disk on fire"
    ) as caught:
        Store(path)
    assert f"rf.sqlite3.bak-v{current}" in str(caught.value)
    db = Database(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == current
    assert "half_done" not in db["referrals"].columns_dict
    db.close()


# --- settings and kv ---


def test_settings_round_trip(store: Store) -> None:
    assert store.get_settings() is None
    settings = Settings(mode="deal", pipeline_id=3, stage_id=9, title="{source}")
    settings.referral_factory.campaign_ids = [4, 5]
    store.save_settings(settings)
    assert store.get_settings() == settings


def test_setting_a_value_kv_already_holds_commits_nothing(store: Store) -> None:
    """The sync keeps its marks on every look: an unchanged one must not cost a disk sync."""
    other = sqlite3.connect(store.path)
    try:
        store.set_kv("mark", {"campaign": 7, "newest": 1001})
        version = other.execute("PRAGMA data_version").fetchone()[0]
        store.set_kv("mark", {"campaign": 7, "newest": 1001})
        assert other.execute("PRAGMA data_version").fetchone()[0] == version
        store.set_kv("mark", {"campaign": 7, "newest": 1002})
        assert other.execute("PRAGMA data_version").fetchone()[0] != version
        assert store.get_kv("mark") == {"campaign": 7, "newest": 1002}
    finally:
        other.close()


def test_kv_holds_json_values(store: Store) -> None:
    assert store.get_kv("missing", 42) == 42
    store.set_kv("rf_high_water:1", 1234)
    store.set_kv("budget:2025-03-01", {"used": 10})
    store.set_kv("rf_high_water:1", 1300)
    assert store.get_kv("rf_high_water:1") == 1300
    assert store.get_kv("budget:2025-03-01") == {"used": 10}


def test_schema_cache(store: Store) -> None:
    assert store.get_schema() is None
    schema = PipedriveSchema("acme", "Olivia", "EUR", pipelines=(Pipeline(1, "Sales"),))
    store.save_schema(schema)
    assert store.get_schema() == schema
    store.set_kv("pipedrive_schema", {"pipelines": "nonsense"})
    assert store.get_schema() is None


# --- referrals ---


def test_record_is_insert_or_ignore_and_never_overwrites_progress(store: Store) -> None:
    assert store.record_referral(
        referral(1, meta={"Company": "Acme"}, referrer_id=9, referrer_email="r@x.io")
    )
    store.update(1, status=SENT, person_id=5, lead_id="l-1")
    assert not store.record_referral(referral(1, first_name="Changed"))
    row = store.get(1)
    assert row is not None
    assert (row.status, row.person_id, row.lead_id, row.first_name) == (SENT, 5, "l-1", "Person 1")
    assert row.meta == {"Company": "Acme"} and row.referrer_email == "r@x.io"
    assert row.item_id == "l-1"


def test_record_stamps_times_and_normalises_given_ones(store: Store) -> None:
    store.record_referral(referral(1))
    store.record_referral(referral(2, recorded_at="2025-01-02T03:04:05+01:00"))
    first, second = store.get(1), store.get(2)
    assert first is not None and second is not None
    assert first.recorded_at == "2025-03-01T12:00:00.000000Z"
    assert second.recorded_at == "2025-01-02T02:04:05.000000Z"
    assert first.status == PENDING and first.attempts == 0 and not first.permanent and not first.is_test


def test_record_many_counts_new_rows_only(store: Store) -> None:
    assert store.record_referrals([referral(i) for i in range(1, 11)]) == 10
    assert store.record_referrals([referral(i) for i in range(5, 16)]) == 5
    assert store.record_referrals([]) == 0
    assert store.count() == 15


def test_many_referrals_are_read_by_id_in_one_go(store: Store) -> None:
    store.record_referrals([referral(i) for i in range(1, 2001)])
    wanted = {*range(1, 2001, 2), 5000}  # 1,000 ids (more than one query takes) and one never recorded
    found = store.get_many(wanted)
    assert sorted(found) == list(range(1, 2001, 2))
    assert found[7] == store.get(7)



def test_query_ids_are_the_ids_query_gives_in_its_order(store: Store) -> None:
    store.record_referrals([referral(i, first_name=f"Person {i % 7}") for i in range(1, 60)])
    pages: list[dict[str, object]] = [
        {"order_by": "first_name", "limit": 20, "offset": 5},
        {"text": "person 3", "order_by": "rf_user_id", "descending": False},
    ]
    for page in pages:
        assert store.query_ids(**page) == [r.rf_user_id for r in store.query(**page)]  # type: ignore[arg-type]

def test_missing_text_values_become_empty(store: Store) -> None:
    store.record_referral(referral(1, first_name=None, code=None))
    row = store.get(1)
    assert row is not None and row.first_name == "" and row.code == ""


def test_update_sets_updated_at_and_converts_values(store: Store, clock: FakeClock) -> None:
    store.record_referral(referral(1))
    clock.advance(minutes=5)
    retry = T0 + timedelta(minutes=10)
    row = store.update(1, status=Status.FAILED, next_attempt_at=retry, permanent=True, meta={"Plan": "Team"})
    assert row.status == "failed" and row.permanent is True and row.meta == {"Plan": "Team"}
    assert row.next_attempt_at == to_iso(retry)
    assert row.updated_at == "2025-03-01T12:05:00.000000Z"
    row = store.update(1, next_attempt_at=None, qualified_at="2025-03-02")
    assert row.next_attempt_at is None and row.qualified_at == "2025-03-02T00:00:00.000000Z"


def test_update_rejects_unknown_columns_bad_times_and_missing_rows(store: Store) -> None:
    store.record_referral(referral(1))
    with pytest.raises(ValueError, match="no updatable column bogus"):
        store.update(1, bogus=1)
    with pytest.raises(ValueError, match="no updatable column recorded_at"):
        store.update(1, recorded_at=T0)
    with pytest.raises(ValueError, match="next_attempt_at must be an ISO 8601 time"):
        store.update(1, next_attempt_at="soon")
    with pytest.raises(StoreError, match="no referral 99"):
        store.update(99, status=SENT)
    with pytest.raises(sqlite3.IntegrityError):
        store.update(1, status="lost in space")


def test_updated_at_strictly_increases_even_within_one_clock_tick(store: Store) -> None:
    store.record_referrals([referral(1), referral(2)])
    stamps = [store.update(1 + i % 2, attempts=i).updated_at for i in range(5)]
    assert stamps == sorted(stamps) and len(set(stamps)) == 5


def test_changed_since_misses_nothing(store: Store, clock: FakeClock) -> None:
    store.record_referrals([referral(1), referral(2), referral(3)])
    mark = max(r.updated_at or "" for r in store.query())
    assert store.changed_since(mark) == []
    store.update(2, status=SENT)
    store.update(3, status=SENT)
    assert [r.rf_user_id for r in store.changed_since(mark)] == [2, 3]
    assert [r.rf_user_id for r in store.changed_since("")] == [1, 2, 3]


def test_due_for_push(store: Store, clock: FakeClock) -> None:
    store.record_referrals([referral(i, recorded_at=T0 + timedelta(seconds=10 - i)) for i in range(1, 10)])
    store.update(1, status=SENDING, intent="item")  # interrupted create
    store.update(2, status=FAILED, next_attempt_at=T0 + timedelta(minutes=5))  # not yet
    store.update(3, status=FAILED, next_attempt_at=T0 - timedelta(minutes=5))  # retry now
    store.update(4, status=FAILED, next_attempt_at=T0 - timedelta(minutes=5), permanent=True)
    store.update(5, status=SENT)
    store.update(6, status=WAITING)
    store.update(7, status=QUALIFIED)
    store.update(8, status=SKIPPED)
    # 9 stays pending; ordered by recorded_at: 9 is the oldest
    assert [r.rf_user_id for r in store.due_for_push(T0)] == [9, 3, 1]
    assert [r.rf_user_id for r in store.due_for_push(T0 + timedelta(minutes=5))] == [9, 3, 2, 1]
    assert [r.rf_user_id for r in store.due_for_push(T0, limit=1)] == [9]
    store.update(3, status=FAILED, next_attempt_at=None)
    assert 3 in [r.rf_user_id for r in store.due_for_push(T0)]


def test_watching_and_lookups(store: Store) -> None:
    store.record_referrals([referral(1), referral(2), referral(3)])
    store.update(1, status=WAITING, lead_id="9c6f3d2e-0000-4000-8000-000000000001", person_id=10)
    store.update(2, status=WAITING, deal_id=77, deal_stage_id=3, deal_pipeline_id=1, deal_status="open")
    assert store.find_by_lead("9c6f3d2e-0000-4000-8000-000000000001").rf_user_id == 1  # type: ignore[union-attr]
    assert store.find_by_deal(77).rf_user_id == 2  # type: ignore[union-attr]
    assert store.find_by_code("CODE3").rf_user_id == 3  # type: ignore[union-attr]
    assert store.find_by_code("") is None
    assert store.find_by_lead("nope") is None and store.find_by_deal(1) is None
    assert store.get(2).item_id == 77  # type: ignore[union-attr]


def test_counts_cover_every_status(store: Store) -> None:
    assert store.counts() == dict.fromkeys(STATUSES, 0)
    store.record_referrals([referral(1), referral(2), referral(3, is_test=True)])
    store.update(2, status=QUALIFIED)
    assert store.counts() == {**dict.fromkeys(STATUSES, 0), "pending": 2, "qualified": 1}
    assert store.counts(is_test=False)["pending"] == 1


def test_query_filters_sorts_and_pages(store: Store, clock: FakeClock) -> None:
    people = [
        referral(1, first_name="Zoë", email="zoe@acme.io"),
        referral(2, first_name="Adam", email="adam@beta.io", code="50%_OFF"),
        referral(3, first_name="Eve", email="EVE@ACME.IO", is_test=True),
    ]
    for person in people:
        store.record_referral(person)
        clock.advance(seconds=1)
    store.update(2, status=SENT)
    assert [r.rf_user_id for r in store.query()] == [3, 2, 1]
    assert [r.rf_user_id for r in store.query(descending=False)] == [1, 2, 3]
    assert [r.rf_user_id for r in store.query(text="acme")] == [3, 1]  # email, any case
    assert [r.rf_user_id for r in store.query(text="Zoë")] == [1]
    assert [r.rf_user_id for r in store.query(text="50%_")] == [2]  # % and _ are literal
    assert [r.rf_user_id for r in store.query(text="%")] == [2]
    assert store.query(text="_x") == []
    assert [r.rf_user_id for r in store.query(status=SENT)] == [2]
    assert [r.rf_user_id for r in store.query(is_test=True)] == [3]
    assert [r.rf_user_id for r in store.query(order_by="first_name", descending=False)] == [2, 3, 1]
    assert [r.rf_user_id for r in store.query(limit=1, offset=1)] == [2]
    assert store.count() == 3 and store.count(text="acme") == 2 and store.count(status=SENT) == 1
    assert store.count(text="  ") == 3
    with pytest.raises(ValueError, match="Cannot sort referrals by 'email; DROP TABLE kv'"):
        store.query(order_by="email; DROP TABLE kv")


def test_max_rf_user_id_per_campaign(store: Store) -> None:
    assert store.max_rf_user_id(1) is None
    store.record_referrals([referral(5), referral(9), referral(12, campaign_id=2)])
    assert store.max_rf_user_id(1) == 9
    assert store.max_rf_user_id(2) == 12


def test_the_store_works_from_other_threads(store: Store) -> None:
    errors: list[BaseException] = []

    def work(start: int) -> None:
        try:
            for i in range(start, start + 50):
                store.record_referral(referral(i))
                store.log("info", "recorded", f"{i}", rf_user_id=i)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n * 100,)) for n in range(1, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.count() == 200 and store.log_count() == 200


# --- the sync log ---


def test_log_rows_newest_first_with_level_text_and_paging(store: Store, clock: FakeClock) -> None:
    rows = [
        store.log("info", "person created", "Created Pipedrive person Ann.", rf_user_id=1, person_id=10),
        store.log("warning", "retry", "Pipedrive was busy; trying again soon.", rf_user_id=2),
        store.log("error", "lead failed", "'Gold' is not an option of 'Plan'.", rf_user_id=3, lead_id="L-3"),
        store.log("info", "deal created", "Created deal 55.", deal_id=55, is_test=True),
    ]
    assert isinstance(rows[0], LogRow) and rows[0].id < rows[1].id and rows[3].is_test
    assert [r.id for r in store.log_rows()] == [r.id for r in reversed(rows)]
    assert [r.level for r in store.log_rows(level="warning")] == ["error", "warning"]
    assert [r.level for r in store.log_rows(level="error")] == ["error"]
    assert [r.action for r in store.log_rows(text="CREATED")] == ["deal created", "person created"]
    assert [r.rf_user_id for r in store.log_rows(text="3")] == [3]  # a referral id
    assert [r.deal_id for r in store.log_rows(text="55")] == [55]
    assert [r.lead_id for r in store.log_rows(text="L-3")] == ["L-3"]
    assert [r.id for r in store.log_rows(limit=2)] == [rows[3].id, rows[2].id]
    assert [r.id for r in store.log_rows(before_id=rows[2].id, limit=5)] == [rows[1].id, rows[0].id]
    assert (
        store.log_count() == 4 and store.log_count(level="warning") == 2 and store.log_count(text="busy") == 1
    )
    with pytest.raises(ValueError, match="Log level must be one of"):
        store.log("debug", "x", "y")
    with pytest.raises(ValueError, match="Log level must be one of"):
        store.log_rows(level="fatal")


def test_iter_log_streams_oldest_first_in_chunks(store: Store) -> None:
    for i in range(25):
        store.log("warning" if i % 5 == 0 else "info", "step", f"row {i}")
    assert [r.message for r in store.iter_log(chunk=4)] == [f"row {i}" for i in range(25)]
    assert [r.message for r in store.iter_log(level="warning", chunk=2)] == [
        f"row {i}" for i in range(0, 25, 5)
    ]
    assert list(store.iter_log(text="nothing like this")) == []


def test_prune_log_by_age(store: Store, clock: FakeClock) -> None:
    store.log("info", "old", "from long ago")
    clock.advance(days=50)
    store.log("info", "new", "from today")
    assert store.prune_log(30) == 1
    assert [r.action for r in store.log_rows()] == ["new"]
    assert store.prune_log(30) == 0


def test_time_helpers_round_trip() -> None:
    assert to_iso(datetime(2025, 1, 2, 3, 4, 5)) == "2025-01-02T03:04:05.000000Z"
    assert from_iso("2025-01-02T03:04:05.000000Z") == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert from_iso("2025-01-02T03:04:05").tzinfo is UTC


# --- no tokens, ever ---


def test_the_database_never_holds_a_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = "pd-secret-token-3f9a1c77e2"
    monkeypatch.setenv("RF_DESKTOP_PIPEDRIVE_TOKEN", token)
    monkeypatch.setenv("RF_DESKTOP_REFERRAL_FACTORY_TOKEN", token + "-rf")
    path = tmp_path / "rf.sqlite3"
    with Store(path) as store:
        settings = Settings()
        settings.referral_factory.campaign_ids = [1]
        store.save_settings(settings)
        store.record_referral(referral(1))
        store.update(1, status=FAILED, status_reason="Pipedrive said the token was refused.")
        store.log("error", "push failed", "Pipedrive refused the API token (401).", rf_user_id=1)
    assert "token" not in Settings.__dataclass_fields__
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert token.encode() not in data


# --- scale ---


def test_100k_referrals_insert_and_page(tmp_path: Path, clock: FakeClock) -> None:
    total = 100_000
    with Store(tmp_path / "big.sqlite3", clock=clock) as store:
        start = T0 - timedelta(days=30)
        batch = [
            referral(
                i,
                campaign_id=1 + i % 3,
                email=f"user{i}@{'acme' if i % 10 == 0 else 'example'}.com",
                status=SENT if i % 4 == 0 else PENDING,
                recorded_at=start + timedelta(seconds=i),
            )
            for i in range(1, total + 1)
        ]
        assert store.record_referrals(batch) == total
        assert store.count() == total
        assert store.counts()["sent"] == total // 4

        page = store.query(limit=50, offset=1000)
        assert [r.rf_user_id for r in page] == list(range(total - 1000, total - 1050, -1))

        # acme addresses are every tenth id; sent ones every fourth: both means every twentieth
        filtered = store.query(text="@acme", status=SENT, limit=10, offset=20, descending=False)
        assert [r.rf_user_id for r in filtered] == list(range(420, 620, 20))
        assert store.count(text="@acme", status=SENT) == total // 20
        assert store.max_rf_user_id(2) == 100_000
        assert store.find_by_code("CODE54321").rf_user_id == 54321  # type: ignore[union-attr]
        assert len(store.due_for_push(T0, limit=100)) == 100

    # the window's "filter by status, newest first" page is read straight from an index, not sorted
    conn = sqlite3.connect(tmp_path / "big.sqlite3")
    sql = "SELECT * FROM referrals WHERE status = ? ORDER BY recorded_at DESC, rf_user_id DESC LIMIT 50"
    plan = " ".join(str(row) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", ["sent"]))
    conn.close()
    assert "referrals_status_recorded" in plan and "TEMP B-TREE" not in plan
    # the window's counts per state (every referral's, then the test referrals') read indexes only
    conn = sqlite3.connect(tmp_path / "big.sqlite3")
    for where in ("", "WHERE is_test = 1"):
        sql = f"SELECT status, count(*) FROM referrals {where} GROUP BY status"
        plan = " ".join(str(row) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
        assert "COVERING INDEX" in plan, plan
    conn.close()


def test_referral_is_a_frozen_value(store: Store) -> None:
    original = referral(1)
    changed = replace(original, status=SENT)
    assert original.status == PENDING and changed.status == SENT
    assert isinstance(Status.PENDING, str) and Status.PENDING == "pending"


def test_status_constants_are_the_documented_ones() -> None:
    assert STATUSES == ("pending", "sending", "sent", "waiting", "qualified", "failed", "skipped")


def test_a_schema_1_database_gains_the_sort_indexes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "rf.sqlite3"
    with monkeypatch.context() as patch:
        patch.setattr(store_module, "MIGRATIONS", store_module.MIGRATIONS[:1])
        Store(path).close()
    _insert_old_row(path, 1, "pending", None)
    with Store(path) as new:
        assert new.query(order_by="referrer_first_name", limit=5)[0].rf_user_id == 1
    db = Database(path)
    indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()}
    assert {"referrals_sort_first_name", "referrals_sort_email", "referrals_sort_referrer_first_name"} <= indexes
    db.close()
    assert (tmp_path / "rf.sqlite3.bak-v1").exists()


def test_waiting_to_settle_finds_qualifications_in_flight_and_the_already_qualified(store: Store) -> None:
    store.record_referrals([referral(n) for n in (1, 2, 3, 4, 5)])
    store.update(1, status="waiting", intent="qualify")
    store.update(2, status="waiting")
    store.update(3, status="sent", intent="qualify")
    store.update(4, status="waiting", intent="qualify")
    store.update(5, status="waiting", qualified_at="2026-11-30T09:00:00.000000Z")
    assert [r.rf_user_id for r in store.waiting_to_settle()] == [1, 4, 5]
