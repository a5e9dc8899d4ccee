"""A reentrant lock granted in the order it was asked for."""

from __future__ import annotations

import threading
from collections import deque


class TurnLock:
    """A reentrant lock granted in the order it was asked for. Python's own lock goes to whichever thread
    runs first when it is released, so a thread writing row after row would take it back again and again
    while the window's thread waits; here a waiter gets the store after at most the calls queued before it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._owner: int | None = None
        self._depth = 0
        self._waiting: deque[tuple[int, threading.Lock]] = deque()

    def __enter__(self) -> None:
        me = threading.get_ident()
        with self._guard:
            if self._owner == me or (self._owner is None and not self._waiting):
                self._owner = me
                self._depth += 1
                return
            turn = threading.Lock()
            turn.acquire()
            self._waiting.append((me, turn))
        turn.acquire()  # released by the thread that hands the lock over, with ownership already ours

    def __exit__(self, *_exc: object) -> None:
        with self._guard:
            self._depth -= 1
            if self._depth:
                return
            if not self._waiting:
                self._owner = None
                return
            self._owner, turn = self._waiting.popleft()
            self._depth = 1
            turn.release()
