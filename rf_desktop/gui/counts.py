"""Referrals per state, in the owner's words, for the status bar, the Invited users filter and the tray.

Counting 100,000 referrals per state takes tens of milliseconds, too long for the UI thread while rows
change many times a second. So the three share one count, made at most once per `COUNTS_REFRESH_MS` on a
worker thread through a reading connection of its own (`Store.reader`), which never waits for the sync's
writes; `changed` says when a new count is in. Only the first count is made at once, so the window opens
with the right numbers.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress

from PySide6.QtCore import QObject, QTimer, Signal

from rf_desktop.core import vocabulary
from rf_desktop.core.store import Store

# How long changes are gathered before they are counted: a few counts a second at most.
COUNTS_REFRESH_MS = 300


class StandingCounts(QObject):
    changed = Signal()
    _counted = Signal(object)  # the worker's Future, delivered on the UI thread

    def __init__(self, store: Store, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self._reader = store.reader()
        self._latest: dict[str, int] | None = None
        self._counting = False
        self._again = False
        self._closed = False
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="counts")
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(COUNTS_REFRESH_MS)
        self._timer.timeout.connect(self._count)
        self._counted.connect(self._on_counted)

    def latest(self) -> dict[str, int]:
        """The last count (counted at once the first time it is asked for)."""
        if self._latest is None:
            self._latest = vocabulary.standing_counts(self._reader)
        return self._latest

    def soon(self, *_args: object) -> None:
        """Something changed: count again within the interval (changes in between share the count)."""
        if self._closed:
            return
        if self._counting:
            self._again = True
        elif not self._timer.isActive():
            self._timer.start()

    def close(self) -> None:
        """Stop counting and wait for a count under way (the store is about to close)."""
        self._closed = True
        self._timer.stop()
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._reader is not self._store:
            self._reader.close()

    def _count(self) -> None:
        self._counting = True
        future = self._pool.submit(vocabulary.standing_counts, self._reader)
        future.add_done_callback(self._deliver)

    def _deliver(self, future: Future[dict[str, int]]) -> None:
        """On the worker thread: hand the count to the UI thread (the signal is queued)."""
        with suppress(RuntimeError):  # the window was destroyed while counting: nobody is waiting for it
            self._counted.emit(future)

    def _on_counted(self, future: Future[dict[str, int]]) -> None:
        self._counting = False
        if self._closed or future.cancelled():
            return
        self._latest = future.result()
        self.changed.emit()
        if self._again:
            self._again = False
            self.soon()
