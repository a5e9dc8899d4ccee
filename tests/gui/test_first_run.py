"""The first-run set-up from the welcome page to a running sync, against the sandbox; and the way out to
the demo."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWizard
from pytestqt.qtbot import QtBot

from rf_desktop.core.config import PipedriveSettings, ReferralFactorySettings, Settings
from rf_desktop.core.secrets import TokenStore
from rf_desktop.core.store import Store
from rf_desktop.gui.controller import AppController
from rf_desktop.gui.first_run import CANCELLED, CONFIGURED, DEMO, DEMO_RESULT, FirstRunDialog
from rf_desktop.gui.widgets.form_helpers import SUCCESS
from rf_desktop.sandbox.server import SandboxServer
from tests.gui.conftest import fast_engine
from tests.gui.test_connections_page import (
    WAIT_MS,
    click,
    collect_qt_garbage,  # noqa: F401 (autouse fixture)
    type_token_and_test,
)
from tests.gui.test_mapping_page import choose
from tests.keychains import NotYetInstalledKeyring


def with_sandbox_addresses(controller: AppController, sandbox: SandboxServer) -> AppController:
    """Nothing set up yet, except that the API addresses are the sandbox's (they are the real services'
    by default; the set-up has them under Advanced)."""
    controller.store.save_settings(
        Settings(
            referral_factory=ReferralFactorySettings(base_url=sandbox.rf_base_url),
            pipedrive=PipedriveSettings(base_url=sandbox.pd_base_url),
        )
    )
    return controller


@pytest.fixture
def new_owner(controller: AppController, sandbox: SandboxServer) -> AppController:
    return with_sandbox_addresses(controller, sandbox)


@pytest.fixture
def dialog(new_owner: AppController, qtbot: QtBot) -> Iterator[FirstRunDialog]:
    opened = FirstRunDialog(new_owner)
    qtbot.addWidget(opened)
    opened.resize(760, 720)
    opened.show()
    qtbot.waitExposed(opened)
    yield opened
    if opened.isVisible():
        opened.reject()


def next_button(dialog: FirstRunDialog) -> Any:
    return dialog.button(QWizard.WizardButton.NextButton)


def go_next(dialog: FirstRunDialog, qtbot: QtBot) -> None:
    qtbot.waitUntil(next_button(dialog).isEnabled, timeout=WAIT_MS)
    click(qtbot, next_button(dialog))


def connect_both(dialog: FirstRunDialog, sandbox: SandboxServer, qtbot: QtBot) -> None:
    go_next(dialog, qtbot)  # past the welcome
    assert dialog.currentPage() is dialog.connect_step
    assert not next_button(dialog).isEnabled()
    type_token_and_test(dialog.connect_step.referral_factory, qtbot, sandbox.state.rf.token)
    assert not next_button(dialog).isEnabled()  # Pipedrive still to go
    type_token_and_test(dialog.connect_step.pipedrive, qtbot, sandbox.state.pd.token)
    assert dialog.connect_step.pipedrive.result_panel.kind == SUCCESS
    go_next(dialog, qtbot)


def test_first_run_end_to_end_saves_the_settings_and_starts_the_sync(
    dialog: FirstRunDialog, new_owner: AppController, sandbox: SandboxServer, qtbot: QtBot
) -> None:
    connect_both(dialog, sandbox, qtbot)

    assert dialog.currentPage() is dialog.campaign_step
    picker = dialog.campaign_step.picker
    assert not next_button(dialog).isEnabled()  # no campaign chosen yet
    picker.campaign_items()[1].setCheckState(Qt.CheckState.Checked)
    click(qtbot, picker.backfill_all)
    go_next(dialog, qtbot)

    # the sandbox account has a "Referral Code" field: it is mapped as soon as the fields arrive
    step = dialog.mapping_step
    assert dialog.currentPage() is step
    code_combo = step.grid.rows["code"].combo
    qtbot.waitUntil(lambda: code_combo.currentText() == "Lead: Referral Code", timeout=WAIT_MS)
    assert not step.create_fields.isVisible()
    assert step.grid.rows["first_name"].combo.currentText() == "Person: Name"
    go_next(dialog, qtbot)

    rule = dialog.rule_step
    click(qtbot, rule.mode.deal)
    choose(rule.mode.placement.pipeline, "Sales pipeline")
    choose(rule.mode.placement.stage, "Contact Made")
    click(qtbot, rule.qualification.buttons["deal_won"])
    go_next(dialog, qtbot)

    assert dialog.currentPage() is dialog.finish_step
    assert "1 campaign" in dialog.finish_step.summary.text()
    finish = dialog.button(QWizard.WizardButton.FinishButton)
    qtbot.waitUntil(finish.isEnabled, timeout=WAIT_MS)
    with qtbot.waitSignal(dialog.finished, timeout=WAIT_MS) as finished:
        click(qtbot, finish)
    assert finished.args == [1]
    assert dialog.outcome == CONFIGURED
    assert dialog.send_test_referral, "the set-up ends by offering the test referral (on by default)"

    saved = new_owner.settings()
    assert saved.referral_factory.campaign_ids == [1]
    assert saved.referral_factory.backfill == "all"
    assert saved.mode == "deal"
    assert saved.qualification.kind == "deal_won"
    assert new_owner.schema().stage(saved.stage_id).name == "Contact Made"
    assert saved.referral_code_target() is not None
    assert saved.pipedrive.company_domain == "sandbox-bakery"
    assert new_owner.engine is not None  # the sync runs


def test_an_account_without_the_referral_code_field_gets_it_created_during_set_up(
    dialog: FirstRunDialog, sandbox: SandboxServer, qtbot: QtBot
) -> None:
    httpx.post(f"{sandbox.admin_url}/seed", json={"with_referral_fields": False}).raise_for_status()
    connect_both(dialog, sandbox, qtbot)
    dialog.campaign_step.picker.campaign_items()[2].setCheckState(Qt.CheckState.Checked)
    go_next(dialog, qtbot)

    step = dialog.mapping_step
    qtbot.waitUntil(lambda: step.create_fields.isVisible(), timeout=WAIT_MS)
    assert "Referral Code" in step.grid.required_issue.text()
    assert not next_button(dialog).isEnabled()
    click(qtbot, step.create_fields.button)
    code_combo = step.grid.rows["code"].combo
    qtbot.waitUntil(lambda: code_combo.currentText() == "Lead: Referral Code", timeout=WAIT_MS)
    assert not step.grid.required_issue.isVisible()
    assert next_button(dialog).isEnabled()


def test_try_the_demo_instead(dialog: FirstRunDialog, qtbot: QtBot) -> None:
    demo = dialog.button(QWizard.WizardButton.CustomButton1)
    assert demo.isVisible() and demo.text() == "Try the &demo instead"
    with qtbot.waitSignal(dialog.finished, timeout=WAIT_MS) as finished:
        click(qtbot, demo)
    assert finished.args == [DEMO_RESULT]
    assert dialog.outcome == DEMO


def test_cancelling_saves_nothing(dialog: FirstRunDialog, new_owner: AppController, qtbot: QtBot) -> None:
    before = new_owner.settings()
    click(qtbot, dialog.button(QWizard.WizardButton.CancelButton))
    assert dialog.outcome == CANCELLED
    assert new_owner.settings() == before
    assert new_owner.engine is None


def test_cancel_past_the_welcome_asks_and_continuing_keeps_the_set_up(
    dialog: FirstRunDialog, sandbox: SandboxServer, qtbot: QtBot
) -> None:
    connect_both(dialog, sandbox, qtbot)
    assert dialog.currentPage() is dialog.campaign_step
    click(qtbot, dialog.button(QWizard.WizardButton.CancelButton))
    qtbot.waitUntil(lambda: dialog.leave_box is not None and dialog.leave_box.isVisible())
    box = dialog.leave_box
    assert box is not None and box.text() == "Leave the set-up?"
    stay = next(b for b in box.buttons() if b.text() == "&Continue setting up")
    click(qtbot, stay)
    qtbot.waitUntil(lambda: dialog.leave_box is None)
    assert dialog.isVisible() and dialog.currentPage() is dialog.campaign_step

    click(qtbot, dialog.button(QWizard.WizardButton.CancelButton))
    qtbot.waitUntil(lambda: dialog.leave_box is not None and dialog.leave_box.isVisible())
    box = dialog.leave_box
    assert box is not None
    leave = next(b for b in box.buttons() if b.text() == "&Leave the set-up")
    with qtbot.waitSignal(dialog.finished, timeout=WAIT_MS):
        click(qtbot, leave)
    assert dialog.outcome == CANCELLED


@pytest.fixture
def newcomer_dialog(controller: AppController, qtbot: QtBot) -> Iterator[FirstRunDialog]:
    """The set-up on a computer where nothing was ever saved: the addresses are the real services'."""
    opened = FirstRunDialog(controller)
    qtbot.addWidget(opened)
    opened.resize(760, 900)
    opened.show()
    qtbot.waitExposed(opened)
    yield opened
    if opened.isVisible():
        opened.done(0)


def test_the_set_up_has_the_addresses_under_advanced_and_explains_network_errors_plainly(
    newcomer_dialog: FirstRunDialog, controller: AppController, sandbox: SandboxServer, qtbot: QtBot
) -> None:
    dialog = newcomer_dialog
    go_next(dialog, qtbot)
    step = dialog.connect_step
    qtbot.mouseClick(step.advanced.header, Qt.MouseButton.LeftButton)
    rf_address = step.base_urls.edits["referral_factory.base_url"]
    rf_address.selectAll()
    qtbot.keyClicks(rf_address, "https://no-such-host.invalid/api/v2")
    type_token_and_test(step.referral_factory, qtbot, sandbox.state.rf.token)
    result = step.referral_factory.result_panel
    assert result.title == "Could not find no-such-host.invalid. Is this computer online?"
    assert "Errno" not in result.title + result.detail
    # the advice points at a field this step has
    assert "the Referral Factory address under Advanced" in result.detail

    for path, url in (("referral_factory.base_url", sandbox.rf_base_url), ("pipedrive.base_url", sandbox.pd_base_url)):
        edit = step.base_urls.edits[path]
        edit.selectAll()
        qtbot.keyClicks(edit, url)
    qtbot.mouseClick(step.referral_factory.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: result.kind == SUCCESS, timeout=WAIT_MS)
    type_token_and_test(step.pipedrive, qtbot, sandbox.state.pd.token)
    assert step.pipedrive.result_panel.kind == SUCCESS
    go_next(dialog, qtbot)
    dialog.campaign_step.picker.campaign_items()[1].setCheckState(Qt.CheckState.Checked)
    go_next(dialog, qtbot)
    # the fields come from the Pipedrive address typed here, though nothing is saved yet
    code_combo = dialog.mapping_step.grid.rows["code"].combo
    qtbot.waitUntil(lambda: code_combo.currentText() == "Lead: Referral Code", timeout=WAIT_MS)
    assert not dialog.mapping_step.error_panel.isVisible()
    assert not controller.has_settings()


def test_without_a_keychain_the_set_up_goes_on_with_tokens_for_this_session(
    store: Store, sandbox: SandboxServer, run: Any, qtbot: QtBot
) -> None:
    absent = NotYetInstalledKeyring()
    controller = AppController(store, TokenStore(absent, environ={}), engine_factory=fast_engine)
    opened = FirstRunDialog(with_sandbox_addresses(controller, sandbox))
    qtbot.addWidget(opened)
    opened.resize(760, 900)
    opened.show()
    try:
        go_next(opened, qtbot)
        step = opened.connect_step
        box = step.referral_factory
        qtbot.waitUntil(box.keychain_panel.isVisible, timeout=WAIT_MS)
        assert "gnome-keyring" in box.keychain_panel.detail
        click(qtbot, box.session_button)
        qtbot.waitUntil(lambda: step.pipedrive.keychain_panel.title == "Tokens are kept for this session only.",
                        timeout=WAIT_MS)
        connect_both_here = (
            (step.referral_factory, sandbox.state.rf.token),
            (step.pipedrive, sandbox.state.pd.token),
        )
        for token_box, token in connect_both_here:
            type_token_and_test(token_box, qtbot, token)
            assert token_box.result_panel.kind == SUCCESS
        qtbot.waitUntil(next_button(opened).isEnabled, timeout=WAIT_MS)
        assert step.pipedrive.stored_label.text().startswith("Kept for this session only")
        assert absent.passwords == {}
    finally:
        opened.done(0)
        run(controller.shutdown(timeout=5))
