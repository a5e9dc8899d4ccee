"""Referral Factory is the truth about who is qualified: a referral qualified in its dashboard, by another
integration or by another rf-desktop is recorded as qualified and never asked for again, and a 422 on
qualification is a failure only when the user really is still pending."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from rf_desktop.core.config import QualificationRule, Settings
from rf_desktop.core.referral_factory import ReferralFactoryClient
from rf_desktop.core.store import Store
from rf_desktop.sandbox.referral_factory import RfShape
from rf_desktop.sandbox.server import SandboxServer
from tests.e2e.helpers import FAST_RETRY, admin, leads, make_engine, run_once, sandbox_settings, sign_up, stage_id


def run_once_meddling(store: Store, sandbox: SandboxServer, meddle: Callable[[], None]) -> None:
    """One `--once` pass in which `meddle` acts in Referral Factory just before each qualification call."""

    async def before_qualification(request: httpx.Request) -> None:
        if request.method == "PUT" and request.url.path.endswith("/users/qualification"):
            meddle()

    def rf(settings: Settings, token: str) -> ReferralFactoryClient:
        return ReferralFactoryClient(
            settings.referral_factory.base_url,
            token,
            timeout=5.0,
            retry=FAST_RETRY,
            event_hooks={"request": [before_qualification]},
        )

    engine = make_engine(store, sandbox, rf_factory=rf)
    summary = asyncio.run(engine.run_once(max_seconds=30))
    assert not summary.errors, summary.errors


def converted(sandbox: SandboxServer, store: Store, first_name: str) -> dict[str, Any]:
    """A sign-up sent as a lead, then converted by the sales team: due for qualification."""
    store.save_settings(sandbox_settings(sandbox))
    user = sign_up(sandbox, first_name, f"{first_name.lower()}@example.com")
    run_once(store, sandbox)
    [lead] = leads(sandbox)
    admin(sandbox, "POST", f"/pd/leads/{lead['id']}/convert", {})
    return user


def test_a_referral_qualified_in_the_dashboard_meanwhile_is_not_asked_for(
    sandbox: SandboxServer, store: Store
) -> None:
    user = converted(sandbox, store, "Dana")
    admin(sandbox, "POST", f"/rf/users/{user['id']}/qualify")

    run_once(store, sandbox)

    referral = store.get(user["id"])
    assert referral is not None and referral.status == "qualified"
    assert sandbox.state.rf.qualification_calls == 0
    assert store.log_count(text="already qualified in Referral Factory") == 1


def test_a_422_for_a_user_qualified_at_that_moment_is_a_success(sandbox: SandboxServer, store: Store) -> None:
    sandbox.state.rf.shape = RfShape(requalify="refused")
    user = converted(sandbox, store, "Rita")

    def qualified_from_the_dashboard() -> None:
        with sandbox.state.lock:
            sandbox.state.rf.set_qualified(sandbox.state.rf.users[user["id"]], True)

    run_once_meddling(store, sandbox, qualified_from_the_dashboard)

    referral = store.get(user["id"])
    assert referral is not None and referral.status == "qualified"
    assert sandbox.state.rf.qualification_calls == 1  # answered 422
    assert sandbox.state.rf.qualification_count(user["id"]) == 1
    assert store.log_count(text="already qualified in Referral Factory") == 1


def test_a_422_for_a_user_still_pending_is_a_failure(sandbox: SandboxServer, store: Store) -> None:
    user = converted(sandbox, store, "Pia")

    def made_a_referrer() -> None:  # Referral Factory qualifies only a Person Invited
        with sandbox.state.lock:
            sandbox.state.rf.users[user["id"]]["type"] = "person_referring"

    run_once_meddling(store, sandbox, made_a_referrer)

    referral = store.get(user["id"])
    assert referral is not None and referral.status == "failed"
    assert referral.status_reason is not None and "refused the qualification" in referral.status_reason


def test_a_second_data_folder_asks_referral_factory_nothing(sandbox: SandboxServer, tmp_path: Path) -> None:
    """A reinstall, a second laptop, or the app beside a server: each syncs the same accounts afresh."""
    start = stage_id(sandbox, "Qualified")
    settings = sandbox_settings(
        sandbox,
        mode="deal",
        pipeline_id=1,
        stage_id=start,
        qualification=QualificationRule(kind="deal_stage", pipeline_id=1, stage_id=start),
    )
    users = [sign_up(sandbox, f"Person {n}", f"person{n}@example.com") for n in range(4)]
    with Store(tmp_path / "first.sqlite3") as first:
        first.save_settings(settings)
        run_once(first, sandbox)
        run_once(first, sandbox)
        assert all(r.status == "qualified" for r in first.query())
    asked = sandbox.state.rf.qualification_calls
    assert asked == len(users)

    for folder in ("second", "third"):
        with Store(tmp_path / f"{folder}.sqlite3") as fresh:
            fresh.save_settings(settings)  # backfill "all"
            run_once(fresh, sandbox)
            run_once(fresh, sandbox)
            assert all(r.status == "qualified" for r in fresh.query())

    assert sandbox.state.rf.qualification_calls == asked
    assert all(sandbox.state.rf.qualification_count(u["id"]) == 1 for u in users)


def test_a_failed_read_before_qualifying_is_tried_again_when_the_deal_is_long_seen(
    sandbox: SandboxServer, store: Store
) -> None:
    store.save_settings(sandbox_settings(sandbox))
    ines = sign_up(sandbox, "Ines", "ines@example.com")
    other = sign_up(sandbox, "Olaf", "olaf@example.com")
    run_once(store, sandbox)
    lead_of = {lead["person_id"]: lead["id"] for lead in leads(sandbox)}
    person_of = {r.rf_user_id: r.person_id for r in store.query()}
    admin(sandbox, "PUT", "/faults/rf", {"rate_5xx": 1.0, "only_paths": [f"/users/{ines['id']}"]})
    admin(sandbox, "POST", f"/pd/leads/{lead_of[person_of[ines['id']]]}/convert", {})
    run_once(store, sandbox)  # Referral Factory cannot be read for Ines: not qualified yet

    # later, another deal moves the watch past Ines's deal, which no longer changes
    admin(sandbox, "POST", "/clock/advance", {"seconds": 600})
    admin(sandbox, "POST", f"/pd/leads/{lead_of[person_of[other['id']]]}/convert", {})
    run_once(store, sandbox)
    admin(sandbox, "PUT", "/faults/rf", {})
    run_once(store, sandbox)

    referral = store.get(ines["id"])
    assert referral is not None and referral.status == "qualified"
    assert sandbox.state.rf.qualification_count(ines["id"]) == 1
