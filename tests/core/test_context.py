"""Store calls the sync makes off the loop: done on a worker thread, and never abandoned halfway."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from rf_desktop.core.context import off_the_loop


def test_a_store_call_runs_on_a_worker_thread_with_its_arguments() -> None:
    def call(a: int, *, b: int) -> tuple[int, str]:
        return a + b, threading.current_thread().name

    total, thread = asyncio.run(off_the_loop(call, 1, b=2))
    assert total == 3 and thread != threading.current_thread().name


def test_a_cancelled_call_is_waited_for_before_the_cancellation_goes_on() -> None:
    finished: list[float] = []

    def slow_write() -> None:
        time.sleep(0.3)
        finished.append(time.monotonic())

    async def cancel_meanwhile() -> float:
        task = asyncio.create_task(off_the_loop(slow_write))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic()

    cancelled_at = asyncio.run(cancel_meanwhile())
    assert finished and finished[0] <= cancelled_at  # the write was done before the store could close
