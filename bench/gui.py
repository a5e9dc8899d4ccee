"""The window's speed: launch to a usable window in the demo, and the Invited users table with 100,000
referrals (load time, memory, and the longest stall of the UI thread while 1,000 rows change per second).

Runs offscreen (QT_QPA_PLATFORM=offscreen is set when no display is given). The stall is measured by a
2 ms heartbeat timer on the UI thread: any gap longer than that is time the window could not respond.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

LAUNCH_SNIPPET = """
import time, os, sys, asyncio
started = time.perf_counter()
from PySide6.QtCore import QTimer
from rf_desktop.gui import app as gui_app
import qasync
application = gui_app.create_application()

async def launch():
    session = await gui_app.open_session(True, None)
    ready = asyncio.get_running_loop().create_future()
    QTimer.singleShot(0, lambda: ready.set_result(time.perf_counter()))  # after the first paint is queued
    usable = await ready
    print(f"{usable - started:.3f}", flush=True)
    await session.close()

with asyncio.Runner(loop_factory=lambda: qasync.QEventLoop(application)) as runner:
    runner.run(launch())
"""


def launch_seconds() -> float:
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "RF_DESKTOP_DATA_DIR": folder, "HOME": folder}
        result = subprocess.run(
            [sys.executable, "-c", LAUNCH_SNIPPET], env=env, capture_output=True, text=True, timeout=120
        )
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return float(result.stdout.strip().splitlines()[-1])


def table_figures(count: int) -> dict[str, float]:
    import psutil
    import qasync
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from bench.memory import _history
    from rf_desktop.core.store import Store
    from rf_desktop.gui.controller import AppController
    from rf_desktop.gui.pages.invited_users import InvitedUsersPage

    application = QApplication.instance() or QApplication([])
    process = psutil.Process()
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "bench.sqlite3")
        for start in range(0, count, 5_000):
            store.record_referrals(_history(start, min(5_000, count - start)))
        before = process.memory_info().rss

        async def run() -> None:
            controller = AppController(store)
            started = time.perf_counter()
            page = InvitedUsersPage(controller)
            page.resize(1280, 800)
            page.show()
            application.processEvents()
            figures["load_seconds"] = time.perf_counter() - started
            figures["rss_mib"] = process.memory_info().rss / 2**20
            figures["rss_added_mib"] = (process.memory_info().rss - before) / 2**20

            gaps: list[float] = []
            last = [time.perf_counter()]

            def beat() -> None:
                now = time.perf_counter()
                gaps.append(now - last[0])
                last[0] = now

            heartbeat = QTimer()
            heartbeat.setInterval(2)
            heartbeat.timeout.connect(beat)
            heartbeat.start()
            ids = [10_000_000 + n for n in range(count)]
            statuses = ("pending", "sending", "waiting", "qualified")
            began = time.perf_counter()
            done = 0
            while (elapsed := time.perf_counter() - began) < 10.0:
                # keep pace with 1,000 row changes per second, whatever the loop's own overhead
                while done < int(elapsed * 1000):
                    rf_user_id = ids[done % count]
                    store.update(rf_user_id, status=statuses[done % len(statuses)])
                    controller.referralChanged.emit(rf_user_id)
                    done += 1
                await asyncio.sleep(0.005)
            heartbeat.stop()
            figures["updates_per_second"] = done / (time.perf_counter() - began)
            figures["longest_stall_ms"] = max(gaps) * 1000
            figures["p99_gap_ms"] = sorted(gaps)[int(len(gaps) * 0.99)] * 1000
            page.close()
            await controller.shutdown()

        with asyncio.Runner(loop_factory=lambda: qasync.QEventLoop(application)) as runner:
            runner.run(run())
        store.close()
    return figures


def main(argv: list[str]) -> None:
    from bench.common import machine

    count = int(argv[0]) if argv else 100_000
    print(f"machine: {machine()} (Qt platform: {os.environ['QT_QPA_PLATFORM']})")
    launches = [launch_seconds() for _ in range(3)]
    print(f"launch to a usable window (demo, sandbox started in the background): "
          f"{min(launches):.2f}-{max(launches):.2f} s over 3 launches", flush=True)
    f = table_figures(count)
    print(
        f"Invited users with {count:,} referrals: shown in {f['load_seconds'] * 1000:.0f} ms, process RSS "
        f"{f['rss_mib']:.0f} MiB ({f['rss_added_mib']:+.0f} MiB for the window and its model); while "
        f"{f['updates_per_second']:.0f} rows changed per second for 10 s the longest UI stall was "
        f"{f['longest_stall_ms']:.1f} ms (99th percentile gap {f['p99_gap_ms']:.1f} ms; target under 50 ms)",
        flush=True,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
