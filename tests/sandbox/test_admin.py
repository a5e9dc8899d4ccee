"""The sandbox's admin surface at /_sandbox, through real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from rf_desktop.sandbox.pipedrive_seed import custom_field_code
from rf_desktop.sandbox.referral_factory import SEED_REFERRER_CODE
from rf_desktop.sandbox.server import SandboxServer

REFERRAL_CODE_FIELD = custom_field_code("deal", "Referral Code")


def loopback_client(**settings: Any) -> httpx.Client:
    """A client for the sandbox. Plain HTTP on loopback, so no CA bundle is loaded (~60 ms per client)."""
    return httpx.Client(verify=False, timeout=5, **settings)


@pytest.fixture
def admin(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    with loopback_client(base_url=sandbox.admin_url) as client:
        yield client


@pytest.fixture
def rf(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": "Bearer rf-sandbox-token"}
    with loopback_client(base_url=sandbox.rf_base_url, headers=headers) as client:
        yield client


@pytest.fixture
def pd(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    with loopback_client(base_url=sandbox.pd_base_url, headers={"x-api-token": "pd-sandbox-token"}) as client:
        yield client


def person_with(pd: httpx.Client, kind: str) -> dict[str, Any]:
    """A Pipedrive person with a lead or a deal, as rf-desktop would create them."""
    person = pd.post("/api/v2/persons", json={"name": "Zoë Müller"}).json()["data"]
    if kind == "lead":
        response = pd.post("/api/v1/leads", json={"title": "Zoë (referral)", "person_id": person["id"]})
    else:
        response = pd.post("/api/v2/deals", json={"title": "Zoë (referral)", "person_id": person["id"]})
    assert response.status_code in (200, 201)
    return response.json()["data"]


def test_the_index_lists_every_endpoint(admin: httpx.Client) -> None:
    endpoints = admin.get("/").json()["endpoints"]
    assert "POST /rf/signup" in endpoints and "PUT /faults/{api}" in endpoints
    assert any(e.endswith(" /pd/shape") and "PUT" in e for e in endpoints)
    assert len(endpoints) == 22


def test_malformed_json_is_a_400_that_says_so(admin: httpx.Client) -> None:
    response = admin.post("/rf/signup", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"error": "the request body is not valid JSON"}
    assert admin.post("/rf/signup", json=[1, 2]).status_code == 400


# --- Referral Factory ---------------------------------------------------------------------------------


def test_a_sign_up_with_defaults_is_a_plausible_person_invited(admin: httpx.Client, rf: httpx.Client) -> None:
    response = admin.post("/rf/signup")
    assert response.status_code == 201
    user = response.json()
    alice = rf.get(f"/users/{SEED_REFERRER_CODE}").json()["data"]
    assert (user["type"], user["source"], user["referrer_id"], user["campaign_id"]) == (
        "person_invited",
        "Referred",
        alice["id"],
        1,
    )
    assert "+" in user["email"].split("@")[0]
    assert {m["field"] for m in user["meta"]} == {"Last Name", "Company", "Phone", "Plan"}
    assert rf.get(f"/users/{user['id']}").json()["data"] == user


def test_a_sign_up_with_given_details(admin: httpx.Client) -> None:
    body = {
        "campaign_id": 2,
        "referrer_code": "BRUNO002",
        "first_name": "李雷",
        "email": "li.lei@example.com",
        "meta": {"Company": "Lei Tea House"},
    }
    user = admin.post("/rf/signup", json=body).json()
    assert (user["first_name"], user["email"], user["campaign_id"]) == ("李雷", "li.lei@example.com", 2)
    assert user["meta"] == [{"field": "Company", "value": "Lei Tea House"}]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"referrer_code": "NOPE0000"}, 422, "referrer"),
        ({"campaign_id": 99}, 422, "campaign id"),
        ({"campaign_id": "one"}, 422, "campaign_id must be an integer"),
        ({"email": "alice@example.com"}, 422, "already been taken"),
        ({"first_name": ""}, 422, "first_name must be a non-empty string"),
    ],
)
def test_a_bad_sign_up_is_refused_clearly(
    admin: httpx.Client, body: dict[str, Any], status: int, words: str
) -> None:
    response = admin.post("/rf/signup", json=body)
    assert response.status_code == status
    assert words in response.json()["error"]


def test_a_new_referrer_can_then_be_credited(admin: httpx.Client) -> None:
    body = {"campaign_id": 1, "first_name": "Chloé", "email": "chloe@example.com"}
    referrer = admin.post("/rf/referrers", json=body)
    assert referrer.status_code == 201
    assert (referrer.json()["type"], referrer.json()["source"]) == ("person_referring", "Direct")
    invited = admin.post("/rf/signup", json={"referrer_code": referrer.json()["code"]}).json()
    assert invited["referrer_id"] == referrer.json()["id"]


def test_tokens_can_be_revoked_and_regenerated(
    admin: httpx.Client, rf: httpx.Client, pd: httpx.Client
) -> None:
    assert admin.put("/tokens", json={"rf": "rf-second-token"}).json() == {"changed": ["rf"]}
    assert rf.get("/campaigns").status_code == 401
    fresh = rf.get("/campaigns", headers={"Authorization": "Bearer rf-second-token"})
    assert fresh.status_code == 200
    assert pd.get("/api/v2/pipelines").status_code == 200
    admin.put("/tokens", json={"pd": "pd-second-token"})
    assert pd.get("/api/v2/pipelines").status_code == 401
    assert admin.put("/tokens", json={}).status_code == 422


# --- Pipedrive ----------------------------------------------------------------------------------------


def test_a_lead_is_converted_like_the_web_app_does(admin: httpx.Client, pd: httpx.Client) -> None:
    lead = person_with(pd, "lead")
    response = admin.post(f"/pd/leads/{lead['id']}/convert")
    assert response.status_code == 200
    deal = response.json()
    assert (deal["source_lead_id"], deal["person_id"]) == (lead["id"], lead["person_id"])
    assert pd.get(f"/api/v1/leads/{lead['id']}").status_code == 404
    assert admin.post(f"/pd/leads/{lead['id']}/convert").status_code == 404


def test_a_lead_converted_into_a_given_stage(admin: httpx.Client, pd: httpx.Client) -> None:
    lead = person_with(pd, "lead")
    deal = admin.post(f"/pd/leads/{lead['id']}/convert", json={"stage_id": 3}).json()
    assert deal["stage_id"] == 3


def test_a_deal_moves_stage_and_is_won_or_lost(admin: httpx.Client, pd: httpx.Client) -> None:
    deal = person_with(pd, "deal")
    moved = admin.post(f"/pd/deals/{deal['id']}/stage", json={"stage_id": 4})
    assert moved.status_code == 200 and moved.json()["stage_id"] == 4
    assert pd.get(f"/api/v2/deals/{deal['id']}").json()["data"]["stage_id"] == 4
    won = admin.post(f"/pd/deals/{deal['id']}/status", json={"status": "won"}).json()
    assert won["status"] == "won" and won["won_time"]
    lost = admin.post(f"/pd/deals/{deal['id']}/status", json={"status": "lost"}).json()
    assert lost["status"] == "lost" and lost["won_time"] is None


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/pd/deals/{id}/stage", {"stage_id": 999}, 404),
        ("/pd/deals/{id}/stage", {}, 422),
        ("/pd/deals/{id}/status", {"status": "closed"}, 422),
        ("/pd/deals/999/status", {"status": "won"}, 404),
        ("/pd/deals/999/stage", {"stage_id": 1}, 404),
    ],
)
def test_bad_deal_actions_are_refused(
    admin: httpx.Client, pd: httpx.Client, path: str, body: dict[str, Any], status: int
) -> None:
    deal = person_with(pd, "deal")
    response = admin.post(path.format(id=deal["id"]), json=body)
    assert response.status_code == status
    assert response.json()["error"]


def test_deleting_a_custom_field(admin: httpx.Client, pd: httpx.Client) -> None:
    response = admin.delete(f"/pd/fields/deal/{REFERRAL_CODE_FIELD}")
    assert response.status_code == 200
    codes = [f["field_code"] for f in pd.get("/api/v2/dealFields", params={"limit": 500}).json()["data"]]
    assert REFERRAL_CODE_FIELD not in codes
    assert admin.delete(f"/pd/fields/deal/{REFERRAL_CODE_FIELD}").status_code == 404
    assert admin.delete("/pd/fields/deal/title").status_code == 404  # built-in fields cannot go
    assert admin.delete("/pd/fields/org/abc").status_code == 422


@pytest.mark.parametrize("with_fields", [True, False])
def test_seeding_with_or_without_the_referral_fields(
    admin: httpx.Client, sandbox: SandboxServer, with_fields: bool
) -> None:
    admin.post("/rf/signup")
    assert admin.post("/seed", json={"with_referral_fields": with_fields}).status_code == 200
    with sandbox.state.lock:
        assert (REFERRAL_CODE_FIELD in sandbox.state.pd.fields["deal"]) is with_fields
        assert len(sandbox.state.rf.users) == 2
    assert admin.post("/seed", json={"with_referral_fields": "no"}).status_code == 422


def test_the_pipedrive_plan_and_budget(admin: httpx.Client, pd: httpx.Client) -> None:
    usage = admin.put("/pd/plan", json={"plan": "premium", "seats": 2}).json()
    assert (usage["plan"], usage["seats"], usage["daily_budget"]) == ("premium", 2, 300_000)
    assert admin.put("/pd/plan", json={"plan": "platinum"}).status_code == 422
    assert admin.put("/pd/budget", json={"remaining": 0}).json()["tokens_used_today"] == 300_000
    exhausted = pd.get("/api/v2/pipelines")
    assert exhausted.status_code == 429
    assert "daily" in exhausted.json()["error"]
    assert admin.put("/pd/budget", json={"remaining": -1}).status_code == 422


# --- faults, clock, state, stats, reset, demo ---------------------------------------------------------


def test_faults_are_set_and_read_per_api(admin: httpx.Client, rf: httpx.Client) -> None:
    config = {"rate_5xx": 1.0, "after_commit_share": 0.0, "only_paths": ["/campaigns"]}
    stored = admin.put("/faults/rf", json=config).json()
    assert stored["rate_5xx"] == 1.0 and stored["timeout_seconds"] == 30
    assert admin.get("/faults").json()["rf"] == stored
    assert admin.get("/faults").json()["pd"]["rate_5xx"] == 0
    assert rf.get("/campaigns").status_code >= 500
    bad = admin.put("/faults/rf", json={"rate_5xx": 2})
    assert bad.status_code == 422 and "rate_5xx" in bad.json()["error"]
    assert admin.put("/faults/crm", json={}).status_code == 404


def test_the_clock_moves_forward_only(admin: httpx.Client, sandbox: SandboxServer) -> None:
    before = sandbox.state.clock.now()
    now = admin.post("/clock/advance", json={"seconds": 86_400}).json()["now"]
    assert now[:10] == (before.date().fromordinal(before.date().toordinal() + 1)).isoformat()
    assert admin.post("/clock/advance", json={"seconds": -1}).status_code == 422
    assert admin.post("/clock/advance", json={"seconds": "soon"}).status_code == 422


def test_the_state_shows_everything(admin: httpx.Client, pd: httpx.Client) -> None:
    admin.post("/rf/signup")
    person_with(pd, "deal")
    state = admin.get("/state").json()
    assert len(state["rf"]["users"]) == 3 and len(state["rf"]["campaigns"]) == 3
    assert len(state["pd"]["deals"]) == 1 and state["pd"]["stages"]
    assert set(state["faults"]) == {"rf", "pd"}
    assert state["demo"] == {"enabled": False, "speed": 1.0}
    assert "rf-sandbox-token" in state["rf"]["token"]


def test_stats_count_requests_rejects_tokens_and_qualifications(
    admin: httpx.Client, rf: httpx.Client, pd: httpx.Client
) -> None:
    user = admin.post("/rf/signup").json()
    rf.put("/users/qualification", json={"id": user["id"], "qualified": True})
    rf.get("/campaigns", headers={"Authorization": "Bearer nope"})
    pd.get("/api/v2/pipelines")
    stats = admin.get("/stats").json()
    assert stats["rf"]["requests"] == 2
    assert stats["rf"]["rejects"] == {"401": 1}
    assert stats["rf"]["qualifications"] == 1
    assert stats["pd"]["requests"] == 1
    assert stats["pd"]["usage"]["tokens_used_today"] > 0


def test_reset_forgets_everything(admin: httpx.Client, sandbox: SandboxServer) -> None:
    admin.post("/rf/signup")
    admin.put("/faults/pd", json={"rate_429": 0.5})
    admin.put("/tokens", json={"rf": "another"})
    admin.put("/demo", json={"enabled": True, "speed": 2})
    assert admin.post("/reset").json() == {"reset": True}
    state = admin.get("/state").json()
    assert len(state["rf"]["users"]) == 2
    assert state["faults"]["pd"]["rate_429"] == 0
    assert state["rf"]["token"] == "rf-sandbox-token"
    assert state["demo"] == {"enabled": False, "speed": 1.0}


def test_the_demo_switch(admin: httpx.Client, sandbox: SandboxServer) -> None:
    assert admin.put("/demo", json={"enabled": True, "speed": 0.5}).json() == {"enabled": True, "speed": 0.5}
    assert (sandbox.state.demo_enabled, sandbox.state.demo_speed) == (True, 0.5)
    assert admin.put("/demo", json={"enabled": False}).json() == {"enabled": False, "speed": 0.5}
    assert admin.put("/demo", json={"speed": 0}).status_code == 422
    assert admin.put("/demo", json={"enabled": "yes"}).status_code == 422


def test_the_referral_factory_shape_is_set_read_and_reset(admin: httpx.Client) -> None:
    assert admin.get("/rf/shape").json() == {
        "order": "oldest_first",
        "envelope": "laravel",
        "per_page": "honoured",
        "requalify": "unchanged",
    }
    changed = admin.put("/rf/shape", json={"order": "newest_first", "requalify": "refused"}).json()
    assert (changed["order"], changed["envelope"], changed["requalify"]) == ("newest_first", "laravel", "refused")
    assert admin.put("/rf/shape", json={"order": "random"}).status_code == 422
    refused = admin.put("/rf/shape", json={"per_pages": "ignored"})
    assert refused.status_code == 422 and "per_pages" in refused.json()["error"]
    admin.post("/reset")
    assert admin.get("/rf/shape").json()["order"] == "oldest_first"


def test_a_referral_qualified_from_the_dashboard_is_not_an_api_call(admin: httpx.Client) -> None:
    user = admin.post("/rf/signup").json()
    qualified = admin.post(f"/rf/users/{user['id']}/qualify").json()
    assert qualified["qualified_at"] is not None
    stats = admin.get("/stats").json()["rf"]
    assert (stats["qualifications"], stats["qualification_calls"]) == (1, 0)
    assert admin.post("/rf/users/999999/qualify").status_code == 404


def test_every_qualification_call_is_counted_whatever_its_answer(admin: httpx.Client, rf: httpx.Client) -> None:
    user = admin.post("/rf/signup").json()
    for _ in range(2):
        rf.put("/users/qualification", json={"id": user["id"], "qualified": True})
    stats = admin.get("/stats").json()["rf"]
    assert (stats["qualifications"], stats["qualification_calls"]) == (1, 2)
