"""The "send test referral" wizard as an owner uses it, against the sandbox with the real sync running:
send, watch the steps, read the fields, act as the salesperson in the demo, copy the summary, clean up,
run again; and what the owner sees when a token is wrong, the sync is paused or the wizard is closed
mid-run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QMessageBox, QWizard
from pytestqt.qtbot import QtBot

from rf_desktop.core.trial.cleanup import CleanupItem
from rf_desktop.core.trial.steps import DONE, RUN_STEPS, TEST_REMOVED
from rf_desktop.gui import wizard as wizard_module
from rf_desktop.gui.controller import AppController
from rf_desktop.gui.models.referrals import COLUMN_INDEX, LINK_ROLE
from rf_desktop.gui.pages.invited_users import InvitedUsersPage
from rf_desktop.gui.widgets.form_helpers import ERROR, SUCCESS
from rf_desktop.sandbox.server import SandboxServer
from tests.e2e.helpers import admin
from tests.gui.test_connections_page import (
    WAIT_MS,
    click,
    collect_qt_garbage,  # noqa: F401 (autouse fixture)
)

Wizard = wizard_module.TestReferralWizard
FAST = {"poll": 0.05, "nudge_every": 0.2, "timeout": 20.0}


@pytest.fixture
def syncing_controller(sandbox_controller: AppController) -> AppController:
    """The sandbox controller with the sync running."""
    sandbox_controller.start_engine()
    return sandbox_controller


@pytest.fixture
def demo_controller(syncing_controller: AppController, sandbox: SandboxServer) -> Iterator[AppController]:
    """As in the demo, which has the sandbox at hand (for "Act as the salesperson")."""
    syncing_controller.demo = True
    syncing_controller.sandbox = sandbox
    yield syncing_controller
    syncing_controller.sandbox = None  # the session's sandbox outlives this controller's shutdown


@pytest.fixture
def open_wizard(qtbot: QtBot, ui_settings: QSettings) -> Iterator[Any]:
    opened: list[Any] = []

    def make(controller: AppController) -> Any:
        made = Wizard(controller, ui_settings=ui_settings, trial_options=FAST)
        made.qualification_timeout = 15.0
        qtbot.addWidget(made)
        made.show()
        qtbot.waitExposed(made)
        opened.append(made)
        return made

    yield make
    for made in opened:
        if made.isVisible():
            made.reject()


def button(wizard: Any, which: QWizard.WizardButton) -> Any:
    return wizard.button(which)


def send(wizard: Any, qtbot: QtBot) -> None:
    commit = button(wizard, QWizard.WizardButton.CommitButton)
    qtbot.waitUntil(lambda: commit.isVisible() and commit.isEnabled(), timeout=WAIT_MS)
    assert commit.text().replace("&", "") == "Send test referral"
    click(qtbot, commit)


def go_next(wizard: Any, qtbot: QtBot) -> None:
    next_button = button(wizard, QWizard.WizardButton.NextButton)
    qtbot.waitUntil(next_button.isEnabled, timeout=WAIT_MS)
    click(qtbot, next_button)


def wait_for_run(wizard: Any, qtbot: QtBot) -> None:
    qtbot.waitUntil(lambda: wizard.progress_page.finished, timeout=WAIT_MS)


def test_send_watch_qualify_copy_clean_up_and_run_again(
    demo_controller: AppController, sandbox: SandboxServer, open_wizard: Any, qtbot: QtBot, monkeypatch: Any
) -> None:
    wizard = open_wizard(demo_controller)
    page = wizard.plan_page
    qtbot.waitUntil(lambda: page.campaign.currentText() == "Spring Referral Campaign", timeout=WAIT_MS)
    page.email.clear()
    qtbot.keyClicks(page.email, "owner@bakery.example")
    assert page.invited_email.text().startswith("owner+rf-test-")
    assert page.invited_email.text().endswith("-invited@bakery.example")
    assert page.ready.kind == SUCCESS and page.problem_rows() == []
    invited = page.invited_email.text()

    send(wizard, qtbot)
    assert wizard.currentPage() is wizard.progress_page
    assert not button(wizard, QWizard.WizardButton.BackButton).isEnabled(), "no going back once sent"
    wait_for_run(wizard, qtbot)
    progress = wizard.progress_page
    assert progress.ok
    assert [row.state for row in progress.rows.values()] == [DONE] * len(RUN_STEPS)
    assert progress.bar.value() == len(RUN_STEPS)
    referral = demo_controller.store.query(text=invited)[0]
    rows = progress.fields.rows()
    assert ("Lead: Referral Code", referral.code, "Referral Code") in rows
    assert ("Person: Email", invited, "Email") in rows
    assert progress.problem.kind == SUCCESS
    assert wizard.email_base() == "owner@bakery.example", "remembered for the next test"

    go_next(wizard, qtbot)
    qualify = wizard.qualify_page
    assert wizard.currentPage() is qualify
    assert "converted into a deal" in qualify.rule.text()
    assert qualify.salesperson.isVisible(), "the demo offers to play the salesperson"
    click(qtbot, qualify.salesperson)
    qtbot.waitUntil(lambda: qualify.result.kind == SUCCESS, timeout=WAIT_MS)
    assert qualify.result.title == "The referral is qualified."
    assert demo_controller.store.get(referral.rf_user_id).status == "qualified"  # type: ignore[union-attr]

    go_next(wizard, qtbot)
    summary = wizard.summary_page
    assert wizard.currentPage() is summary
    text = summary.text.toPlainText()
    assert invited in text and "✓ Lead: Referral Code" in text and "Referral qualified" in text
    click(qtbot, summary.copy_button)
    assert QApplication.clipboard().text() == text

    asked: list[list[CleanupItem]] = []

    async def accept(items: list[CleanupItem], kept: list[str]) -> bool:
        asked.append(items)
        return True

    monkeypatch.setattr(wizard, "confirm_cleanup", accept)
    click(qtbot, summary.cleanup_button)
    qtbot.waitUntil(lambda: summary.result.kind == SUCCESS, timeout=WAIT_MS)
    assert [item.kind for item in asked[0]] == ["deal", "person", "user", "user"]
    assert "Removed:" in summary.text.toPlainText()
    assert not summary.cleanup_button.isEnabled(), "nothing left to remove"
    assert not rf_user_exists(sandbox, referral.rf_user_id)
    assert demo_controller.store.get(referral.rf_user_id).status_reason == TEST_REMOVED  # type: ignore[union-attr]
    # the Invited users table says the test is over, and links to none of the records it removed
    table = InvitedUsersPage(demo_controller)
    qtbot.addWidget(table)
    table.search.setText(invited)
    qtbot.waitUntil(lambda: table.model.rowCount() == 1, timeout=WAIT_MS)
    cells = {key: table.model.index(0, COLUMN_INDEX[key]) for key in ("status", "reason", "person", "deal")}
    assert cells["status"].data() == "Test"
    assert "removed from Pipedrive and Referral Factory" in cells["reason"].data()
    assert cells["person"].data(LINK_ROLE) is None and cells["deal"].data(LINK_ROLE) is None

    click(qtbot, summary.again_button)
    qtbot.waitUntil(lambda: wizard.currentPage() is wizard.progress_page, timeout=WAIT_MS)
    wait_for_run(wizard, qtbot)
    assert wizard.progress_page.ok
    assert wizard.trial.created.invited_email != invited, "every run uses new addresses"


def test_a_wrong_token_shows_the_message_and_the_way_to_connections(
    demo_controller: AppController, sandbox: SandboxServer, open_wizard: Any, qtbot: QtBot
) -> None:
    wizard = open_wizard(demo_controller)
    qtbot.waitUntil(wizard.plan_page.isComplete, timeout=WAIT_MS)
    # a new key generated in Referral Factory's dashboard disables the one rf-desktop holds
    admin(sandbox, "PUT", "/tokens", {"rf": "a-key-generated-later"})
    send(wizard, qtbot)
    wait_for_run(wizard, qtbot)
    progress = wizard.progress_page
    assert not progress.ok
    assert progress.problem.kind == ERROR
    assert progress.problem.title == "The test stopped at “Check both connections”."
    assert progress.problem.detail == "Nothing was created."
    failed = progress.rows["connections checked"]
    assert "HTTP 401" in failed.detail.text() and "into Connections" in failed.hint.text()
    assert progress.fix_button is not None and progress.fix_button.isVisible()
    assert progress.fix_button.text() == "Open Connections"
    with qtbot.waitSignal(wizard.openSettingsPage, timeout=WAIT_MS) as asked:
        wizard.openSettingsPage.connect(lambda _title: None)  # the window's handler
        click(qtbot, progress.fix_button)
    assert asked.args == ["Connections"]
    go_next(wizard, qtbot)
    assert wizard.currentPage() is wizard.summary_page, "nothing to qualify"
    assert "Nothing was created." in wizard.summary_page.text.toPlainText()
    assert not wizard.summary_page.cleanup_button.isEnabled()


def test_a_paused_sync_is_offered_a_resume_before_sending(
    demo_controller: AppController, open_wizard: Any, qtbot: QtBot
) -> None:
    demo_controller.pause()
    wizard = open_wizard(demo_controller)
    page = wizard.plan_page
    qtbot.waitUntil(lambda: bool(page.problem_rows()), timeout=WAIT_MS)
    [row] = page.problem_rows()
    assert row.message.title == "The sync is paused. Resume it, then run the test again."
    assert not button(wizard, QWizard.WizardButton.CommitButton).isEnabled()
    click(qtbot, row.button)
    qtbot.waitUntil(lambda: page.isComplete(), timeout=WAIT_MS)
    assert not demo_controller.paused
    assert page.ready.kind == SUCCESS


def test_closing_mid_run_stops_it_and_offers_to_remove_what_exists(
    demo_controller: AppController, sandbox: SandboxServer, open_wizard: Any, qtbot: QtBot
) -> None:
    wizard = open_wizard(demo_controller)
    admin(sandbox, "PUT", "/faults/pd", {"rate_429": 1.0, "only_paths": ["/api/v2/persons"]})
    send(wizard, qtbot)
    seen = wizard.progress_page.rows["seen by the sync"]
    qtbot.waitUntil(lambda: seen.state == "running", timeout=WAIT_MS)
    users = dict(wizard.trial.created.__dict__)

    wizard.close()
    admin(sandbox, "PUT", "/faults/pd", {})
    qtbot.waitUntil(lambda: wizard.stopped_box is not None and wizard.stopped_box.isVisible(), timeout=WAIT_MS)
    box: QMessageBox = wizard.stopped_box
    assert "Referral Factory user" in box.informativeText()
    remove = next(b for b in box.buttons() if b.text() == "Remove them")
    click(qtbot, remove)
    created = (users["invited_id"], users["referrer_id"])
    qtbot.waitUntil(lambda: not any(rf_user_exists(sandbox, u) for u in created), timeout=WAIT_MS)
    assert wizard.trial.steps["seen by the sync"].state == "failed", wizard.trial.summary()


def rf_user_exists(sandbox: SandboxServer, user_id: int) -> bool:
    with sandbox.state.lock:
        return user_id in sandbox.state.rf.users


def test_the_window_opens_it_and_its_links_lead_to_the_settings_pages(
    syncing_controller: AppController, make_window: Any, qtbot: QtBot
) -> None:
    window = make_window(syncing_controller)
    window.show_page_named("Invited users")
    window.test_action.trigger()
    wizard = window.wizard
    assert isinstance(wizard, Wizard) and wizard.isVisible()
    try:
        qtbot.keyClicks(wizard.plan_page.email, "owner@bakery.example")
        qtbot.waitUntil(wizard.plan_page.isComplete, timeout=WAIT_MS)
        wizard.open_settings_page("Mapping")  # nothing is connected to openSettingsPage here
        assert getattr(window.current_page(), "title", None) == "Mapping"
    finally:
        wizard.reject()


def test_an_empty_email_box_waits_for_the_owners_address(
    syncing_controller: AppController, open_wizard: Any, qtbot: QtBot
) -> None:
    """With real accounts, the test never falls back on the grey example address."""
    wizard = open_wizard(syncing_controller)
    page = wizard.plan_page
    commit = button(wizard, QWizard.WizardButton.CommitButton)
    qtbot.waitUntil(lambda: page.plan is not None and page.plan.ok, timeout=WAIT_MS)
    assert page.email.text() == ""
    assert not page.isComplete() and not commit.isEnabled()
    assert page.email_needed.title == "Type your email address."
    assert "owner@example.com" not in page.invited_email.text() + page.referrer_email.text()

    qtbot.keyClicks(page.email, "owner@")
    assert page.email_needed.title == "That is not an email address yet." and not commit.isEnabled()
    qtbot.keyClicks(page.email, "bakery.example")
    assert page.email_needed.title == ""
    qtbot.waitUntil(commit.isEnabled, timeout=WAIT_MS)
    assert page.invited_email.text().endswith("-invited@bakery.example")

    send(wizard, qtbot)
    qtbot.waitUntil(lambda: wizard.trial.created.invited_email != "", timeout=WAIT_MS)
    assert wizard.trial.created.invited_email.endswith("@bakery.example")
