"""The window's speed: launch to a usable demo window (median of five fresh processes), and the demo's
window with Invited users over 100,000 referrals (load time, memory, and the longest stall of the UI
thread, worst of three runs, while 1,000 rows change per second and the sync runs in the same process).

Runs offscreen (QT_QPA_PLATFORM=offscreen is set when no display is given). The stall is measured by a
2 ms heartbeat timer on the UI thread: any gap longer than that is time the window could not respond.
`python -m bench.gui [rows] [launches] [stall runs]` (0 launches: the table alone; 0 stall runs: the
launch alone).
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

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


TARGET_LAUNCH = 1.2
TARGET_STALL_MS = 25.0


def launch_seconds() -> float:
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "RF_DESKTOP_DATA_DIR": folder, "HOME": folder}
        result = subprocess.run(
            [sys.executable, "-c", LAUNCH_SNIPPET], env=env, capture_output=True, text=True, timeout=120
        )
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return float(result.stdout.strip().splitlines()[-1])


class RowWriter:
    """Changes `per_second` referrals a second from a thread of its own, through the window's store (which
    serialises it with everything else, as it does the app's worker threads), announcing each change to the
    window as the engine does. Every tenth change is to a row in view, so the table repaints; the rest are
    anywhere in the table. The statuses it writes are ones the sync does not act on."""

    def __init__(self, store: Any, ids: list[int], announce: Any, per_second: int = 1000) -> None:
        self.store, self.ids, self.announce, self.per_second = store, ids, announce, per_second
        self.done = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="row-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        chance = random.Random(7)
        statuses = ("sent", "waiting", "qualified")
        began = time.perf_counter()
        while not self._stop.is_set():
            due = int((time.perf_counter() - began) * self.per_second)
            while self.done < due and not self._stop.is_set():
                in_view = self.done % 10 == 0
                rf_user_id = self.ids[chance.randrange(40) if in_view else chance.randrange(len(self.ids))]
                self.store.update(rf_user_id, status=statuses[self.done % len(statuses)])
                self.announce(rf_user_id)
                self.done += 1
            time.sleep(0.002)


def table_figures(count: int, seconds: float = 10.0) -> dict[str, float]:
    """The demo's window (Invited users shown) over a store of `count` referrals, its sync running against
    the sandbox in the same process with a sign-up every half second, while 1,000 rows change a second."""
    import psutil
    import qasync
    from PySide6.QtCore import QSettings, QTimer

    from bench.common import sandbox
    from bench.memory import HISTORY_FIRST_ID, _history
    from rf_desktop.core.secrets import PD_TOKEN, RF_TOKEN
    from rf_desktop.core.store import Store
    from rf_desktop.gui import app as gui_app
    from rf_desktop.gui.controller import AppController
    from rf_desktop.gui.main_window import MainWindow
    from rf_desktop.sandbox import presets

    # the application as the app makes it: its style, and garbage collected on the UI thread
    application = gui_app.create_application([])
    collector = gui_app.MainThreadGarbageCollector(parent=application)
    process = psutil.Process()
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder, sandbox(latency_ms=100) as server:
        path = Path(folder) / "bench.sqlite3"
        store = Store(path)
        for start in range(0, count, 5_000):
            store.record_referrals(_history(start, min(5_000, count - start)))
        store.save_settings(presets.demo_settings(server.rf_base_url, server.pd_base_url, server.state))
        with server.state.lock:  # newcomers sign up after the history, so they arrive at the top
            server.state.rf.number_users_after(HISTORY_FIRST_ID + count)
        before = process.memory_info().rss

        async def run() -> None:
            controller = AppController(store)
            controller.account.use_session_tokens({RF_TOKEN: server.state.rf.token, PD_TOKEN: server.state.pd.token})
            started = time.perf_counter()
            window = MainWindow(controller, QSettings(str(Path(folder) / "ui.ini"), QSettings.Format.IniFormat))
            window.resize(1280, 800)
            window.show_page_named("Invited users")
            window.show()
            await asyncio.sleep(0)  # the loop paints the window before going on
            figures["load_seconds"] = time.perf_counter() - started
            gui_app.freeze_what_lasts()  # as the app does once its window is up
            figures["rss_mib"] = process.memory_info().rss / 2**20
            figures["rss_added_mib"] = (process.memory_info().rss - before) / 2**20
            controller.start_engine()
            while controller.state != "idle":  # the first look: schema, campaigns, the seeded referrals
                await asyncio.sleep(0.05)

            signups = [0]

            def sign_up() -> None:
                with server.state.lock:
                    server.state.rf.sign_up(1, f"Newcomer {signups[0]}", f"newcomer{signups[0]}@example.com")
                signups[0] += 1

            arrivals = QTimer()
            arrivals.setInterval(500)
            arrivals.timeout.connect(sign_up)
            gaps: list[float] = []
            last = [time.perf_counter()]

            def beat() -> None:
                now = time.perf_counter()
                gaps.append(now - last[0])
                last[0] = now

            heartbeat = QTimer()
            heartbeat.setInterval(2)
            heartbeat.timeout.connect(beat)
            ids = [HISTORY_FIRST_ID + n for n in reversed(range(count))]  # the history's ids, newest first
            writer = RowWriter(store, ids, controller.referralChanged.emit)
            arrivals.start()
            heartbeat.start()
            writer.start()
            began = time.perf_counter()
            await asyncio.sleep(seconds)
            writer.stop()
            elapsed = time.perf_counter() - began
            heartbeat.stop()
            arrivals.stop()
            figures["updates_per_second"] = writer.done / elapsed
            figures["signups"] = signups[0]
            figures["longest_stall_ms"] = max(gaps) * 1000
            figures["p99_gap_ms"] = sorted(gaps)[int(len(gaps) * 0.99)] * 1000
            await controller.shutdown()
            window.close_for_quit()

        with asyncio.Runner(loop_factory=lambda: qasync.QEventLoop(application)) as runner:
            runner.run(run())
    collector.stop()
    gc.unfreeze()
    collector.deleteLater()
    return figures


def main(argv: list[str]) -> None:
    """`python -m bench.gui [rows] [launches] [stall runs]`."""
    import statistics

    from bench.common import machine

    count = int(argv[0]) if argv else 100_000
    launch_runs = int(argv[1]) if len(argv) > 1 else 5
    stall_runs = int(argv[2]) if len(argv) > 2 else 3
    print(f"machine: {machine()} (Qt platform: {os.environ['QT_QPA_PLATFORM']})")
    launches = [launch_seconds() for _ in range(launch_runs)]
    if launches:  # `0` launches measures the table alone
        print(
            f"launch to a usable demo window: median {statistics.median(launches):.2f} s over {launch_runs} "
            f"launches ({', '.join(f'{t:.2f}' for t in launches)}; target at most {TARGET_LAUNCH:.1f} s)",
            flush=True,
        )
    stalls = []
    for run in range(stall_runs):
        f = table_figures(count)
        stalls.append(f["longest_stall_ms"])
        print(
            f"run {run + 1}: Invited users with {count:,} referrals shown in {f['load_seconds'] * 1000:.0f} ms, "
            f"process RSS {f['rss_mib']:.0f} MiB; while {f['updates_per_second']:.0f} rows changed per second "
            f"and the sync took in {f['signups']:.0f} sign-ups, the longest UI stall was "
            f"{f['longest_stall_ms']:.1f} ms (99th percentile gap {f['p99_gap_ms']:.1f} ms)",
            flush=True,
        )
    if stalls:  # `0` stall runs measures the launch alone
        print(
            f"longest UI stall, worst of {stall_runs} runs: {max(stalls):.1f} ms "
            f"(target at most {TARGET_STALL_MS:.0f} ms)",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
