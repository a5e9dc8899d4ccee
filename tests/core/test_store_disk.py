"""The store on a real disk: a damaged file, a full disk, the daily copy to go back to."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from rf_desktop.core.store import Referral, Store
from rf_desktop.core.store_errors import DamagedDatabaseError, DiskFullError


def _filled(path: Path, count: int = 300) -> None:
    with Store(path) as store:
        store.record_referrals(
            Referral(rf_user_id=1000 + i, campaign_id=1, first_name=f"P{i}", email=f"p{i}@example.com", code=f"C{i}")
            for i in range(count)
        )


def _damage_a_page(path: Path) -> None:
    """Overwrite the cell pointers of the last page, as a failing disk might: the file still opens and
    reads its schema, only SQLite's integrity check notices."""
    last_page = path.stat().st_size // 4096 - 1
    with path.open("r+b") as file:
        file.seek(last_page * 4096 + 8)
        file.write(b"\xff\xf0" * 12)


def test_the_first_open_of_an_existing_database_keeps_a_copy(tmp_path: Path) -> None:
    db = tmp_path / "rf.sqlite3"
    _filled(db)
    assert not (tmp_path / "rf.sqlite3.bak").exists(), "a new database has nothing worth copying"
    with Store(db) as store:
        assert store.backup_path == tmp_path / "rf.sqlite3.bak"
    with Store(tmp_path / "rf.sqlite3.bak") as copy:
        assert copy.count() == 300


def test_the_copy_is_refreshed_once_a_day(tmp_path: Path) -> None:
    db = tmp_path / "rf.sqlite3"
    _filled(db)
    Store(db).close()
    backup = tmp_path / "rf.sqlite3.bak"
    yesterday = time.time() - 25 * 3600
    os.utime(backup, (yesterday, yesterday))
    with Store(db) as store:
        store.record_referral(Referral(rf_user_id=5000, campaign_id=1))
    assert backup.stat().st_mtime > yesterday + 3600, "a day-old copy is replaced on open"
    fresh = backup.stat().st_mtime
    Store(db).close()
    assert backup.stat().st_mtime == fresh, "a copy younger than a day is kept"


def test_a_database_failing_quick_check_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    db = tmp_path / "rf.sqlite3"
    _filled(db)
    Store(db).close()  # the daily copy
    _damage_a_page(db)
    damaged = db.read_bytes()

    with pytest.raises(DamagedDatabaseError) as caught:
        Store(db)

    message = str(caught.value)
    assert str(db) in message and "integrity check" in message and "did not use it" in message
    assert "The automatic copy from" in message and str(tmp_path / "rf.sqlite3.bak") in message
    assert "rename rf.sqlite3.bak to rf.sqlite3" in message
    assert db.read_bytes() == damaged, "nothing was written to the damaged file"
    with Store(tmp_path / "rf.sqlite3.bak") as copy:
        assert copy.count() == 300, "the copy it names holds every referral"


def test_a_damaged_database_without_a_copy_says_how_to_start_again(tmp_path: Path) -> None:
    db = tmp_path / "rf.sqlite3"
    _filled(db)
    _damage_a_page(db)
    with pytest.raises(DamagedDatabaseError, match=r"Move rf\.sqlite3 aside .* starts a new database"):
        Store(db)


def test_a_full_disk_is_named_and_keeps_what_was_written(tmp_path: Path) -> None:
    db = tmp_path / "rf.sqlite3"
    _filled(db, 10)
    store = Store(db)
    # SQLite's own page limit answers exactly as a full disk does (SQLITE_FULL)
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages + 2}")
    with pytest.raises(DiskFullError) as caught:
        for i in range(2000):
            store.log("info", "note", "x" * 500, rf_user_id=i)
    store.close()

    message = str(caught.value)
    assert f"The disk holding {db} is full" in message and "Free some space" in message
    assert str(tmp_path / "rf.sqlite3.bak") in message, "it says where the automatic copy is"
    with Store(db) as reopened:
        assert reopened.count() == 10, "nothing recorded before the disk filled up is lost"
