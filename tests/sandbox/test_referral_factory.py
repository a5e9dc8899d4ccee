"""The simulated Referral Factory API v2, through real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from rf_desktop.sandbox.limits import PerMinuteLimiter
from rf_desktop.sandbox.referral_factory import SEED_REFERRER_CODE, RfShape
from rf_desktop.sandbox.server import SandboxServer

TOKEN = "rf-sandbox-token"


def loopback_client(**settings: Any) -> httpx.Client:
    """A client for the sandbox. Plain HTTP on loopback, so no CA bundle is loaded (~60 ms per client)."""
    return httpx.Client(verify=False, timeout=5, **settings)


@pytest.fixture
def rf(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}
    with loopback_client(base_url=sandbox.rf_base_url, headers=headers) as client:
        yield client


def invite(rf: httpx.Client, email: str, *, campaign_id: int = 1, **extra: Any) -> httpx.Response:
    referrer = extra.pop("referrer", {"field": "code", "value": SEED_REFERRER_CODE})
    body = {"campaign_id": campaign_id, "first_name": "Zoë", "email": email, "referrer": referrer, **extra}
    return rf.post("/users", json=body)


def errors_of(response: httpx.Response) -> dict[str, list[str]]:
    body = response.json()
    assert body["code"] == 422
    assert body["message"] == "Validation errors in your request"
    return {field: [e["message"] for e in entries] for field, entries in body["errors"].items()}


# --- authentication and rate limit --------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", f"Token {TOKEN}", TOKEN])
def test_a_missing_or_wrong_token_is_401_with_a_json_body(sandbox: SandboxServer, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    with loopback_client(base_url=sandbox.rf_base_url, headers=headers) as client:
        response = client.get("/campaigns")
    assert response.status_code == 401
    assert response.json() == {"code": 401, "message": "Unauthenticated."}


def test_a_regenerated_token_disables_the_old_one(sandbox: SandboxServer, rf: httpx.Client) -> None:
    with sandbox.state.lock:
        sandbox.state.rf.token = "rf-new-token"
    assert rf.get("/campaigns").status_code == 401
    new = rf.get("/campaigns", headers={"Authorization": "Bearer rf-new-token"})
    assert new.status_code == 200


def test_600_calls_a_minute_then_429_without_retry_after(sandbox: SandboxServer, rf: httpx.Client) -> None:
    assert sandbox.state.rf.limiter.limit == 600
    with sandbox.state.lock:
        sandbox.state.rf.limiter = PerMinuteLimiter(sandbox.state.clock, limit=5)
    assert [rf.get("/campaigns").status_code for _ in range(5)] == [200] * 5
    limited = rf.get("/users")
    assert limited.status_code == 429
    assert limited.json() == {"code": 429, "message": "Too Many Attempts."}
    assert "retry-after" not in limited.headers
    sandbox.state.clock.advance(61)
    assert rf.get("/users").status_code == 200


def test_the_rate_limit_counts_per_token(sandbox: SandboxServer, rf: httpx.Client) -> None:
    with sandbox.state.lock:
        sandbox.state.rf.limiter = PerMinuteLimiter(sandbox.state.clock, limit=2)
    assert [rf.get("/campaigns").status_code for _ in range(3)] == [200, 200, 429]
    with sandbox.state.lock:
        sandbox.state.rf.token = "rf-regenerated"
    fresh = rf.get("/campaigns", headers={"Authorization": "Bearer rf-regenerated"})
    assert fresh.status_code == 200


# --- campaigns ----------------------------------------------------------------------------------------


def test_campaigns_are_listed_with_the_pagination_envelope(rf: httpx.Client) -> None:
    body = rf.get("/campaigns").json()
    assert [(c["id"], c["name"], c["status"]) for c in body["data"]] == [
        (1, "Spring Referral Campaign", "launched"),
        (2, "Partner Program", "launched"),
        (3, "Summer Draft", "draft"),
    ]
    assert body["meta"]["total"] == 3
    assert body["links"]["next"] is None


def test_a_campaign_by_id_or_code_has_per_role_form_fields(rf: httpx.Client) -> None:
    campaign = rf.get("/campaigns/1").json()["data"]
    assert rf.get(f"/campaigns/{campaign['code']}").json()["data"] == campaign
    for key in ("status", "starts_at", "ends_at", "url", "code", "lang", "reach", "created_at"):
        assert key in campaign
    invited = {f["label"]: f for f in campaign["fields"]["person_invited"]}
    assert list(invited) == ["Last Name", "Company", "Phone", "Plan"]
    assert invited["Plan"]["type"] == "select" and invited["Plan"]["value"]
    assert invited["Company"]["type"] == "input"
    assert set(invited["Phone"]) == {"id", "type", "label", "value", "required"}
    assert [f["label"] for f in campaign["fields"]["person_referring"]] == ["Last Name"]


def test_an_unknown_campaign_is_404(rf: httpx.Client) -> None:
    response = rf.get("/campaigns/999")
    assert response.status_code == 404
    assert response.json()["code"] == 404


# --- listing users --------------------------------------------------------------------------------------


def test_the_seeded_referrers(rf: httpx.Client) -> None:
    users = rf.get("/users").json()["data"]
    assert [(u["first_name"], u["campaign_id"], u["type"]) for u in users] == [
        ("Alice", 1, "person_referring"),
        ("Bruno", 2, "person_referring"),
    ]
    assert users[0]["code"] == SEED_REFERRER_CODE


def test_users_page_to_the_end_in_ascending_id_order(rf: httpx.Client) -> None:
    for n in range(28):
        assert invite(rf, f"guest{n}@example.com").status_code == 201
    seen: list[int] = []
    url: str | None = "/users?per_page=7"
    pages = 0
    while url:
        body = rf.get(url).json()
        seen += [u["id"] for u in body["data"]]
        assert body["meta"]["per_page"] == 7 and body["meta"]["total"] == 30
        url = body["links"]["next"]
        pages += 1
    assert pages == 5 == body["meta"]["last_page"]
    assert seen == sorted(seen) and len(set(seen)) == 30
    assert body["links"]["prev"].startswith("http://127.0.0.1:")


def test_the_pagination_envelope_is_laravel_shaped(sandbox: SandboxServer, rf: httpx.Client) -> None:
    for n in range(30):
        invite(rf, f"guest{n}@example.com")
    body = rf.get("/users", params={"page": 2}).json()
    assert body["meta"] == {
        "current_page": 2,
        "from": 26,
        "last_page": 2,
        "path": f"{sandbox.rf_base_url}/users",
        "per_page": 25,
        "to": 32,
        "total": 32,
    }
    assert body["links"] == {
        "first": f"{sandbox.rf_base_url}/users?page=1",
        "last": f"{sandbox.rf_base_url}/users?page=2",
        "prev": f"{sandbox.rf_base_url}/users?page=1",
        "next": None,
    }
    beyond = rf.get("/users", params={"page": 9}).json()
    assert beyond["data"] == [] and beyond["meta"]["from"] is None and beyond["links"]["next"] is None


def test_per_page_is_capped_at_250_and_bad_values_are_422(rf: httpx.Client) -> None:
    assert rf.get("/users", params={"per_page": 1000}).json()["meta"]["per_page"] == 250
    assert rf.get("/users", params={"per_page": 0}).status_code == 422
    assert "page" in errors_of(rf.get("/users", params={"page": "two"}))


def test_listing_ignores_campaign_id_like_the_real_api(rf: httpx.Client) -> None:
    users = rf.get("/users", params={"campaign_id": 2}).json()["data"]
    assert {u["campaign_id"] for u in users} == {1, 2}


def test_search_filters_by_campaign_type_email_and_id(rf: httpx.Client) -> None:
    first = invite(rf, "jane@example.com").json()["data"]
    invite(rf, "joe@example.com")

    def search(*conditions: dict[str, Any], operator: str = "AND") -> list[str]:
        body = {"filters": {"value": list(conditions), "operator": operator}}
        response = rf.post("/users/search", json=body)
        assert response.status_code == 200
        return [u["email"] for u in response.json()["data"]]

    assert search({"field": "campaign_id", "value": 2, "operator": "="}) == ["bruno@example.com"]
    assert search(
        {"field": "campaign_id", "value": 1, "operator": "="},
        {"field": "type", "value": "person_invited", "operator": "="},
    ) == ["jane@example.com", "joe@example.com"]
    assert search({"field": "email", "value": "JANE@example.com", "operator": "="}) == ["jane@example.com"]
    assert search({"field": "id", "value": first["id"], "operator": ">"}) == ["joe@example.com"]
    either = search(
        {"field": "id", "value": first["id"], "operator": "<="},
        {"field": "campaign_id", "value": 2, "operator": "="},
        operator="OR",
    )
    assert either == ["alice@example.com", "bruno@example.com", "jane@example.com"]
    unknown_field = {"filters": {"value": [{"field": "ip", "value": "x"}], "operator": "AND"}}
    bad = rf.post("/users/search", json=unknown_field)
    assert "filters" in errors_of(bad)


# --- one user -------------------------------------------------------------------------------------------


def test_a_user_has_exactly_the_documented_fields(rf: httpx.Client) -> None:
    meta = [{"field": "Last Name", "value": "Müller"}, {"field": "Plan", "value": "Growth"}]
    user = invite(rf, "zoe@example.com", meta=meta).json()["data"]
    assert set(user) == {
        "id", "campaign_id", "referrer_id", "first_name", "email", "code", "url", "reach", "source", "type",
        "ip", "signed_up_at", "qualified_at", "unsubscribed_at", "meta", "sharing", "qr",
    }  # fmt: skip
    assert len(user["code"]) == 8 and user["code"].isalnum()
    assert user["url"].endswith(user["code"])
    assert len(user["signed_up_at"]) == 10 and user["signed_up_at"].count("-") == 2
    assert user["meta"] == meta
    assert user["first_name"] == "Zoë"
    assert {"social", "url"} <= set(user["sharing"]["socials"][0])
    assert set(user["qr"]) == {"src", "download"}


def test_a_user_is_found_by_id_or_code_and_404_otherwise(rf: httpx.Client) -> None:
    user = invite(rf, "zoe@example.com").json()["data"]
    assert rf.get(f"/users/{user['id']}").json()["data"] == user
    assert rf.get(f"/users/{user['code']}").json()["data"] == user
    missing = rf.get("/users/99999")
    assert missing.status_code == 404
    assert missing.json() == {"code": 404, "message": "Not found."}


# --- creating users -----------------------------------------------------------------------------------


def test_without_a_referrer_the_user_is_a_person_referring_from_the_api(rf: httpx.Client) -> None:
    response = rf.post("/users", json={"campaign_id": 1, "first_name": "Ravi", "email": "ravi@example.com"})
    assert response.status_code == 201
    user = response.json()["data"]
    assert (user["type"], user["source"], user["referrer_id"]) == ("person_referring", "Api", None)


@pytest.mark.parametrize("field", ["id", "code", "email"])
def test_a_referrer_by_id_code_or_email_makes_a_person_invited(rf: httpx.Client, field: str) -> None:
    alice = rf.get(f"/users/{SEED_REFERRER_CODE}").json()["data"]
    response = invite(rf, "zoe@example.com", referrer={"field": field, "value": alice[field]})
    assert response.status_code == 201
    user = response.json()["data"]
    assert (user["type"], user["referrer_id"]) == ("person_invited", alice["id"])


@pytest.mark.parametrize(
    "referrer",
    [
        {"field": "code", "value": "NOPE0000"},
        {"field": "id", "value": 99999},
        {"field": "email", "value": "nobody@example.com"},
        {"field": "code", "value": "BRUNO002"},  # a referrer of another campaign
        {"field": "name", "value": "Alice"},
    ],
)
def test_an_unknown_referrer_is_422(rf: httpx.Client, referrer: dict[str, Any]) -> None:
    response = invite(rf, "zoe@example.com", referrer=referrer)
    assert response.status_code == 422
    assert "referrer" in errors_of(response)
    assert rf.get("/users").json()["meta"]["total"] == 2


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"first_name": "A", "email": "a@example.com"}, "campaign_id", "The campaign id field is required."),
        ({"campaign_id": 1, "email": "a@example.com"}, "first_name", "The first name field is required."),
        ({"campaign_id": 1, "first_name": "A"}, "email", "The email field is required."),
        (
            {"campaign_id": 1, "first_name": "A", "email": "not-an-email"},
            "email",
            "The email must be a valid email address.",
        ),
        (
            {"campaign_id": 42, "first_name": "A", "email": "a@example.com"},
            "campaign_id",
            "The selected campaign id is invalid.",
        ),
    ],
)
def test_missing_or_invalid_fields_are_422_with_the_documented_body(
    rf: httpx.Client, body: dict[str, Any], field: str, message: str
) -> None:
    response = rf.post("/users", json=body)
    assert response.status_code == 422
    assert response.json()["errors"][field] == [{"field": field, "message": message}]


def test_a_duplicate_email_in_a_campaign_is_422_but_another_campaign_accepts_it(rf: httpx.Client) -> None:
    assert invite(rf, "zoe@example.com").status_code == 201
    again = invite(rf, "ZOE@example.com", referrer={"field": "code", "value": SEED_REFERRER_CODE})
    assert again.status_code == 422
    assert errors_of(again) == {"email": ["The email has already been taken."]}
    elsewhere = invite(rf, "zoe@example.com", campaign_id=2, referrer={"field": "code", "value": "BRUNO002"})
    assert elsewhere.status_code == 201


# --- qualification ------------------------------------------------------------------------------------


def qualify(rf: httpx.Client, **body: Any) -> httpx.Response:
    return rf.put("/users/qualification", json={"qualified": True, **body})


@pytest.mark.parametrize("by", ["id", "code", "email"])
def test_a_person_invited_is_qualified_by_id_code_or_email_and_campaign(
    sandbox: SandboxServer, rf: httpx.Client, by: str
) -> None:
    user = invite(rf, "zoe@example.com").json()["data"]
    ident = {"email": user["email"], "campaign_id": 1} if by == "email" else {by: user[by]}
    response = qualify(rf, **ident)
    assert response.status_code == 200
    assert response.json()["data"]["qualified_at"] == sandbox.state.clock.now().date().isoformat()
    assert rf.get(f"/users/{user['id']}").json()["data"]["qualified_at"] is not None
    assert sandbox.state.rf.qualification_count(user["id"]) == 1


def test_only_a_person_invited_can_be_qualified(sandbox: SandboxServer, rf: httpx.Client) -> None:
    response = qualify(rf, code=SEED_REFERRER_CODE)
    assert response.status_code == 422
    assert "referred users" in errors_of(response)["user"][0]
    assert sandbox.state.rf.qualification_log == []


def test_a_second_qualification_changes_nothing_and_is_not_counted(
    sandbox: SandboxServer, rf: httpx.Client
) -> None:
    user = invite(rf, "zoe@example.com").json()["data"]
    first = qualify(rf, id=user["id"]).json()["data"]
    sandbox.state.clock.advance(3 * 86400)
    second = qualify(rf, code=user["code"])
    assert second.status_code == 200
    assert second.json()["data"] == first
    assert sandbox.state.rf.qualification_count(user["id"]) == 1


def test_unqualifying_reverts_to_pending(sandbox: SandboxServer, rf: httpx.Client) -> None:
    user = invite(rf, "zoe@example.com").json()["data"]
    qualify(rf, id=user["id"])
    reverted = rf.put("/users/qualification", json={"id": user["id"], "qualified": False})
    assert reverted.status_code == 200
    assert reverted.json()["data"]["qualified_at"] is None
    assert [e["qualified"] for e in sandbox.state.rf.qualification_log] == [True, False]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"id": 99999, "qualified": True}, 404),
        ({"code": "NOPE0000", "qualified": True}, 404),
        ({"email": "nobody@example.com", "campaign_id": 1, "qualified": True}, 404),
        ({"email": "zoe@example.com", "qualified": True}, 422),  # email without campaign_id
        ({"qualified": True}, 422),
        ({"code": SEED_REFERRER_CODE, "qualified": "yes"}, 422),
    ],
)
def test_qualification_needs_a_known_user_and_a_boolean(
    rf: httpx.Client, body: dict[str, Any], status: int
) -> None:
    invite(rf, "zoe@example.com")
    assert rf.put("/users/qualification", json=body).status_code == status


# --- updating and deleting ----------------------------------------------------------------------------


def test_updating_a_user_changes_name_email_and_meta_by_label(rf: httpx.Client) -> None:
    user = invite(rf, "zoe@example.com", meta=[{"field": "Last Name", "value": "M"}]).json()["data"]
    meta = [{"field": "Last Name", "value": "Müller"}]
    body = {"first_name": "Zoe", "email": "zoe.m@example.com", "meta": meta}
    updated = rf.put(f"/users/{user['id']}", json=body)
    assert updated.status_code == 200
    data = updated.json()["data"]
    assert (data["first_name"], data["email"], data["meta"]) == ("Zoe", "zoe.m@example.com", body["meta"])
    taken = rf.put(f"/users/{user['id']}", json={"email": "alice@example.com"})
    assert errors_of(taken) == {"email": ["The email has already been taken."]}


def test_deleting_a_user(rf: httpx.Client) -> None:
    user = invite(rf, "zoe@example.com").json()["data"]
    assert rf.delete(f"/users/{user['id']}").status_code == 200
    assert rf.get(f"/users/{user['id']}").status_code == 404
    assert rf.delete(f"/users/{user['id']}").status_code == 404
    # the email is free again in that campaign
    assert invite(rf, "zoe@example.com").status_code == 201


def test_set_qualified_says_whether_anything_changed(sandbox: SandboxServer) -> None:
    with sandbox.state.lock:
        rf = sandbox.state.rf
        user = rf.sign_up(1, "Zoë", "zoe@example.com")
        assert [rf.set_qualified(user, q) for q in (True, True, False, False, True)] == [
            True, False, True, False, True
        ]  # fmt: skip
        assert rf.qualification_count(user["id"]) == 2  # qualified again after a refund reverted it


def test_sign_up_through_a_link_is_a_referred_person_invited(sandbox: SandboxServer) -> None:
    with sandbox.state.lock:
        user = sandbox.state.rf.sign_up(1, "Łukasz", "lukasz@example.com", SEED_REFERRER_CODE)
        alice = sandbox.state.rf.user(SEED_REFERRER_CODE)
    assert (user["source"], user["type"], user["referrer_id"]) == ("Referred", "person_invited", alice["id"])
    assert alice["reach"] == 1


# --- the shapes the public material allows ---------------------------------------------------------------


def set_shape(sandbox: SandboxServer, **shape: str) -> None:
    with sandbox.state.lock:
        sandbox.state.rf.shape = RfShape(**shape)


def test_the_minimal_envelope_has_only_the_documented_fields(sandbox: SandboxServer, rf: httpx.Client) -> None:
    set_shape(sandbox, envelope="minimal")
    for n in range(3):  # five users with the two seeded referrers: three pages of two
        invite(rf, f"guest{n}@example.com")
    first = rf.get("/users", params={"per_page": 2}).json()
    assert set(first) == {"data", "links", "meta"}
    assert first["meta"] == {"current_page": 1}
    assert set(first["links"]) == {"next"} and "page=2" in first["links"]["next"]
    last = rf.get("/users", params={"per_page": 2, "page": 3}).json()
    assert len(last["data"]) == 1
    assert (last["links"], last["meta"]) == ({"next": None}, {"current_page": 3})


def test_users_newest_first(sandbox: SandboxServer, rf: httpx.Client) -> None:
    set_shape(sandbox, order="newest_first")
    ids = [invite(rf, f"guest{n}@example.com").json()["data"]["id"] for n in range(3)]
    listed = [u["id"] for u in rf.get("/users").json()["data"]]
    assert listed[:3] == ids[::-1] and listed == sorted(listed, reverse=True)


def test_per_page_ignored_gives_25_a_page(sandbox: SandboxServer, rf: httpx.Client) -> None:
    set_shape(sandbox, per_page="ignored")
    with sandbox.state.lock:
        for n in range(30):
            sandbox.state.rf.sign_up(1, f"Guest{n}", f"guest{n}@example.com")
    body = rf.get("/users", params={"per_page": 250}).json()
    assert len(body["data"]) == 25 and body["meta"]["per_page"] == 25 and body["meta"]["last_page"] == 2


def test_a_second_qualification_can_be_refused_with_422(sandbox: SandboxServer, rf: httpx.Client) -> None:
    set_shape(sandbox, requalify="refused")
    user = invite(rf, "zoe@example.com").json()["data"]
    assert qualify(rf, id=user["id"]).status_code == 200
    second = qualify(rf, id=user["id"])
    assert second.status_code == 422 and "already qualified" in second.text
    assert sandbox.state.rf.qualification_count(user["id"]) == 1


def test_abusing_the_limit_more_than_three_times_blocks_the_address(
    sandbox: SandboxServer, rf: httpx.Client
) -> None:
    with sandbox.state.lock:
        sandbox.state.rf.limiter = PerMinuteLimiter(sandbox.state.clock, limit=1)
    answers = []
    for _ in range(4):
        rf.get("/campaigns")
        answers.append(rf.get("/campaigns").status_code)
        answers.append(rf.get("/campaigns").status_code)  # the same time over the limit
        sandbox.state.clock.advance(60)
    assert answers == [429, 429, 429, 429, 429, 429, 403, 403]
    blocked = rf.get("/campaigns")
    assert blocked.status_code == 403 and "blocked" in blocked.json()["message"]
