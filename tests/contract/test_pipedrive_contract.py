"""Every simulated Pipedrive endpoint rf-desktop uses, over real HTTP, with each request and response
validated against Pipedrive's official OpenAPI specs (the `pd` client fails the test on any departure)."""

from __future__ import annotations

import httpx
import pytest
from starlette.routing import Route

from rf_desktop.core.token_costs import TOKEN_COSTS
from rf_desktop.sandbox import pipedrive
from rf_desktop.sandbox.pipedrive_seed import custom_field_code, lead_label_id
from rf_desktop.sandbox.server import SandboxServer

REFERRAL_CODE = custom_field_code("deal", "Referral Code")
PLAN_INTEREST = custom_field_code("deal", "Plan Interest")
EXPECTED_REVENUE = custom_field_code("deal", "Expected Revenue")
PREFERRED_CONTACT = custom_field_code("person", "Preferred Contact")


def _data(response: httpx.Response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is True
    return body["data"]


def _person(pd: httpx.Client, name: str = "Jane Doe", email: str = "jane@example.com") -> dict:
    return _data(
        pd.post("/api/v2/persons", json={"name": name, "emails": [{"value": email, "primary": True}]})
    )


def _option_id(pd: httpx.Client, entity: str, code: str, label: str) -> int:
    field = _data(pd.get(f"/api/v2/{entity}Fields/{code}"))
    return next(option["id"] for option in field["options"] if option["label"] == label)


def test_users_me_on_both_v1_prefixes_and_the_users_list(pd: httpx.Client) -> None:
    for path in ("/api/v1/users/me", "/v1/users/me"):
        me = _data(pd.get(path))
        assert (me["id"], me["name"], me["company_domain"], me["default_currency"]) == (
            1,
            "Sam Owner",
            "sandbox-bakery",
            "EUR",
        )
    users = _data(pd.get("/api/v1/users"))
    assert [(u["id"], u["name"], u["is_you"]) for u in users] == [
        (1, "Sam Owner", True),
        (2, "Riley Sales", False),
    ]


def test_every_endpoint_with_a_token_cost_is_served(sandbox: SandboxServer) -> None:
    served = {
        (method, route.path)
        for route in pipedrive.routes(sandbox.state)
        if isinstance(route, Route)
        for method in route.methods or ()
    }
    assert set(TOKEN_COSTS) <= served


@pytest.mark.parametrize("entity", ["person", "deal"])
def test_v2_fields_list_get_add_delete(pd: httpx.Client, entity: str) -> None:
    codes, cursor = [], None
    while True:
        params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        response = pd.get(f"/api/v2/{entity}Fields", params=params)
        codes += [field["field_code"] for field in _data(response)]
        cursor = response.json()["additional_data"]["next_cursor"]
        if cursor is None:
            break
    assert len(codes) == len(set(codes)) > 7
    assert "name" in codes if entity == "person" else "title" in codes

    created = _data(
        pd.post(
            f"/api/v2/{entity}Fields",
            json={
                "field_name": "Source",
                "field_type": "set",
                "options": [{"label": "Web"}, {"label": "Fair"}],
            },
        )
    )
    assert len(created["field_code"]) == 40 and created["is_custom_field"] is True
    assert [o["label"] for o in created["options"]] == ["Web", "Fair"]
    one = _data(
        pd.get(f"/api/v2/{entity}Fields/{created['field_code']}", params={"include_fields": "ui_visibility"})
    )
    assert one["field_name"] == "Source" and "ui_visibility" in one
    assert (
        _data(pd.delete(f"/api/v2/{entity}Fields/{created['field_code']}"))["field_code"]
        == created["field_code"]
    )
    assert pd.get(f"/api/v2/{entity}Fields/{created['field_code']}").status_code == 404


def test_lead_fields_and_labels(pd: httpx.Client) -> None:
    fields = _data(pd.get("/api/v1/leadFields", params={"start": 0, "limit": 500}))
    keys = {field["key"] for field in fields}
    assert {"title", "value", "person_id", "label_ids", REFERRAL_CODE, PLAN_INTEREST} <= keys
    labels = _data(pd.get("/v1/leadLabels"))
    assert [label["name"] for label in labels] == ["Hot", "Warm", "Cold"]
    assert labels[0]["id"] == lead_label_id("Hot")


def test_pipelines_and_stages(pd: httpx.Client) -> None:
    pipelines = _data(pd.get("/api/v2/pipelines", params={"sort_by": "id", "sort_direction": "asc"}))
    assert [p["name"] for p in pipelines] == ["Sales pipeline", "Partnerships"]
    assert _data(pd.get(f"/api/v2/pipelines/{pipelines[1]['id']}"))["name"] == "Partnerships"
    stages = _data(
        pd.get("/api/v2/stages", params={"pipeline_id": pipelines[0]["id"], "sort_by": "order_nr"})
    )
    assert [s["name"] for s in stages] == [
        "Qualified",
        "Contact Made",
        "Demo Scheduled",
        "Proposal Made",
        "Negotiations Started",
    ]
    assert _data(pd.get(f"/api/v2/stages/{stages[2]['id']}"))["name"] == "Demo Scheduled"
    assert len(_data(pd.get("/api/v2/stages"))) == 8


def test_persons_create_read_update_search_delete(pd: httpx.Client) -> None:
    contact = _option_id(pd, "person", PREFERRED_CONTACT, "WhatsApp")
    person = _data(
        pd.post(
            "/api/v2/persons",
            json={
                "first_name": "Zoë",
                "last_name": "Müller",
                "owner_id": 2,
                "visible_to": 3,
                "label_ids": [1],
                "emails": [{"value": "zoe@example.com", "primary": True, "label": "work"}],
                "phones": [{"value": "+49 30 1234567"}],
                "custom_fields": {PREFERRED_CONTACT: contact},
            },
        )
    )
    assert person["name"] == "Zoë Müller" and person["custom_fields"][PREFERRED_CONTACT] == contact
    assert _data(pd.get("/api/v2/persons", params={"owner_id": 2}))[0]["id"] == person["id"]
    labelled = _data(pd.get(f"/api/v2/persons/{person['id']}", params={"include_option_labels": "true"}))
    assert labelled["custom_fields"][PREFERRED_CONTACT] == {"id": contact, "label": "WhatsApp"}
    updated = _data(
        pd.patch(
            f"/api/v2/persons/{person['id']}",
            json={"emails": [{"value": "zoe@bakery.example", "primary": True}]},
        )
    )
    assert [e["value"] for e in updated["emails"]] == ["zoe@bakery.example"]
    hits = _data(
        pd.get(
            "/api/v2/persons/search",
            params={"term": "ZOE@bakery.example", "fields": "email", "exact_match": "true"},
        )
    )
    assert [hit["item"]["id"] for hit in hits["items"]] == [person["id"]]
    assert _data(pd.delete(f"/api/v2/persons/{person['id']}")) == {"id": person["id"]}


def test_leads_create_list_update_archive_delete(pd: httpx.Client) -> None:
    person = _person(pd)
    hot = lead_label_id("Hot")
    lead = _data(
        pd.post(
            "/api/v1/leads",
            json={
                "title": "Jane (referral)",
                "person_id": person["id"],
                "owner_id": 1,
                "label_ids": [hot],
                "value": {"amount": 1500, "currency": "EUR"},
                "expected_close_date": "2026-12-31",
                "visible_to": "3",
                REFERRAL_CODE: "JANE-42",
                PLAN_INTEREST: _option_id(pd, "deal", PLAN_INTEREST, "Team"),
                EXPECTED_REVENUE: 900,
                f"{EXPECTED_REVENUE}_currency": "EUR",
            },
        ),
        201,
    )
    assert lead["source_name"] == lead["origin"] == "API" and lead["is_archived"] is False
    assert lead[REFERRAL_CODE] == "JANE-42" and lead[f"{EXPECTED_REVENUE}_currency"] == "EUR"
    listed = _data(pd.get("/api/v1/leads", params={"person_id": person["id"], "sort": "update_time ASC"}))
    assert [item["id"] for item in listed] == [lead["id"]]
    patched = _data(pd.patch(f"/api/v1/leads/{lead['id']}", json={"title": "Jane", "is_archived": True}))
    assert patched["is_archived"] is True
    assert _data(pd.get("/api/v1/leads")) == []
    assert [item["id"] for item in _data(pd.get("/api/v1/leads/archived"))] == [lead["id"]]
    assert _data(pd.get(f"/v1/leads/{lead['id']}"))["title"] == "Jane"
    assert _data(pd.delete(f"/api/v1/leads/{lead['id']}")) == {"id": lead["id"]}
    missing = pd.get(f"/api/v1/leads/{lead['id']}")
    assert missing.status_code == 404 and missing.json()["error"] == "requested lead not found"


def test_deals_create_list_update_search_delete(pd: httpx.Client) -> None:
    person = _person(pd)
    interests = _custom_set(pd)
    deal = _data(
        pd.post(
            "/api/v2/deals",
            json={
                "title": "Jane (referral)",
                "person_id": person["id"],
                "stage_id": 7,
                "value": 1500,
                "currency": "EUR",
                "expected_close_date": "2026-12-31",
                "visible_to": 3,
                "label_ids": [1],
                "custom_fields": {
                    REFERRAL_CODE: "JANE-42",
                    custom_field_code("deal", "Interests"): interests,
                },
            },
        )
    )
    assert (deal["pipeline_id"], deal["stage_id"]) == (2, 7)
    listed = _data(
        pd.get(
            "/api/v2/deals",
            params={
                "person_id": person["id"],
                "status": "open,won",
                "sort_by": "update_time",
                "sort_direction": "desc",
                "include_fields": "source_lead_id",
                "custom_fields": REFERRAL_CODE,
                "limit": 500,
            },
        )
    )
    assert [d["id"] for d in listed] == [deal["id"]] and listed[0]["custom_fields"] == {
        REFERRAL_CODE: "JANE-42"
    }
    won = _data(pd.patch(f"/api/v2/deals/{deal['id']}", json={"status": "won", "stage_id": 3}))
    assert (won["status"], won["pipeline_id"]) == ("won", 1) and won["won_time"]
    hits = _data(
        pd.get(
            "/api/v2/deals/search",
            params={"term": "JANE-42", "fields": "custom_fields", "exact_match": "true"},
        )
    )
    assert [hit["item"]["id"] for hit in hits["items"]] == [deal["id"]]
    assert _data(pd.get(f"/api/v2/deals/{deal['id']}"))["status"] == "won"
    assert _data(pd.delete(f"/api/v2/deals/{deal['id']}")) == {"id": deal["id"]}
    assert _data(pd.get("/api/v2/deals", params={"status": "deleted"}))[0]["is_deleted"] is True


def _custom_set(pd: httpx.Client) -> list[int]:
    field = _data(pd.get(f"/api/v2/dealFields/{custom_field_code('deal', 'Interests')}"))
    return [option["id"] for option in field["options"][:2]]


def test_lead_search_and_conversion(pd: httpx.Client) -> None:
    person = _person(pd)
    lead = _data(
        pd.post(
            "/api/v1/leads",
            json={"title": "Jane (referral)", "person_id": person["id"], REFERRAL_CODE: "JANE-42"},
        ),
        201,
    )
    hits = _data(pd.get("/api/v2/leads/search", params={"term": "JANE-42", "person_id": person["id"]}))
    assert [hit["item"]["id"] for hit in hits["items"]] == [lead["id"]]
    conversion = _data(pd.post(f"/api/v2/leads/{lead['id']}/convert/deal", json={"stage_id": 2}))
    status = _data(pd.get(f"/api/v2/leads/{lead['id']}/convert/status/{conversion['conversion_id']}"))
    assert status["status"] == "completed"
    deal = _data(pd.get(f"/api/v2/deals/{status['deal_id']}", params={"include_fields": "source_lead_id"}))
    assert deal["source_lead_id"] == lead["id"] and deal["custom_fields"][REFERRAL_CODE] == "JANE-42"
    again = pd.post(f"/api/v2/leads/{lead['id']}/convert/deal", json={})
    assert again.status_code == 404 and again.json()["error"] == "Entity was not found"


def test_an_asynchronous_conversion_validates_at_every_step(sandbox: SandboxServer, pd: httpx.Client) -> None:
    with sandbox.state.lock:
        sandbox.state.pd.conversion_mode = "async"
    person = _person(pd)
    lead = _data(pd.post("/api/v1/leads", json={"title": "Jane", "person_id": person["id"]}), 201)
    conversion = _data(pd.post(f"/api/v2/leads/{lead['id']}/convert/deal", json={}))
    status_path = f"/api/v2/leads/{lead['id']}/convert/status/{conversion['conversion_id']}"
    assert _data(pd.get(f"/api/v1/leads/{lead['id']}"))["id"] == lead["id"], "not converted yet"
    steps = [_data(pd.get(status_path)) for _ in range(3)]
    assert [step["status"] for step in steps] == ["running", "completed", "completed"]
    assert "deal_id" not in steps[0] and steps[1]["deal_id"] == steps[2]["deal_id"]
    assert pd.get(f"/api/v1/leads/{lead['id']}").status_code == 404


def test_answers_without_rate_limit_headers_validate(sandbox: SandboxServer, pd: httpx.Client) -> None:
    with sandbox.state.lock:
        sandbox.state.pd.limiter.rate_limit_headers = False
        sandbox.state.pd.set_daily_remaining(2)
    answered = pd.get("/api/v1/users/me")
    exhausted = pd.get("/api/v1/users/me")
    assert (answered.status_code, exhausted.status_code) == (200, 429)
    for response in (answered, exhausted):
        assert not [name for name in response.headers if name.startswith(("x-ratelimit", "x-daily", "retry"))]


def test_error_answers_match_the_documented_shapes(
    sandbox: SandboxServer, validating_clients, pd: httpx.Client
) -> None:
    """401 (documented on users/me), 404 (documented on leads and conversion), 400 and 429 (the docs'
    envelopes) all validate."""
    stranger = validating_clients.client(headers={"x-api-token": "not-the-token"})
    unauthorized = stranger.get("/api/v1/users/me")
    assert unauthorized.status_code == 401 and unauthorized.json()["error"] == "unauthorized access"
    refused = pd.post("/api/v2/deals", json={"title": "x", REFERRAL_CODE: "y"})
    assert refused.status_code == 400 and refused.json()["code"] == "ERR_SCHEMA_VALIDATION_FAILED"
    assert pd.get("/api/v1/leads/7d0d7e2c-3c52-4a2b-9f5e-2f7c7c1d2a11").status_code == 404
    missing = pd.get(
        "/api/v2/leads/7d0d7e2c-3c52-4a2b-9f5e-2f7c7c1d2a11/convert/status/"
        "0b5f3b0e-1d4c-4d7a-9d7e-6c1f0a2b3c4d"
    )
    assert missing.status_code == 404
    with sandbox.state.lock:
        sandbox.state.pd.set_daily_remaining(0)
    exhausted = pd.get("/api/v2/pipelines")
    assert exhausted.status_code == 429 and exhausted.json()["error"] == "daily request budget exceeded"
