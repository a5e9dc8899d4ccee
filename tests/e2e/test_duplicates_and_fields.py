"""Duplicate handling both ways, default field values, and every kind of field value reaching Pipedrive."""

from __future__ import annotations

import httpx
import pytest

from rf_desktop.core.config import Defaults, FieldMap, QualificationRule
from rf_desktop.core.store import Store
from rf_desktop.sandbox.server import SandboxServer
from tests.e2e.helpers import deals, field_code, leads, persons, run_once, sandbox_settings, sign_up, stage_id


def _existing_person(sandbox: SandboxServer, name: str, email: str) -> dict:
    response = httpx.post(
        f"{sandbox.pd_base_url}/api/v2/persons",
        headers={"x-api-token": sandbox.state.pd.token},
        json={"name": name, "emails": [{"value": email, "primary": True, "label": "home"}]},
    )
    response.raise_for_status()
    return dict(response.json()["data"])


@pytest.mark.parametrize("policy", ["update", "keep"])
def test_an_existing_person_is_reused_and_the_lead_linked_to_them(
    sandbox: SandboxServer, store: Store, policy: str
) -> None:
    before = _existing_person(sandbox, "Kim From Sales", "KIM@example.com")
    referrer_email = field_code(sandbox, "person", "Referrer Email")
    settings = sandbox_settings(sandbox, duplicates=policy)
    settings.mappings.append(FieldMap("referrer.email", f"person:{referrer_email}"))
    store.save_settings(settings)
    user = sign_up(sandbox, "Kimberly", "kim@example.com")

    run_once(store, sandbox)

    [person] = persons(sandbox)
    assert person["id"] == before["id"], "matched case-insensitively, not created again"
    [lead] = leads(sandbox)
    assert lead["person_id"] == before["id"]
    assert store.get(user["id"]).person_id == before["id"]  # type: ignore[union-attr]
    assert person["name"] == "Kim From Sales", "the sales team's full name is never replaced by a first name"
    if policy == "update":
        assert person["custom_fields"][referrer_email] == "alice@example.com"
        assert [e["value"] for e in person["emails"]] == ["KIM@example.com"], (
            "the same address is not added twice"
        )
    else:
        assert referrer_email not in person["custom_fields"]
        assert person["update_time"] == before["update_time"], "left untouched"


def test_defaults_and_typed_fields_in_deal_mode(sandbox: SandboxServer, store: Store) -> None:
    item = lambda name: f"item:{field_code(sandbox, 'deal', name)}"  # noqa: E731
    settings = sandbox_settings(
        sandbox,
        mode="deal",
        pipeline_id=1,
        stage_id=stage_id(sandbox, "Qualified"),
        qualification=QualificationRule(kind="none"),
        defaults=Defaults(
            owner_id=2,
            value=150.0,
            currency="EUR",
            visible_to=3,
            fields={
                item("Plan Interest"): "Team",
                item("Interests"): "Bread; Cakes",
                item("Expected Revenue"): "1 200,50",
                item("Team Size"): "12",
            },
        ),
    )
    settings.mappings += [
        FieldMap("signed_up_at", item("Signup Date")),
        FieldMap("meta:Phone", item("Contact Phone")),
        FieldMap("meta:Company", item("Notes From Referral")),
        FieldMap("meta:Plan", item("Plan Interest")),
    ]
    store.save_settings(settings)
    user = sign_up(
        sandbox,
        "Zoë Łukasz 李雷",
        "zoe@example.com",
        meta=[
            {"field": "Phone", "value": "+44 20 7946 0958"},
            {"field": "Company", "value": "Bäckerei & Söhne"},
            {"field": "Plan", "value": "enterprise"},
        ],
    )

    run_once(store, sandbox)

    referral = store.get(user["id"])
    assert referral is not None and referral.status == "sent", referral.status_reason if referral else None
    [deal] = deals(sandbox)
    custom = deal["custom_fields"]
    options = {f["field_name"]: f for f in sandbox.state.pd.snapshot()["deal_fields"]}
    option_id = lambda field, label: next(o["id"] for o in options[field]["options"] if o["label"] == label)  # noqa: E731
    assert (deal["owner_id"], deal["value"], deal["currency"], deal["visible_to"]) == (2, 150.0, "EUR", 3)
    assert custom[field_code(sandbox, "deal", "Plan Interest")] == option_id("Plan Interest", "Enterprise"), (
        "the mapped value (matched case-insensitively) wins over the default"
    )
    assert custom[field_code(sandbox, "deal", "Interests")] == [
        option_id("Interests", "Bread"),
        option_id("Interests", "Cakes"),
    ]
    assert custom[field_code(sandbox, "deal", "Expected Revenue")] == {"value": 1200.5, "currency": "EUR"}
    assert custom[field_code(sandbox, "deal", "Team Size")] == 12
    assert custom[field_code(sandbox, "deal", "Signup Date")] == user["signed_up_at"]
    assert custom[field_code(sandbox, "deal", "Contact Phone")] == "+44 20 7946 0958"
    assert custom[field_code(sandbox, "deal", "Notes From Referral")] == "Bäckerei & Söhne"
    assert deal["title"] == "Spring Referral Campaign: Zoë Łukasz 李雷"


def test_lead_mode_defaults_use_the_lead_shapes(sandbox: SandboxServer, store: Store) -> None:
    labels = sandbox.state.pd.snapshot()["lead_labels"]
    hot = next(label["id"] for label in labels if label["name"] == "Hot")
    settings = sandbox_settings(
        sandbox, defaults=Defaults(owner_id=2, label_ids=[hot], value=99.0, currency="USD", visible_to=5)
    )
    store.save_settings(settings)
    sign_up(sandbox, "Leo", "leo@example.com")
    run_once(store, sandbox)
    [lead] = leads(sandbox)
    assert lead["owner_id"] == 2
    assert lead["label_ids"] == [hot]
    assert lead["value"] == {"amount": 99.0, "currency": "USD"}
    assert lead["visible_to"] == "5"
