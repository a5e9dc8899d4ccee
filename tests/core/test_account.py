"""The account against the sandbox: the one owner of the tokens, the saved settings, the Pipedrive schema,
the campaigns and the clients, and what its listeners (the engine first) hear when one of them changes."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rf_desktop.core.account import Account, Change, refusals
from rf_desktop.core.config import CONNECTIONS, MAPPING, RULES, FieldMap, Issue, Settings
from rf_desktop.core.engine import SyncEngine
from rf_desktop.core.events import NOT_CONFIGURED, StateChanged
from rf_desktop.core.http import ValidationError
from rf_desktop.core.pipedrive import PipedriveClient
from rf_desktop.core.secrets import PD_TOKEN, RF_TOKEN, TokenStore
from rf_desktop.core.store import Reason, Store
from rf_desktop.sandbox.server import SandboxServer
from tests.e2e.helpers import admin, sandbox_settings
from tests.keychains import MemoryKeyring


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "rf.sqlite3") as opened:
        yield opened


@pytest.fixture
def account(store: Store, sandbox: SandboxServer) -> Account:
    """An account on a keychain holding the sandbox's tokens, with the settings pointing at the sandbox."""
    keychain = TokenStore(MemoryKeyring(), environ={})
    keychain.set(RF_TOKEN, sandbox.state.rf.token)
    keychain.set(PD_TOKEN, sandbox.state.pd.token)
    store.save_settings(sandbox_settings(sandbox))
    return Account(store, keychain)


def heard(account: Account) -> list[Change]:
    changes: list[Change] = []
    account.subscribe(changes.append)
    return changes


def test_clients_are_built_again_only_when_a_token_or_an_address_changes(account: Account) -> None:
    changes = heard(account)

    async def scenario() -> None:
        rf, pd = await account.clients()
        settings = account.settings()
        settings.sync.poll_seconds += 30
        assert not [i for i in account.save(settings) if i.severity == "error"]
        assert await account.clients() == (rf, pd), "a setting that is not an address keeps the clients"

        await account.set_token(PD_TOKEN, "a-new-pipedrive-token")
        rf_after, pd_after = await account.clients()
        assert rf_after is rf and pd_after is not pd

        moved = account.settings()
        moved.referral_factory.base_url = moved.referral_factory.base_url + "/"
        account.save(moved)
        rf_moved, pd_moved = await account.clients()
        assert rf_moved is not rf and pd_moved is pd_after
        await account.close_clients()

    asyncio.run(scenario())
    assert changes == [Change.SETTINGS, Change.TOKENS, Change.SETTINGS]


def test_saving_validates_once_and_returns_the_problems(account: Account, store: Store) -> None:
    changes = heard(account)
    saved = store.get_settings()
    broken = dataclasses.replace(account.settings(), mappings=[])
    problems = account.save(broken)
    assert any(issue.severity == "error" for issue in problems)
    assert store.get_settings() == saved, "settings with an error are not saved"
    assert changes == []
    assert account.issues(broken) is problems, "the same settings against the same schema are not checked again"
    fine = account.settings()
    assert not account.errors(fine)
    fine.mappings = []  # changed in place after it was checked
    assert account.errors(fine), "the settings are checked as they are now"


def test_settings_from_a_file_are_checked_on_their_own_and_may_be_left_unfinished(
    account: Account, store: Store
) -> None:
    asyncio.run(account.refresh_schema())
    changes = heard(account)
    # mapped to a field made in Pipedrive after the schema held here was fetched
    from_elsewhere = account.settings().copy()
    from_elsewhere.mappings.append(FieldMap("source", f"item:{'a' * 40}", "Made Later"))
    assert refusals(account.save(from_elsewhere)), "the schema held here has no such field"
    assert not refusals(account.save(from_elsewhere, from_file=True))
    assert store.get_settings() == from_elsewhere

    unfinished = from_elsewhere.copy()
    unfinished.referral_factory.campaign_ids = []
    assert refusals(account.save(unfinished, from_file=True)), "a choice still to make"
    assert not refusals(account.save(unfinished, partial=True, from_file=True), partial=True)
    assert store.get_settings() == unfinished
    unfinished.sync.poll_seconds = 1
    assert refusals(account.save(unfinished, partial=True, from_file=True), partial=True), "a wrong value"
    assert store.get_settings() != unfinished
    assert changes == [Change.SETTINGS, Change.SETTINGS]


def test_each_problem_names_the_page_that_fixes_it() -> None:
    assert Issue("referral_factory.campaign_ids", "").page == CONNECTIONS
    assert Issue("pipedrive.base_url", "").page == CONNECTIONS
    assert Issue("qualification.stage_id", "").page == RULES
    assert Issue("mappings[2].target", "").page == MAPPING
    assert Issue("title", "").page == MAPPING


def test_the_schema_has_one_owner_and_its_listeners_hear_of_it(account: Account, store: Store) -> None:
    changes = heard(account)
    schema = asyncio.run(account.refresh_schema())
    assert account.schema() is schema and store.get_schema() == schema
    account.forget_schema()
    assert account.schema() is None and store.get_schema() is None
    assert changes == [Change.SCHEMA, Change.SCHEMA]
    # a new account on the same store starts from the stored schema
    assert Account(store, {}).schema() is None


def test_campaign_form_fields_are_cached_for_the_pages(account: Account, sandbox: SandboxServer) -> None:
    changes = heard(account)
    assert asyncio.run(account.load_campaign_fields(account.settings())) is True
    [campaign] = [c for c in account.cached_campaigns() if c["id"] == 1]
    assert campaign["name"] == "Campaign 1" and isinstance(campaign["fields"], list)
    assert changes == [Change.CAMPAIGNS]
    check = asyncio.run(account.check_referral_factory())
    kept = account.remember_campaigns(check.campaigns)
    assert [c["id"] for c in kept] == [int(c["id"]) for c in check.campaigns]
    assert account.cached_campaigns() == kept


def test_a_token_read_from_a_plain_mapping_cannot_be_changed(store: Store) -> None:
    account = Account(store, {RF_TOKEN: "rf"})
    assert account.token(RF_TOKEN) == "rf"
    assert account.missing_tokens() == ["Pipedrive"]
    with pytest.raises(TypeError, match="cannot change them"):
        asyncio.run(account.set_token(PD_TOKEN, "pd"))


def test_a_window_account_answers_tokens_only_from_what_it_has_read(store: Store) -> None:
    keychain = TokenStore(MemoryKeyring(), environ={})
    keychain.set(PD_TOKEN, "pd")
    account = Account(store, keychain, cache_only=True)
    assert account.token(PD_TOKEN) is None and not account.has_tokens()
    asyncio.run(account.load_tokens())
    assert account.token(PD_TOKEN) == "pd" and account.has_tokens()


def test_the_engine_wakes_when_a_token_is_added(store: Store, sandbox: SandboxServer) -> None:
    """The engine subscribes to the account: adding the missing token ends its wait at once."""
    store.save_settings(sandbox_settings(sandbox))
    keychain = TokenStore(MemoryKeyring(), environ={})
    keychain.set(RF_TOKEN, sandbox.state.rf.token)
    account = Account(store, keychain)
    engine = SyncEngine(account, retry_base=0.05, min_watch_interval=0.0)
    states: list[StateChanged] = []
    engine.subscribe(lambda e: states.append(e) if isinstance(e, StateChanged) else None)

    async def scenario() -> None:
        task = asyncio.create_task(engine.run())
        while not states:
            await asyncio.sleep(0.01)
        assert states[-1].state == NOT_CONFIGURED and states[-1].reason is Reason.MISSING_TOKEN
        await account.set_token(PD_TOKEN, sandbox.state.pd.token)
        async with asyncio.timeout(5):  # the poll interval is minutes: only the wake-up can be this quick
            while engine.state != "idle":
                await asyncio.sleep(0.01)
        engine.stop()
        await task

    asyncio.run(scenario())


def test_a_refusal_names_the_pipedrive_field_it_is_about(sandbox: SandboxServer) -> None:
    """Classified where the answer is read: the engine acts on `field`, never on the message's words."""
    unknown = "0123456789abcdef0123456789abcdef01234567"

    async def refusal(**body: Any) -> ValidationError:
        async with PipedriveClient(sandbox.pd_base_url, sandbox.state.pd.token) as pd:
            with pytest.raises(ValidationError) as caught:
                await pd.create_person({"name": "Ann", **body})
        return caught.value

    assert asyncio.run(refusal(**{unknown: "x"})).field == unknown
    assert asyncio.run(refusal(owner_id="not a number")).field is None


def test_a_deleted_field_is_a_mapping_problem_the_engine_retries(store: Store, sandbox: SandboxServer) -> None:
    admin(sandbox, "POST", "/rf/signup", {"campaign_id": 1, "first_name": "Ann", "email": "ann@example.com"})
    settings: Settings = sandbox_settings(sandbox)
    store.save_settings(settings)
    account = Account(store, {RF_TOKEN: sandbox.state.rf.token, PD_TOKEN: sandbox.state.pd.token})

    async def scenario() -> None:
        await account.refresh_schema()
        code_key = settings.referral_code_target().split(":", 1)[1]  # type: ignore[union-attr]
        admin(sandbox, "DELETE", f"/pd/fields/deal/{code_key}")
        engine = SyncEngine(account, retry_base=0.05, min_watch_interval=0.0)
        await engine.run_once(max_seconds=0)

    asyncio.run(scenario())
    [referral] = store.query(limit=5)
    assert referral.reason_kind is Reason.MAPPING, referral.status_reason
