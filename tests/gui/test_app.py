"""Starting and stopping the app: the demo end to end, the first-run choice, unexpected errors, and the
PySide6 reference-count guard."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import keyring
import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication, QMessageBox
from pytestqt.qtbot import QtBot

from rf_desktop.core.secrets import TokenStore
from rf_desktop.core.store import Store
from rf_desktop.gui import app as gui_app
from rf_desktop.gui import controller as gui_controller
from rf_desktop.gui.app import READY_LINE, ErrorReporter, Session, first_run, main, open_session
from rf_desktop.gui.controller import AppController
from rf_desktop.gui.first_run import CANCELLED, CONFIGURED, DEMO, FirstRunDialog
from rf_desktop.gui.main_window import MainWindow
from rf_desktop.gui.tasks import Tasks
from tests.gui.conftest import Runner


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    monkeypatch.setenv("RF_DESKTOP_DATA_DIR", str(folder))
    return folder


@pytest.fixture
def no_keychain(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any keychain access fails the test: the demo must never touch it."""

    def refuse() -> Any:
        raise AssertionError("the keychain was used")

    monkeypatch.setattr(keyring, "get_keyring", refuse)


@pytest.fixture
def memory_keychain(keychain: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The app's own controllers keep tokens in the test's memory keychain."""
    monkeypatch.setattr(gui_controller, "TokenStore", lambda: TokenStore(keychain, environ={}))
    return keychain


@pytest.fixture
def sessions(run: Runner) -> Any:
    opened: list[Session] = []
    yield opened
    for session in opened:
        run(session.close(), timeout=20)


def test_the_demo_shows_referrals_arriving_and_qualifying(
    data_dir: Path, no_keychain: None, ui_settings: QSettings, qtbot: QtBot, run: Runner, sessions: list[Session]
) -> None:
    session = run(open_session(True, None, ui_settings), timeout=20)
    assert isinstance(session, Session)
    sessions.append(session)
    controller, window = session.controller, session.window
    assert controller.demo and controller.sandbox is not None
    assert Path(controller.store.path) == data_dir / "demo.sqlite3"
    assert window.windowTitle() == "rf-desktop (demo)"
    assert window.current_page().title == "Invited users"  # type: ignore[attr-defined]
    settings = controller.settings()
    assert settings.referral_factory.base_url == controller.sandbox.rf_base_url
    assert settings.qualification.kind == "lead_converted"

    controller.sandbox.state.demo_speed = 200  # sign-ups and a sales team, two hundred times faster
    page = window.current_page()

    def qualified_in_table() -> bool:
        controller.sync_now()  # look again now rather than at the next poll
        return any(
            page.model.referral_at(r).status == "qualified"  # type: ignore[attr-defined]
            for r in range(page.model.rowCount())  # type: ignore[attr-defined]
        )

    qtbot.waitUntil(qualified_in_table, timeout=30_000)
    sandbox = controller.sandbox
    sessions.clear()
    run(session.close(), timeout=20)
    assert controller.engine is not None and controller.engine.state == "stopped"
    with pytest.raises(Exception):  # noqa: B017 - closed: any use fails
        controller.store.count()
    assert not sandbox._thread.is_alive()


def test_the_demo_starts_afresh(data_dir: Path, ui_settings: QSettings, run: Runner, sessions: list[Session]) -> None:
    with Store(data_dir / "demo.sqlite3") as old:
        old.log("info", "intake", "from an earlier demo")
    session = run(open_session(True, None, ui_settings), timeout=20)
    assert isinstance(session, Session)
    sessions.append(session)
    assert session.controller.store.log_count(text="earlier demo") == 0


def test_main_runs_until_quit_then_stops_cleanly(
    tmp_path: Path,
    ui_settings: QSettings,
    qtbot: QtBot,
    loop: asyncio.AbstractEventLoop,
    qapp: QApplication,
    capsys: pytest.CaptureFixture[str],
) -> None:
    task = loop.create_task(main(qapp, True, tmp_path / "main-demo.sqlite3", ui_settings))

    def window() -> MainWindow | None:
        found = [w for w in qapp.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        return found[0] if found else None

    qtbot.waitUntil(lambda: window() is not None, timeout=20_000)
    shown = window()
    assert shown is not None
    qtbot.waitUntil(lambda: READY_LINE in capsys.readouterr().err)  # said once the window is up
    shown.request_quit()
    qtbot.waitUntil(task.done, timeout=20_000)
    assert task.result() == 0
    assert not shown.isVisible()
    assert shown.controller.engine is not None and shown.controller.engine.state == "stopped"
    shown.deleteLater()


@pytest.mark.parametrize("outcome", [CANCELLED, CONFIGURED, gui_app.CONFIGURED_THEN_TEST, DEMO])
def test_the_first_run_sets_up_or_opens_the_demo(
    outcome: str,
    data_dir: Path,
    ui_settings: QSettings,
    monkeypatch: pytest.MonkeyPatch,
    run: Runner,
    sessions: list[Session],
    memory_keychain: Any,
) -> None:
    asked: list[bool] = []

    async def answer(*_args: Any) -> str:
        asked.append(True)
        return outcome

    wizards: list[bool] = []
    monkeypatch.setattr(gui_app, "first_run", answer)
    monkeypatch.setattr(gui_app.MainWindow, "open_test_wizard", lambda _window: wizards.append(True))
    result = run(open_session(False, data_dir / "real.sqlite3", ui_settings), timeout=20)
    assert asked == [True]
    assert wizards == ([True] if outcome == gui_app.CONFIGURED_THEN_TEST else [])
    if isinstance(result, Session):
        sessions.append(result)
    if outcome == CANCELLED:
        # no dead end: the window opens where the set-up carries on, without syncing
        assert isinstance(result, Session) and not result.controller.demo
        assert result.controller.engine is None
        assert result.window.current_page().title == "Connections"  # type: ignore[attr-defined]
    elif outcome in (CONFIGURED, gui_app.CONFIGURED_THEN_TEST):
        assert isinstance(result, Session) and not result.controller.demo
        assert result.controller.engine is not None
        assert result.window.current_page().title == "Invited users"  # type: ignore[attr-defined]
    else:
        assert isinstance(result, Session) and result.controller.demo
        assert Path(result.controller.store.path) == data_dir / "demo.sqlite3"


def test_leaving_the_set_up_started_from_the_demo_returns_to_the_demo(
    data_dir: Path,
    ui_settings: QSettings,
    monkeypatch: pytest.MonkeyPatch,
    run: Runner,
    memory_keychain: Any,
) -> None:
    async def leave(*_args: Any) -> str:
        return CANCELLED

    started: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(gui_app, "first_run", leave)
    monkeypatch.setattr(
        "rf_desktop.gui.main_window.start_detached",
        lambda program, arguments, environment=None: started.append((program, list(arguments))) or True,
    )
    monkeypatch.setenv("RF_DESKTOP_FROM_DEMO", "1")
    result = run(open_session(False, data_dir / "real.sqlite3", ui_settings), timeout=20)
    assert result == 0
    assert started == [(sys.executable, ["-m", "rf_desktop", "--demo"])]


def test_a_configured_app_opens_without_asking(
    data_dir: Path,
    ui_settings: QSettings,
    monkeypatch: pytest.MonkeyPatch,
    run: Runner,
    sessions: list[Session],
    memory_keychain: Any,
) -> None:
    memory_keychain.set_password("rf-desktop", "pipedrive", "a-token")

    async def never(*_args: Any) -> str:
        raise AssertionError("asked although a token is stored")

    monkeypatch.setattr(gui_app, "first_run", never)
    session = run(open_session(False, data_dir / "real.sqlite3", ui_settings), timeout=20)
    assert isinstance(session, Session)
    sessions.append(session)
    assert not session.controller.demo


def test_the_set_up_dialog_offers_the_demo(
    controller: AppController, qtbot: QtBot, loop: asyncio.AbstractEventLoop, qapp: QApplication
) -> None:
    task = loop.create_task(first_run(controller))

    def dialog() -> FirstRunDialog | None:
        shown = [w for w in qapp.topLevelWidgets() if isinstance(w, FirstRunDialog) and w.isVisible()]
        return shown[0] if shown else None

    qtbot.waitUntil(lambda: dialog() is not None)
    wizard = dialog()
    assert wizard is not None
    demo = wizard.button(FirstRunDialog.WizardButton.CustomButton1)
    assert "demo" in demo.text()
    qtbot.mouseClick(demo, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(task.done)
    assert task.result() == DEMO


@pytest.mark.allow_logged_errors
def test_unexpected_errors_are_logged_and_shown(caplog: pytest.LogCaptureFixture, qtbot: QtBot) -> None:
    reporter = ErrorReporter(Path("/tmp/rf-desktop.log"))
    try:
        raise ValueError("the wheel fell off")
    except ValueError as error:
        reporter.excepthook(type(error), error, error.__traceback__)
    assert reporter.box is not None and reporter.box.isVisible()
    assert "the wheel fell off" in reporter.box.text()
    assert "/tmp/rf-desktop.log" in reporter.box.informativeText()
    assert "ValueError" in reporter.box.detailedText()
    assert any(r.levelname == "ERROR" and r.exc_info for r in caplog.records)

    reporter.excepthook(RuntimeError, RuntimeError("and another"), None)
    assert reporter.box.text() == "2 unexpected errors happened. The last one: and another"
    reporter.box.close()


def test_spawned_tasks_are_kept_and_replaced_by_key(
    loop: asyncio.AbstractEventLoop, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks = Tasks()
    reported: list[BaseException] = []
    monkeypatch.setattr(sys, "excepthook", lambda _kind, error, _tb: reported.append(error))

    async def forever() -> None:
        await asyncio.sleep(3600)

    async def fail() -> None:
        raise KeyError("lost")

    first = tasks.spawn("refresh", forever())
    second = tasks.spawn("refresh", forever())
    qtbot.waitUntil(first.done)
    assert first.cancelled() and not second.done()
    assert tasks.get("refresh") is second
    tasks.spawn("broken", fail())
    qtbot.waitUntil(lambda: len(reported) == 1)
    assert isinstance(reported[0], KeyError)
    task = loop.create_task(tasks.cancel_all())
    qtbot.waitUntil(task.done)
    assert second.cancelled() and tasks.running() == []


def test_a_database_that_cannot_open_is_explained(
    tmp_path: Path, ui_settings: QSettings, qtbot: QtBot, loop: asyncio.AbstractEventLoop, qapp: QApplication
) -> None:
    (tmp_path / "a-file").write_text("")  # a folder cannot be made inside a file
    task = loop.create_task(main(qapp, False, tmp_path / "a-file" / "no-such-folder" / "rf.sqlite3", ui_settings))

    def box() -> QMessageBox | None:
        found = [w for w in qapp.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]
        return found[0] if found else None

    qtbot.waitUntil(lambda: box() is not None)
    shown = box()
    assert shown is not None
    assert shown.windowTitle() == "rf-desktop cannot open its database"
    assert "no-such-folder" in shown.text()
    shown.accept()
    qtbot.waitUntil(task.done)
    assert task.result() == 1


def test_a_data_folder_that_cannot_be_created_is_explained(
    tmp_path: Path,
    ui_settings: QSettings,
    qtbot: QtBot,
    loop: asyncio.AbstractEventLoop,
    qapp: QApplication,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("RF_DESKTOP_DATA_DIR", str(tmp_path / "a-file" / "rf-desktop"))
    task = loop.create_task(main(qapp, False, None, ui_settings))

    def box() -> QMessageBox | None:
        found = [w for w in qapp.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]
        return found[0] if found else None

    qtbot.waitUntil(lambda: box() is not None)
    shown = box()
    assert shown is not None
    assert shown.windowTitle() == "rf-desktop cannot open its database"
    assert "Could not create the folder" in shown.text() and "a-file/rf-desktop" in shown.text()
    shown.accept()
    qtbot.waitUntil(task.done)
    assert task.result() == 1
