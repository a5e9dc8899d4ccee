"""CSV export of the sync log, safe to open in a spreadsheet.

- Written as UTF-8 with a byte-order mark: Excel reads a CSV without one in the computer's legacy code
  page and garbles names such as "Zoë" or "Łukasz"; LibreOffice, Numbers, Google Sheets and Python's
  "utf-8-sig" all read the mark and drop it.
- Any cell that a spreadsheet would run as a formula (starting with = + - @, a tab or a carriage return,
  or their full-width forms) gets a leading single quote, so a crafted name in a sign-up form cannot
  become a formula on the owner's computer.
- Each row names its referral by name and email, and says where that referral stands now in the words the
  window uses (`vocabulary`), rather than by an id only rf-desktop knows.
- Rows stream from the store in chunks (constant memory), into a temporary file beside the destination
  that replaces it only when complete: a failed export never leaves half a file.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from rf_desktop.core.store import LogRow, Referral, Store
from rf_desktop.core.vocabulary import describe

HEADER = (
    "time", "level", "name", "email", "state", "action", "person_id", "lead_id", "deal_id", "message", "test",
)  # fmt: skip
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
PROGRESS_EVERY = 1000
# referrals remembered while exporting, so a long log reads each one once without holding them all
REFERRAL_CACHE_SIZE = 5000


def neutralise_cell(value: Any) -> str:
    """The cell as text, with a leading quote when a spreadsheet would otherwise treat it as a formula."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


class _Referrals:
    """The referrals the log names, each read from the store once."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._known: dict[int, Referral | None] = {}

    def get(self, rf_user_id: int | None) -> Referral | None:
        if rf_user_id is None:
            return None
        if rf_user_id not in self._known:
            if len(self._known) >= REFERRAL_CACHE_SIZE:
                self._known.clear()
            self._known[rf_user_id] = self._store.get(rf_user_id)
        return self._known[rf_user_id]


def _cells(row: LogRow, referral: Referral | None) -> list[str]:
    values = (
        row.time,
        row.level,
        referral.first_name if referral else "",
        referral.email if referral else "",
        describe(referral).word if referral else "",
        row.action,
        row.person_id,
        row.lead_id,
        row.deal_id,
        row.message,
        "yes" if row.is_test else "",
    )
    return [neutralise_cell(v) for v in values]


def _write_rows(
    store: Store,
    out: TextIO,
    level: str | None,
    text: str | None,
    progress: Callable[[int, int], None] | None,
) -> int:
    total = store.log_count(level=level, text=text)
    writer = csv.writer(out)
    writer.writerow(HEADER)
    written = 0
    referrals = _Referrals(store)
    for row in store.iter_log(level=level, text=text):
        writer.writerow(_cells(row, referrals.get(row.rf_user_id)))
        written += 1
        if progress is not None and written % PROGRESS_EVERY == 0:
            # rows logged during the export can push the count past the first total
            progress(written, max(total, written))
    if progress is not None:
        progress(written, max(total, written))
    return written


def export_log_csv(
    store: Store,
    dest: Path | TextIO,
    *,
    level: str | None = None,
    text: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Write the sync log (oldest first; `level` and `text` filter as in the window) and return the
    number of rows. `progress(done, total)` is called every thousand rows and at the end. Given an open
    text stream, writes to it as is (no byte-order mark: the stream's owner chose the encoding). A
    failure to write raises OSError naming the destination."""
    if not isinstance(dest, Path):
        return _write_rows(store, dest, level, text, progress)
    tmp_name = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
        with os.fdopen(fd, "w", encoding="utf-8-sig", newline="") as out:
            written = _write_rows(store, out, level, text, progress)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp_name, dest)
        tmp_name = None
        return written
    except OSError as error:
        # the destination, not the temporary file beside it; the callers word the sentence around it
        raise type(error)(error.errno, error.strerror, str(dest)) from error
    finally:
        if tmp_name is not None:
            Path(tmp_name).unlink(missing_ok=True)
