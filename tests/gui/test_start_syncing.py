"""Syncing starts when the owner says so (the set-up's Finish, or Start syncing), not the moment the
settings become complete; later edits say when they take effect; an existing Referral Code field is
chosen on the Mapping page rather than asked for."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from pytestqt.qtbot import QtBot

from rf_desktop.core.mapping_setup import NOT_SENT
from rf_desktop.core.store import Store
from rf_desktop.gui.app import Session, open_session
from rf_desktop.gui.controller import SYNC_STARTED_KEY, AppController
from rf_desktop.gui.main_window import MainWindow
from rf_desktop.gui.pages.mapping import MappingPage
from rf_desktop.sandbox.server import SandboxServer
from tests.gui.conftest import Runner, sign_up
from tests.gui.test_connections_page import collect_qt_garbage  # noqa: F401 (autouse fixture)
from tests.gui.test_mapping_page import choose, connected, open_mapping, wait_for_fields  # noqa: F401

WindowFactory = Callable[[AppController], MainWindow]
LEFT = Qt.MouseButton.LeftButton
WAIT_MS = 15_000


@pytest.fixture
def almost_set_up(sandbox_controller: AppController, sandbox: SandboxServer) -> AppController:
    """Everything set but the Referral Code's mapping (as a set-up left half done), never started; one
    person has signed up meanwhile."""
    controller = sandbox_controller
    settings = controller.settings()
    unmapped = [m for m in settings.mappings if m.source != "code"]
    controller.store.save_settings(dataclasses.replace(settings, mappings=unmapped))
    controller.store.set_kv(SYNC_STARTED_KEY, False)
    sign_up(sandbox)
    return controller


def test_completing_the_settings_does_not_start_syncing_until_the_owner_presses_start(
    almost_set_up: AppController, make_window: WindowFactory, qtbot: QtBot
) -> None:
    controller = almost_set_up
    window = make_window(controller)
    assert window.start_banner.isVisible()
    assert window.start_banner.title == "rf-desktop is not sending anything to Pipedrive yet."
    # the Mapping page chooses the account's own Referral Code field, which completes the settings...
    qtbot.waitUntil(lambda: controller.settings().referral_code_target() is not None, timeout=WAIT_MS)
    window.show_page_named("Mapping")
    page = window.current_page()
    assert isinstance(page, MappingPage)
    assert page.grid.rows["code"].combo.currentText() == "Lead: Referral Code"
    assert page.save_status.text() == "All changes saved. Nothing is sent until you press Start syncing."
    # ...but nothing starts before the owner has looked at Rules and pressed Start
    qtbot.wait(300)
    assert controller.engine is None and controller.counts().get("sent", 0) == 0
    assert "press Start syncing" in window.start_banner.detail
    assert window.start_button.isEnabled() and window.pause_action.text() == "&Start syncing"

    window.show_page_named("Rules")
    qtbot.mouseClick(window.start_button, LEFT)
    assert controller.engine is not None
    assert not window.start_banner.isVisible()
    assert window.pause_action.text() == "&Pause syncing"
    qtbot.waitUntil(lambda: controller.counts().get("sent", 0) + controller.counts().get("waiting", 0) >= 1,
                    timeout=WAIT_MS)

    # from now on an edit says when it takes effect
    window.show_page_named("Mapping")
    choose(page.title_editor.combo, page.title_editor.combo.itemText(1))
    qtbot.waitUntil(lambda: page.save_status.text().startswith("All changes saved."), timeout=WAIT_MS)
    assert "apply to new referrals" in page.save_status.text()


def test_the_app_starts_syncing_at_launch_only_once_the_owner_has_started_it(
    almost_set_up: AppController, ui_settings: QSettings, run: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    controller = almost_set_up
    store_path = Path(controller.store.path)
    monkeypatch.setattr("rf_desktop.gui.controller.TokenStore", lambda: controller.tokens)
    run(controller.shutdown(timeout=5))

    def launch(started: bool | None) -> AppController:
        with Store(store_path) as store:
            store.set_kv(SYNC_STARTED_KEY, started)
        opened = run(open_session(False, store_path, ui_settings), timeout=20)
        assert isinstance(opened, Session)
        run(opened.close(), timeout=20)
        return opened.controller

    assert launch(None).engine is None  # a store from before Start: its settings are not complete
    # (the Mapping page completed them meanwhile, by choosing the Referral Code field)
    assert launch(False).engine is None
    assert launch(True).engine is not None


def test_an_existing_referral_code_field_is_chosen_and_never_asked_to_be_created(
    connected: AppController, qtbot: QtBot  # noqa: F811
) -> None:
    page = open_mapping(connected, qtbot)
    try:
        wait_for_fields(page, qtbot)
        code = page.grid.rows["code"].combo
        qtbot.waitUntil(lambda: code.currentText() == "Lead: Referral Code", timeout=WAIT_MS)
        assert not page.create_fields.isVisible()
        assert "Create the Referral Code field" not in page.grid.required_issue.text()
        # unmapped by hand, the page asks for the field the account has, not for a new one
        choose(code, NOT_SENT)
        assert "Map 'Referral Code' to your Pipedrive field 'Referral Code'" in page.grid.required_issue.text()
        assert "Create the Referral Code field" not in page.grid.required_issue.text()
    finally:
        page.close()
