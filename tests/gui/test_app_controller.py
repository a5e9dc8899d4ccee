"""The controller: the window's one door to settings, tokens, the Pipedrive schema and the engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from rf_desktop.core.config import Settings
from rf_desktop.core.instance_lock import AlreadySyncingError
from rf_desktop.core.schema import PipedriveSchema
from rf_desktop.core.secrets import PD_TOKEN, RF_TOKEN, TokenStore
from rf_desktop.core.store import Store
from rf_desktop.gui.controller import AppController, NotConnectedError
from rf_desktop.sandbox.server import SandboxServer
from tests.gui.conftest import MemoryKeyring, Runner, fast_engine, sign_up


def test_tokens_go_to_the_keychain(controller: AppController, keychain: MemoryKeyring, run: Runner) -> None:
    assert run(controller.account.read_token(PD_TOKEN)) is None
    run(controller.account.set_token(PD_TOKEN, "  pd-secret  "))
    assert keychain.passwords == {("rf-desktop", PD_TOKEN): "pd-secret"}
    assert run(controller.account.read_token(PD_TOKEN)) == "pd-secret"
    assert controller.account.token(PD_TOKEN) == "pd-secret"
    run(controller.account.remove_token(PD_TOKEN))
    assert keychain.passwords == {}
    assert controller.account.token(PD_TOKEN) is None


def test_demo_tokens_never_reach_the_keychain(store: Store, keychain: MemoryKeyring, run: Runner) -> None:
    controller = AppController(store, TokenStore(keychain, environ={}), demo=True)
    controller.account.use_session_tokens({RF_TOKEN: "rf-sandbox-token"})
    run(controller.account.set_token(PD_TOKEN, "pd-sandbox-token"))
    assert run(controller.account.read_token(RF_TOKEN)) == "rf-sandbox-token"
    assert run(controller.account.read_token(PD_TOKEN)) == "pd-sandbox-token"
    assert keychain.passwords == {}
    run(controller.shutdown())


def test_settings_with_errors_are_not_saved(controller: AppController, qtbot: QtBot) -> None:
    broken = Settings()
    broken.title = ""
    saved: list[Settings] = []
    controller.settingsChanged.connect(saved.append)
    issues = controller.save_settings(broken)
    assert any(i.severity == "error" and i.path == "title" for i in issues)
    assert controller.store.get_settings() is None
    assert saved == []
    assert controller.settings() == Settings()  # defaults until something is saved


def test_the_schema_is_fetched_cached_and_announced(
    sandbox_controller: AppController, run: Runner, qtbot: QtBot
) -> None:
    controller = sandbox_controller
    loading: list[bool] = []
    controller.schemaLoading.connect(loading.append)
    with qtbot.waitSignal(controller.schemaChanged) as announced:
        schema = run(controller.refresh_schema())
    assert isinstance(announced.args[0], PipedriveSchema)
    assert loading == [True, False]
    assert any(f.name == "Referral Code" for f in schema.deal_fields)
    assert controller.store.get_schema() == schema
    reopened = AppController(controller.store, controller.tokens)
    assert reopened.schema() == schema  # the window opens with the cached schema, no tokens spent


def test_refreshing_the_schema_needs_a_token(controller: AppController, run: Runner) -> None:
    loading: list[bool] = []
    controller.schemaLoading.connect(loading.append)
    with pytest.raises(NotConnectedError, match="Pipedrive token"):
        run(controller.refresh_schema())
    assert loading == [True, False]


def test_checks_use_the_stored_tokens(sandbox_controller: AppController, run: Runner) -> None:
    rf = run(sandbox_controller.account.check_referral_factory())
    pd = run(sandbox_controller.account.check_pipedrive())
    assert rf.ok and len(rf.campaigns) >= 2
    assert pd.ok, pd.message


def test_a_wrong_token_is_reported_not_raised(sandbox_controller: AppController, run: Runner) -> None:
    run(sandbox_controller.account.set_token(PD_TOKEN, "not-the-token"))
    result = run(sandbox_controller.account.check_pipedrive())
    assert not result.ok
    assert "not-the-token" not in result.message + result.hint


def test_links_open_records_in_pipedrive(sandbox_controller: AppController, sandbox: SandboxServer) -> None:
    base = sandbox.pd_base_url.rstrip("/")
    assert sandbox_controller.account.web_url("person", 5) == f"{base}/person/5"
    assert sandbox_controller.account.web_url("deal", 9) == f"{base}/deal/9"
    assert sandbox_controller.account.web_url("lead", "0b9f") == f"{base}/leads/inbox/0b9f"


def test_a_burst_of_referral_changes_reaches_the_pages_once(controller: AppController, qtbot: QtBot) -> None:
    gathered: list[frozenset[int]] = []
    controller.referralsChanged.connect(gathered.append)
    for rf_user_id in range(1, 1001):  # the sync at its busiest, and the same referral again
        controller.referralChanged.emit(rf_user_id)
    controller.referralChanged.emit(7)
    qtbot.waitUntil(lambda: gathered != [])
    assert gathered == [frozenset(range(1, 1001))]


def test_no_referral_change_reaches_the_pages_once_shutdown_has_begun(
    controller: AppController, qtbot: QtBot, run: Runner
) -> None:
    gathered: list[frozenset[int]] = []
    controller.referralsChanged.connect(gathered.append)
    controller.referralChanged.emit(1)  # the sync's last news, still being gathered
    run(controller.shutdown())
    controller.referralChanged.emit(2)
    qtbot.wait(200)
    assert gathered == []


def test_engine_events_become_signals(
    sandbox_controller: AppController, sandbox: SandboxServer, qtbot: QtBot
) -> None:
    person = sign_up(sandbox, first_name="Priya")
    received: dict[str, list[Any]] = {"referral": [], "log": [], "state": [], "budget": []}
    sandbox_controller.referralChanged.connect(received["referral"].append)
    sandbox_controller.logAdded.connect(received["log"].append)
    sandbox_controller.stateChanged.connect(lambda state, _m: received["state"].append(state))
    sandbox_controller.budgetChanged.connect(received["budget"].append)

    sandbox_controller.start_engine()

    qtbot.waitUntil(lambda: sandbox_controller.store.get(person["id"]) is not None, timeout=10_000)
    qtbot.waitUntil(lambda: received["budget"] != [], timeout=10_000)
    assert person["id"] in received["referral"]
    assert received["log"] and "running" in received["state"]
    assert sandbox_controller.budget is received["budget"][-1]


def test_one_engine_per_database(
    sandbox_controller: AppController, tokens: TokenStore, run: Runner
) -> None:
    sandbox_controller.start_engine()
    second = AppController(Store(Path(sandbox_controller.store.path)), tokens, engine_factory=fast_engine)
    with pytest.raises(AlreadySyncingError):
        second.start_engine()
    assert second.engine is None
    run(second.shutdown())


def test_shutdown_is_safe_twice_and_closes_the_store(sandbox_controller: AppController, run: Runner) -> None:
    sandbox_controller.start_engine()
    run(sandbox_controller.shutdown())
    run(sandbox_controller.shutdown())
    assert sandbox_controller.closed
    assert sandbox_controller.engine is not None and sandbox_controller.engine.state == "stopped"
    with pytest.raises(Exception):  # noqa: B017 - closed: any use fails
        sandbox_controller.store.count()


def test_has_accounts_when_anything_is_set_up(
    controller: AppController, keychain: MemoryKeyring, run: Runner
) -> None:
    run(controller.account.load_tokens())
    assert not controller.has_accounts()
    keychain.set_password("rf-desktop", RF_TOKEN, "stored-by-the-cli")
    run(controller.account.load_tokens())
    assert controller.has_accounts()
    run(controller.account.remove_token(RF_TOKEN))
    assert not controller.has_accounts()
    controller.store.save_settings(Settings())
    assert controller.has_accounts()
