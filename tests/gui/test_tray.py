"""The tray: an icon per sync state, notifications (gathered, switchable), and what closing the window does
with and without a system tray. The offscreen platform has no tray, so "a tray is available" is simulated
by answering Qt's question; the icon itself is then real."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from PySide6.QtWidgets import QSystemTrayIcon
from pytestqt.qtbot import QtBot

from rf_desktop.core.events import ReferralFailed, ReferralQualified, StateChanged
from rf_desktop.core.vocabulary import STANDING_BY_KEY
from rf_desktop.gui import icons
from rf_desktop.gui.app import Session
from rf_desktop.gui.controller import AppController
from rf_desktop.gui.main_window import TRAY_HINT_KEY, MainWindow
from rf_desktop.gui.tray import TRAY_ICONS, Tray, names_sentence, tray_icon_name, tray_tooltip
from tests.gui.conftest import Runner

WindowFactory = Callable[[AppController], MainWindow]
# Showing a simulated tray icon on the offscreen platform makes Qt look for the X11 tray's signal, which that
# platform does not have.
SIMULATED_TRAY = pytest.mark.qt_log_ignore(r"No such signal QPlatformNativeInterface::systemTrayWindowChanged")


@pytest.fixture
def tray_available(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Pretend the desktop has a system tray; collect the notifications it would show."""
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(QSystemTrayIcon, "isSystemTrayAvailable", staticmethod(lambda: True))
    monkeypatch.setattr(QSystemTrayIcon, "supportsMessages", staticmethod(lambda: True))
    monkeypatch.setattr(QSystemTrayIcon, "showMessage", lambda _self, title, text, *_a: shown.append((title, text)))
    return shown


def fast(tray: Tray) -> Tray:
    tray._gather.setInterval(10)
    return tray


def test_every_sync_state_has_a_tray_icon() -> None:
    for state in ("idle", "running", "paused", "error", "auth_error", "budget_exhausted", "not_configured"):
        name = tray_icon_name(state)
        assert name in TRAY_ICONS.values()
        assert not icons.icon(name).isNull()
    assert tray_icon_name("budget_exhausted") == "tray-budget"
    assert tray_icon_name("auth_error") == "tray-error"
    assert tray_icon_name("something new") == "tray-setup"


def test_the_tooltip_says_the_state_and_the_counts() -> None:
    counts = dict.fromkeys(STANDING_BY_KEY, 0) | {"in_pipedrive": 7, "qualified": 1, "test": 1}
    running = tray_tooltip("idle", "Up to date.", counts)
    assert running == "rf-desktop: Running\n7 in Pipedrive · 1 qualified · 1 test"
    error = tray_tooltip("auth_error", "Pipedrive rejected the token.", counts)
    assert error.splitlines()[0] == "rf-desktop: Token rejected"
    assert error.splitlines()[-1] == "Pipedrive rejected the token."


def test_names_in_gathered_notifications() -> None:
    assert names_sentence(["Ann"]) == "Ann"
    assert names_sentence(["Ann", "Bob"]) == "Ann and Bob"
    assert names_sentence(["Ann", "Bob", "Cy", "Dee", "Eve"]) == "Ann, Bob, Cy and 2 more"


def test_without_a_tray_notifications_go_to_the_status_bar(
    controller: AppController, make_window: WindowFactory, qtbot: QtBot
) -> None:
    assert not QSystemTrayIcon.isSystemTrayAvailable()  # the offscreen platform
    window = make_window(controller)
    assert not window.tray.available
    fast(window.tray)
    controller.referralQualified.emit(ReferralQualified(7, "Zoë"))
    qtbot.waitUntil(lambda: "Zoë converted" in window.status.notice.text())
    assert window.status.notice.text().startswith("Referral qualified: ")
    assert window.status.pill.isVisible()  # the sync state stays in view


def test_a_burst_of_qualifications_is_one_notification(
    controller: AppController, tray_available: list[tuple[str, str]], qtbot: QtBot
) -> None:
    tray = fast(Tray(controller, []))
    assert tray.available
    for number, name in enumerate(["Ann", "Bob", "Cy"]):
        controller.referralQualified.emit(ReferralQualified(number, name))
    controller.referralFailed.emit(ReferralFailed(9, "Dee", "Pipedrive refused the email address."))
    qtbot.waitUntil(lambda: len(tray_available) == 2)
    assert tray_available == [
        ("3 referrals qualified", "Ann, Bob and Cy."),
        ("Could not send Dee", "Pipedrive refused the email address."),
    ]


def test_notifications_can_be_switched_off(
    controller: AppController, tray_available: list[tuple[str, str]], qtbot: QtBot
) -> None:
    settings = controller.settings()
    settings.sync.notify_qualified = False
    controller.store.save_settings(settings)
    tray = fast(Tray(controller, []))
    assert tray.available
    controller.referralQualified.emit(ReferralQualified(1, "Ann"))
    controller.referralFailed.emit(ReferralFailed(2, "Bob", "No email address."))
    qtbot.waitUntil(lambda: len(tray_available) == 1)
    qtbot.wait(50)
    assert tray_available == [("Could not send Bob", "No email address.")]


def test_the_tray_icon_follows_the_sync_state(
    controller: AppController, tray_available: list[tuple[str, str]]
) -> None:
    tray = Tray(controller, [])
    assert tray.icon is not None
    controller._on_engine_event(StateChanged("budget_exhausted", "Budget used up until midnight.", None))
    assert tray.icon.toolTip().startswith("rf-desktop: Budget used up")
    assert tray.icon.icon().cacheKey() == icons.icon("tray-budget").cacheKey()


@SIMULATED_TRAY
def test_closing_the_window_keeps_syncing_in_the_tray(
    sandbox_controller: AppController,
    tray_available: list[tuple[str, str]],
    make_window: WindowFactory,
    qtbot: QtBot,
) -> None:
    sandbox_controller.start_engine()
    window: MainWindow = make_window(sandbox_controller)
    qtbot.waitUntil(lambda: sandbox_controller.state == "idle", timeout=10_000)
    quits: list[bool] = []
    window.quitRequested.connect(lambda: quits.append(True))
    assert window.tray.available

    window.close()
    assert not window.isVisible()
    assert quits == []
    assert not sandbox_controller._tasks.get("engine").done()  # type: ignore[union-attr]
    assert tray_available[-1][0] == "rf-desktop keeps syncing"
    assert window.ui_settings.value(TRAY_HINT_KEY, type=bool)

    window.bring_to_front()
    window.close()
    assert len([t for t, _m in tray_available if t == "rf-desktop keeps syncing"]) == 1  # the hint, once


def test_without_a_tray_closing_the_window_quits(controller: AppController, make_window: WindowFactory) -> None:
    window: MainWindow = make_window(controller)
    quits: list[bool] = []
    window.quitRequested.connect(lambda: quits.append(True))
    window.close()
    assert quits == [True]
    assert window.isVisible()  # it stays until the sync has stopped


@SIMULATED_TRAY
def test_quit_stops_the_sync_cleanly(
    sandbox_controller: AppController,
    tray_available: list[tuple[str, str]],
    make_window: WindowFactory,
    qtbot: QtBot,
    run: Runner,
) -> None:
    sandbox_controller.start_engine()
    window: MainWindow = make_window(sandbox_controller)
    qtbot.waitUntil(lambda: sandbox_controller.state == "idle", timeout=10_000)
    engine_task = sandbox_controller._tasks.get("engine")
    assert engine_task is not None
    with qtbot.waitSignal(window.quitRequested):
        window.quit_action.trigger()  # the same action is in the tray menu

    run(Session(sandbox_controller, window).close())

    assert engine_task.done() and not engine_task.cancelled()  # it finished, it was not killed
    assert sandbox_controller.state == "stopped"
    assert not window.isVisible()
    assert window.tray.menu is not None
    assert "&Quit" in [a.text() for a in window.tray.menu.actions()]
