"""Each of the four qualification options, end to end, in the mode it belongs to."""

from __future__ import annotations

import pytest

from rf_desktop.core.config import QualificationRule
from rf_desktop.core.store import Store
from rf_desktop.sandbox.server import SandboxServer
from tests.e2e.helpers import admin, deals, leads, run_once, sandbox_settings, sign_up, stage_id

pytestmark = pytest.mark.rf_shapes


def _status(store: Store, user: dict) -> str:
    referral = store.get(user["id"])
    assert referral is not None
    return referral.status


def test_lead_converted_and_reached_stage(sandbox: SandboxServer, store: Store) -> None:
    target = stage_id(sandbox, "Demo Scheduled")
    rule = QualificationRule(kind="lead_converted_stage", pipeline_id=1, stage_id=target)
    store.save_settings(sandbox_settings(sandbox, qualification=rule))
    user = sign_up(sandbox, "Lena", "lena@example.com")
    run_once(store, sandbox)
    [lead] = leads(sandbox)

    deal = admin(
        sandbox, "POST", f"/pd/leads/{lead['id']}/convert", {"stage_id": stage_id(sandbox, "Qualified")}
    )
    run_once(store, sandbox)
    assert _status(store, user) == "waiting", "converted, but not yet at the stage"
    assert store.get(user["id"]).deal_id == deal["id"]  # type: ignore[union-attr]

    admin(sandbox, "POST", f"/pd/deals/{deal['id']}/stage", {"stage_id": stage_id(sandbox, "Proposal Made")})
    run_once(store, sandbox)
    assert _status(store, user) == "qualified", "a later stage than the chosen one has passed it"
    assert sandbox.state.rf.qualification_count(user["id"]) == 1


def test_deal_reaches_stage(sandbox: SandboxServer, store: Store) -> None:
    first, target = stage_id(sandbox, "Qualified"), stage_id(sandbox, "Contact Made")
    settings = sandbox_settings(
        sandbox,
        mode="deal",
        pipeline_id=1,
        stage_id=first,
        qualification=QualificationRule(kind="deal_stage", pipeline_id=1, stage_id=target),
    )
    store.save_settings(settings)
    user = sign_up(sandbox, "Omar", "omar@example.com")
    run_once(store, sandbox)
    [deal] = deals(sandbox)
    assert deal["stage_id"] == first and deal["pipeline_id"] == 1
    assert leads(sandbox) == []
    assert _status(store, user) == "waiting"

    admin(sandbox, "POST", f"/pd/deals/{deal['id']}/stage", {"stage_id": target})
    run_once(store, sandbox)
    assert _status(store, user) == "qualified"


def test_deal_won(sandbox: SandboxServer, store: Store) -> None:
    settings = sandbox_settings(
        sandbox,
        mode="deal",
        pipeline_id=1,
        stage_id=stage_id(sandbox, "Qualified"),
        qualification=QualificationRule(kind="deal_won"),
    )
    store.save_settings(settings)
    won = sign_up(sandbox, "Wendy", "wendy@example.com")
    lost = sign_up(sandbox, "Lars", "lars@example.com")
    run_once(store, sandbox)
    by_person = {d["title"]: d for d in deals(sandbox)}
    admin(
        sandbox,
        "POST",
        f"/pd/deals/{by_person['Spring Referral Campaign: Lars']['id']}/status",
        {"status": "lost"},
    )
    admin(
        sandbox,
        "POST",
        f"/pd/deals/{by_person['Spring Referral Campaign: Wendy']['id']}/stage",
        {"stage_id": stage_id(sandbox, "Negotiations Started")},
    )
    run_once(store, sandbox)
    assert _status(store, won) == "waiting", "moving stages is not winning"

    admin(
        sandbox,
        "POST",
        f"/pd/deals/{by_person['Spring Referral Campaign: Wendy']['id']}/status",
        {"status": "won"},
    )
    run_once(store, sandbox)
    assert _status(store, won) == "qualified"
    assert _status(store, lost) == "waiting"
    assert sandbox.state.rf.qualification_count(lost["id"]) == 0


def test_no_rule_means_sent_and_never_qualified(sandbox: SandboxServer, store: Store) -> None:
    store.save_settings(sandbox_settings(sandbox, qualification=QualificationRule(kind="none")))
    user = sign_up(sandbox, "Nia", "nia@example.com")
    run_once(store, sandbox)
    [lead] = leads(sandbox)
    admin(sandbox, "POST", f"/pd/leads/{lead['id']}/convert", {})
    run_once(store, sandbox)
    assert _status(store, user) == "sent"
    assert sandbox.state.rf.qualification_count(user["id"]) == 0
