"""Pipedrive, not the local store, is the truth about what was sent: a lead converted while the answer to
its create was lost, a create answered without its record, a second install with a fresh data folder, two
deals carrying one Referral Code, and surprises that must not end the sync."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from rf_desktop.core import engine as engine_module
from rf_desktop.core import mapping
from rf_desktop.core.config import QualificationRule, Settings
from rf_desktop.core.events import StateChanged
from rf_desktop.core.store import Store
from rf_desktop.sandbox.server import SandboxServer
from tests.e2e.helpers import (
    SpoilAnswers,
    admin,
    deals,
    field_code,
    leads,
    make_engine,
    persons,
    run_once,
    sandbox_settings,
    sign_up,
    stage_id,
)

LOST = httpx.Response(502, text="Bad Gateway")


def _convert(sandbox: SandboxServer, lead_id: str) -> dict[str, Any]:
    return dict(admin(sandbox, "POST", f"/pd/leads/{lead_id}/convert", {}))


def _settings(sandbox: SandboxServer, mode: str, rule: QualificationRule) -> Settings:
    if mode == "lead":
        return sandbox_settings(sandbox, qualification=rule)
    first = stage_id(sandbox, "Qualified")
    return sandbox_settings(sandbox, mode="deal", pipeline_id=1, stage_id=first, qualification=rule)


def _counts(sandbox: SandboxServer) -> tuple[int, int, int]:
    return len(persons(sandbox)), len(leads(sandbox)), len(deals(sandbox))


def test_a_lead_converted_before_the_retry_is_linked_not_sent_again(
    sandbox: SandboxServer, store: Store
) -> None:
    store.save_settings(sandbox_settings(sandbox))
    user = sign_up(sandbox, "Race", "race@example.com")

    def salesperson_converts(body: Any) -> None:
        with sandbox.state.lock:
            sandbox.state.pd.convert_lead(body["data"]["id"])

    lose_and_convert = SpoilAnswers("POST", "/api/v1/leads", LOST, meanwhile=salesperson_converts)
    run_once(store, sandbox, pd_transport=lose_and_convert)

    [lead], [deal] = leads(sandbox), deals(sandbox)
    assert deal["source_lead_id"] == lead["id"] and lead["is_deleted"]
    referral = store.get(user["id"])
    assert referral is not None
    assert (referral.lead_id, referral.deal_id, referral.status) == (lead["id"], deal["id"], "qualified")
    assert sandbox.state.rf.qualification_count(user["id"]) == 1
    assert lose_and_convert.seen == 1, "the retry looked the lead up instead of sending it again"


def test_a_referral_keeps_its_deal_when_another_carries_the_same_code(
    sandbox: SandboxServer, store: Store
) -> None:
    store.save_settings(sandbox_settings(sandbox))
    user = sign_up(sandbox, "Copied", "copied@example.com")
    run_once(store, sandbox)
    [lead] = leads(sandbox)
    converted = _convert(sandbox, lead["id"])
    code_key = field_code(sandbox, "deal", "Referral Code")
    with sandbox.state.lock:  # a salesperson copies the deal, Referral Code and all
        copy = sandbox.state.pd.insert_deal(
            {"title": "Copy", "person_id": converted["person_id"], "custom_fields": {code_key: user["code"]}}
        )
    seen = []
    for stage in ("Contact Made", "Demo Scheduled", "Proposal Made"):
        for deal in (copy, converted):  # both change between polls, in either order
            admin(sandbox, "POST", f"/pd/deals/{deal['id']}/stage", {"stage_id": stage_id(sandbox, stage)})
        run_once(store, sandbox)
        referral = store.get(user["id"])
        assert referral is not None
        seen.append(referral.deal_id)
    assert seen == [converted["id"]] * 3


@pytest.mark.parametrize(
    ("mode", "path", "answer"),
    [
        ("lead", "/api/v2/persons", {"success": True, "data": None}),
        ("lead", "/api/v1/leads", {"success": True, "data": {"title": "no id"}}),
        ("deal", "/api/v2/deals", {"success": True, "data": None}),
    ],
)
def test_a_success_without_the_new_record_is_looked_up_not_a_crash(
    sandbox: SandboxServer, store: Store, mode: str, path: str, answer: dict[str, Any]
) -> None:
    store.save_settings(_settings(sandbox, mode, QualificationRule(kind="none")))
    user = sign_up(sandbox, "Odd", "odd@example.com")
    spoil = SpoilAnswers("POST", path, httpx.Response(200, json=answer))
    run_once(store, sandbox, pd_transport=spoil)

    items = leads(sandbox) if mode == "lead" else deals(sandbox)
    assert (len(persons(sandbox)), len(items)) == (1, 1)
    referral = store.get(user["id"])
    assert referral is not None and referral.status == "sent"
    assert referral.person_id == persons(sandbox)[0]["id"]
    assert (referral.lead_id if mode == "lead" else referral.deal_id) == items[0]["id"]


@pytest.mark.parametrize("mode", ["lead", "deal"])
def test_a_second_install_with_a_fresh_data_folder_creates_nothing(
    sandbox: SandboxServer, tmp_path: Path, mode: str
) -> None:
    rule = QualificationRule(kind="lead_converted" if mode == "lead" else "deal_won")
    settings = _settings(sandbox, mode, rule)
    users = [sign_up(sandbox, f"Known {n}", f"known{n}@example.com") for n in range(8)]
    with Store(tmp_path / "first.sqlite3") as first:
        first.save_settings(settings)
        run_once(first, sandbox)
        _succeed(sandbox, mode, 3)  # three succeed, and the first install qualifies them
        run_once(first, sandbox)
    _succeed(sandbox, mode, 2)  # two more succeed while no install is running
    before = _counts(sandbox)

    for name in ("second", "third"):
        with Store(tmp_path / f"{name}.sqlite3") as fresh:
            fresh.save_settings(settings)
            run_once(fresh, sandbox)
            assert _counts(sandbox) == before, "nothing is created again"
            statuses = Counter(fresh.get(u["id"]).status for u in users)  # type: ignore[union-attr]
            assert statuses == {"qualified": 5, "waiting": 3}
    assert [sandbox.state.rf.qualification_count(u["id"]) for u in users] == [1] * 5 + [0] * 3


def _succeed(sandbox: SandboxServer, mode: str, count: int) -> None:
    """The sales team converts (lead mode) or wins (deal mode) the oldest `count` open items."""
    if mode == "lead":
        for lead in sorted(leads(sandbox, include_deleted=False), key=lambda x: x["add_time"])[:count]:
            _convert(sandbox, lead["id"])
    else:
        open_deals = [deal for deal in deals(sandbox) if deal["status"] == "open"]
        for deal in sorted(open_deals, key=lambda x: x["id"])[:count]:
            admin(sandbox, "POST", f"/pd/deals/{deal['id']}/status", {"status": "won"})


@pytest.mark.allow_logged_errors
def test_an_unexpected_error_fails_one_referral_and_the_others_go_on(
    sandbox: SandboxServer, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.save_settings(sandbox_settings(sandbox))
    users = [sign_up(sandbox, f"P{n}", f"p{n}@example.com") for n in range(3)]
    build_lead = mapping.build_lead

    def broken_for_one(referral: Any, *args: Any) -> dict[str, Any]:
        if referral.email == "p1@example.com":
            raise RuntimeError("a surprise")
        return build_lead(referral, *args)

    monkeypatch.setattr(mapping, "build_lead", broken_for_one)
    summary = asyncio.run(make_engine(store, sandbox).run_once(max_seconds=0.5))

    statuses = {u["email"]: store.get(u["id"]).status for u in users}  # type: ignore[union-attr]
    assert statuses == {"p0@example.com": "waiting", "p1@example.com": "failed", "p2@example.com": "waiting"}
    failed = store.get(users[1]["id"])
    assert failed is not None and "unexpected problem" in (failed.status_reason or "")
    assert summary.failed >= 1 and not summary.errors


@pytest.mark.allow_logged_errors
def test_the_continuous_sync_survives_an_unexpected_error_in_a_cycle(
    sandbox: SandboxServer, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.save_settings(sandbox_settings(sandbox))
    sign_up(sandbox, "Watched", "watched@example.com")
    poll_deals = engine_module.poll_deals
    calls = 0

    async def fails_once(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise KeyError("id")
        return await poll_deals(*args)

    monkeypatch.setattr(engine_module, "poll_deals", fails_once)

    async def scenario() -> list[str]:
        engine = make_engine(store, sandbox, retry_base=0.05)
        states: list[str] = []
        engine.subscribe(lambda e: states.append(e.state) if isinstance(e, StateChanged) else None)
        task = asyncio.create_task(engine.run())
        for _ in range(200):
            if calls >= 2 and states[-1] == "idle":
                break
            await asyncio.sleep(0.02)
        engine.stop()
        await task
        return states

    states = asyncio.run(scenario())
    assert "error" in states and calls >= 2
    assert states[-2:] == ["idle", "stopped"]


def test_sync_once_waits_out_its_backoff_when_every_create_meets_a_web_page(
    sandbox: SandboxServer, store: Store
) -> None:
    store.save_settings(sandbox_settings(sandbox))
    user = sign_up(sandbox, "Proxied", "proxied@example.com")
    page = httpx.Response(200, headers={"content-type": "text/html"}, text="<html><body>Sign in</body></html>")
    proxy = SpoilAnswers("POST", "/api/v2/persons", page, times=10**6, reaches_server=False)
    engine = make_engine(store, sandbox, retry_base=0.2, pd_transport=proxy)
    summary = asyncio.run(engine.run_once(max_seconds=2.0))

    # backoff 0.2, 0.4, 0.8 s… fits about four attempts in two seconds, not hundreds
    assert 2 <= proxy.seen <= 5
    assert summary.ended_in_error and summary.still_waiting == 1 and summary.errors
    assert persons(sandbox) == []
    referral = store.get(user["id"])
    assert referral is not None and referral.status == "pending"


def test_an_existing_persons_other_leads_and_deals_are_not_taken_for_this_referral(
    sandbox: SandboxServer, store: Store
) -> None:
    code_key = field_code(sandbox, "deal", "Referral Code")
    with sandbox.state.lock:  # a customer the sales team already works with, on other business
        pd = sandbox.state.pd
        person = pd.insert_person({"name": "Known", "emails": [{"value": "known@example.com", "primary": True}]})
        pd.insert_lead({"title": "Earlier enquiry", "person_id": person["id"]})
        pd.insert_deal({"title": "Other referral", "person_id": person["id"], "custom_fields": {code_key: "OTHER"}})
    store.save_settings(sandbox_settings(sandbox))
    user = sign_up(sandbox, "Known", "known@example.com")
    run_once(store, sandbox)

    mine = [lead for lead in leads(sandbox) if lead["custom_fields"].get(code_key) == user["code"]]
    assert len(mine) == 1 and mine[0]["person_id"] == person["id"]
    referral = store.get(user["id"])
    assert referral is not None and (referral.lead_id, referral.deal_id) == (mine[0]["id"], None)


def test_new_people_cost_no_lookup(sandbox: SandboxServer, store: Store) -> None:
    store.save_settings(sandbox_settings(sandbox))
    for n in range(5):
        sign_up(sandbox, f"New {n}", f"new{n}@example.com")
    lead_lists = SpoilAnswers("GET", "/api/v1/leads", LOST, times=0)  # only counts
    run_once(store, sandbox, pd_transport=lead_lists)
    assert len(leads(sandbox)) == 5 and lead_lists.seen == 0
