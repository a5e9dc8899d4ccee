"""The demo's window on the Mapping page, at a real X display, for `test_wheel_at_a_real_display`.

Run as a program with DISPLAY set. It prints one JSON line saying where a drop-down is on the screen (and
what it shows, how far the page is scrolled), waits for a line on stdin while the test rolls the real
mouse wheel over it, then prints the same facts again, plus whether the saved settings changed, and quits.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

os.environ["QT_QPA_PLATFORM"] = "xcb"
os.environ.setdefault("QT_API", "pyside6")

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QScrollArea, QWidget

from rf_desktop.gui.app import MainThreadGarbageCollector, create_application, open_session
from rf_desktop.gui.pages.mapping import MappingPage

WINDOW_SIZE = (1000, 560)


def facts(page: MappingPage) -> dict[str, object]:
    combo = page.grid.rows["code"].combo
    scroll = page.findChild(QScrollArea)
    assert scroll is not None
    centre = combo.mapToGlobal(combo.rect().center())
    return {
        "x": centre.x(),
        "y": centre.y(),
        "text": combo.currentText(),
        "focused": combo.hasFocus(),
        "scroll": scroll.verticalScrollBar().value(),
        "scroll_max": scroll.verticalScrollBar().maximum(),
    }


async def wait_until(check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("the Mapping page did not fill in time")
        await asyncio.sleep(0.1)


async def settled_on_screen(window: QWidget, widget: QWidget, timeout: float = 30) -> None:
    """Until the window manager has framed and placed the window: shown, and the widget's place on the
    screen the same for half a second."""
    await wait_until(lambda: window.windowHandle() is not None and window.windowHandle().isExposed(), timeout)
    steady, last = 0, None
    while steady < 5:
        await asyncio.sleep(0.1)
        here = widget.mapToGlobal(widget.rect().center())
        steady = steady + 1 if here == last else 0
        last = here


async def session_at_display(data_dir: Path) -> int:
    session = await open_session(True, None, QSettings(str(data_dir / "ui.ini"), QSettings.Format.IniFormat))
    if isinstance(session, int):
        return session
    try:
        window = session.window
        window.resize(*WINDOW_SIZE)
        window.show_page_named("Mapping")
        page = next(p for p in window.pages if isinstance(p, MappingPage))
        combo = page.grid.rows["code"].combo
        scroll = page.findChild(QScrollArea)
        assert scroll is not None
        await wait_until(lambda: combo.isEnabled() and scroll.verticalScrollBar().maximum() > 0)
        scroll.ensureWidgetVisible(combo)
        page.refresh_button.setFocus()  # the owner last clicked elsewhere
        await settled_on_screen(window, combo)
        saved = session.controller.settings()
        print(json.dumps(facts(page)), flush=True)
        answered = asyncio.Event()
        loop = asyncio.get_running_loop()
        threading.Thread(target=lambda: (sys.stdin.readline(), loop.call_soon_threadsafe(answered.set))).start()
        await answered.wait()
        await asyncio.sleep(0.5)
        after = facts(page) | {"settings_changed": session.controller.settings() != saved}
        print(json.dumps(after), flush=True)
        return 0
    finally:
        await session.close()


def main() -> int:
    import qasync

    with tempfile.TemporaryDirectory(prefix="rf-desktop-x11-") as scratch:
        os.environ["RF_DESKTOP_DATA_DIR"] = scratch
        app = create_application([sys.argv[0]])
        collector = MainThreadGarbageCollector(parent=app)
        try:
            with asyncio.Runner(loop_factory=lambda: qasync.QEventLoop(app)) as runner:
                return runner.run(session_at_display(Path(scratch)))
        finally:
            collector.stop()
            QApplication.processEvents()


if __name__ == "__main__":
    sys.exit(main())
