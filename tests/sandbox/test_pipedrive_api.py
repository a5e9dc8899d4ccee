"""The simulated Pipedrive's behaviour over real HTTP: auth, pagination, v2 strictness, lead conversion,
person search, deal stages and statuses."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from rf_desktop.sandbox.pipedrive_seed import custom_field_code
from rf_desktop.sandbox.server import SandboxServer

TOKEN = "pd-sandbox-token"
REFERRAL_CODE = custom_field_code("deal", "Referral Code")
PLAN_INTEREST = custom_field_code("deal", "Plan Interest")
UNAUTHORIZED = {"success": False, "error": "unauthorized access", "errorCode": 401}


@pytest.fixture
def pd(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.pd_base_url, headers={"x-api-token": TOKEN}, timeout=10) as client:
        yield client


def data(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()["data"]


def new_person(pd: httpx.Client, name: str = "Jane Doe", email: str = "jane@example.com") -> dict[str, Any]:
    return data(pd.post("/api/v2/persons", json={"name": name, "emails": [{"value": email}]}))


def new_lead(pd: httpx.Client, person_id: int, **custom: Any) -> dict[str, Any]:
    return data(pd.post("/api/v1/leads", json={"title": "Referral", "person_id": person_id, **custom}), 201)


def option_id(sandbox: SandboxServer, code: str, label: str) -> int:
    field = sandbox.state.pd.fields["deal"][code]
    return next(option["id"] for option in field["options"] if option["label"] == label)


# --- auth -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"x-api-token": "pd-wrong-token"}], ids=["missing", "wrong"])
def test_a_missing_or_wrong_token_gets_401_and_costs_nothing(sandbox: SandboxServer, headers: dict) -> None:
    for path in ("/api/v2/deals", "/api/v1/leads", "/v1/users/me"):
        response = httpx.get(sandbox.pd_base_url + path, headers=headers)
        assert (response.status_code, response.json()) == (401, UNAUTHORIZED)
    assert sandbox.state.pd.limiter.tokens_used_today == 0


def test_the_legacy_api_token_query_parameter_is_accepted(sandbox: SandboxServer) -> None:
    response = httpx.get(sandbox.pd_base_url + "/v1/users/me", params={"api_token": TOKEN})
    assert response.status_code == 200 and response.json()["data"]["company_domain"] == "sandbox-bakery"


def test_a_regenerated_token_disables_the_old_one(sandbox: SandboxServer, pd: httpx.Client) -> None:
    assert pd.get("/api/v2/pipelines").status_code == 200
    with sandbox.state.lock:
        sandbox.state.pd.token = "pd-regenerated-token"
    assert pd.get("/api/v2/pipelines").status_code == 401
    fresh = httpx.get(
        sandbox.pd_base_url + "/api/v2/pipelines", headers={"x-api-token": "pd-regenerated-token"}
    )
    assert fresh.status_code == 200


# --- pagination -----------------------------------------------------------------------------------


def test_v2_cursor_pagination_returns_every_item_once_and_ends_with_a_null_cursor(pd: httpx.Client) -> None:
    for i in range(7):
        new_person(pd, f"Person {i}", f"p{i}@example.com")
    seen, sizes, cursor = [], [], None
    while True:
        params = {
            "limit": 3,
            "sort_by": "id",
            "sort_direction": "desc",
            **({"cursor": cursor} if cursor else {}),
        }
        response = pd.get("/api/v2/persons", params=params)
        page = data(response)
        seen += [person["id"] for person in page]
        sizes.append(len(page))
        cursor = response.json()["additional_data"]["next_cursor"]
        if cursor is None:
            break
    assert seen == [7, 6, 5, 4, 3, 2, 1] and sizes == [3, 3, 1]


def test_a_cursor_keeps_its_place_when_items_are_added(pd: httpx.Client) -> None:
    for i in range(4):
        new_person(pd, f"Person {i}", f"p{i}@example.com")
    first = pd.get("/api/v2/persons", params={"limit": 2})
    new_person(pd, "Late Comer", "late@example.com")
    rest = data(
        pd.get(
            "/api/v2/persons", params={"limit": 10, "cursor": first.json()["additional_data"]["next_cursor"]}
        )
    )
    assert [p["id"] for p in data(first)] == [1, 2] and [p["id"] for p in rest] == [3, 4, 5]


@pytest.mark.parametrize(
    "params",
    [{"limit": 501}, {"limit": 0}, {"limit": "ten"}, {"cursor": "not-a-cursor"}, {"sort_by": "title"}],
)
def test_bad_v2_paging_parameters_are_refused(pd: httpx.Client, params: dict) -> None:
    response = pd.get("/api/v2/deals", params=params)
    assert response.status_code == 400 and response.json()["code"] == "ERR_SCHEMA_VALIDATION_FAILED"


def test_v1_offset_pagination_reaches_the_end(pd: httpx.Client) -> None:
    person = new_person(pd)
    created = [new_lead(pd, person["id"])["id"] for _ in range(5)]
    seen, start, paginations = [], 0, []
    while True:
        response = pd.get("/api/v1/leads", params={"start": start, "limit": 2})
        seen += [lead["id"] for lead in data(response)]
        pagination = response.json()["additional_data"]["pagination"]
        paginations.append(pagination)
        if not pagination["more_items_in_collection"]:
            break
        start = pagination["next_start"]
    assert seen == created
    assert [p["start"] for p in paginations] == [0, 2, 4] and "next_start" not in paginations[-1]


# --- v2 strictness --------------------------------------------------------------------------------


def test_a_custom_field_key_at_the_top_level_of_a_v2_deal_is_refused(pd: httpx.Client) -> None:
    expected = (
        f"Validation failed: {REFERRAL_CODE}: Parameter '{REFERRAL_CODE}' is not allowed for this request"
    )
    created = pd.post("/api/v2/deals", json={"title": "Referral", REFERRAL_CODE: "ABC"})
    assert created.status_code == 400
    assert (created.json()["error"], created.json()["code"]) == (expected, "ERR_SCHEMA_VALIDATION_FAILED")
    deal = data(pd.post("/api/v2/deals", json={"title": "Referral"}))
    patched = pd.patch(f"/api/v2/deals/{deal['id']}", json={REFERRAL_CODE: "ABC"})
    assert patched.status_code == 400 and patched.json()["error"] == expected
    assert data(pd.get(f"/api/v2/deals/{deal['id']}"))["custom_fields"][REFERRAL_CODE] is None


def test_a_body_that_is_not_json_gets_each_versions_400(pd: httpx.Client) -> None:
    headers = {"content-type": "application/json"}
    v2 = pd.post("/api/v2/deals", content=b"{title: nope", headers=headers)
    v1 = pd.post("/api/v1/leads", content=b"{title: nope", headers=headers)
    assert (v2.status_code, v2.json()["code"]) == (400, "ERR_SCHEMA_VALIDATION_FAILED")
    assert v1.status_code == 400 and "code" not in v1.json() and v1.json()["success"] is False


def test_v2_does_not_coerce_strings_or_numbers(pd: httpx.Client) -> None:
    response = pd.post("/api/v2/deals", json={"title": "Referral", "value": "1500", "visible_to": "3"})
    assert response.status_code == 400
    assert "value: Expected number, received string" in response.json()["error"]
    assert "visible_to: Expected number, received string" in response.json()["error"]


def test_a_deleted_custom_field_is_refused_by_name(sandbox: SandboxServer, pd: httpx.Client) -> None:
    person = new_person(pd)
    with sandbox.state.lock:
        sandbox.state.pd.delete_field("deal", REFERRAL_CODE)
    codes = [f["field_code"] for f in data(pd.get("/api/v2/dealFields", params={"limit": 500}))]
    assert REFERRAL_CODE not in codes
    deal = pd.post("/api/v2/deals", json={"title": "Referral", "custom_fields": {REFERRAL_CODE: "ABC"}})
    assert deal.status_code == 400 and deal.json()["code"] == "ERR_SCHEMA_VALIDATION_FAILED"
    assert f"custom_fields.{REFERRAL_CODE}" in deal.json()["error"]
    lead = pd.post(
        "/api/v1/leads", json={"title": "Referral", "person_id": person["id"], REFERRAL_CODE: "ABC"}
    )
    assert lead.status_code == 400 and REFERRAL_CODE in lead.json()["error"]


def test_updated_since_wants_whole_seconds(pd: httpx.Client) -> None:
    refused = pd.get("/api/v2/deals", params={"updated_since": "2026-01-01T10:20:00.123Z"})
    assert refused.status_code == 400
    assert refused.json()["error"] == (
        "Validation failed: updated_since: '2026-01-01T10:20:00.123Z' is not a valid datetime"
    )
    assert pd.get("/api/v2/deals", params={"updated_since": "2026-01-01T10:20:00Z"}).status_code == 200
    assert pd.get("/api/v2/persons", params={"updated_until": "2026-01-01T10:20:00+02:00"}).status_code == 200


def test_updated_since_is_inclusive_and_updated_until_exclusive(
    sandbox: SandboxServer, pd: httpx.Client
) -> None:
    older = data(pd.post("/api/v2/deals", json={"title": "Older"}))
    sandbox.state.clock.advance(60)
    newer = data(pd.post("/api/v2/deals", json={"title": "Newer"}))
    since = data(pd.get("/api/v2/deals", params={"updated_since": newer["update_time"]}))
    until = data(pd.get("/api/v2/deals", params={"updated_until": newer["update_time"]}))
    assert [d["id"] for d in since] == [newer["id"]] and [d["id"] for d in until] == [older["id"]]


# --- lead conversion ------------------------------------------------------------------------------


def _assert_converted(pd: httpx.Client, lead: dict[str, Any], deal_id: int, team: int) -> None:
    missing = pd.get(f"/api/v1/leads/{lead['id']}")
    assert missing.status_code == 404 and missing.json() == {
        "success": False,
        "error": "requested lead not found",
        "error_info": "Object was not found.",
        "data": None,
        "additional_data": None,
    }
    assert lead["id"] not in [item["id"] for item in data(pd.get("/api/v1/leads"))]
    assert data(pd.get("/api/v1/leads/archived")) == []
    plain = data(pd.get(f"/api/v2/deals/{deal_id}"))
    assert "source_lead_id" not in plain
    assert (
        plain["custom_fields"][REFERRAL_CODE] == "JANE-42" and plain["custom_fields"][PLAN_INTEREST] == team
    )
    assert (plain["title"], plain["person_id"], plain["value"]) == (lead["title"], lead["person_id"], 1500)
    listed = data(pd.get("/api/v2/deals", params={"include_fields": "source_lead_id"}))
    assert [(d["id"], d["source_lead_id"]) for d in listed] == [(deal_id, lead["id"])]


def test_converting_a_lead_through_the_api(sandbox: SandboxServer, pd: httpx.Client) -> None:
    team = option_id(sandbox, PLAN_INTEREST, "Team")
    lead = new_lead(
        pd,
        new_person(pd)["id"],
        value={"amount": 1500, "currency": "EUR"},
        **{REFERRAL_CODE: "JANE-42", PLAN_INTEREST: team},
    )
    conversion = data(pd.post(f"/api/v2/leads/{lead['id']}/convert/deal", json={"pipeline_id": 2}))
    status = data(pd.get(f"/api/v2/leads/{lead['id']}/convert/status/{conversion['conversion_id']}"))
    assert (status["status"], status["lead_id"]) == ("completed", lead["id"])
    assert data(pd.get(f"/api/v2/deals/{status['deal_id']}"))["stage_id"] == 6  # first stage of Partnerships
    _assert_converted(pd, lead, status["deal_id"], team)


def test_a_salesperson_converting_in_the_web_app_gives_the_same_result(
    sandbox: SandboxServer, pd: httpx.Client
) -> None:
    team = option_id(sandbox, PLAN_INTEREST, "Team")
    lead = new_lead(
        pd,
        new_person(pd)["id"],
        value={"amount": 1500, "currency": "EUR"},
        **{REFERRAL_CODE: "JANE-42", PLAN_INTEREST: team},
    )
    with sandbox.state.lock:
        deal = sandbox.state.pd.convert_lead(lead["id"])
        stored = sandbox.state.pd.snapshot()["leads"]
    assert [(item["id"], item["is_deleted"]) for item in stored] == [(lead["id"], True)]
    assert deal["stage_id"] == 1
    _assert_converted(pd, lead, deal["id"], team)


def test_a_converted_lead_cannot_be_converted_or_edited_again(
    sandbox: SandboxServer, pd: httpx.Client
) -> None:
    lead = new_lead(pd, new_person(pd)["id"])
    with sandbox.state.lock:
        sandbox.state.pd.convert_lead(lead["id"])
        with pytest.raises(KeyError):
            sandbox.state.pd.convert_lead(lead["id"])
    assert pd.post(f"/api/v2/leads/{lead['id']}/convert/deal").status_code == 404
    assert pd.patch(f"/api/v1/leads/{lead['id']}", json={"title": "x"}).status_code == 404


# --- person search --------------------------------------------------------------------------------


def test_person_search_by_email_is_exact_and_case_insensitive(pd: httpx.Client) -> None:
    jane = new_person(pd, "Jane Doe", "jane@example.com")
    new_person(pd, "Jane Other", "jane@example.com.au")

    def found(term: str, exact: bool) -> list[int]:
        params = {"term": term, "fields": "email", **({"exact_match": "true"} if exact else {})}
        return [hit["item"]["id"] for hit in data(pd.get("/api/v2/persons/search", params=params))["items"]]

    assert found("JANE@Example.COM", exact=True) == [jane["id"]]
    assert sorted(found("jane@example.com", exact=False)) == [1, 2]
    assert found("nobody@example.com", exact=True) == []


def test_a_search_term_below_the_minimum_length_is_refused(pd: httpx.Client) -> None:
    assert pd.get("/api/v2/persons/search", params={"term": "j"}).status_code == 400
    assert pd.get("/api/v2/persons/search", params={"term": "j", "exact_match": "true"}).status_code == 200
    assert pd.get("/api/v2/deals/search", params={"term": "x", "exact_match": "yes"}).status_code == 400


# --- deals ----------------------------------------------------------------------------------------


def test_a_new_deal_lands_in_the_first_stage_and_the_pipeline_follows_the_stage(
    sandbox: SandboxServer, pd: httpx.Client
) -> None:
    default = data(pd.post("/api/v2/deals", json={"title": "A"}))
    by_pipeline = data(pd.post("/api/v2/deals", json={"title": "B", "pipeline_id": 2}))
    assert (default["pipeline_id"], default["stage_id"], default["stage_change_time"]) == (1, 1, None)
    assert (by_pipeline["pipeline_id"], by_pipeline["stage_id"]) == (2, 6)
    moved = data(pd.patch(f"/api/v2/deals/{default['id']}", json={"stage_id": 7}))
    assert (moved["pipeline_id"], moved["stage_id"]) == (2, 7) and moved["stage_change_time"]
    same_pipeline = data(pd.patch(f"/api/v2/deals/{default['id']}", json={"pipeline_id": 2}))
    assert same_pipeline["stage_id"] == 7
    with sandbox.state.lock:
        sandbox.state.pd.move_deal(default["id"], 4)
        sandbox.state.pd.set_deal_status(default["id"], "won")
        with pytest.raises(KeyError, match="deal 99 does not exist"):
            sandbox.state.pd.move_deal(99, 4)
        with pytest.raises(ValueError):
            sandbox.state.pd.set_deal_status(default["id"], "finished")
    won = data(pd.get(f"/api/v2/deals/{default['id']}"))
    assert (won["pipeline_id"], won["stage_id"], won["status"]) == (1, 4, "won")
    assert won["won_time"] and won["close_time"] and won["lost_time"] is None


def test_the_deal_list_filters_by_status_and_leaves_deleted_deals_out(pd: httpx.Client) -> None:
    open_deal = data(pd.post("/api/v2/deals", json={"title": "Open"}))
    won = data(pd.post("/api/v2/deals", json={"title": "Won", "status": "won"}))
    gone = data(pd.post("/api/v2/deals", json={"title": "Gone"}))
    data(pd.delete(f"/api/v2/deals/{gone['id']}"))

    def ids(**params: str) -> list[int]:
        return [deal["id"] for deal in data(pd.get("/api/v2/deals", params=params))]

    assert ids() == [open_deal["id"], won["id"]]
    assert ids(status="won") == [won["id"]]
    assert ids(status="deleted") == [gone["id"]]
    assert ids(status="open,deleted") == [open_deal["id"], gone["id"]]
    assert pd.patch(f"/api/v2/deals/{gone['id']}", json={"title": "x"}).status_code == 404


def test_person_references_must_exist(pd: httpx.Client) -> None:
    deal = pd.post("/api/v2/deals", json={"title": "Orphan", "person_id": 404, "stage_id": 99})
    assert deal.status_code == 400
    assert "person_id: Person 404 does not exist" in deal.json()["error"]
    assert "stage_id: Stage 99 does not exist" in deal.json()["error"]
    lead = pd.post("/api/v1/leads", json={"title": "Orphan"})
    assert lead.status_code == 400 and "person or an organization" in lead.json()["error"]
