"""The whole loop in lead mode, against the sandbox over loopback: sign-up -> person + lead -> conversion
-> qualified in Referral Factory, once."""

from __future__ import annotations

import pytest

from rf_desktop.core.store import Store
from rf_desktop.sandbox.server import SandboxServer
from tests.e2e.helpers import admin, field_code, leads, persons, run_once, sandbox_settings, sign_up

pytestmark = pytest.mark.rf_shapes


def test_invited_person_becomes_person_and_lead_with_the_referral_fields(
    sandbox: SandboxServer, store: Store
) -> None:
    store.save_settings(sandbox_settings(sandbox))
    user = sign_up(sandbox, "Maria", "maria+ref@example.com")

    run_once(store, sandbox)

    [person] = persons(sandbox)
    assert person["name"] == "Maria"
    assert [e["value"] for e in person["emails"]] == ["maria+ref@example.com"]
    [lead] = leads(sandbox)
    assert lead["person_id"] == person["id"]
    assert lead["title"] == "Spring Referral Campaign: Maria"
    code_key = field_code(sandbox, "deal", "Referral Code")
    assert lead["custom_fields"][code_key] == user["code"]
    assert lead["custom_fields"][field_code(sandbox, "deal", "Referrer First Name")] == "Alice"
    assert lead["custom_fields"][field_code(sandbox, "deal", "Referral Link")] == user["url"]
    referral = store.get(user["id"])
    assert referral is not None
    assert (referral.status, referral.person_id, referral.lead_id) == ("waiting", person["id"], lead["id"])


def test_converted_lead_qualifies_the_referral_exactly_once(sandbox: SandboxServer, store: Store) -> None:
    store.save_settings(sandbox_settings(sandbox))
    user = sign_up(sandbox, "Jonas", "jonas@example.com")
    run_once(store, sandbox)
    [lead] = leads(sandbox)

    admin(sandbox, "POST", f"/pd/leads/{lead['id']}/convert", {})
    run_once(store, sandbox)
    run_once(store, sandbox)

    referral = store.get(user["id"])
    assert referral is not None and referral.status == "qualified"
    assert referral.deal_id is not None
    rf_user = sandbox.state.rf.users[user["id"]]
    assert rf_user["qualified_at"] is not None
    assert sandbox.state.rf.qualification_count(user["id"]) == 1


def test_a_second_run_sends_nothing_again(sandbox: SandboxServer, store: Store) -> None:
    store.save_settings(sandbox_settings(sandbox))
    for n in range(3):
        sign_up(sandbox, f"Person {n}", f"p{n}@example.com")
    run_once(store, sandbox)
    run_once(store, sandbox)
    assert len(persons(sandbox)) == 3
    assert len(leads(sandbox)) == 3
