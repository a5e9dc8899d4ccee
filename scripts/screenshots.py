"""Take a PNG of every page of the window, in the demo, into docs/screenshots/.

The demo runs (sped up) in a throwaway data directory until the tables show referrals arriving and
qualifying; then each page is drawn at 1440 x 900 on a private X display (Xvfb with a window manager, as on
a desktop, started here unless DISPLAY names one). `--dark` draws the dark palette too (`<page>-dark.png`).

    .venv/bin/python scripts/screenshots.py [--dark] [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from PySide6.QtCore import QSettings, QSize
from PySide6.QtWidgets import QApplication

from rf_desktop.gui import theme
from rf_desktop.gui.app import MainThreadGarbageCollector, Session, create_application, open_session
from rf_desktop.gui.pages.invited_users import InvitedUsersPage

REPO = Path(__file__).resolve().parents[1]
SCREEN = "1440x900x24"
WINDOW_SIZE = QSize(1440, 900)
DEMO_SPEED = 20
WANT_REFERRALS = 12
WANT_QUALIFIED = 3
TIMEOUT_SECONDS = 180


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


async def wait_for_demo_data(session: Session) -> dict[str, int]:
    """Until the demo has enough referrals, some of them qualified (nudging the sync to look now)."""
    controller = session.controller
    sandbox = controller.sandbox
    async with httpx.AsyncClient() as client:
        response = await client.put(f"{sandbox.admin_url}/demo", json={"enabled": True, "speed": DEMO_SPEED})
        response.raise_for_status()
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while True:
        counts = controller.counts()
        if sum(counts.values()) >= WANT_REFERRALS and counts.get("qualified", 0) >= WANT_QUALIFIED:
            return counts
        if time.monotonic() > deadline:
            raise TimeoutError(f"the demo did not produce enough data in {TIMEOUT_SECONDS} s: {counts}")
        controller.sync_now()
        await asyncio.sleep(1)


@contextlib.contextmanager
def virtual_display() -> Iterator[None]:
    """A private Xvfb screen with openbox on it, for this process (none when DISPLAY is already set)."""
    if os.environ.get("DISPLAY"):
        yield
        return
    xvfb, openbox = shutil.which("Xvfb"), shutil.which("openbox")
    if xvfb is None:
        raise SystemExit("Xvfb is needed for screenshots: run scripts/setup --test first.")
    read, write = os.pipe()
    server = subprocess.Popen(  # noqa: S603 (fixed arguments)
        [xvfb, "-displayfd", str(write), "-screen", "0", SCREEN, "-nolisten", "tcp"],
        pass_fds=(write,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as answer:
        os.environ["DISPLAY"] = f":{answer.readline().strip()}"
    manager = None
    if openbox is not None:
        manager = subprocess.Popen([openbox], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    try:
        yield
    finally:
        for process in (manager, server):
            if process is not None:
                process.terminate()
                process.wait(timeout=10)
        del os.environ["DISPLAY"]


def select_a_qualified_referral(page: InvitedUsersPage) -> None:
    """So the details pane under the table shows a whole story, from sign-up to qualification."""
    for row in range(page.model.rowCount()):
        referral = page.model.referral_at(row)
        if referral is not None and referral.status == "qualified" and not referral.is_test:
            page.table.selectRow(row)
            return


async def settle(seconds: float = 0.5) -> None:
    """Let pending refreshes, layouts and paints happen (the qasync loop runs Qt's events meanwhile)."""
    await asyncio.sleep(seconds)


async def capture(app: QApplication, out: Path, dark: bool, ui_file: Path) -> list[Path]:
    """Each palette gets a window of its own, opened under it, as the app starts on a light or a dark
    desktop (the demo's data carries over from one to the next)."""
    palettes = [("", theme.light_palette())] + ([("-dark", theme.dark_palette())] if dark else [])
    written: list[Path] = []
    for suffix, palette in palettes:
        app.setPalette(palette)
        session = await open_session(True, None, QSettings(str(ui_file), QSettings.Format.IniFormat))
        if isinstance(session, int):
            raise RuntimeError("the demo did not start")
        try:
            window = session.window
            window.resize(WINDOW_SIZE)
            counts = await wait_for_demo_data(session)
            print(f"demo data: {counts}")
            for number, page in enumerate(window.pages):
                window.show_page(number)
                if isinstance(page, InvitedUsersPage):
                    select_a_qualified_referral(page)
                await settle()
                path = out / f"{slug(str(getattr(page, 'title', number)))}{suffix}.png"
                if not window.grab().save(str(path)):
                    raise OSError(f"could not write {path}")
                written.append(path)
        finally:
            await session.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--dark", action="store_true", help="also draw every page with the dark palette")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    import qasync  # after PySide6 is loaded, so it binds to it

    with tempfile.TemporaryDirectory(prefix="rf-desktop-screenshots-") as scratch, virtual_display():
        os.environ["RF_DESKTOP_DATA_DIR"] = scratch  # never the owner's own demo database
        os.environ["QT_QPA_PLATFORM"] = "xcb"
        app = create_application([sys.argv[0]])
        collector = MainThreadGarbageCollector(parent=app)
        try:
            with asyncio.Runner(loop_factory=lambda: qasync.QEventLoop(app)) as runner:
                written = runner.run(capture(app, args.out, args.dark, Path(scratch) / "ui.ini"))
        finally:
            collector.stop()
    for path in written:
        print(f"wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
