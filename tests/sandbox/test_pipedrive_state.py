"""The simulated Pipedrive company: its seed, its persistence, and its web-app pages."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from rf_desktop.sandbox.clock import Clock
from rf_desktop.sandbox.pipedrive import PipedriveState
from rf_desktop.sandbox.pipedrive_seed import custom_field_code, lead_label_id
from rf_desktop.sandbox.server import SandboxServer

TOKEN = "pd-sandbox-token"
REFERRAL_CODE = custom_field_code("deal", "Referral Code")


@pytest.fixture
def pd(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.pd_base_url, headers={"x-api-token": TOKEN}, timeout=10) as client:
        yield client


def test_the_seed_is_stable_and_optionally_without_referral_fields() -> None:
    with_fields, without = PipedriveState(Clock()), PipedriveState(Clock())
    with_fields.seed()
    without.seed(with_referral_fields=False)
    names = {field["field_name"] for field in with_fields.custom_fields("deal").values()}
    assert {"Referral Code", "Referral Link", "Plan Interest", "Interests", "Start Time"} <= names
    assert REFERRAL_CODE in with_fields.fields["deal"] and REFERRAL_CODE not in without.fields["deal"]
    assert custom_field_code("deal", "Plan Interest") in without.fields["deal"]
    assert [label["id"] for label in with_fields.lead_labels.values()] == [
        lead_label_id(name) for name in ("Hot", "Warm", "Cold")
    ]
    assert [p["name"] for p in with_fields.pipelines.values()] == ["Sales pipeline", "Partnerships"]
    with_fields.reset()
    assert with_fields.snapshot()["deal_fields"] == [] and with_fields.token == "pd-sandbox-token"


def test_the_state_survives_a_round_trip_through_json(sandbox: SandboxServer, pd: httpx.Client) -> None:
    person = pd.post("/api/v2/persons", json={"name": "Jane Doe"}).json()["data"]
    lead = pd.post("/api/v1/leads", json={"title": "Referral", "person_id": person["id"], REFERRAL_CODE: "A"})
    pd.post("/api/v2/deals", json={"title": "Deal", "custom_fields": {REFERRAL_CODE: "B"}})
    with sandbox.state.lock:
        sandbox.state.pd.convert_lead(lead.json()["data"]["id"])
        saved = json.loads(json.dumps(sandbox.state.pd.to_json()))
        original = sandbox.state.pd.snapshot()
    restored = PipedriveState(Clock())
    restored.from_json(saved)
    copy = restored.snapshot()
    for key in ("persons", "leads", "deals", "person_fields", "deal_fields", "pipelines", "stages"):
        assert copy[key] == original[key], key
    assert restored.limiter.tokens_used_today == original["usage"]["tokens_used_today"] > 0
    assert restored.insert_person({"name": "Next"})["id"] == person["id"] + 1


def test_web_pages_show_the_records_and_escape_their_values(sandbox: SandboxServer, pd: httpx.Client) -> None:
    hostile = "<script>alert('x')</script>"
    person = pd.post("/api/v2/persons", json={"name": hostile, "emails": [{"value": "a@example.com"}]}).json()
    lead = pd.post(
        "/api/v1/leads",
        json={"title": "Lead & co", "person_id": person["data"]["id"], REFERRAL_CODE: "<b>CODE</b>"},
    ).json()["data"]
    pages = {
        "person": httpx.get(f"{sandbox.pd_base_url}/person/{person['data']['id']}"),
        "lead": httpx.get(f"{sandbox.pd_base_url}/leads/inbox/{lead['id']}"),
    }
    for page in pages.values():
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "<script>" not in page.text and "&lt;script&gt;" in page.text
    assert "&lt;b&gt;CODE&lt;/b&gt;" in pages["lead"].text and "Lead &amp; co" in pages["lead"].text
    with sandbox.state.lock:
        deal = sandbox.state.pd.convert_lead(lead["id"])
    converted = httpx.get(f"{sandbox.pd_base_url}/leads/inbox/{lead['id']}").text
    assert f'href="/pd/deal/{deal["id"]}"' in converted
    deal_page = httpx.get(f"{sandbox.pd_base_url}/deal/{deal['id']}").text
    assert "Sales pipeline" in deal_page and f'href="/pd/leads/inbox/{lead["id"]}"' in deal_page
    assert httpx.get(f"{sandbox.pd_base_url}/deal/999").status_code == 404
    assert httpx.get(f"{sandbox.pd_base_url}/person/not-a-number").status_code == 404
