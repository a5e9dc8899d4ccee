"""A token or an address that stops the sync names its service, shows a banner where it is fixed
(Connections), and the banner goes the moment the fix is saved and tested."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from rf_desktop.core.secrets import PD_TOKEN
from rf_desktop.gui.controller import AppController
from rf_desktop.gui.main_window import MainWindow
from rf_desktop.gui.pages.connections import ConnectionsPage
from rf_desktop.gui.tray import tray_tooltip
from rf_desktop.sandbox.server import SandboxServer
from tests.gui.conftest import Runner, sign_up
from tests.gui.test_connections_page import closed_port_url

WindowFactory = Callable[[AppController], MainWindow]
LEFT = Qt.MouseButton.LeftButton
WAIT_MS = 15_000
# far sooner than the sync's own next look: the fix itself sets it going again
CLEARED_MS = 3_000


@pytest.fixture
def rejected(
    sandbox_controller: AppController, sandbox: SandboxServer, make_window: WindowFactory, run: Runner,
    qtbot: QtBot,
) -> MainWindow:
    """The Pipedrive token in the keychain is one Pipedrive does not accept; the sync stopped on it when
    it went to send a new sign-up."""
    controller = sandbox_controller
    sign_up(sandbox)
    run(controller.account.set_token(PD_TOKEN, "not-the-pipedrive-token-0000"))
    controller.start_engine()
    window = make_window(controller)
    window.show_page_named("Invited users")
    qtbot.waitUntil(lambda: controller.state == "auth_error", timeout=WAIT_MS)
    return window


def test_a_rejected_token_names_pipedrive_and_sends_the_owner_to_connections(
    rejected: MainWindow, qtbot: QtBot
) -> None:
    window = rejected
    assert window.status.pill.text == "Pipedrive rejected the token"
    banner = window.problem_banner
    qtbot.waitUntil(banner.isVisible)
    assert banner.title == "Pipedrive rejected the token"
    assert "API token" in banner.detail
    qtbot.mouseClick(window.fix_button, LEFT)
    page = window.current_page()
    assert isinstance(page, ConnectionsPage)
    # there the page's own banner says it, above the token box that fixes it
    assert not banner.isVisible()
    assert page.problem.isVisible() and page.problem.title == "Pipedrive rejected the token"


def test_the_banner_clears_as_soon_as_a_working_token_is_saved_and_tested(
    rejected: MainWindow, sandbox: SandboxServer, qtbot: QtBot
) -> None:
    window = rejected
    window.show_page_named("Connections")
    page = window.current_page()
    assert isinstance(page, ConnectionsPage)
    box = page.pipedrive
    qtbot.waitUntil(lambda: box.showing_stored, timeout=WAIT_MS)
    qtbot.mouseClick(box.replace_button, LEFT)
    qtbot.keyClicks(box.entry, sandbox.state.pd.token)
    qtbot.keyClick(box.entry, Qt.Key.Key_Return)  # tests it, and a token that works is stored
    qtbot.waitUntil(lambda: not page.problem.isVisible(), timeout=CLEARED_MS)
    assert window.controller.problem_service == ""
    assert window.status.pill.text != "Pipedrive rejected the token"


def test_a_token_fixed_at_pipedrive_clears_when_tested_again(
    sandbox_controller: AppController, make_window: WindowFactory, sandbox: SandboxServer, run: Runner,
    qtbot: QtBot,
) -> None:
    """The stored token is right after all (Pipedrive accepted it again): Test connection is the fix."""
    controller = sandbox_controller
    # the settings already hold what a test reads back, so testing changes no setting
    domain = run(controller.account.check_pipedrive()).company_domain
    settings = controller.settings()
    controller.save_settings(replace(settings, pipedrive=replace(settings.pipedrive, company_domain=domain)))
    right = sandbox.state.pd.token
    sandbox.state.pd.token = "changed-at-pipedrive-0000"
    sign_up(sandbox)
    controller.start_engine()
    window = make_window(controller)
    window.show_page_named("Connections")
    page = window.current_page()
    assert isinstance(page, ConnectionsPage)
    qtbot.waitUntil(page.problem.isVisible, timeout=WAIT_MS)
    sandbox.state.pd.token = right
    qtbot.mouseClick(page.pipedrive.test_button, LEFT)
    qtbot.waitUntil(lambda: not page.problem.isVisible(), timeout=CLEARED_MS)


def test_an_address_that_cannot_be_reached_is_named_and_clears_once_corrected(
    sandbox_controller: AppController, make_window: WindowFactory, sandbox: SandboxServer, qtbot: QtBot
) -> None:
    controller = sandbox_controller
    settings = controller.settings()
    wrong = closed_port_url() + "/rf/api/v2"
    controller.save_settings(replace(settings, referral_factory=replace(settings.referral_factory, base_url=wrong)))
    controller.start_engine()
    window = make_window(controller)
    window.show_page_named("Connections")
    page = window.current_page()
    assert isinstance(page, ConnectionsPage)
    qtbot.waitUntil(page.problem.isVisible, timeout=WAIT_MS)
    assert page.problem.title == "Cannot reach Referral Factory"
    assert "nothing is answering at that address" in page.problem.detail

    qtbot.mouseClick(page.advanced.header, LEFT)
    edit = page.base_urls.edits["referral_factory.base_url"]
    edit.selectAll()
    qtbot.keyClicks(edit, sandbox.rf_base_url)  # saved by itself a moment later, and the sync looks again
    qtbot.waitUntil(lambda: not page.problem.isVisible() and controller.state == "idle", timeout=WAIT_MS)
    assert controller.problem_service == ""


def test_the_tray_names_the_service_too() -> None:
    counts = {"sent": 1, "waiting": 0, "qualified": 0, "failed": 0}
    message = "Pipedrive did not accept the API token (HTTP 401)."
    tooltip = tray_tooltip("auth_error", message, counts, "Pipedrive")
    assert tooltip.splitlines()[0] == "rf-desktop: Pipedrive rejected the token"
    assert tray_tooltip("error", "Could not connect.", counts, "Referral Factory").splitlines()[0] == (
        "rf-desktop: Cannot reach Referral Factory"
    )
