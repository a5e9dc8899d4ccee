"""Background coroutines started from Qt slots, kept alive and cancelled by key; dialogs inside them.

asyncio keeps only weak references to tasks, so a task nobody holds can be garbage-collected mid-flight;
and a refresh started twice should not race its older self. `Tasks.spawn` covers both, and hands a
failure to `sys.excepthook` (the app logs it and shows a dialog), so no error vanishes silently.

A coroutine must not call `QDialog.exec()` or the static `QMessageBox` helpers: their nested event loop
would run other tasks while this one is still executing, which asyncio refuses. `run_dialog` opens the
dialog and awaits its answer instead.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

from PySide6.QtWidgets import QDialog

log = logging.getLogger(__name__)

T = TypeVar("T")


class Tasks:
    def __init__(self) -> None:
        self._by_key: dict[str, asyncio.Task[Any]] = {}
        self._all: set[asyncio.Task[Any]] = set()

    def spawn(self, key: str, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run `coro` as a task; cancel the still-running task previously spawned under `key`.

        The coroutine should handle the errors it expects (and show them); anything else is logged."""
        previous = self._by_key.get(key)
        if previous is not None and not previous.done():
            previous.cancel()
        task = asyncio.get_running_loop().create_task(coro, name=key)
        self._by_key[key] = task
        self._all.add(task)
        task.add_done_callback(self._finished)
        return task

    def get(self, key: str) -> asyncio.Task[Any] | None:
        return self._by_key.get(key)

    def running(self) -> list[asyncio.Task[Any]]:
        return [t for t in self._all if not t.done()]

    async def settle(self, timeout: float = 5.0, keep: tuple[str, ...] = ()) -> None:
        """Let the running tasks (but those named in `keep`) finish; cancel what takes longer than
        `timeout` seconds. Used before the widgets those tasks update are destroyed."""
        tasks = [t for t in self.running() if t.get_name() not in keep]
        if not tasks:
            return
        _done, late = await asyncio.wait(tasks, timeout=timeout)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=timeout)

    async def cancel_all(self, timeout: float = 5.0) -> None:
        """Cancel every task and wait (up to `timeout` seconds) for them to unwind."""
        tasks = self.running()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._all.discard(task)
        if self._by_key.get(task.get_name()) is task:
            del self._by_key[task.get_name()]
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.info("background task %r failed", task.get_name())
            sys.excepthook(type(error), error, error.__traceback__)


async def run_dialog(dialog: QDialog) -> int:
    """Show `dialog` window-modal and wait for its result without a nested event loop."""
    done: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def finished(result: int) -> None:
        if not done.done():
            done.set_result(result)

    dialog.finished.connect(finished)
    dialog.open()
    return await done
