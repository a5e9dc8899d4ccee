"""Quitting the real program at a real X display (Xvfb with a window manager), by its keys, its menu
under the pointer, its close box, and by SIGTERM: offscreen Qt has no window manager to close a window or
deliver keys as a desktop does. The program runs the demo on its own database, which holds an unfinished
settings draft left from an earlier session, so every quit has unsaved settings to deal with."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rf_desktop.core.config import Settings
from rf_desktop.core.store import Store
from rf_desktop.gui.widgets.settings_draft import DRAFT_KEY

TOOLS = ("Xvfb", "openbox", "xdotool")
MISSING = [tool for tool in TOOLS if shutil.which(tool) is None]
pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"needs {', '.join(MISSING)} for a real X display (scripts/setup --test installs them)"
)
# window titles as the window manager shows them (Qt adds " — rf-desktop" to the main window's)
WINDOW = rf"^{re.escape('rf-desktop (demo)')}"
QUESTION = r"^Quit rf-desktop"
START_SECONDS = 60


@pytest.fixture(scope="module")
def display(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private X display of 1440 by 900 pixels with the openbox window manager on it."""
    read_end, write_end = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1440x900x24", "-nolisten", "tcp"],
        pass_fds=(write_end,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    with os.fdopen(read_end) as numbers:
        name = f":{numbers.readline().strip()}"
    config = tmp_path_factory.mktemp("openbox")
    env = {**os.environ, "DISPLAY": name, "XDG_CONFIG_HOME": str(config)}
    manager = subprocess.Popen(["openbox"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield name
    finally:
        for process in (manager, xvfb):
            process.terminate()
            process.wait(10)


@dataclass
class App:
    process: subprocess.Popen[bytes]
    display: str
    db_path: Path
    errors: Path  # its stderr (a file: a program it starts may hold a pipe open long after it ends)
    window: str

    def xdotool(self, *args: str) -> str:
        done = subprocess.run(
            ["xdotool", *args], env={**os.environ, "DISPLAY": self.display}, capture_output=True, text=True,
            timeout=30,
        )
        assert done.returncode == 0, f"xdotool {' '.join(args)}: {done.stderr}"
        return done.stdout.strip()

    def keys(self, window: str, *keys: str) -> None:
        """Bring the window to the front and type, as the keyboard would."""
        self.xdotool("windowactivate", "--sync", window)
        self.xdotool("key", "--clearmodifiers", *keys)

    def wait_for_window(self, title: str, timeout: float = START_SECONDS, *, ours: bool = True) -> str:
        """The first visible window whose title matches the regular expression `title`; `ours`: one of
        this program's, which must keep running meanwhile (not one of a program it started)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert not ours or self.process.poll() is None, self.output()
            found = subprocess.run(
                ["xdotool", "search", "--onlyvisible", "--name", title],
                env={**os.environ, "DISPLAY": self.display}, capture_output=True, text=True, timeout=30,
            ).stdout.split()
            if found:
                return found[0]
            time.sleep(0.2)
        raise AssertionError(f"no window named {title!r} appeared")

    def exit_status(self, timeout: float = 40) -> int:
        return self.process.wait(timeout)

    def output(self) -> str:
        return self.errors.read_text(errors="replace")


@pytest.fixture
def app(display: str, tmp_path: Path) -> Iterator[App]:
    """rf-desktop --demo at the display, its window shown; an unfinished draft (nothing mapped) waits."""
    db_path = tmp_path / "demo.sqlite3"
    with Store(db_path) as store:
        store.set_kv(DRAFT_KEY, Settings().to_json())
    env = {
        **os.environ,
        "DISPLAY": display,
        "QT_QPA_PLATFORM": "xcb",
        "RF_DESKTOP_DATA_DIR": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    errors = tmp_path / "stderr.txt"
    with errors.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "rf_desktop", "--demo", "--db", str(db_path)],
            env=env, stdout=subprocess.DEVNULL, stderr=stderr,
        )
    running = App(process, display, db_path, errors, "")
    try:
        running.window = running.wait_for_window(WINDOW)
        yield running
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def parked(db_path: Path) -> object:
    with Store(db_path) as store:
        return store.get_kv(DRAFT_KEY)


def assert_clean_exit(app: App) -> None:
    assert app.exit_status() == 0, app.output()
    errors = app.output()
    assert "Traceback" not in errors, errors


def test_ctrl_q_asks_and_escape_cancels_then_return_saves_and_quits(app: App) -> None:
    app.keys(app.window, "ctrl+q")
    question = app.wait_for_window(QUESTION, timeout=20)  # the question, over the window
    app.keys(question, "Escape")  # Cancel: the window stays
    time.sleep(1)
    assert app.process.poll() is None
    app.keys(app.window, "ctrl+q")
    question = app.wait_for_window(QUESTION, timeout=20)
    app.keys(question, "Return")  # Save, the default: the draft is kept for next time
    assert_clean_exit(app)
    assert parked(app.db_path) is not None


def test_file_quit_with_the_pointer(app: App) -> None:
    app.xdotool("windowactivate", "--sync", app.window)
    app.xdotool("mousemove", "--window", app.window, "24", "12", "click", "1")  # the File menu
    time.sleep(0.5)  # the menu opens
    app.xdotool("key", "q")  # its &Quit
    question = app.wait_for_window(QUESTION, timeout=20)
    app.keys(question, "Return")
    assert_clean_exit(app)
    assert parked(app.db_path) is not None


def test_the_close_box_quits_after_asking(app: App) -> None:
    app.keys(app.window, "alt+F4")  # the window manager closes the window; no tray holds it here
    question = app.wait_for_window(QUESTION, timeout=20)
    app.keys(question, "alt+d")  # Discard
    assert_clean_exit(app)
    assert parked(app.db_path) is None


def test_sigterm_quits_cleanly_keeping_the_draft(app: App) -> None:
    app.process.send_signal(signal.SIGTERM)
    assert_clean_exit(app)
    assert parked(app.db_path) is not None


def pid_of(app: App, window: str) -> int:
    return int(app.xdotool("getwindowpid", window))


def wait_gone(pid: int, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    raise AssertionError(f"process {pid} is still running")


def test_leaving_the_set_up_started_from_the_demo_goes_back_to_the_demo(app: App) -> None:
    app.xdotool("windowactivate", "--sync", app.window)
    app.xdotool("mousemove", "--window", app.window, "24", "12", "click", "1")  # the File menu
    time.sleep(0.5)
    app.xdotool("key", "u")  # Set &up my accounts…
    app.keys(app.wait_for_window(QUESTION, timeout=20), "Return")  # the demo's unfinished draft: Save
    assert_clean_exit(app)  # the demo made way for the set-up

    set_up = app.wait_for_window(r"^Set up rf-desktop", ours=False)
    set_up_pid = pid_of(app, set_up)
    demo_again: int | None = None
    try:
        app.keys(set_up, "Escape")  # leaving on the welcome page asks nothing: nothing was entered
        demo_window = app.wait_for_window(WINDOW, ours=False)
        demo_again = pid_of(app, demo_window)
        assert demo_again not in (set_up_pid, app.process.pid)
        wait_gone(set_up_pid)
    finally:
        for pid in (set_up_pid, demo_again):
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                wait_gone(pid)
