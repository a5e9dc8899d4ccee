"""Take a PNG of every page of the window, in the demo, into docs/screenshots/.

The demo runs (sped up) in a throwaway data directory until the tables show referrals arriving and
qualifying; then each page is drawn offscreen. `--dark` draws the dark palette too (`<page>-dark.png`).

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/screenshots.py [--dark] [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import httpx
from PySide6.QtCore import QSettings, QSize
from PySide6.QtWidgets import QApplication

from rf_desktop.gui import theme
from rf_desktop.gui.app import MainThreadGarbageCollector, Session, create_application, open_session

REPO = Path(__file__).resolve().parents[1]
WINDOW_SIZE = QSize(1280, 800)
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


async def settle(seconds: float = 0.5) -> None:
    """Let pending refreshes, layouts and paints happen (the qasync loop runs Qt's events meanwhile)."""
    await asyncio.sleep(seconds)


async def capture(app: QApplication, out: Path, dark: bool, ui_file: Path) -> list[Path]:
    session = await open_session(True, None, QSettings(str(ui_file), QSettings.Format.IniFormat))
    if isinstance(session, int):
        raise RuntimeError("the demo did not start")
    written: list[Path] = []
    try:
        window = session.window
        window.resize(WINDOW_SIZE)
        counts = await wait_for_demo_data(session)
        print(f"demo data: {counts}")
        palettes = [("", theme.light_palette())] + ([("-dark", theme.dark_palette())] if dark else [])
        for suffix, palette in palettes:
            app.setPalette(palette)
            await settle()
            for number, page in enumerate(window.pages):
                window.show_page(number)
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

    with tempfile.TemporaryDirectory(prefix="rf-desktop-screenshots-") as scratch:
        os.environ["RF_DESKTOP_DATA_DIR"] = scratch  # never the owner's own demo database
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
