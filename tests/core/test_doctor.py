"""The doctor against the sandbox: what it reports about both accounts, that it only reads, that its
report holds no token and no personal data, and how it describes each shape of the users list."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rf_desktop.core.config import Settings
from rf_desktop.core.doctor import RATE_HEADERS, DoctorReport, describe_users_list, examine
from rf_desktop.core.pipedrive import PipedriveClient
from rf_desktop.core.secrets import TokenStore
from rf_desktop.sandbox.referral_factory import ENVELOPES, LIST_ORDERS, PER_PAGE_MODES
from rf_desktop.sandbox.server import SandboxServer
from tests.e2e.helpers import admin, field_code, sandbox_settings, sign_up
from tests.keychains import MemoryKeyring


def _tokens(sandbox: SandboxServer, **override: str) -> TokenStore:
    keychain = MemoryKeyring()
    store = TokenStore(keychain, environ={})
    store.set("referral-factory", override.get("rf", sandbox.state.rf.token))
    store.set("pipedrive", override.get("pd", sandbox.state.pd.token))
    return store


def _examine(settings: Settings | None, tokens: TokenStore, **kwargs: Any) -> DoctorReport:
    return asyncio.run(examine(settings, tokens, **kwargs))


def _detail(report: DoctorReport, area: str, name: str) -> tuple[str, str]:
    found = [c for c in report.checks if c.area == area and c.name == name]
    assert len(found) == 1, (area, name, report.text())
    return found[0].status, found[0].detail


def _records(sandbox: SandboxServer) -> Any:
    """Everything both accounts hold, without the counters of calls and tokens."""
    state = admin(sandbox, "GET", "/state")
    state["pd"] = {k: v for k, v in state["pd"].items() if k != "usage"}
    return {"rf": state["rf"], "pd": state["pd"]}


def test_a_healthy_set_up_reports_both_accounts_and_only_reads(sandbox: SandboxServer) -> None:
    for i in range(7):
        sign_up(sandbox, f"Private{i}", f"private{i}@example.com")
    settings = sandbox_settings(sandbox)
    before = _records(sandbox)
    used_before = admin(sandbox, "GET", "/stats")["pd"]["usage"]["tokens_used_today"]

    report = _examine(settings, _tokens(sandbox))

    assert report.problems == [], report.text()
    assert _detail(report, "Keychain", "backend")[0] == "ok"
    assert _detail(report, "Keychain", "pipedrive token") == ("ok", "found in the keychain")
    assert "Sandbox Bakery" in _detail(report, "Pipedrive", "token")[1]
    assert "1 (Spring Referral Campaign)" in _detail(report, "Referral Factory", "token")[1]
    assert _detail(report, "Pipedrive", "Referral Code field on leads") == ("ok", "'Referral Code' (varchar)")
    assert _detail(report, "Pipedrive", "Referral Code field on deals") == ("ok", "'Referral Code' (varchar)")
    assert "1 Sales pipeline (5 stages)" in _detail(report, "Pipedrive", "pipelines")[1]
    assert _detail(report, "Settings", "Referral Link → lead") == ("ok", "'Referral Link' (varchar)")
    status, detail = _detail(report, "Pipedrive", "x-daily-ratelimit-token-remaining")
    assert status == "ok" and detail.startswith("on ")
    assert _detail(report, "Referral Factory", "users page size") == (
        "ok",
        "asked for 5 a page, got 5 (honoured)",
    )
    assert _detail(report, "Referral Factory", "users order")[1] == "oldest first (rising ids)"
    assert _detail(report, "Pipedrive", "clock")[0] == "ok"  # the sandbox runs on this computer's clock
    assert _records(sandbox) == before, "the doctor changes nothing in either account"
    spent = admin(sandbox, "GET", "/stats")["pd"]["usage"]["tokens_used_today"] - used_before
    assert _detail(report, "Pipedrive", "cost of this check") == (
        "ok",
        f"{spent} Pipedrive API tokens of today's budget",
    )


def test_the_report_holds_no_token_and_no_personal_data(sandbox: SandboxServer) -> None:
    sign_up(sandbox, "Zebedee", "zebedee.private@example.com")
    text = _examine(sandbox_settings(sandbox), _tokens(sandbox)).text()
    assert "Sandbox Bakery" in text
    owner = ("Sam Owner", "sam@sandbox-bakery.example")  # the sandbox's token user
    for secret in (sandbox.state.rf.token, sandbox.state.pd.token, "Zebedee", "zebedee.private", *owner):
        assert secret not in text


def test_a_rejected_token_and_a_deleted_field_are_problems(sandbox: SandboxServer) -> None:
    settings = sandbox_settings(sandbox)
    admin(sandbox, "DELETE", f"/pd/fields/deal/{field_code(sandbox, 'deal', 'Referral Link')}")
    report = _examine(settings, _tokens(sandbox, rf="not-the-token"))
    status, detail = _detail(report, "Referral Factory", "connection")
    assert status == "problem" and "did not accept the API token" in detail
    assert "not-the-token" not in report.text()
    assert _detail(report, "Settings", "Referral Link → lead")[0] == "problem"
    assert len(report.problems) >= 2 and "problems found." in report.text()


def test_an_unmapped_referral_code_field_is_found_as_the_sync_finds_it(sandbox: SandboxServer) -> None:
    # the owner made the field by hand, with a name of their own, and has not mapped it yet
    settings = sandbox_settings(sandbox, mappings=Settings().mappings)
    admin(sandbox, "POST", "/seed", {"with_referral_fields": False})

    async def create_field() -> None:
        async with PipedriveClient(sandbox.pd_base_url, sandbox.state.pd.token) as pd:
            await pd.create_deal_field("referral-code")

    asyncio.run(create_field())
    report = _examine(settings, _tokens(sandbox))

    assert _detail(report, "Pipedrive", "Referral Code field on leads") == ("ok", "'referral-code' (varchar)")
    assert _detail(report, "Pipedrive", "Referral Code field on deals") == ("ok", "'referral-code' (varchar)")


def test_a_missing_token_is_a_problem_and_the_other_account_is_still_checked(sandbox: SandboxServer) -> None:
    tokens = TokenStore(MemoryKeyring(), environ={"RF_DESKTOP_PIPEDRIVE_TOKEN": sandbox.state.pd.token})
    report = _examine(sandbox_settings(sandbox), tokens)
    assert _detail(report, "Keychain", "referral-factory token")[0] == "problem"
    assert "RF_DESKTOP_PIPEDRIVE_TOKEN" in _detail(report, "Keychain", "pipedrive token")[1]
    assert _detail(report, "Pipedrive", "token")[0] == "ok"
    assert not [c for c in report.checks if c.area == "Referral Factory"]


def test_without_settings_or_tokens_it_says_so_and_calls_nothing() -> None:
    report = _examine(None, TokenStore(MemoryKeyring(), environ={}))
    assert _detail(report, "Settings", "settings") == ("note", "none stored yet; the default addresses were used")
    assert {c.area for c in report.checks} == {"Keychain", "Settings"}
    assert len(report.problems) == 2


def test_a_clock_that_is_off_is_measured_from_the_date_header(sandbox: SandboxServer) -> None:
    # this computer's clock two minutes fast: the server's Date header is then two minutes behind it
    fast = lambda: datetime.now(UTC) + timedelta(minutes=2)  # noqa: E731
    report = _examine(sandbox_settings(sandbox), _tokens(sandbox), now=fast)
    status, detail = _detail(report, "Pipedrive", "clock")
    assert status == "problem" and "s behind this computer's" in detail
    assert 118 <= int(detail.split("clock is ")[1].split(" s")[0]) <= 122


# --- every shape of the users list the public material allows ---


def _page(ids: list[int], *, meta: dict[str, Any] | None = None, next_link: bool = True) -> dict[str, Any]:
    return {
        "data": [{"id": i} for i in ids],
        "links": {"next": "https://api.referral-factory.com/api/v2/users?page=2" if next_link else None},
        "meta": {"current_page": 1, **(meta or {})},
    }


@pytest.mark.parametrize(
    ("pages", "paging", "size", "order"),
    [
        (
            [_page([1, 2, 3, 4, 5], meta={"last_page": 3, "total": 12, "per_page": 5}), _page([6, 7])],
            "data, links.next, meta.current_page, meta.last_page, meta.total, meta.per_page",
            "asked for 5 a page, got 5 (honoured)",
            "oldest first (rising ids)",
        ),
        (
            [_page([12, 11, 10, 9, 8]), _page([7, 6, 5, 4, 3])],
            "data, links.next, meta.current_page; absent: meta.last_page, meta.total, meta.per_page",
            "asked for 5 a page, got 5 (honoured)",
            "newest first (falling ids)",
        ),
        (
            [_page(list(range(100, 75, -1)))],
            "data, links.next, meta.current_page; absent: meta.last_page, meta.total, meta.per_page",
            "asked for 5 a page, got 25: per_page is ignored",
            "newest first (falling ids)",
        ),
        (
            [_page([3, 1, 2], next_link=False)],
            "data, links.next, meta.current_page; absent: meta.last_page, meta.total, meta.per_page",
            "cannot tell: the account has only 3 users",
            "no order by id",
        ),
    ],
    ids=["laravel-oldest-first", "documented-only-newest-first", "per-page-ignored", "unordered-short"],
)
def test_each_users_list_shape_is_described(pages: list[Any], paging: str, size: str, order: str) -> None:
    checks = {c.name: (c.status, c.detail) for c in describe_users_list(pages, 5)}
    assert checks["users list paging"] == ("ok", paging)
    assert checks["users page size"][1] == size
    assert checks["users order"][1] == order


def test_a_list_without_the_documented_fields_is_a_problem() -> None:
    checks = describe_users_list([{"data": [{"id": 1}]}], 5)
    assert checks[0].status == "problem" and "absent: links.next, meta.current_page" in checks[0].detail
    assert describe_users_list([{"users": []}], 5)[0].status == "problem"


# --- against every shape the sandbox plays ---

PAGING = {
    "laravel": "data, links.next, meta.current_page, meta.last_page, meta.total, meta.per_page",
    "minimal": "data, links.next, meta.current_page; absent: meta.last_page, meta.total, meta.per_page",
}
PAGE_SIZE = {
    "honoured": ("ok", "asked for 5 a page, got 5 (honoured)"),
    "ignored": ("note", "asked for 5 a page, got 25: per_page is ignored"),
}
ORDER = {"oldest_first": "oldest first (rising ids)", "newest_first": "newest first (falling ids)"}


@pytest.mark.parametrize("per_page", PER_PAGE_MODES)
@pytest.mark.parametrize("envelope", ENVELOPES)
@pytest.mark.parametrize("order", LIST_ORDERS)
def test_the_report_states_the_users_list_the_sandbox_plays(
    sandbox: SandboxServer, order: str, envelope: str, per_page: str
) -> None:
    for i in range(30):  # with the seeded referrer, more users than one page of 25
        sign_up(sandbox, f"Shape{i}", f"shape{i}@example.com")
    admin(sandbox, "PUT", "/rf/shape", {"order": order, "envelope": envelope, "per_page": per_page})

    report = _examine(sandbox_settings(sandbox), _tokens(sandbox))

    assert report.problems == [], report.text()
    assert _detail(report, "Referral Factory", "users list paging") == ("ok", PAGING[envelope])
    assert _detail(report, "Referral Factory", "users page size") == PAGE_SIZE[per_page]
    assert _detail(report, "Referral Factory", "users order") == ("ok", ORDER[order])


def test_the_report_states_that_pipedrive_sends_no_rate_limit_headers(sandbox: SandboxServer) -> None:
    admin(sandbox, "PUT", "/pd/shape", {"rate_limit_headers": False})

    report = _examine(sandbox_settings(sandbox), _tokens(sandbox))

    assert report.problems == [], report.text()
    answers = {_detail(report, "Pipedrive", header) for header in RATE_HEADERS}
    assert len(answers) == 1, answers
    status, detail = answers.pop()
    assert status == "note" and detail.startswith("absent from all ") and detail.endswith(" answers")


def test_the_cost_of_the_check_leaves_out_the_calls_pipedrive_turned_away(sandbox: SandboxServer) -> None:
    # calls to users/me refused with 429 before any work, as a busy company's would be: never charged
    admin(sandbox, "PUT", "/faults/pd", {"rate_429": 0.5, "seed": 4, "only_paths": ["/users/me"]})
    used_before = admin(sandbox, "GET", "/stats")["pd"]["usage"]["tokens_used_today"]

    report = _examine(sandbox_settings(sandbox), _tokens(sandbox))

    assert admin(sandbox, "GET", "/stats")["pd"]["faults"].get("429", 0) > 0, "the check met a refusal"
    spent = admin(sandbox, "GET", "/stats")["pd"]["usage"]["tokens_used_today"] - used_before
    assert _detail(report, "Pipedrive", "cost of this check") == (
        "ok",
        f"{spent} Pipedrive API tokens of today's budget",
    )
