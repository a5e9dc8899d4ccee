"""The "send test referral" run against the sandbox over loopback, with a real SyncEngine running on the
test's loop: every step as it happens, the fields read back, each qualification rule (the sandbox's
admin surface plays the salesperson, as the demo button does), cleanup of exactly what was created, and
the failures an owner meets (a wrong token, a missing mapping, a rate-limit storm, a paused sync)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from rf_desktop.core import readback
from rf_desktop.core.account import Account
from rf_desktop.core.config import CONNECTIONS, MAPPING, QualificationRule, Settings
from rf_desktop.core.engine import SyncEngine
from rf_desktop.core.http import RetryPolicy
from rf_desktop.core.pipedrive import PipedriveClient
from rf_desktop.core.referral_factory import ReferralFactoryClient
from rf_desktop.core.schema import FieldDef, FieldOption
from rf_desktop.core.store import Referral, Store
from rf_desktop.core.trial import plan as trial_plan
from rf_desktop.core.trial import steps
from rf_desktop.core.trial.run import TrialRun
from rf_desktop.core.trial.steps import (
    CHECKED,
    DONE,
    FAILED_STEP,
    PERSON,
    RESUME,
    RUN_STEPS,
    RUNNING,
    SEEN,
    TEST_REMOVED,
    StepUpdate,
)
from rf_desktop.sandbox.admin_client import SandboxAdmin
from rf_desktop.sandbox.server import SandboxServer
from tests.e2e.helpers import FAST_RETRY, admin, sandbox_settings, stage_id

# the engine gives up on a 429 at once instead of sleeping through Pipedrive's retry-after, so a storm
# shows in milliseconds; the sync's own backoff (retry_base) then paces the next tries
NO_WAITING = RetryPolicy(max_attempts=2, base_delay=0.01, max_backoff=0.05, max_wait=0.1)


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with Store(tmp_path / "rf.sqlite3") as opened:
        yield opened


def tokens_of(sandbox: SandboxServer) -> dict[str, str]:
    return {"referral-factory": sandbox.state.rf.token, "pipedrive": sandbox.state.pd.token}


def client_factories(retry: RetryPolicy) -> tuple[Callable[..., Any], Callable[..., Any]]:
    def rf(settings: Settings, token: str) -> ReferralFactoryClient:
        return ReferralFactoryClient(settings.referral_factory.base_url, token, timeout=5.0, retry=retry)

    def pd(settings: Settings, token: str, **limits: Any) -> PipedriveClient:
        return PipedriveClient(settings.pipedrive.base_url, token, timeout=5.0, retry=retry, **limits)

    return rf, pd


@asynccontextmanager
async def syncing(store: Store, sandbox: SandboxServer, retry: RetryPolicy = FAST_RETRY) -> AsyncIterator[SyncEngine]:
    """The sync engine running as a task on this loop, as in the app."""
    engine = SyncEngine(make_account(store, sandbox, retry=retry), retry_base=0.05, min_watch_interval=0.0)
    task = asyncio.create_task(engine.run())
    await asyncio.sleep(0)  # let it start: a stop() before run() begins would be forgotten
    try:
        yield engine
    finally:
        engine.stop()
        await task


def make_account(
    store: Store, sandbox: SandboxServer, tokens: dict[str, str] | None = None, retry: RetryPolicy = FAST_RETRY
) -> Account:
    rf, pd = client_factories(retry)
    return Account(store, tokens or tokens_of(sandbox), rf_factory=rf, pd_factory=pd)


def make_trial(store: Store, engine: SyncEngine | None, sandbox: SandboxServer, **kw: Any) -> TrialRun:
    """A test referral on the engine's account (a fresh one on the sandbox's tokens without an engine)."""
    kw.setdefault("timeout", 20.0)
    account = engine.account if engine is not None else make_account(store, sandbox)
    return TrialRun(account, engine, email_base="owner@bakery.example", poll=0.05, nudge_every=0.2, **kw)


async def act_as_salesperson(run: TrialRun, sandbox: SandboxServer) -> str:
    """The demo's salesperson, through the sandbox's admin surface, as the wizard's button does it."""
    referral = run.test_referral()
    assert referral is not None
    done = await SandboxAdmin(sandbox.admin_url).act_as_salesperson(referral, run.settings.qualification)
    run.someone_acted(done)
    return done


def live_records(sandbox: SandboxServer) -> dict[str, set[Any]]:
    """What Referral Factory and Pipedrive hold now (Pipedrive deletes are soft)."""
    with sandbox.state.lock:
        users = set(sandbox.state.rf.users)
    pd = sandbox.state.pd.snapshot()
    return {
        "rf users": users,
        **{kind: {r["id"] for r in pd[kind] if not r["is_deleted"]} for kind in ("persons", "leads", "deals")},
    }


def finals(updates: list[StepUpdate]) -> dict[str, str]:
    return {u.step: u.state for u in updates if u.state != RUNNING}


def rows_marked_test(store: Store) -> list[Any]:
    return [r for r in store.log_rows() if r.is_test]


# --- before anything is sent ------------------------------------------------------------------------------


def test_plan_says_what_and_where_with_unique_plus_addresses(sandbox: SandboxServer, store: Store) -> None:
    store.save_settings(sandbox_settings(sandbox))
    store.set_kv("referral_factory_campaigns", [{"id": 1, "name": "Spring Referral Campaign"}])
    moment = datetime(2031, 5, 6, 7, 8, 9)
    engine = SyncEngine(Account(store, tokens_of(sandbox)))
    first = TrialRun(engine.account, engine, email_base="Me+old@Shop.example", now=lambda: moment)
    second = TrialRun(engine.account, engine, email_base="me@shop.example", now=lambda: moment)

    plan = first.plan()
    assert plan.ok, plan.problems
    assert plan.campaign_id == 1 and plan.campaign_name == "Spring Referral Campaign"
    assert plan.mode == "lead"
    assert plan.referrer_email == "Me+rf-test-20310506-070809-referrer@Shop.example"
    assert plan.invited_email == "Me+rf-test-20310506-070809-invited@Shop.example"
    assert any("a lead" in line for line in plan.creates)
    assert "converted into a deal" in plan.rule
    # the same second, yet new addresses: Referral Factory refuses an email it already holds
    assert second.plan().invited_email == "me+rf-test-20310506-070809-n2-invited@shop.example"


def test_plan_problems_point_at_the_page_that_fixes_them(sandbox: SandboxServer, store: Store) -> None:
    engine = SyncEngine(Account(store, tokens_of(sandbox)))
    [unset] = TrialRun(engine.account, engine).plan().problems
    assert unset.settings_page == CONNECTIONS

    settings = sandbox_settings(sandbox, mode="deal", pipeline_id=1, stage_id=stage_id(sandbox, "Qualified"))
    settings.mappings = [m for m in settings.mappings if m.source != "code"]
    store.save_settings(settings)
    plan = TrialRun(Account(store, {"pipedrive": "x"}), engine, email_base="not an address").plan()

    def page_for(words: str) -> str | None:
        return next(p.settings_page for p in plan.problems if words in p.message)

    assert not plan.ok
    assert page_for("is not an email address") is None, "the address is fixed right in the wizard"
    assert page_for("The Referral Factory token is missing") == CONNECTIONS
    assert page_for("map 'Referral Code'") == MAPPING
    assert page_for("Lead rules need") == "rules", "a lead rule, but deals are created"

    store.save_settings(sandbox_settings(sandbox))
    engine.pause()
    [paused] = TrialRun(engine.account, engine).plan().problems
    assert paused.action == RESUME
    assert paused.message == "The sync is paused. Resume it, then run the test again."


def test_sample_form_values_fit_the_mapped_pipedrive_fields() -> None:
    plan = FieldDef("p", "Plan", "enum", (FieldOption(1, "Starter"), FieldOption(2, "Growth")), True)
    seats = FieldDef("s", "Seats", "int", is_custom=True)
    form = [
        {"label": "Plan", "value": ["Enterprise", "Growth"]},
        {"label": "Seats", "value": None},
        {"label": "Last Name", "value": None},
        {"label": "", "value": None},
    ]
    values = trial_plan.sample_form_values(form, {"Plan": plan, "Seats": seats}, "2031-01-02")
    assert values == {"Plan": "Growth", "Seats": "42", "Last Name": "Test Last Name"}


def test_read_back_values_compare_however_pipedrive_writes_them() -> None:
    plan = FieldDef("p", "Plan", "set", (FieldOption(1, "Starter"), FieldOption(2, "Growth")), True)
    assert readback.comparable("1,2", "set") == readback.comparable([2, 1], "set")
    assert readback.comparable([{"id": 2, "label": "Growth"}], "set") == frozenset({"2"})
    assert readback.shown(readback.comparable([2, 1], "set"), plan) == "Starter, Growth"
    money = readback.comparable({"value": 1200, "currency": "EUR"}, "monetary")
    assert money == readback.comparable({"amount": 1200.0, "currency": "EUR"}, "monetary")
    assert readback.shown(money, None) == "1200 EUR"
    assert readback.comparable({"value": "09:30:00", "timezone_id": 1}, "time") == "09:30"
    assert readback.comparable("", "varchar") is None


# --- the whole loop ---------------------------------------------------------------------------------------


def _run_and_qualify(store: Store, sandbox: SandboxServer) -> tuple[TrialRun, list[StepUpdate], Any]:
    async def scenario() -> tuple[TrialRun, list[StepUpdate], Any]:
        async with syncing(store, sandbox) as engine:
            updates: list[StepUpdate] = []
            run = make_trial(store, engine, sandbox, on_update=updates.append)
            assert await run.run() is True, run.summary()
            assert "In Pipedrive" in run.what_to_do()
            done = await act_as_salesperson(run, sandbox)
            assert done.startswith("Acting as the salesperson (demo)")
            assert await run.wait_for_qualification(10.0) is True, run.summary()
            listed = run.cleanup_items()
            report = await run.cleanup()
            assert report.ok and len(report.removed) == len(listed)
            return run, updates, listed

    return asyncio.run(scenario())


def _assert_every_step_reported_in_order(updates: list[StepUpdate]) -> None:
    order = list(dict.fromkeys(u.step for u in updates))
    assert order[: len(RUN_STEPS)] == list(RUN_STEPS)
    for step in RUN_STEPS:
        mine = [u for u in updates if u.step == step]
        assert mine[0].state == RUNNING and mine[-1].state == DONE, mine
        assert mine[-1].seconds >= 0


def _assert_fields_match_the_mapping(run: TrialRun, store: Store, record: str) -> None:
    referral = store.get(run.created.invited_id or 0)
    assert referral is not None
    by_field = {(c.record, c.field): c for c in run.fields}
    assert all(c.arrived for c in run.fields), [c for c in run.fields if not c.arrived]
    assert by_field[(record, "Referral Code")].value == referral.code
    assert by_field[(record, "Referral Code")].source == "Referral Code"
    assert by_field[(record, "Referral Link")].value == referral.url
    assert by_field[(record, "Referrer Email Address")].value == run.created.referrer_email
    assert by_field[("Person", "Email")].value == run.created.invited_email
    assert by_field[(record, "Title")].value == f"Spring Referral Campaign: {steps.INVITED_NAME}"


def _assert_cleaned_and_logged(
    run: TrialRun, store: Store, before: dict[str, set[Any]], sandbox: SandboxServer
) -> None:
    assert live_records(sandbox) == before, "cleanup removes exactly what the run created"
    assert sandbox.state.rf.qualification_count(run.created.invited_id or 0) == 1
    row = store.get(run.created.invited_id or 0)
    assert row is not None and row.is_test and row.status == "skipped" and row.status_reason == TEST_REMOVED
    messages = [r.message for r in rows_marked_test(store)]
    assert any(m.startswith("Test referral started") for m in messages)
    assert any(m.startswith("Test referral finished in") for m in messages)
    # the engine's own rows for the test referral carry the mark too
    engine_rows = [
        r for r in store.log_rows() if r.rf_user_id == run.created.invited_id and r.action != "test referral"
    ]
    assert engine_rows and all(r.is_test for r in engine_rows)


@pytest.mark.parametrize("kind", ["lead_converted", "lead_converted_stage"])
def test_lead_mode_whole_loop(sandbox: SandboxServer, store: Store, kind: str) -> None:
    rule = QualificationRule(kind=kind)  # type: ignore[arg-type]
    if kind == "lead_converted_stage":
        rule = QualificationRule(kind=kind, pipeline_id=1, stage_id=stage_id(sandbox, "Demo Scheduled"))
    store.save_settings(sandbox_settings(sandbox, qualification=rule))
    before = live_records(sandbox)

    run, updates, listed = _run_and_qualify(store, sandbox)

    _assert_every_step_reported_in_order(updates)
    _assert_fields_match_the_mapping(run, store, "Lead")
    assert run.steps[PERSON].data["created"] is True
    assert [i.kind for i in listed] == ["deal", "person", "user", "user"], "the lead became the deal"
    _assert_cleaned_and_logged(run, store, before, sandbox)
    summary = run.summary()
    assert run.created.invited_email in summary and "Removed:" in summary and "✓ Lead: Referral Code" in summary


@pytest.mark.parametrize("kind", ["deal_stage", "deal_won"])
def test_deal_mode_whole_loop(sandbox: SandboxServer, store: Store, kind: str) -> None:
    rule = QualificationRule(kind="deal_won")
    if kind == "deal_stage":
        rule = QualificationRule(kind="deal_stage", pipeline_id=1, stage_id=stage_id(sandbox, "Contact Made"))
    settings = sandbox_settings(
        sandbox, mode="deal", pipeline_id=1, stage_id=stage_id(sandbox, "Qualified"), qualification=rule
    )
    store.save_settings(settings)
    before = live_records(sandbox)

    run, updates, listed = _run_and_qualify(store, sandbox)

    _assert_every_step_reported_in_order(updates)
    _assert_fields_match_the_mapping(run, store, "Deal")
    item = run.steps[steps.ITEM].data
    assert item["kind"] == "deal" and item["url"].endswith(f"/deal/{item['id']}")
    assert [i.kind for i in listed] == ["deal", "person", "user", "user"]
    _assert_cleaned_and_logged(run, store, before, sandbox)


def test_a_person_already_in_pipedrive_is_matched_and_never_deleted(sandbox: SandboxServer, store: Store) -> None:
    store.save_settings(sandbox_settings(sandbox, qualification=QualificationRule(kind="none")))

    async def scenario() -> tuple[TrialRun, int, dict[str, set[Any]]]:
        async with syncing(store, sandbox) as engine:
            run = make_trial(store, engine, sandbox)
            email = run.plan().invited_email
            async with PipedriveClient(sandbox.pd_base_url, sandbox.state.pd.token) as pd:
                person = await pd.create_person(
                    {"name": "Maria Existing", "emails": [{"value": email, "primary": True}]}
                )
            before = live_records(sandbox)
            assert await run.run() is True, run.summary()
            assert not await run.wait_for_qualification(1.0), "no rule: nothing to wait for"
            await run.cleanup()
            return run, int(person["id"]), before

    run, person_id, before = asyncio.run(scenario())
    assert run.steps[PERSON].data == {**run.steps[PERSON].data, "person_id": person_id, "created": False}
    name = next(c for c in run.fields if c.field == "Name")
    assert name.arrived is None and name.value == "Maria Existing" and "kept" in name.note
    assert run.steps[steps.QUALIFIED_STEP].state == "skipped"
    after = live_records(sandbox)
    assert person_id in after["persons"], "a person who was there before the test stays"
    assert after == before, "the lead and both Referral Factory users are gone; the person stays"
    assert run.cleanup_report is not None and "already in Pipedrive" in run.cleanup_report.kept[0]


def test_stopping_midway_says_what_exists_and_cleanup_removes_it(sandbox: SandboxServer, store: Store) -> None:
    store.save_settings(sandbox_settings(sandbox))
    before = live_records(sandbox)

    async def scenario() -> TrialRun:
        # an engine that is not running: the referral stays queued, so the run is surely still waiting
        idle = SyncEngine(make_account(store, sandbox))
        run = make_trial(store, idle, sandbox)
        task = asyncio.create_task(run.run())
        while SEEN not in run.steps:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await run.cleanup()
        return run

    run = asyncio.run(scenario())
    assert run.steps[SEEN].state == FAILED_STEP and "Stopped" in run.steps[SEEN].detail
    assert "Referral Factory user" in run.steps[SEEN].hint, "it says what exists"
    assert any("Test referral stopped" in r.message for r in rows_marked_test(store))
    assert live_records(sandbox) == before


# --- what goes wrong --------------------------------------------------------------------------------------


@pytest.mark.parametrize("service", ["rf", "pd"])
def test_a_wrong_token_stops_before_anything_is_created(sandbox: SandboxServer, store: Store, service: str) -> None:
    store.save_settings(sandbox_settings(sandbox))
    tokens = tokens_of(sandbox)
    admin(sandbox, "PUT", "/tokens", {service: "a-token-generated-later"})  # the one rf-desktop has is old
    before = live_records(sandbox)

    async def scenario() -> TrialRun:
        run = make_trial(store, SyncEngine(make_account(store, sandbox, tokens)), sandbox)
        assert await run.run() is False
        return run

    run = asyncio.run(scenario())
    failed = run.steps[CHECKED]
    assert failed.state == FAILED_STEP and failed.settings_page == CONNECTIONS
    assert "HTTP 401" in failed.detail and "into Connections" in failed.hint
    assert set(run.steps) == {CHECKED}
    assert live_records(sandbox) == before
    assert run.cleanup_items() == [] and "Nothing was created." in run.summary()
    assert any(r.level == "error" for r in rows_marked_test(store))


def test_a_missing_referral_code_mapping_points_at_the_mapping_page(sandbox: SandboxServer, store: Store) -> None:
    settings = sandbox_settings(sandbox)
    settings.mappings = [m for m in settings.mappings if m.source != "code"]
    store.save_settings(settings)
    before = live_records(sandbox)

    async def scenario() -> TrialRun:
        async with syncing(store, sandbox) as engine:
            run = make_trial(store, engine, sandbox)
            assert await run.run() is False
            return run

    run = asyncio.run(scenario())
    failed = run.steps[CHECKED]
    assert failed.state == FAILED_STEP and failed.settings_page == MAPPING
    assert "Referral Code" in failed.detail
    assert live_records(sandbox) == before


def test_a_rate_limit_storm_is_waited_out(sandbox: SandboxServer, store: Store) -> None:
    store.save_settings(sandbox_settings(sandbox))
    storm = {"rate_429": 1.0, "only_paths": ["/api/v2/persons"]}

    async def scenario() -> tuple[bool, list[StepUpdate]]:
        updates: list[StepUpdate] = []

        def watch(update: StepUpdate) -> None:
            updates.append(update)
            if update.step == steps.INVITED_STEP and update.state == DONE:
                admin(sandbox, "PUT", "/faults/pd", storm)
            if "rate limit" in update.detail:
                admin(sandbox, "PUT", "/faults/pd", {})  # the storm passes

        async with syncing(store, sandbox, NO_WAITING) as engine:
            run = make_trial(store, engine, sandbox, on_update=watch)
            return await run.run(), updates

    ok, updates = asyncio.run(scenario())
    waiting = [u for u in updates if "Waiting for Pipedrive's rate limit" in u.detail]
    assert waiting and waiting[0].state == RUNNING, "it says it is waiting rather than failing silently"
    assert ok, finals(updates)
    assert finals(updates) == dict.fromkeys(RUN_STEPS, DONE)


def test_a_rate_limit_storm_that_lasts_times_out_with_a_clear_message(sandbox: SandboxServer, store: Store) -> None:
    store.save_settings(sandbox_settings(sandbox))
    admin(sandbox, "PUT", "/faults/pd", {"rate_429": 1.0, "only_paths": ["/api/v2/persons"]})

    async def scenario() -> TrialRun:
        async with syncing(store, sandbox, NO_WAITING) as engine:
            # long enough for a loaded CI machine to reach the storm before the run gives up
            run = make_trial(store, engine, sandbox, timeout=5)
            assert await run.run() is False
            admin(sandbox, "PUT", "/faults/pd", {})
            await run.cleanup()
            return run

    run = asyncio.run(scenario())
    failed = run.steps[SEEN]
    assert failed.state == FAILED_STEP
    assert failed.detail == "Still waiting for Pipedrive's rate limit after 5 s."
    assert "stays in the queue" in failed.hint
    assert all(run.created.invited_email not in str(p["emails"]) for p in sandbox.state.pd.snapshot()["persons"])


def test_a_paused_sync_is_said_before_anything_is_created(sandbox: SandboxServer, store: Store) -> None:
    store.save_settings(sandbox_settings(sandbox, qualification=QualificationRule(kind="none")))
    before = live_records(sandbox)

    async def scenario() -> tuple[TrialRun, bool]:
        async with syncing(store, sandbox) as engine:
            engine.pause()
            paused = make_trial(store, engine, sandbox)
            assert await paused.run() is False
            assert live_records(sandbox) == before
            engine.resume()
            again = make_trial(store, engine, sandbox)
            ok = await again.run()
            await again.cleanup()
            return paused, ok

    paused, ok = asyncio.run(scenario())
    failed = paused.steps[CHECKED]
    assert failed.detail == "The sync is paused. Resume it, then run the test again."
    assert failed.data == {"action": RESUME}
    assert ok, "resumed, the same test goes through"
    assert live_records(sandbox) == before


def test_fields_that_did_not_arrive_are_flagged(sandbox: SandboxServer, store: Store) -> None:
    """A mapped value Pipedrive does not hold (here: the field was emptied by someone) is named."""
    store.save_settings(sandbox_settings(sandbox, qualification=QualificationRule(kind="none")))
    run = make_trial(store, None, sandbox)
    referral = Referral(
        rf_user_id=1,
        campaign_id=1,
        campaign_name="Spring Referral Campaign",
        first_name="Ann",
        email="ann@example.com",
        code="CODE1",
        url="https://x/CODE1",
    )
    code_key = store.get_settings().referral_code_target().split(":", 1)[1]  # type: ignore[union-attr]
    person = {"name": "Ann", "emails": [{"value": "ann@example.com"}]}
    lead = {"title": "Spring Referral Campaign: Ann", code_key: None}
    asyncio.run(run.account.refresh_schema())
    checks = run.check_fields(referral, person, lead, person_created=True)
    missing = [c for c in checks if c.arrived is False]
    assert [c.field for c in missing] == ["Referral Code", "Referral Campaign", "Referral Link"]
    assert missing[0].expected == "CODE1" and missing[0].note == "Empty in Pipedrive."


def test_when_people_referring_are_synced_the_test_referrer_stays_out_of_pipedrive(
    sandbox: SandboxServer, store: Store
) -> None:
    settings = sandbox_settings(sandbox, qualification=QualificationRule(kind="none"))
    settings.referral_factory.sync_referring = True
    settings.referral_factory.backfill = "none"  # the seeded referrers stay out of this
    store.save_settings(settings)
    before = live_records(sandbox)

    async def scenario() -> TrialRun:
        async with syncing(store, sandbox) as engine:
            run = make_trial(store, engine, sandbox)
            assert await run.run() is True, run.summary()
            engine.sync_now()  # one more cycle: the referrer is not picked up by it either
            await asyncio.sleep(0.3)
            referrer = store.get(run.created.referrer_id or 0)
            assert referrer is not None and referrer.is_test and referrer.status == "skipped"
            assert referrer.person_id is None
            await run.cleanup()
            return run

    run = asyncio.run(scenario())
    persons = sandbox.state.pd.snapshot()["persons"]
    assert not any(run.created.referrer_email in str(p["emails"]) for p in persons)
    assert live_records(sandbox) == before
