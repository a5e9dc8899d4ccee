"""Smaller promises of the engine: progress on long work, events for listeners, Persons Referring, the
Referral Code field created for the owner, retries that wait for their time, pause and resume."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from rf_desktop.core import connections
from rf_desktop.core.config import ReferralFactorySettings
from rf_desktop.core.events import BudgetChanged, Event, LogAdded, Progress, ReferralChanged, StateChanged
from rf_desktop.core.store import Store
from rf_desktop.sandbox.server import SandboxServer
from tests.e2e.helpers import admin, leads, make_engine, persons, run_once, sandbox_settings, sign_up


def test_a_backfill_reports_progress_and_every_change(sandbox: SandboxServer, store: Store) -> None:
    store.save_settings(sandbox_settings(sandbox))
    users = [sign_up(sandbox, f"P{n}", f"p{n}@example.com") for n in range(5)]
    events: list[Event] = []
    engine = make_engine(store, sandbox)
    engine.subscribe(events.append)
    asyncio.run(engine.run_once(max_seconds=30))

    progress = [e for e in events if isinstance(e, Progress)]
    assert progress and progress[-1] == Progress("Sending to Pipedrive", 5, 5)
    assert [p.done for p in progress] == sorted(p.done for p in progress), "progress never goes back"
    changed = {e.rf_user_id for e in events if isinstance(e, ReferralChanged)}
    assert changed == {u["id"] for u in users}
    assert any(isinstance(e, LogAdded) and e.row.action == "lead created" for e in events)
    assert any(isinstance(e, BudgetChanged) and e.used_today > 0 for e in events)
    assert [e.state for e in events if isinstance(e, StateChanged)][-2:] == ["running", "idle"]


def test_persons_referring_are_sent_but_never_watched(sandbox: SandboxServer, store: Store) -> None:
    settings = sandbox_settings(sandbox)
    settings.referral_factory = ReferralFactorySettings(
        base_url=sandbox.rf_base_url, campaign_ids=[1], sync_referring=True, backfill="all"
    )
    store.save_settings(settings)
    run_once(store, sandbox)
    referrer = store.get(sandbox.state.rf.user("ALICE001")["id"])
    assert referrer is not None and referrer.user_type == "person_referring"
    assert referrer.status == "sent", "a Person Referring cannot be qualified, so nothing is watched"
    assert len(leads(sandbox)) == 1


def test_the_referral_code_field_is_created_for_the_owner(sandbox: SandboxServer) -> None:
    admin(sandbox, "POST", "/seed", {"with_referral_fields": False})
    token = sandbox.state.pd.token
    schema = asyncio.run(connections.fetch_schema(sandbox.pd_base_url, token))
    assert not any(f.name == "Referral Code" for f in schema.deal_fields)
    created = asyncio.run(connections.create_referral_fields(sandbox.pd_base_url, token, ["Referral Code"]))
    schema = asyncio.run(connections.fetch_schema(sandbox.pd_base_url, token))
    [field] = [f for f in schema.deal_fields if f.name == "Referral Code"]
    assert field.code == created[0].code and field.is_custom and field.field_type == "varchar"
    assert any(f.code == field.code for f in schema.lead_fields), "leads share the deal custom fields"


def test_pause_stops_work_and_resume_continues(sandbox: SandboxServer, store: Store) -> None:
    store.save_settings(sandbox_settings(sandbox))

    async def scenario() -> None:
        engine = make_engine(store, sandbox)
        states: list[str] = []
        engine.subscribe(lambda e: states.append(e.state) if isinstance(e, StateChanged) else None)
        engine.pause()
        task = asyncio.create_task(engine.run())
        await asyncio.sleep(0.3)
        sign_up(sandbox, "Paused", "paused@example.com")
        engine.sync_now()
        await asyncio.sleep(0.5)
        assert leads(sandbox) == [] and states[-1] == "paused"
        engine.resume()
        for _ in range(100):
            if leads(sandbox):
                break
            await asyncio.sleep(0.05)
        engine.stop()
        await task
        assert len(leads(sandbox)) == 1

    asyncio.run(scenario())


def test_a_pause_pressed_during_a_cycle_takes_effect_at_once(sandbox: SandboxServer, store: Store) -> None:
    store.save_settings(sandbox_settings(sandbox))
    admin(sandbox, "PUT", "/faults/rf", {"latency_ms": 300})  # make the cycle long enough to press Pause in

    async def scenario() -> None:
        engine = make_engine(store, sandbox)
        states: list[str] = []
        engine.subscribe(lambda e: states.append(e.state) if isinstance(e, StateChanged) else None)
        task = asyncio.create_task(engine.run())
        while "running" not in states:
            await asyncio.sleep(0.01)
        engine.pause()  # mid-cycle; the poll interval is 10 s
        for _ in range(100):
            if states[-1] == "paused":
                break
            await asyncio.sleep(0.05)
        assert states[-1] == "paused", states
        engine.stop()
        await task

    asyncio.run(scenario())


def test_a_429_storm_on_lead_creation_is_ridden_out(sandbox: SandboxServer, store: Store) -> None:
    store.save_settings(sandbox_settings(sandbox))
    user = sign_up(sandbox, "Storm", "storm@example.com")
    admin(sandbox, "PUT", "/faults/pd", {"rate_429": 1.0, "only_paths": ["/api/v1/leads"]})

    async def scenario() -> None:
        engine = make_engine(store, sandbox)
        task = asyncio.create_task(engine.run())
        # the engine retries within milliseconds, so catch a moment between two attempts
        between = None
        for _ in range(3000):  # each attempt waits out the storm's retry-after (1-2 s) a few times
            referral = store.get(user["id"])
            if referral is not None and referral.attempts > 0 and referral.status == "pending":
                between = referral
                break
            await asyncio.sleep(0.01)
        assert not task.done(), "the sync kept running through the storm"
        assert between is not None and between.lead_id is None
        assert "slow down" in (between.status_reason or "") or "429" in (between.status_reason or "")
        admin(sandbox, "PUT", "/faults/pd", {})
        engine.sync_now()
        for _ in range(200):
            if leads(sandbox):
                break
            await asyncio.sleep(0.05)
        engine.stop()
        await task

    asyncio.run(scenario())
    assert len(leads(sandbox)) == 1 and len(persons(sandbox)) == 1


def test_stop_before_the_engine_started_is_not_forgotten(sandbox: SandboxServer, store: Store) -> None:
    store.save_settings(sandbox_settings(sandbox))

    async def scenario() -> None:
        engine = make_engine(store, sandbox)
        task = asyncio.create_task(engine.run())
        engine.stop()
        await asyncio.wait_for(task, timeout=5)

    asyncio.run(scenario())


def test_a_cycle_reads_and_writes_referrals_off_the_loop(sandbox: SandboxServer, store: Store) -> None:
    """The loop is the window's thread in the app, and the store may be busy with another commit: intake,
    sending, the watch and the budget wait for the store on a worker thread."""
    store.save_settings(sandbox_settings(sandbox))
    for n in range(3):
        sign_up(sandbox, f"P{n}", f"p{n}@example.com")
    on_the_loop: list[str] = []
    names = ("get", "get_many", "record_referrals", "count_due", "due_for_push", "next_retry_at", "update", "log")
    for name in (*names, "query", "count", "waiting_to_settle"):
        method = getattr(store, name)

        def spied(*args: object, _name: str = name, _method: Any = method, **kwargs: object) -> object:
            if threading.current_thread() is threading.main_thread():
                on_the_loop.append(_name)
            return _method(*args, **kwargs)

        setattr(store, name, spied)
    engine = make_engine(store, sandbox)
    asyncio.run(engine.run_once(max_seconds=30))

    assert len(leads(sandbox)) == 3
    assert on_the_loop == []
