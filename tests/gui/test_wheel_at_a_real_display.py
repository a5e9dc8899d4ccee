"""The wheel at a real X display: Xvfb, a window manager, and xdotool moving the pointer over a drop-down
of the Mapping page and rolling the wheel, as an owner's mouse does. (The offscreen platform delivers
only synthesized wheel events, which Qt routes differently from a mouse's.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent
NEEDED = ("Xvfb", "xdotool", "openbox")
MISSING = [tool for tool in NEEDED if shutil.which(tool) is None]
pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"needs {', '.join(MISSING)} (scripts/setup --test installs them)"
)
START_TIMEOUT = 90


@pytest.fixture
def display() -> Iterator[str]:
    """A private X display with a window manager on it."""
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1440x900x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as answer:
        name = f":{answer.readline().strip()}"
    manager = subprocess.Popen(
        ["openbox"], env={**os.environ, "DISPLAY": name}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield name
    finally:
        for process in (manager, server):
            process.terminate()
            process.wait(timeout=10)


def xdotool(display: str, *args: str) -> None:
    subprocess.run(["xdotool", *args], env={**os.environ, "DISPLAY": display}, check=True, timeout=10)


def read_json_line(process: subprocess.Popen[str], timeout: float) -> dict[str, object]:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith("{"):
            return dict(json.loads(line))
        if not line and process.poll() is not None:
            break
    raise AssertionError(f"the window did not report (exit status {process.poll()})")


def test_rolling_the_wheel_over_a_mapping_dropdown_scrolls_the_page(display: str) -> None:
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}
    with subprocess.Popen(
        [sys.executable, str(HERE / "x11_mapping_window.py")],
        env=env,
        cwd=HERE.parents[1],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            before = read_json_line(child, START_TIMEOUT)
            assert not before["focused"]
            assert int(before["scroll"]) < int(before["scroll_max"])  # room to scroll down
            xdotool(display, "mousemove", "--sync", str(before["x"]), str(before["y"]))
            for _notch in range(3):
                xdotool(display, "click", "5")  # button 5: the wheel rolled down one notch
                time.sleep(0.1)
            assert child.stdin is not None
            child.stdin.write("check\n")
            child.stdin.flush()
            after = read_json_line(child, 30)
            status = child.wait(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
    assert after["text"] == before["text"]
    assert not after["focused"]
    assert after["settings_changed"] is False
    assert int(after["scroll"]) > int(before["scroll"])
    assert status == 0
