"""Screenshots of the "send test referral" wizard, page by page, for the docs.

    .venv/bin/python scripts/wizard_screenshots.py [docs/screenshots]

Drawn at 1440 x 900 on a private X display with a window manager, as the window's screenshots are
(`screenshots.virtual_display`). Runs the real thing on the built-in sandbox (as the demo does): the sync,
the test referral, the demo's salesperson and a failed run with a wrong token, and saves
`wizard-<page>.png` for each page.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_API", "pyside6")

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QWidget, QWizard
from screenshots import WINDOW_SIZE, virtual_display  # beside this script

from rf_desktop.core.secrets import PD_TOKEN, RF_TOKEN
from rf_desktop.core.store import Store
from rf_desktop.gui.app import create_application, point_at_sandbox
from rf_desktop.gui.controller import AppController
from rf_desktop.gui.wizard import TestReferralWizard
from rf_desktop.sandbox.server import SandboxServer


async def until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("the wizard did not get there in time")
        await asyncio.sleep(0.05)


def save(widget: QWidget, folder: Path, name: str) -> None:
    path = folder / f"wizard-{name}.png"
    widget.grab().save(str(path))
    print(path)


def open_wizard(controller: AppController, settings: QSettings) -> TestReferralWizard:
    wizard = TestReferralWizard(controller, ui_settings=settings)
    wizard.resize(WINDOW_SIZE)
    wizard.show()
    return wizard


async def take(folder: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp, SandboxServer() as sandbox:
        controller = AppController(Store(Path(tmp) / "rf.sqlite3"), demo=True, sandbox=None)
        controller.account.use_session_tokens({RF_TOKEN: sandbox.state.rf.token, PD_TOKEN: sandbox.state.pd.token})
        await point_at_sandbox(controller, sandbox)
        controller.sandbox = sandbox  # after set-up: the demo button needs it, shutdown must not stop it
        controller.start_engine()
        settings = QSettings(str(Path(tmp) / "ui.ini"), QSettings.Format.IniFormat)
        settings.setValue("test_referral/email_base", "maria@sandbox-bakery.example")
        try:
            wizard = open_wizard(controller, settings)
            await until(lambda: wizard.plan_page.isComplete() and wizard.plan_page.campaign.count() > 0)
            await asyncio.sleep(0.3)
            save(wizard, folder, "1-plan")
            wizard.next()
            await until(lambda: wizard.progress_page.finished)
            await asyncio.sleep(0.2)
            save(wizard, folder, "2-progress")
            wizard.next()
            wizard.qualify_page.wait()
            await asyncio.sleep(2.2)
            save(wizard, folder, "3-qualification-waiting")
            wizard.qualify_page.act()
            await until(lambda: wizard.qualify_page.result.kind == "success")
            save(wizard, folder, "3-qualification")
            wizard.next()
            await asyncio.sleep(0.2)
            save(wizard, folder, "4-summary")
            wizard.close()

            controller.pause()
            paused = open_wizard(controller, settings)
            await until(lambda: bool(paused.plan_page.problem_rows()))
            await asyncio.sleep(0.3)
            save(paused, folder, "1-plan-paused")
            paused.close()
            controller.resume()

            await controller.account.set_token(RF_TOKEN, "an-old-token")
            failing = open_wizard(controller, settings)
            await until(lambda: failing.plan_page.isComplete())
            failing.next()
            await until(lambda: failing.progress_page.finished)
            await asyncio.sleep(0.2)
            save(failing, folder, "2-progress-failed")
            failing.button(QWizard.WizardButton.CancelButton).click()
        finally:
            controller.sandbox = None
            await controller.shutdown()


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else Path(__file__).resolve().parents[1] / "docs" / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    import qasync  # after PySide6, so it binds to it

    with virtual_display():
        os.environ["QT_QPA_PLATFORM"] = "xcb"
        app = create_application([])
        with asyncio.Runner(loop_factory=lambda: qasync.QEventLoop(app)) as runner:
            runner.run(take(folder))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
