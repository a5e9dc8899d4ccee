"""Fixtures for the window's tests: offscreen Qt, a qasync loop that pytest-qt's waits can drive, an
in-memory keychain, and controllers over a temporary store pointed at the sandbox.

pytest-qt spins nested Qt event loops (`waitUntil`, `waitSignal`); the qasync loop is created already
"running" on the QApplication, so a task started with `run()` makes progress while qtbot waits.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")  # qasync binds to PySide6 whatever else is installed

import asyncio
import gc
import shutil
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import qasync
from PySide6.QtCore import QEvent, QModelIndex, QSettings
from PySide6.QtGui import QHelpEvent
from PySide6.QtWidgets import QAbstractItemView, QApplication, QMessageBox, QToolTip
from pytestqt.qtbot import QtBot

from rf_desktop.core.account import Account
from rf_desktop.core.engine import SyncEngine
from rf_desktop.core.secrets import PD_TOKEN, RF_TOKEN, TokenStore
from rf_desktop.core.store import Referral, Store
from rf_desktop.gui.app import point_at_sandbox
from rf_desktop.gui.controller import AppController
from rf_desktop.gui.main_window import MainWindow
from rf_desktop.sandbox.server import SandboxServer
from tests.keychains import MemoryKeyring

T = TypeVar("T")
Runner = Callable[..., Any]
HERE = Path(__file__).parent

# The offscreen platform has no window system to pass a window's size constraints to or to raise a window
# in, and says so for every top-level window. Only those messages are ignored; every other Qt warning still
# fails the test.
OFFSCREEN_LIMITS = (
    r"This plugin does not support propagateSizeHints\(\)",
    r"This plugin does not support raise\(\)",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            # pytest-qt reads only the closest qt_log_ignore marker: put one first that has them all
            own = tuple(pattern for marker in item.iter_markers("qt_log_ignore") for pattern in marker.args)
            item.add_marker(pytest.mark.qt_log_ignore(*OFFSCREEN_LIMITS, *own), append=False)


@pytest.fixture(autouse=True)
def _qt_application(qapp: QApplication) -> Iterator[QApplication]:
    """Every test here touches Qt objects (timers, pixmaps), which need the application to exist. Its
    garbage is collected here, on the GUI thread, so a later test's worker thread never destroys Qt
    objects (the app does the same with `MainThreadGarbageCollector`)."""
    yield qapp
    gc.collect()


@pytest.fixture
def loop(qapp: QApplication) -> Iterator[asyncio.AbstractEventLoop]:
    """The asyncio loop on top of the QApplication, marked running, as inside the app."""
    event_loop = qasync.QEventLoop(qapp, already_running=True)
    asyncio.set_event_loop(event_loop)
    yield event_loop
    pending = [t for t in asyncio.all_tasks(event_loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        gathered = asyncio.gather(*pending, return_exceptions=True)
        deadline = event_loop.time() + 5
        while not gathered.done() and event_loop.time() < deadline:
            qapp.processEvents()
    # qasync's stop() would call QApplication.exit(), which leaves Qt's "quit now" flag set for the
    # next test's dialogs; mark the loop stopped directly instead
    event_loop._QEventLoop__is_running = False  # type: ignore[attr-defined]
    asyncio.events._set_running_loop(None)
    qapp.aboutToQuit.disconnect(event_loop._after_run_forever)  # type: ignore[attr-defined]
    event_loop.close()
    asyncio.set_event_loop(None)


@pytest.fixture
def run(loop: asyncio.AbstractEventLoop, qtbot: QtBot) -> Runner:
    """`run(coro, timeout=10)`: run a coroutine on the qasync loop while Qt keeps processing events."""

    def runner(coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        task = loop.create_task(coro)
        qtbot.waitUntil(task.done, timeout=int(timeout * 1000))
        return task.result()

    return runner


@pytest.fixture
def keychain() -> MemoryKeyring:
    return MemoryKeyring()


@pytest.fixture
def tokens(keychain: MemoryKeyring) -> TokenStore:
    return TokenStore(keychain, environ={})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / "rf-desktop.sqlite3")
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def big_store_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with 100,000 referrals, written once per test run through the store's own bulk insert."""
    path = tmp_path_factory.mktemp("big") / "rf-desktop.sqlite3"
    with Store(path) as big:
        bulk_referrals(big, 100_000, signed_up_at="2025-01-01")
    return path


@pytest.fixture
def big_store(big_store_file: Path, tmp_path: Path) -> Iterator[Store]:
    """A private copy of the 100,000-referral store (the copy takes milliseconds, the insert seconds)."""
    path = tmp_path / "big.sqlite3"
    shutil.copyfile(big_store_file, path)
    opened = Store(path)
    yield opened
    opened.close()


def fast_engine(account: Account) -> SyncEngine:
    """The real engine with test-sized waits."""
    return SyncEngine(account, retry_base=0.05, min_watch_interval=0.2)


@pytest.fixture
def controller(
    loop: asyncio.AbstractEventLoop, store: Store, tokens: TokenStore, run: Runner
) -> Iterator[AppController]:
    """A controller over the temporary store (no settings, no tokens, engine not started)."""
    made = AppController(store, tokens, engine_factory=fast_engine)
    yield made
    run(made.shutdown(timeout=5))


@pytest.fixture
def sandbox_controller(controller: AppController, sandbox: SandboxServer, run: Runner) -> AppController:
    """The controller with tokens in the (memory) keychain and settings pointing at the sandbox."""
    run(controller.account.set_token(RF_TOKEN, sandbox.state.rf.token))
    run(controller.account.set_token(PD_TOKEN, sandbox.state.pd.token))
    run(point_at_sandbox(controller, sandbox))
    return controller


@pytest.fixture
def ui_settings(tmp_path: Path) -> QSettings:
    """Window geometry and page, in a file of this test's own."""
    return QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def make_window(qtbot: QtBot, ui_settings: QSettings, run: Runner) -> Iterator[Callable[[AppController], MainWindow]]:
    """Windows shown and active; at the end they quit as the app does: the sync stops (cancelling the
    pages' background work), then they close. (Not `qtbot.addWidget`: it would close them first.)"""
    windows: list[MainWindow] = []

    def make(controller: AppController) -> MainWindow:
        window = MainWindow(controller, ui_settings)
        window.show()
        qtbot.waitExposed(window)
        window.windowHandle().requestActivate()  # keyboard shortcuts only reach the active window
        qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
        windows.append(window)
        return window

    yield make
    for window in windows:
        run(window.controller.shutdown(timeout=5))
        window.close_for_quit()
        window.deleteLater()
    QApplication.processEvents()


def referral(rf_user_id: int, **fields: Any) -> Referral:
    """A referral as intake records it; `fields` override the defaults."""
    values: dict[str, Any] = {
        "campaign_id": 1,
        "campaign_name": "Spring Referral Campaign",
        "first_name": f"Person {rf_user_id}",
        "email": f"person{rf_user_id}@example.com",
        "code": f"code{rf_user_id}",
        "signed_up_at": "2025-03-01",
        "referrer_first_name": "Alice",
        "referrer_email": "alice@example.com",
    }
    values.update(fields)
    return Referral(rf_user_id=rf_user_id, **values)


def bulk_referrals(store: Store, count: int, start: int = 1, **fields: Any) -> None:
    store.record_referrals(referral(n, **fields) for n in range(start, start + count))


class MessageBoxes:
    """Every message box the code under test showed, instead of a window nobody can click in a test."""

    def __init__(self) -> None:
        self.shown: list[tuple[str, str, str]] = []  # (kind, title, text + informative text)

    def texts(self, kind: str | None = None) -> list[str]:
        return [text for k, _title, text in self.shown if kind is None or k == kind]


@pytest.fixture
def message_boxes(monkeypatch: pytest.MonkeyPatch) -> MessageBoxes:
    boxes = MessageBoxes()

    def static(kind: str) -> Callable[..., Any]:
        def show(_parent: Any, title: str, text: str, *_args: Any, **_kwargs: Any) -> Any:
            boxes.shown.append((kind, title, text))
            return QMessageBox.StandardButton.Ok

        return staticmethod(show)

    kinds = {
        QMessageBox.Icon.Warning: "warning",
        QMessageBox.Icon.Critical: "critical",
        QMessageBox.Icon.Information: "information",
    }

    def record(box: QMessageBox) -> None:
        text = f"{box.text()}\n{box.informativeText()}".strip()
        boxes.shown.append((kinds.get(box.icon(), "box"), box.windowTitle(), text))

    def run_box(box: QMessageBox) -> int:
        record(box)
        return 0

    def open_box(box: QMessageBox) -> None:
        record(box)
        box.finished.emit(0)  # answered at once, as if closed

    for kind in ("warning", "critical", "information", "about"):
        monkeypatch.setattr(QMessageBox, kind, static(kind))
    monkeypatch.setattr(QMessageBox, "exec", run_box)
    monkeypatch.setattr(QMessageBox, "open", open_box)
    return boxes


def sign_up(sandbox: SandboxServer, **fields: Any) -> dict[str, Any]:
    """Someone signs up through Alice's referral link in the sandbox (the admin API fills in the rest)."""
    body = {"campaign_id": 1, "referrer_code": "ALICE001", **fields}
    response = httpx.post(f"{sandbox.admin_url}/rf/signup", json=body, timeout=10)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def tooltip_at(view: QAbstractItemView, index: QModelIndex) -> str:
    """The tooltip the pointer resting on the cell at `index` shows."""
    centre = view.visualRect(index).center()
    QApplication.sendEvent(
        view.viewport(), QHelpEvent(QEvent.Type.ToolTip, centre, view.viewport().mapToGlobal(centre))
    )
    return QToolTip.text()
