"""The Connections page, driven as an owner would, against the sandbox over loopback."""

from __future__ import annotations

import asyncio
import gc
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from keyring.backend import KeyringBackend
from keyring.compat import properties
from keyring.errors import KeyringLocked
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QAbstractButton, QCheckBox, QRadioButton
from pytestqt.qtbot import QtBot

from rf_desktop.core.account import CAMPAIGNS_KEY
from rf_desktop.core.config import DEFAULT_PD_BASE_URL
from rf_desktop.core.secrets import DESKTOP_KEYCHAIN_HINT, DESKTOP_LOCKED_HINT, PD_TOKEN, RF_TOKEN, SERVICE, TokenStore
from rf_desktop.core.store import Store
from rf_desktop.gui.controller import AppController
from rf_desktop.gui.pages.connections import ConnectionsPage, TokenBox
from rf_desktop.gui.widgets.form_helpers import ERROR, INFO, SUCCESS
from rf_desktop.gui.widgets.settings_draft import DRAFT_KEY, UNSAVED
from rf_desktop.sandbox.server import SandboxServer
from tests.gui.conftest import MemoryKeyring, fast_engine
from tests.keychains import NotYetInstalledKeyring

LEFT = Qt.MouseButton.LeftButton
WAIT_MS = 15_000


@pytest.fixture(autouse=True)
def collect_qt_garbage() -> Iterator[None]:
    """Collect unreachable Qt objects on this (the GUI) thread, before and after each test. Left to
    Python's automatic collection, they may be destroyed in a keychain worker thread, which Qt refuses
    ("Timers cannot be stopped from another thread")."""
    gc.collect()
    yield
    gc.collect()


class LockedKeyring(KeyringBackend):
    """A keychain that is there but locked: every call is refused."""

    # not viable for keyring's own discovery: a viable test backend would join the real keychain in the
    # chain keyring builds, and answer for it in the real-keychain tests
    @properties.classproperty
    def priority(cls) -> float:
        raise RuntimeError("only for tests that pass it in")

    def get_password(self, service: str, username: str) -> str | None:
        raise KeyringLocked("locked")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise KeyringLocked("locked")

    def delete_password(self, service: str, username: str) -> None:
        raise KeyringLocked("locked")


def open_page(controller: AppController, qtbot: QtBot) -> ConnectionsPage:
    page = ConnectionsPage(controller)
    qtbot.addWidget(page)
    page.resize(800, 900)
    page.show()
    qtbot.waitExposed(page)
    return page


@pytest.fixture
def page(controller: AppController, qtbot: QtBot) -> Iterator[ConnectionsPage]:
    opened = open_page(controller, qtbot)
    yield opened
    opened.close()  # before the controller's store closes: leaving the page saves


def point_at(page: ConnectionsPage, qtbot: QtBot, rf_url: str, pd_url: str) -> None:
    """Type the API addresses under Advanced, as an owner with a proxy (or the sandbox) would."""
    qtbot.mouseClick(page.advanced.header, LEFT)
    for path, url in (("referral_factory.base_url", rf_url), ("pipedrive.base_url", pd_url)):
        edit = page.base_urls.edits[path]
        edit.selectAll()
        qtbot.keyClicks(edit, url)
    assert page.draft.get("referral_factory.base_url") == rf_url
    assert page.draft.get("pipedrive.base_url") == pd_url


def type_token_and_test(box: TokenBox, qtbot: QtBot, token: str) -> None:
    qtbot.waitUntil(lambda: not box.showing_stored and box.entry.isVisible(), timeout=WAIT_MS)
    qtbot.keyClicks(box.entry, token)
    qtbot.keyClick(box.entry, Qt.Key.Key_Return)  # Enter tests the token
    qtbot.waitUntil(lambda: box.result_panel.isVisible() and not box.testing, timeout=WAIT_MS)


def click(qtbot: QtBot, button: QAbstractButton) -> None:
    """Click a button where a person would: on a check box or radio button, its indicator."""
    pos = (
        QPoint(6, button.height() // 2)
        if isinstance(button, QCheckBox | QRadioButton)
        else button.rect().center()
    )
    qtbot.mouseClick(button, LEFT, pos=pos)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_referral_factory_token_lists_the_campaigns_and_is_kept_in_the_keychain(
    page: ConnectionsPage, sandbox: SandboxServer, keychain: MemoryKeyring, qtbot: QtBot
) -> None:
    point_at(page, qtbot, sandbox.rf_base_url, sandbox.pd_base_url)
    box = page.referral_factory
    type_token_and_test(box, qtbot, sandbox.state.rf.token)

    assert box.result_panel.kind == SUCCESS
    assert "3 campaigns" in box.result_panel.title
    names = [page.campaigns.list.item(i).text() for i in range(page.campaigns.list.count())]
    assert any(n.startswith("Spring Referral Campaign") and "launched" in n for n in names)
    assert any(n.startswith("Summer Draft") and "draft" in n for n in names)
    # the token that worked is stored, and never shown again in full
    assert keychain.passwords[("rf-desktop", RF_TOKEN)] == sandbox.state.rf.token
    qtbot.waitUntil(lambda: box.showing_stored)
    assert box.stored_label.text() == f"Stored in the keychain (…{sandbox.state.rf.token[-4:]})."
    assert sandbox.state.rf.token not in box.stored_label.text()
    assert box.entry.text() == ""


def test_pipedrive_test_shows_the_user_company_and_domain(
    page: ConnectionsPage, sandbox: SandboxServer, qtbot: QtBot
) -> None:
    point_at(page, qtbot, sandbox.rf_base_url, sandbox.pd_base_url)
    box = page.pipedrive
    type_token_and_test(box, qtbot, sandbox.state.pd.token)

    assert box.result_panel.kind == SUCCESS
    assert box.result_panel.title == "Connected to Pipedrive as Sam Owner at Sandbox Bakery."
    assert "Company domain: sandbox-bakery.pipedrive.com" in box.result_panel.detail
    assert page.draft.get("pipedrive.company_domain") == "sandbox-bakery"


def test_a_wrong_pipedrive_token_says_where_to_copy_the_right_one(
    page: ConnectionsPage, sandbox: SandboxServer, keychain: MemoryKeyring, qtbot: QtBot
) -> None:
    point_at(page, qtbot, sandbox.rf_base_url, sandbox.pd_base_url)
    box = page.pipedrive
    type_token_and_test(box, qtbot, "not-the-right-token")

    assert box.result_panel.kind == ERROR
    assert "Pipedrive" in box.result_panel.title
    assert "Settings → Personal preferences → API" in box.result_panel.detail
    assert "not-the-right-token" not in box.result_panel.title + box.result_panel.detail
    # a rejected token is not stored; the typed text stays for correcting
    assert ("rf-desktop", PD_TOKEN) not in keychain.passwords
    assert box.entry.text() == "not-the-right-token"


def test_an_address_nobody_answers_on_shows_the_network_message(
    page: ConnectionsPage, sandbox: SandboxServer, qtbot: QtBot
) -> None:
    point_at(page, qtbot, closed_port_url() + "/rf/api/v2", sandbox.pd_base_url)
    box = page.referral_factory
    type_token_and_test(box, qtbot, sandbox.state.rf.token)

    assert box.result_panel.kind == ERROR
    assert box.result_panel.title.startswith("Could not connect to Referral Factory")
    assert box.result_panel.title.endswith(": nothing is answering at that address.")
    assert "Errno" not in box.result_panel.title
    assert "the Referral Factory address under Advanced" in box.result_panel.detail


def test_an_address_that_is_not_one_is_flagged_while_typing_and_can_be_reset(
    page: ConnectionsPage, qtbot: QtBot
) -> None:
    qtbot.mouseClick(page.advanced.header, LEFT)
    edit = page.base_urls.edits["pipedrive.base_url"]
    edit.selectAll()
    qtbot.keyClicks(edit, "api.pipedrive")
    issue = page.base_urls.issues[1]
    assert issue.isVisible()
    assert "is not a web address" in issue.text()

    reset = [
        b
        for b in page.base_urls.findChildren(type(page.pipedrive.test_button))
        if "Pipedrive" in b.accessibleName()
    ]
    qtbot.mouseClick(reset[0], LEFT)
    assert edit.text() == DEFAULT_PD_BASE_URL
    assert not issue.isVisible()


@pytest.mark.parametrize(
    ("backend", "hint"),
    [(LockedKeyring(), DESKTOP_LOCKED_HINT), (None, DESKTOP_KEYCHAIN_HINT)],
    ids=["locked", "absent"],
)
def test_keychain_problems_show_what_to_do(
    backend: KeyringBackend | None,
    hint: str,
    loop: asyncio.AbstractEventLoop,
    store: Store,
    sandbox: SandboxServer,
    run: Any,
    qtbot: QtBot,
) -> None:
    from keyring.backends import fail

    tokens = TokenStore(backend if backend is not None else fail.Keyring(), environ={})
    controller = AppController(store, tokens, engine_factory=fast_engine)
    page = open_page(controller, qtbot)
    try:
        box = page.pipedrive
        # reading the keychain already failed when the page opened
        qtbot.waitUntil(lambda: box.keychain_panel.isVisible(), timeout=WAIT_MS)
        assert box.keychain_panel.kind == ERROR
        assert box.keychain_panel.detail == hint
        assert "RF_DESKTOP_" not in hint  # environment variables are no help at a desktop
        assert box.session_button.isVisible() and box.recheck_button.isVisible()  # and no dead end

        point_at(page, qtbot, sandbox.rf_base_url, sandbox.pd_base_url)
        box.keychain_panel.clear()
        type_token_and_test(box, qtbot, sandbox.state.pd.token)
        # the token works, but it could not be kept: the panel says what to do
        assert box.keychain_panel.isVisible()
        assert box.keychain_panel.detail == hint
        assert "could not be stored" in box.result_panel.detail
    finally:
        page.close()
        run(controller.shutdown(timeout=5))


def test_without_a_keychain_tokens_are_kept_for_this_session_until_test_again_finds_one(
    loop: asyncio.AbstractEventLoop, store: Store, sandbox: SandboxServer, run: Any, qtbot: QtBot
) -> None:
    absent = NotYetInstalledKeyring()
    controller = AppController(store, TokenStore(absent, environ={}), engine_factory=fast_engine)
    page = open_page(controller, qtbot)
    try:
        point_at(page, qtbot, sandbox.rf_base_url, sandbox.pd_base_url)
        box, other = page.pipedrive, page.referral_factory
        qtbot.waitUntil(box.keychain_panel.isVisible, timeout=WAIT_MS)
        assert box.keychain_panel.title == "No system keychain was found."
        assert "gnome-keyring" in box.keychain_panel.detail and "macOS and Windows" in box.keychain_panel.detail
        assert "RF_DESKTOP_" not in box.keychain_panel.detail  # no advice a window user cannot follow
        assert box.session_button.isVisible() and box.recheck_button.isVisible()

        qtbot.mouseClick(box.session_button, LEFT)
        # both boxes now say, for as long as it lasts, where the tokens are
        for shown in (box, other):
            qtbot.waitUntil(lambda b=shown: b.keychain_panel.kind == INFO, timeout=WAIT_MS)
            assert shown.keychain_panel.title == "Tokens are kept for this session only."
            assert not shown.session_button.isVisible() and shown.recheck_button.isVisible()
        type_token_and_test(box, qtbot, sandbox.state.pd.token)
        assert box.result_panel.kind == SUCCESS
        qtbot.waitUntil(lambda: box.showing_stored, timeout=WAIT_MS)
        assert box.stored_label.text().startswith("Kept for this session only")
        assert absent.passwords == {}
        assert run(controller.account.read_token(PD_TOKEN)) == sandbox.state.pd.token

        qtbot.mouseClick(box.recheck_button, LEFT)  # still none
        qtbot.waitUntil(lambda: box.keychain_panel.kind == ERROR, timeout=WAIT_MS)
        assert controller.tokens.session_only

        absent.installed = True  # the owner installed a keychain and logged in again
        qtbot.mouseClick(box.recheck_button, LEFT)
        qtbot.waitUntil(lambda: not box.keychain_panel.isVisible(), timeout=WAIT_MS)
        qtbot.waitUntil(lambda: box.stored_label.text().startswith("Stored in the keychain"), timeout=WAIT_MS)
        assert not box.keychain_actions.isVisible() and not other.keychain_panel.isVisible()
        assert absent.passwords == {(SERVICE, PD_TOKEN): sandbox.state.pd.token}
    finally:
        page.close()
        run(controller.shutdown(timeout=5))


def test_picking_a_campaign_is_kept_even_before_the_set_up_is_complete(
    page: ConnectionsPage, sandbox: SandboxServer, qtbot: QtBot
) -> None:
    point_at(page, qtbot, sandbox.rf_base_url, sandbox.pd_base_url)
    type_token_and_test(page.referral_factory, qtbot, sandbox.state.rf.token)
    item = page.campaigns.campaign_items()[2]
    item.setCheckState(Qt.CheckState.Checked)
    click(qtbot, page.campaigns.referring)
    click(qtbot, page.campaigns.backfill_all)

    rf = page.draft.settings.referral_factory
    assert (rf.campaign_ids, rf.sync_invited, rf.sync_referring, rf.backfill) == ([2], True, True, "all")
    # nothing is mapped yet, so the settings cannot be saved: the edit is parked, and the page says why
    assert page.draft.save_state == UNSAVED
    assert page.save_status.text().startswith("Not saved yet.")
    assert "Mapping" in page.save_status.text()
    store = page.controller.store
    qtbot.waitUntil(lambda: store.get_kv(DRAFT_KEY) is not None, timeout=WAIT_MS)
    parked = store.get_kv(DRAFT_KEY)
    assert parked["referral_factory"]["campaign_ids"] == [2]
    assert page.controller.store.get_kv(CAMPAIGNS_KEY)[0]["name"] == "Spring Referral Campaign"


def test_backfill_since_a_date_uses_the_date_picker(page: ConnectionsPage, qtbot: QtBot) -> None:
    picker = page.campaigns
    assert not picker.since.isEnabled()
    click(qtbot, picker.backfill_since)
    assert picker.since.isEnabled()
    picker.since.setDate(picker.since.date().addDays(-5))
    rf = page.draft.settings.referral_factory
    assert rf.backfill == "since"
    assert rf.backfill_since == picker.since.date().toString("yyyy-MM-dd")
    assert not [i for i in page.draft.issues if i.path.startswith("referral_factory.backfill")]


def test_configured_settings_save_and_a_stored_token_can_be_replaced_and_removed(
    sandbox_controller: AppController, keychain: MemoryKeyring, qtbot: QtBot
) -> None:
    page = open_page(sandbox_controller, qtbot)
    try:
        box = page.pipedrive
        qtbot.waitUntil(lambda: box.showing_stored, timeout=WAIT_MS)
        # a complete configuration saves by itself shortly after an edit
        click(qtbot, page.campaigns.referring)
        qtbot.waitUntil(
            lambda: sandbox_controller.settings().referral_factory.sync_referring, timeout=WAIT_MS
        )
        assert page.save_status.text() == "All changes saved. Nothing is sent until you press Start syncing."

        qtbot.mouseClick(box.replace_button, LEFT)
        assert not box.showing_stored and box.cancel_replace.isVisible()
        qtbot.mouseClick(box.cancel_replace, LEFT)
        assert box.showing_stored

        qtbot.mouseClick(box.remove_button, LEFT)
        qtbot.waitUntil(lambda: not box.showing_stored, timeout=WAIT_MS)
        assert ("rf-desktop", PD_TOKEN) not in keychain.passwords
        assert not box.test_button.isEnabled()  # nothing to test until a token is typed
    finally:
        page.close()


def test_a_slow_test_can_be_cancelled_with_the_same_button(
    page: ConnectionsPage, sandbox: SandboxServer, qtbot: QtBot
) -> None:
    point_at(page, qtbot, sandbox.rf_base_url, sandbox.pd_base_url)
    httpx.put(f"{sandbox.admin_url}/faults/rf", json={"latency_ms": 5000}).raise_for_status()
    box = page.referral_factory
    qtbot.keyClicks(box.entry, sandbox.state.rf.token)
    qtbot.mouseClick(box.test_button, LEFT)
    qtbot.waitUntil(lambda: box.testing and box.busy.isVisible())
    assert box.test_button.text() == "Cancel the test"

    qtbot.mouseClick(box.test_button, LEFT)
    assert not box.testing
    assert not box.busy.isVisible()
    assert box.result_panel.kind == INFO and box.result_panel.title == "Test cancelled."
    assert box.test_button.text() == "&Test connection"


def test_leaving_the_page_cancels_a_test_in_flight(
    page: ConnectionsPage, sandbox: SandboxServer, qtbot: QtBot
) -> None:
    point_at(page, qtbot, sandbox.rf_base_url, sandbox.pd_base_url)
    httpx.put(f"{sandbox.admin_url}/faults/pd", json={"latency_ms": 5000}).raise_for_status()
    box = page.pipedrive
    qtbot.keyClicks(box.entry, sandbox.state.pd.token)
    qtbot.mouseClick(box.test_button, LEFT)
    qtbot.waitUntil(lambda: box.testing)
    page.hide()
    qtbot.waitUntil(lambda: not box.testing)
    assert not box.busy.isVisible()


def test_a_token_from_the_environment_is_shown_as_such(
    loop: asyncio.AbstractEventLoop, store: Store, run: Any, qtbot: QtBot
) -> None:
    tokens = TokenStore(MemoryKeyring(), environ={"RF_DESKTOP_PIPEDRIVE_TOKEN": "env-token-1234"})
    controller = AppController(store, tokens, engine_factory=fast_engine)
    page = open_page(controller, qtbot)
    try:
        box = page.pipedrive
        qtbot.waitUntil(lambda: box.showing_stored, timeout=WAIT_MS)
        assert box.stored_label.text().startswith(
            "Read from the environment variable RF_DESKTOP_PIPEDRIVE_TOKEN"
        )
        assert "(…1234)" in box.stored_label.text()
        assert not box.remove_button.isEnabled() and "environment variable" in box.remove_button.toolTip()
    finally:
        page.close()
        run(controller.shutdown(timeout=5))


def test_an_unfinished_set_up_is_there_again_after_a_restart(
    page: ConnectionsPage, store: Store, tokens: TokenStore, run: Any, qtbot: QtBot
) -> None:
    click(qtbot, page.campaigns.referring)
    qtbot.waitUntil(lambda: store.get_kv(DRAFT_KEY) is not None, timeout=WAIT_MS)
    page.close()

    restarted = AppController(store, tokens, engine_factory=fast_engine)
    again = open_page(restarted, qtbot)
    try:
        assert again.campaigns.referring.isChecked()
        assert again.save_status.text().startswith("Not saved yet.")
    finally:
        again.close()
        run(restarted.shutdown(timeout=5))
