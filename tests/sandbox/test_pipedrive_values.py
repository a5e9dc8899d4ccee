"""Custom field values in the simulated Pipedrive: each type's v2 `custom_fields` shape accepted or
refused (over HTTP for the seeded fields, directly for the other types), and the v1 flat forms leads take
and give back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from rf_desktop.sandbox.pipedrive_seed import custom_field_code
from rf_desktop.sandbox.pipedrive_values import (
    ADDRESS_PARTS,
    FieldValueError,
    display,
    parse_v2,
    render_v1_flat,
    v1_flat_updates,
)
from rf_desktop.sandbox.server import SandboxServer

TOKEN = "pd-sandbox-token"


def key(name: str) -> str:
    return custom_field_code("deal", name)


@pytest.fixture
def pd(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.pd_base_url, headers={"x-api-token": TOKEN}, timeout=10) as client:
        yield client


@pytest.fixture
def options(sandbox: SandboxServer) -> dict[str, int]:
    """Option label -> id of the seeded enum and set deal fields."""
    with sandbox.state.lock:
        fields = [sandbox.state.pd.fields["deal"][key(name)] for name in ("Plan Interest", "Interests")]
        return {option["label"]: option["id"] for field in fields for option in field["options"]}


def deal_with(pd: httpx.Client, custom_fields: dict[str, Any]) -> httpx.Response:
    return pd.post("/api/v2/deals", json={"title": "Referral", "custom_fields": custom_fields})


@pytest.mark.parametrize(
    ("name", "value", "stored"),
    [
        ("Referral Code", "JANE-42", "JANE-42"),
        ("Notes From Referral", "x" * 2000, "x" * 2000),
        ("Contact Phone", "+49 30 1234567", "+49 30 1234567"),
        ("Team Size", 12.5, 12.5),
        ("Expected Revenue", {"value": 900, "currency": "USD"}, {"value": 900, "currency": "USD"}),
        ("Expected Revenue", {"value": 900}, {"value": 900, "currency": "EUR"}),
        ("Signup Date", "2026-03-01", "2026-03-01"),
        ("Start Time", {"value": "09:30"}, {"value": "09:30:00", "timezone_name": "Europe/Berlin"}),
        (
            "Start Time",
            {"value": "09:30:15", "timezone_name": "Europe/London"},
            {"value": "09:30:15", "timezone_name": "Europe/London"},
        ),
    ],
)
def test_v2_values_of_each_type_are_stored_and_returned(
    pd: httpx.Client, name: str, value: Any, stored: Any
) -> None:
    response = deal_with(pd, {key(name): value})
    assert response.status_code == 200, response.text
    deal_id = response.json()["data"]["id"]
    assert pd.get(f"/api/v2/deals/{deal_id}").json()["data"]["custom_fields"][key(name)] == stored


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("Referral Code", "x" * 256, "at most 255 character(s)"),
        ("Referral Code", 42, "Expected string, received number"),
        ("Team Size", "12", "Expected number, received string"),
        ("Team Size", True, "Expected number, received boolean"),
        ("Expected Revenue", 900, "Expected object, received number"),
        ("Expected Revenue", {"value": "900", "currency": "EUR"}, "Expected number, received string"),
        ("Signup Date", "01.03.2026", "not a valid date"),
        ("Signup Date", "2026-02-30", "not a valid date"),
        ("Start Time", "09:30", "Expected object, received string"),
        ("Start Time", {"value": "25:00"}, "not a valid time"),
        ("Interests", [], "at least 1 element(s)"),
        ("Interests", [999_999], "Option 999999 does not exist"),
        ("Plan Interest", "Team", "Expected number, received string"),
        ("Plan Interest", 999_999, "Option 999999 does not exist"),
    ],
)
def test_v2_values_that_do_not_fit_their_type_are_refused(
    pd: httpx.Client, name: str, value: Any, problem: str
) -> None:
    response = deal_with(pd, {key(name): value})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "ERR_SCHEMA_VALIDATION_FAILED"
    assert f"custom_fields.{key(name)}" in body["error"] and problem in body["error"]


def test_enum_and_set_take_option_ids_and_null_clears(pd: httpx.Client, options: dict[str, int]) -> None:
    plan, interests = key("Plan Interest"), key("Interests")
    deal = deal_with(pd, {plan: options["Team"], interests: [options["Bread"], options["Cakes"]]}).json()[
        "data"
    ]
    assert deal["custom_fields"][plan] == options["Team"]
    assert deal["custom_fields"][interests] == [options["Bread"], options["Cakes"]]
    labelled = pd.get(f"/api/v2/deals/{deal['id']}", params={"include_option_labels": "true"}).json()["data"]
    assert labelled["custom_fields"][plan] == {"id": options["Team"], "label": "Team"}
    cleared = pd.patch(f"/api/v2/deals/{deal['id']}", json={"custom_fields": {interests: None}}).json()[
        "data"
    ]
    assert cleared["custom_fields"][interests] is None and cleared["custom_fields"][plan] == options["Team"]


def test_v1_leads_take_flat_custom_keys_in_their_v1_forms(
    sandbox: SandboxServer, pd: httpx.Client, options: dict[str, int]
) -> None:
    person = pd.post("/api/v2/persons", json={"name": "Jane Doe"}).json()["data"]
    body = {
        "title": "Referral",
        "person_id": person["id"],
        key("Referral Code"): "JANE-42",
        key("Plan Interest"): str(options["Team"]),
        key("Interests"): f"{options['Bread']},{options['Cakes']}",
        key("Expected Revenue"): 900,
        f"{key('Expected Revenue')}_currency": "USD",
        key("Team Size"): "12",
        key("Signup Date"): "2026-03-01",
    }
    lead = pd.post("/api/v1/leads", json=body)
    assert lead.status_code == 201, lead.text
    returned = pd.get(f"/api/v1/leads/{lead.json()['data']['id']}").json()["data"]
    assert returned[key("Plan Interest")] == str(options["Team"])
    assert returned[key("Interests")] == f"{options['Bread']},{options['Cakes']}"
    assert (returned[key("Expected Revenue")], returned[f"{key('Expected Revenue')}_currency"]) == (
        900,
        "USD",
    )
    assert returned[key("Team Size")] == 12
    assert key("Contact Phone") not in returned  # unset custom fields are omitted on leads
    with sandbox.state.lock:
        stored = sandbox.state.pd.leads[returned["id"]]["custom_fields"]
    assert stored[key("Interests")] == [options["Bread"], options["Cakes"]]
    assert stored[key("Expected Revenue")] == {"value": 900, "currency": "USD"}


def test_v1_lead_values_are_checked_against_the_deal_fields(
    pd: httpx.Client, options: dict[str, int]
) -> None:
    person = pd.post("/api/v2/persons", json={"name": "Jane Doe"}).json()["data"]

    def create(**fields: Any) -> httpx.Response:
        return pd.post("/api/v1/leads", json={"title": "Referral", "person_id": person["id"], **fields})

    assert create(**{key("Plan Interest"): "999999"}).status_code == 400
    assert create(**{key("Signup Date"): "tomorrow"}).status_code == 400
    assert create(**{"0" * 40: "unknown field"}).status_code == 400
    assert create(visible_to=3).status_code == 400  # v1 leads want the string "3"
    assert create(value=1500).status_code == 400  # v1 leads want {amount, currency}
    assert create(label_ids=["hot"]).status_code == 400
    assert create(**{key("Plan Interest"): options["Starter"]}).status_code == 201


def test_a_lead_update_only_changes_what_it_sends_and_null_unsets(pd: httpx.Client) -> None:
    person = pd.post("/api/v2/persons", json={"name": "Jane Doe"}).json()["data"]
    lead = pd.post(
        "/api/v1/leads",
        json={
            "title": "Referral",
            "person_id": person["id"],
            "value": {"amount": 10, "currency": "EUR"},
            key("Referral Code"): "A",
        },
    ).json()
    patched = pd.patch(
        f"/api/v1/leads/{lead['data']['id']}", json={"value": None, key("Referral Code"): None}
    )
    assert patched.status_code == 200
    body = patched.json()["data"]
    assert body["value"] is None and key("Referral Code") not in body and body["title"] == "Referral"


CODE = "a" * 40
REFS = {"user": {1, 2}, "people": {1}}
ADDRESS_PARTS_UNSET = dict.fromkeys(ADDRESS_PARTS)


def field_of(field_type: str) -> dict[str, Any]:
    return {"field_code": CODE, "field_name": "Field", "field_type": field_type, "options": None}


@pytest.mark.parametrize(
    ("field_type", "value", "canonical"),
    [
        (
            "daterange",
            {"value": "2026-01-01", "until": "2026-02-01"},
            {"value": "2026-01-01", "until": "2026-02-01"},
        ),
        (
            "timerange",
            {"value": "09:00", "until": "11:30"},
            {"value": "09:00:00", "until": "11:30:00", "timezone_name": "Europe/Berlin"},
        ),
        (
            "address",
            {"value": "1 Main St", "locality": "Berlin"},
            {**ADDRESS_PARTS_UNSET, "value": "1 Main St", "locality": "Berlin"},
        ),
        ("user", 2, 2),
        ("people", 1, 1),
        ("org", 77, 77),
    ],
)
def test_object_and_reference_values_parse_and_survive_the_v1_flat_round_trip(
    field_type: str, value: Any, canonical: Any
) -> None:
    field = field_of(field_type)
    parsed = parse_v2(field, value, REFS, "custom_fields")
    assert parsed == canonical
    assert v1_flat_updates({CODE: field}, render_v1_flat(field, parsed), REFS) == {CODE: parsed}


@pytest.mark.parametrize(
    ("field_type", "value", "problem"),
    [
        ("daterange", {"value": "2026-02-01", "until": "2026-01-01"}, "before the start date"),
        ("timerange", {"value": "09:00"}, "until: Required"),
        ("address", {"locality": "Berlin"}, "value: Required"),
        ("address", {"value": "1 Main St", "postal_code": 10115}, "Expected string, received number"),
        ("user", 3, "user 3 does not exist"),
        ("people", 2, "people 2 does not exist"),
        ("org", "77", "Expected a positive integer id"),
    ],
)
def test_object_and_reference_values_that_do_not_fit_are_refused(
    field_type: str, value: Any, problem: str
) -> None:
    with pytest.raises(FieldValueError, match=problem):
        parse_v2(field_of(field_type), value, REFS, "custom_fields")


def test_display_shows_values_as_people_read_them() -> None:
    enum = {**field_of("enum"), "options": [{"id": 7, "label": "Team"}]}
    assert display(enum, 7) == "Team"
    assert display(field_of("monetary"), {"value": 900, "currency": "EUR"}) == "900 EUR"
    assert (
        display(field_of("daterange"), {"value": "2026-01-01", "until": "2026-02-01"})
        == "2026-01-01 to 2026-02-01"
    )
    assert display(field_of("varchar"), None) == ""
