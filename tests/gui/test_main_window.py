"""The main window: navigation by mouse and keyboard, the actions, the status bar, remembered layout."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from rf_desktop.core.events import BudgetChanged, StateChanged
from rf_desktop.gui import theme
from rf_desktop.gui.controller import AppController
from rf_desktop.gui.main_window import FROM_DEMO_VARIABLE, MainWindow, start_detached
from rf_desktop.gui.widgets.sync_status import budget_text, counts_text, next_check_text, state_label
from tests.gui.conftest import MessageBoxes, bulk_referrals

PAGE_TITLES = ["Connections", "Mapping", "Rules", "Invited users", "Sync log"]
WindowFactory = Callable[[AppController], MainWindow]


def titles(window: MainWindow) -> list[str]:
    return [window.nav.item(i).text() for i in range(window.nav.count())]


def test_the_navigation_lists_every_page_with_an_icon(controller: AppController, make_window: WindowFactory) -> None:
    window = make_window(controller)
    assert titles(window) == PAGE_TITLES
    assert all(not window.nav.item(i).icon().isNull() for i in range(window.nav.count()))
    assert window.windowTitle() == "rf-desktop"


def test_clicking_the_navigation_switches_pages(
    controller: AppController, make_window: WindowFactory, qtbot: QtBot
) -> None:
    window = make_window(controller)
    for row, title in enumerate(PAGE_TITLES):
        rect = window.nav.visualItemRect(window.nav.item(row))
        qtbot.mouseClick(window.nav.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        assert window.current_page().title == title  # type: ignore[attr-defined]


def test_ctrl_number_switches_pages_and_ctrl_f_finds(
    controller: AppController, make_window: WindowFactory, qtbot: QtBot
) -> None:
    window = make_window(controller)
    for number, title in enumerate(PAGE_TITLES, start=1):
        qtbot.keyClick(window, Qt.Key(Qt.Key.Key_0 + number), Qt.KeyboardModifier.ControlModifier)
        assert window.current_page().title == title  # type: ignore[attr-defined]
    qtbot.keyClick(window, Qt.Key.Key_4, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert QApplication.focusWidget() is window.current_page().search  # type: ignore[attr-defined]


def test_the_page_and_geometry_are_remembered(
    controller: AppController, ui_settings: QSettings, qtbot: QtBot
) -> None:
    first = MainWindow(controller, ui_settings)
    first.show()
    first.resize(first.width(), 500)
    first.show_page(4)
    first.close_for_quit()

    second = MainWindow(controller, ui_settings)
    assert second.current_page().title == "Sync log"  # type: ignore[attr-defined]
    assert second.height() == 500  # (the width is clamped to the small offscreen screen)
    second.close_for_quit()


def test_pause_and_resume(sandbox_controller: AppController, make_window: WindowFactory, qtbot: QtBot) -> None:
    sandbox_controller.start_engine()
    window = make_window(sandbox_controller)
    qtbot.waitUntil(lambda: window.status.pill.text == "Running", timeout=10_000)  # first look done
    assert window.pause_action.isEnabled()
    assert window.pause_action.text() == "&Pause syncing"

    qtbot.keyClick(window, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
    assert sandbox_controller.paused
    assert window.pause_action.text() == "&Resume syncing"
    assert not window.sync_action.isEnabled()
    qtbot.waitUntil(lambda: window.status.pill.text == "Paused")

    window.pause_action.trigger()
    assert not sandbox_controller.paused
    assert window.sync_action.isEnabled()


def test_actions_without_an_engine_are_disabled(controller: AppController, make_window: WindowFactory) -> None:
    window = make_window(controller)
    assert not window.pause_action.isEnabled()
    assert not window.sync_action.isEnabled()
    assert window.quit_action.isEnabled()
    assert window.sync_action.shortcuts()[0].toString() == "F5"


def test_send_test_referral_opens_the_wizard(
    controller: AppController, make_window: WindowFactory, qtbot: QtBot
) -> None:
    from rf_desktop.gui.wizard import TestReferralWizard

    window = make_window(controller)
    assert window.test_action.isEnabled()
    qtbot.keyClick(window, Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier)
    wizard = window.wizard
    assert isinstance(wizard, TestReferralWizard) and wizard.isVisible()
    window.test_action.trigger()
    assert window.wizard is wizard  # one at a time

    wizard.openSettingsPage.emit("Rules")  # a "fix this" link in the wizard
    assert window.current_page().title == "Rules"  # type: ignore[attr-defined]
    wizard.close()


def test_export_log_opens_the_sync_log_page(
    controller: AppController, make_window: WindowFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = make_window(controller)
    log_page = window.page_named("Sync log")
    asked: list[bool] = []
    monkeypatch.setattr(log_page, "export", lambda: asked.append(True))
    window.export_action.trigger()
    assert window.current_page() is log_page
    assert asked == [True]


def test_about_names_the_version(
    controller: AppController, make_window: WindowFactory, message_boxes: MessageBoxes
) -> None:
    window = make_window(controller)
    window.about_action.trigger()
    kind, title, text = message_boxes.shown[-1]
    assert (kind, title) == ("about", "About rf-desktop")
    assert "rf-desktop 0." in text


def test_the_status_bar_shows_state_budget_and_counts(
    controller: AppController, make_window: WindowFactory, qtbot: QtBot
) -> None:
    bulk_referrals(controller.store, 5)
    controller.store.update(1, status="qualified")
    controller.store.update(2, status="failed")
    window = make_window(controller)
    status = window.status
    assert status.pill.text == "Not set up"
    assert status.counts.text() == "3 to send · 0 in Pipedrive · 1 qualified · 1 needs attention"

    soon = datetime.now(UTC) + timedelta(seconds=25)
    controller._on_engine_event(StateChanged("idle", "Up to date.", soon))
    controller._on_engine_event(BudgetChanged(1240, 60_000, None, None))
    assert status.pill.text == "Running"
    assert status.pill.toolTip() == "Up to date."
    assert status.next_check.text() in ("Next check in 25 s", "Next check in 24 s")
    assert status.budget.text() == "Pipedrive tokens today: 1,240 / 60,000 (2%)"

    controller.store.update(3, status="waiting")
    controller.referralChanged.emit(3)
    qtbot.waitUntil(lambda: "1 in Pipedrive" in status.counts.text())


def test_status_texts() -> None:
    assert state_label("budget_exhausted") == "Budget used up"
    assert state_label("auth_error") == "Token rejected"
    assert budget_text(None) == "Pipedrive tokens today: not known yet"
    assert budget_text(BudgetChanged(500, 30_000, 10_000, None)) == "Pipedrive tokens today: 500 / 10,000 (5%)"
    assert budget_text(BudgetChanged(500, None, None, None)) == "Pipedrive tokens today: 500"
    assert counts_text({"in_pipedrive": 1200, "attention": 3}) == "1,200 in Pipedrive · 0 qualified · 3 need attention"
    now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    assert next_check_text("idle", now + timedelta(seconds=90), now) == "Next check in 90 s"
    assert next_check_text("idle", now + timedelta(minutes=30), now) == "Next check in 30 min"
    assert next_check_text("running", None, now) == "Checking now…"
    assert next_check_text("paused", now, now) == ""


def test_the_demo_says_so(controller: AppController, make_window: WindowFactory) -> None:
    controller.demo = True
    window = make_window(controller)
    assert window.windowTitle() == "rf-desktop (demo)"


def test_icons_follow_a_switch_to_the_dark_palette(
    controller: AppController, make_window: WindowFactory, qapp: QApplication
) -> None:
    window = make_window(controller)
    original = qapp.palette()

    def nav_icon_lightness() -> int:
        image = window.nav.item(0).icon().pixmap(48, 48).toImage()
        inked = [image.pixelColor(x, y) for x in range(48) for y in range(48) if image.pixelColor(x, y).alpha() > 200]
        return max(colour.lightness() for colour in inked)

    try:
        assert nav_icon_lightness() < 128  # dark ink on the light palette
        qapp.setPalette(theme.dark_palette())
        qapp.processEvents()  # widgets hear of the new palette through posted events
        assert theme.is_dark()
        assert nav_icon_lightness() > 128  # light ink on the dark one
        assert window.status.pill.colour == theme.state_colour(controller.state)
    finally:
        qapp.setPalette(original)


def test_the_demo_leads_to_setting_up_real_accounts(
    controller: AppController, make_window: WindowFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[tuple[str, list[str], dict[str, str] | None]] = []
    monkeypatch.setattr(
        "rf_desktop.gui.main_window.start_detached",
        lambda program, arguments, environment=None: started.append((program, list(arguments), environment))
        or True,
    )
    plain = make_window(controller)
    assert not hasattr(plain, "set_up_action"), "only the demo offers it"
    controller.demo = True
    demo = make_window(controller)
    quits: list[bool] = []
    demo.quitRequested.connect(lambda: quits.append(True))
    demo.set_up_action.trigger()
    # rf-desktop again, without --demo, told where the owner came from (leaving its set-up comes back here)
    assert started == [(sys.executable, ["-m", "rf_desktop"], {"RF_DESKTOP_FROM_DEMO": "1"})]
    assert quits == [True], "and the demo closes"


def test_another_rf_desktop_is_started_with_the_environment_it_is_given(tmp_path: Path, qtbot: QtBot) -> None:
    seen = tmp_path / "seen.txt"
    script = "import os, sys; open(sys.argv[1], 'w').write(os.environ.get('RF_DESKTOP_FROM_DEMO', 'unset'))"
    assert start_detached(sys.executable, ["-c", script, str(seen)], {FROM_DEMO_VARIABLE: "1"})
    qtbot.waitUntil(lambda: seen.exists() and seen.read_text() == "1", timeout=10_000)
    assert not start_detached(str(tmp_path / "no-such-program"), [])
