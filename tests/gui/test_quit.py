"""Quitting is always clean: settings edits that cannot be saved yet are the owner's to save or discard,
and every way out (Ctrl+Q, the tray's Quit, the close box, SIGTERM) stops in the same order: the
settings draft, then the sync engine, then the store."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication, QMessageBox
from pytestqt.qtbot import QtBot

from rf_desktop.core.mapping_setup import NOT_SENT
from rf_desktop.core.store import Store
from rf_desktop.gui.app import main
from rf_desktop.gui.main_window import MainWindow
from rf_desktop.gui.pages.mapping import MappingPage
from rf_desktop.gui.widgets.settings_draft import DRAFT_KEY, SettingsDraft
from tests.gui.test_mapping_page import choose
from tests.gui.test_tray import SIMULATED_TRAY, tray_available  # noqa: F401 (a fixture)

WAIT_MS = 20_000


@dataclass
class Running:
    task: asyncio.Task[int]
    window: MainWindow
    db_path: Path


@pytest.fixture
def running(
    tmp_path: Path, ui_settings: QSettings, qtbot: QtBot, loop: asyncio.AbstractEventLoop, qapp: QApplication
) -> Iterator[Running]:
    """The app as `rf-desktop --demo` runs it, with its window open on the Mapping page."""
    db_path = tmp_path / "quit.sqlite3"
    task = loop.create_task(main(qapp, True, db_path, ui_settings))

    def window() -> MainWindow | None:
        found = [w for w in qapp.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        return found[0] if found else None

    qtbot.waitUntil(lambda: window() is not None, timeout=WAIT_MS)
    shown = window()
    assert shown is not None
    qtbot.waitExposed(shown)
    shown.windowHandle().requestActivate()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is shown)
    shown.show_page_named("Mapping")
    yield Running(task, shown, db_path)
    if not task.done():
        shown.quitRequested.emit()
        qtbot.waitUntil(task.done, timeout=WAIT_MS)
    shown.deleteLater()


def unmap_the_email(running: Running, qtbot: QtBot) -> None:
    """An edit on the Mapping page that cannot be saved: Pipedrive needs the email."""
    page = running.window.current_page()
    assert isinstance(page, MappingPage)
    combo = page.grid.rows["email"].combo
    qtbot.waitUntil(combo.isEnabled, timeout=WAIT_MS)
    choose(combo, NOT_SENT)
    assert page.draft.dirty and page.draft.errors()


def the_question(running: Running, qtbot: QtBot) -> QMessageBox:
    qtbot.waitUntil(lambda: running.window.unsaved_box is not None and running.window.unsaved_box.isVisible())
    box = running.window.unsaved_box
    assert box is not None
    assert "not saved" in box.text() and "Email" in box.informativeText()
    return box


def answer(box: QMessageBox, button: QMessageBox.StandardButton, qtbot: QtBot) -> None:
    qtbot.mouseClick(box.button(button), Qt.MouseButton.LeftButton)


def parked_draft(db_path: Path) -> Any:
    with Store(db_path) as store:
        return store.get_kv(DRAFT_KEY)


def email_mapped(settings_json: dict[str, Any]) -> bool:
    return any(m["source"] == "email" for m in settings_json["mappings"])


def test_ctrl_q_with_an_unsaved_mapping_edit_asks_and_save_keeps_it_for_next_time(
    running: Running, qtbot: QtBot
) -> None:
    unmap_the_email(running, qtbot)
    qtbot.keyClick(running.window, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    answer(the_question(running, qtbot), QMessageBox.StandardButton.Save, qtbot)
    qtbot.waitUntil(running.task.done, timeout=WAIT_MS)
    assert running.task.result() == 0
    assert not running.window.isVisible()
    parked = parked_draft(running.db_path)
    assert parked is not None and not email_mapped(parked)


def test_discard_goes_back_to_the_saved_settings_and_quits(running: Running, qtbot: QtBot) -> None:
    unmap_the_email(running, qtbot)
    running.window.quit_action.trigger()
    answer(the_question(running, qtbot), QMessageBox.StandardButton.Discard, qtbot)
    qtbot.waitUntil(running.task.done, timeout=WAIT_MS)
    assert running.task.result() == 0
    assert parked_draft(running.db_path) is None
    with Store(running.db_path) as store:
        saved = store.get_settings()
    assert saved is not None and any(m.source == "email" for m in saved.mappings)


def test_cancel_keeps_the_window_and_the_edit(running: Running, qtbot: QtBot) -> None:
    unmap_the_email(running, qtbot)
    # the close box, where no tray icon can keep rf-desktop running, is a Quit too
    assert not running.window.tray.available
    running.window.close()
    answer(the_question(running, qtbot), QMessageBox.StandardButton.Cancel, qtbot)
    qtbot.waitUntil(lambda: running.window.unsaved_box is None)
    assert running.window.isVisible() and not running.task.done()
    assert running.window.draft.dirty and running.window.draft.errors()
    # and the next Quit asks again
    running.window.quit_action.trigger()
    answer(the_question(running, qtbot), QMessageBox.StandardButton.Discard, qtbot)
    qtbot.waitUntil(running.task.done, timeout=WAIT_MS)
    assert running.task.result() == 0


@SIMULATED_TRAY
def test_quit_from_the_tray_menu_asks_too(
    tray_available: list[tuple[str, str]], running: Running, qtbot: QtBot  # noqa: F811
) -> None:
    unmap_the_email(running, qtbot)
    running.window.close()  # the close box: rf-desktop keeps syncing in the tray
    qtbot.waitUntil(lambda: not running.window.isVisible())
    assert running.window.unsaved_box is None
    menu = running.window.tray.menu
    assert menu is not None
    quit_item = next(a for a in menu.actions() if a.text() == "&Quit")
    quit_item.trigger()
    box = the_question(running, qtbot)
    assert running.window.isVisible()  # brought back, so the question is seen with its window
    answer(box, QMessageBox.StandardButton.Save, qtbot)
    qtbot.waitUntil(running.task.done, timeout=WAIT_MS)
    assert running.task.result() == 0


def test_sigterm_saves_the_draft_then_stops_the_engine_then_closes_the_store(
    running: Running, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    controller = running.window.controller
    engine, store = controller.engine, controller.store
    assert engine is not None
    order: list[str] = []

    def spy(owner: Any, name: str, step: str) -> None:
        original = getattr(owner, name)

        def recorded(*args: Any, **kwargs: Any) -> Any:
            order.append(step)
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, recorded)

    spy(SettingsDraft, "flush", "draft")
    spy(engine, "stop", "engine")
    spy(store, "close", "store")
    unmap_the_email(running, qtbot)
    os.kill(os.getpid(), signal.SIGTERM)  # nobody to ask: the unfinished edit is kept for next time
    qtbot.waitUntil(running.task.done, timeout=WAIT_MS)
    assert running.task.result() == 0
    assert order[0] == "draft" and order.index("engine") < order.index("store")
    assert engine.state == "stopped"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # given back
    parked = parked_draft(running.db_path)
    assert parked is not None and not email_mapped(parked)
