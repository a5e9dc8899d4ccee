"""The sandbox's notion of time, which tests can move forward (daily budgets, 'a day later')."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta


class Clock:
    """Wall-clock time plus an offset that `advance()` grows; monotonic time moves with it."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self._offset = 0.0

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self._offset)

    def monotonic(self) -> float:
        return time.monotonic() + self._offset

    def iso(self) -> str:
        """Whole-second RFC 3339 in UTC, as Pipedrive v2 writes timestamps."""
        return self.now().replace(microsecond=0).isoformat().replace("+00:00", "Z")
