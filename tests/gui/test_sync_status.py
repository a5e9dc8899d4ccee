"""The status bar says when the sync next looks for new sign-ups and when for conversions, and F5 looks
for both at once."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSystemTrayIcon
from pytestqt.qtbot import QtBot

from rf_desktop.core import vocabulary
from rf_desktop.core.account import Account
from rf_desktop.core.engine import SyncEngine
from rf_desktop.core.events import StateChanged
from rf_desktop.core.secrets import PD_TOKEN, RF_TOKEN, TokenStore
from rf_desktop.core.store import Store
from rf_desktop.gui.app import point_at_sandbox
from rf_desktop.gui.controller import AppController
from rf_desktop.gui.counts import COUNTS_REFRESH_MS
from rf_desktop.gui.main_window import MainWindow
from rf_desktop.gui.pages.invited_users import InvitedUsersPage
from rf_desktop.gui.pages.rules import RulesPage
from rf_desktop.gui.widgets.sync_status import next_looks_text
from rf_desktop.sandbox.server import SandboxServer
from tests.gui.conftest import Runner, bulk_referrals, sign_up

WATCH_SECONDS = 240.0
BOTH = re.compile(
    r"^Next look for new sign-ups (in \d+ s|now) · for conversions in [34] min "
    r"\(keeps within 10% of your Pipedrive budget\)$"
)


def test_next_looks_text() -> None:
    now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    assert (
        next_looks_text(now + timedelta(seconds=8), now + timedelta(minutes=4), 0.10, now)
        == "Next look for new sign-ups in 8 s · for conversions in 4 min (keeps within 10% of your Pipedrive budget)"
    )
    assert next_looks_text(now + timedelta(seconds=2), None, 0.10, now) == "Next look for new sign-ups in 2 s"
    assert next_looks_text(now, None, 0.25, now) == "Next look for new sign-ups now"


@pytest.fixture
def paced_controller(store: Store, tokens: TokenStore, sandbox: SandboxServer, run: Runner) -> Iterator[AppController]:
    """A controller whose engine looks for conversions every 4 minutes, as on a small Pipedrive plan."""

    def engine(account: Account) -> SyncEngine:
        return SyncEngine(account, retry_base=0.05, min_watch_interval=WATCH_SECONDS)

    controller = AppController(store, tokens, engine_factory=engine)
    run(controller.account.set_token(RF_TOKEN, sandbox.state.rf.token))
    run(controller.account.set_token(PD_TOKEN, sandbox.state.pd.token))
    run(point_at_sandbox(controller, sandbox))
    yield controller
    run(controller.shutdown(timeout=5))


def test_the_status_bar_counts_down_to_both_looks_and_f5_does_both(
    paced_controller: AppController,
    sandbox: SandboxServer,
    make_window: Callable[[AppController], MainWindow],
    qtbot: QtBot,
) -> None:
    controller = paced_controller
    sign_up(sandbox, first_name="Priya")  # once her lead exists, the sync watches it for a conversion
    window = make_window(controller)
    controller.start_engine()
    qtbot.waitUntil(lambda: BOTH.match(window.status.next_check.text()) is not None, timeout=20_000)

    planned = controller.next_conversions_at
    assert planned is not None and controller.next_signups_at is not None
    assert controller.next_signups_at < planned
    qtbot.wait(1100)  # the next look for conversions is planned from the time of the last one
    qtbot.keyClick(window, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: (controller.next_conversions_at or planned) > planned, timeout=10_000)
    qtbot.waitUntil(lambda: BOTH.match(window.status.next_check.text()) is not None, timeout=10_000)


# Showing a simulated tray icon on the offscreen platform makes Qt look for the X11 tray's signal.
@pytest.mark.qt_log_ignore(r"No such signal QPlatformNativeInterface::systemTrayWindowChanged")
def test_the_reason_follows_the_owner_s_share_and_the_tray_says_the_same(
    paced_controller: AppController,
    sandbox: SandboxServer,
    make_window: Callable[[AppController], MainWindow],
    qtbot: QtBot,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(QSystemTrayIcon, "isSystemTrayAvailable", staticmethod(lambda: True))
    controller = paced_controller
    sign_up(sandbox, first_name="Priya")
    window = make_window(controller)
    assert window.tray.icon is not None
    controller.start_engine()
    qtbot.waitUntil(lambda: BOTH.match(window.status.next_check.text()) is not None, timeout=20_000)

    # the owner lets the conversion watch use a quarter of the budget on the Rules page
    window.show_page_named("Rules")
    rules = window.current_page()
    assert isinstance(rules, RulesPage)
    rules.pace.share.setFocus()
    rules.pace.share.selectAll()
    qtbot.keyClicks(rules.pace.share, "25")
    quarter = re.compile(BOTH.pattern.replace("10%", "25%"))
    qtbot.waitUntil(lambda: quarter.match(window.status.next_check.text()) is not None, timeout=5_000)

    def tray_says_what_the_status_bar_says() -> bool:
        assert window.tray.icon is not None
        lines = window.tray.icon.toolTip().splitlines()
        return len(lines) >= 2 and quarter.match(lines[1]) is not None

    qtbot.waitUntil(tray_says_what_the_status_bar_says, timeout=5_000)
    assert window.tray.icon.toolTip().splitlines()[0] == "rf-desktop: Running"


def test_the_whole_wording_fits_a_laptop_screen_and_is_in_the_tooltip(
    paced_controller: AppController,
    sandbox: SandboxServer,
    make_window: Callable[[AppController], MainWindow],
    qtbot: QtBot,
) -> None:
    controller = paced_controller
    sign_up(sandbox, first_name="Priya")
    window = make_window(controller)
    controller.start_engine()
    status = window.status
    qtbot.waitUntil(lambda: BOTH.match(status.next_check.text()) is not None, timeout=20_000)
    status.show_notice("3 referrals qualified: Priya Sharma-Lindqvist, Bartholomew Okonkwo and 1 more")
    window.resize(1440, 900)
    qtbot.waitUntil(lambda: window.width() == 1440)
    assert window.minimumSizeHint().width() <= 1440, "the window never grows past a 1440-wide screen"
    window.resize(1000, 900)  # a small screen: the texts are cut short, the counts and tokens stay whole
    qtbot.waitUntil(lambda: window.width() == 1000)
    assert status.counts.width() >= status.counts.sizeHint().width()
    assert status.budget.width() >= status.budget.sizeHint().width()
    assert status.next_check.toolTip().startswith(status.next_check.text() + "\n\n")


def test_a_busy_sync_s_state_changes_share_one_count(
    controller: AppController,
    make_window: Callable[[AppController], MainWindow],
    qtbot: QtBot,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    window = make_window(controller)
    counted: list[str] = []
    original = vocabulary.standing_counts

    def counting(store: Store) -> dict[str, int]:
        counted.append(threading.current_thread().name)
        return original(store)

    monkeypatch.setattr(vocabulary, "standing_counts", counting)
    for n in range(10):
        controller._on_engine_event(StateChanged("running" if n % 2 else "idle", "Syncing…", None))
    assert counted == [], "not counted at once for every change"
    qtbot.waitUntil(lambda: len(counted) == 1)
    qtbot.wait(COUNTS_REFRESH_MS)
    assert len(counted) == 1
    assert counted[0] != threading.main_thread().name, "counted off the window's thread"
    assert window.status.counts.text() == "0 in Pipedrive · 0 qualified"


def test_a_burst_of_changes_is_counted_once_for_the_status_bar_and_the_filter(
    controller: AppController,
    make_window: Callable[[AppController], MainWindow],
    qtbot: QtBot,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bulk_referrals(controller.store, 30)
    window = make_window(controller)
    page = window.findChild(InvitedUsersPage)
    assert page is not None and page.status_filter.itemText(5) == "Needs attention (0)"
    counted: list[str] = []
    original = vocabulary.standing_counts
    monkeypatch.setattr(vocabulary, "standing_counts", lambda store: (counted.append("counted"), original(store))[1])
    for rf_user_id in range(1, 31):
        controller.store.update(rf_user_id, status="failed", status_reason="Pipedrive refused it")
        controller.referralChanged.emit(rf_user_id)
    qtbot.waitUntil(lambda: page.status_filter.itemText(5) == "Needs attention (30)")
    assert "30 need attention" in window.status.counts.text()
    qtbot.wait(COUNTS_REFRESH_MS)
    assert counted == ["counted"], "one count, shared by the status bar and the filter"
