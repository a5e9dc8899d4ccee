"""Help → Check my accounts: the doctor's report in a dialog, saved with one click."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMenu
from pytestqt.qtbot import QtBot

from rf_desktop.gui.controller import AppController
from rf_desktop.gui.main_window import MainWindow

WindowFactory = Callable[[AppController], MainWindow]


def _help_action(window: MainWindow, text: str) -> QAction:
    menus = [a.menu() for a in window.menuBar().actions() if a.text() == "&Help"]
    assert menus and isinstance(menus[0], QMenu)
    return next(a for a in menus[0].actions() if a.text() == text)


def test_check_my_accounts_shows_the_report_and_saves_it(
    sandbox_controller: AppController,
    make_window: WindowFactory,
    qtbot: QtBot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    window = make_window(sandbox_controller)
    _help_action(window, "&Check my accounts…").trigger()
    dialog = window.doctor_dialog
    assert dialog is not None and dialog.isVisible()
    assert not dialog.save_button.isEnabled(), "nothing to save before the report is there"
    qtbot.waitUntil(lambda: dialog.save_button.isEnabled(), timeout=15_000)

    report = dialog.text.toPlainText()
    assert "Referral Code field on deals" in report and "0 problems found." in report
    assert dialog.status.text() == "No problems found."
    assert sandbox_controller.tokens.get("pipedrive") not in report

    target = tmp_path / "check.txt"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *_args: (str(target), "")))
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert target.read_text(encoding="utf-8") == report
    assert dialog.status.text() == f"Saved to {target}."


def test_a_problem_is_counted_in_the_dialog(
    sandbox_controller: AppController, make_window: WindowFactory, qtbot: QtBot
) -> None:
    window = make_window(sandbox_controller)
    settings = sandbox_controller.settings()
    settings.referral_factory.campaign_ids = [99]
    sandbox_controller.store.save_settings(settings)
    dialog = window.check_accounts()
    qtbot.waitUntil(lambda: dialog.save_button.isEnabled(), timeout=15_000)
    assert dialog.status.text() == "1 problem found: see the lines marked “problem”."
    assert "Referral Factory has no campaign 99" in dialog.text.toPlainText()
