"""PipedriveClient against the sandbox's Pipedrive, over real HTTP.

Every exchange the client makes here is also checked against Pipedrive's official OpenAPI specs (when
../shared is present): a request the real API would reject fails the test even if the sandbox took it.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from rf_desktop.core.http import (
    AmbiguousWriteError,
    AuthError,
    BlockedError,
    BudgetExhaustedError,
    ConnectionFailedError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RetryPolicy,
    ValidationError,
)
from rf_desktop.core.pipedrive import PipedriveClient
from rf_desktop.core.ratelimit import BudgetTracker, BurstLimiter, next_midnight_utc
from rf_desktop.sandbox.server import SandboxServer
from tests.contract.openapi_check import PipedriveContract, load_contract

pytestmark = pytest.mark.anyio

FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_backoff=0.05, max_wait=3.0)


# --- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture
def contract(request: pytest.FixtureRequest) -> PipedriveContract | None:
    """The official specs, or None (no validation) when ../shared is not beside the checkout."""
    try:
        return load_contract(request.getfixturevalue("reference_dir"))
    except pytest.skip.Exception:
        return None


@pytest.fixture
def spec_failures() -> Iterator[list[str]]:
    """Where the exchanges that depart from the spec are collected; the test fails if any are."""
    failures: list[str] = []
    yield failures
    assert not failures, "requests or responses the real Pipedrive API would not match:\n" + "\n".join(
        failures
    )


@pytest.fixture
def sent() -> list[httpx.Request]:
    return []


@pytest.fixture
def make_pd(
    sandbox: SandboxServer,
    contract: PipedriveContract | None,
    spec_failures: list[str],
    sent: list[httpx.Request],
) -> Callable[..., PipedriveClient]:
    """A factory for clients on the sandbox whose every request is recorded and checked against the spec."""

    async def record(request: httpx.Request) -> None:
        sent.append(request)

    async def check(response: httpx.Response) -> None:
        await response.aread()
        if contract is not None:
            # a 5xx here comes from the sandbox's fault injection, standing in for gateways the spec
            # does not describe: only the request is checked then
            spec_failures.extend(
                contract.errors(response.request, response if response.status_code < 500 else None)
            )

    def make(**options: Any) -> PipedriveClient:
        base_url = options.pop("base_url", sandbox.pd_base_url)
        token = options.pop("token", sandbox.state.pd.token)
        options.setdefault("retry", FAST)
        options.setdefault("timeout", 2.0)
        return PipedriveClient(
            base_url, token, event_hooks={"request": [record], "response": [check]}, **options
        )

    return make


@pytest.fixture
async def pd(make_pd: Callable[..., PipedriveClient]) -> AsyncIterator[PipedriveClient]:
    async with make_pd() as client:
        yield client


def snapshot(sandbox: SandboxServer) -> dict[str, Any]:
    with sandbox.state.lock:
        return sandbox.state.pd.snapshot()


def pd_stats(sandbox: SandboxServer) -> dict[str, Any]:
    return httpx.get(f"{sandbox.admin_url}/stats").json()["pd"]


def admin_put(sandbox: SandboxServer, path: str, body: dict[str, Any]) -> None:
    httpx.put(f"{sandbox.admin_url}{path}", json=body).raise_for_status()


def deal_field_code(sandbox: SandboxServer, name: str) -> str:
    return next(f["field_code"] for f in snapshot(sandbox)["deal_fields"] if f["field_name"] == name)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- account, fields, pipelines -----------------------------------------------------------------------


async def test_me_tells_the_company_domain(pd: PipedriveClient) -> None:
    me = await pd.me()
    assert me["company_domain"] == "sandbox-bakery"
    assert isinstance(me["id"], int)


async def test_users_include_the_token_user(pd: PipedriveClient) -> None:
    me = await pd.me()
    users = await pd.users()
    assert me["id"] in [u["id"] for u in users]


async def test_field_lists_follow_every_page(sandbox: SandboxServer, pd: PipedriveClient) -> None:
    with sandbox.state.lock:
        for i in range(520):  # more than one page of 500
            sandbox.state.pd.add_field("deal", f"Extra {i}", "varchar")
    state = snapshot(sandbox)
    deal_fields = await pd.deal_fields()
    assert sorted(f["field_code"] for f in deal_fields) == sorted(
        f["field_code"] for f in state["deal_fields"]
    )
    person_fields = await pd.person_fields()
    assert len(person_fields) == len(state["person_fields"])
    # leads share the deal custom fields; v1 pages by offset
    lead_field_names = {f["name"] for f in await pd.lead_fields()}
    assert {f"Extra {i}" for i in range(520)} <= lead_field_names
    assert "Referral Code" in lead_field_names


async def test_lead_labels_pipelines_and_stages(sandbox: SandboxServer, pd: PipedriveClient) -> None:
    state = snapshot(sandbox)
    labels = await pd.lead_labels()
    assert {label["id"] for label in labels} == {label["id"] for label in state["lead_labels"]}
    pipelines = await pd.pipelines()
    assert [p["name"] for p in pipelines] == ["Sales pipeline", "Partnerships"]
    all_stages = await pd.stages()
    assert len(all_stages) == len(state["stages"])
    second = pipelines[1]["id"]
    stages = await pd.stages(second)
    assert stages and all(s["pipeline_id"] == second for s in stages)


async def test_create_custom_fields(sandbox: SandboxServer, pd: PipedriveClient) -> None:
    deal_field = await pd.create_deal_field("Referral Source", "enum", ["Friend", "Partner"])
    person_field = await pd.create_person_field("Referred By")
    assert [o["label"] for o in deal_field["options"]] == ["Friend", "Partner"]
    assert person_field["field_type"] == "varchar"
    state = snapshot(sandbox)
    assert deal_field["field_code"] in {f["field_code"] for f in state["deal_fields"]}
    assert person_field["field_code"] in {f["field_code"] for f in state["person_fields"]}


# --- persons ------------------------------------------------------------------------------------------


async def test_search_finds_the_exact_address_case_insensitively(pd: PipedriveClient) -> None:
    ann = await pd.create_person({"name": "Ann", "emails": [{"value": "Ann@Example.com", "primary": True}]})
    await pd.create_person({"name": "Jo Ann", "emails": [{"value": "joann@example.com", "primary": True}]})
    found = await pd.search_persons_by_email("ann@EXAMPLE.com")
    assert [p["id"] for p in found] == [ann["id"]]
    assert await pd.search_persons_by_email("nobody@example.com") == []


async def test_person_create_read_update_delete(sandbox: SandboxServer, pd: PipedriveClient) -> None:
    person = await pd.create_person(
        {"name": "Zoë Zola", "emails": [{"value": "zoe@example.com", "primary": True}]}
    )
    assert (await pd.get_person(person["id"]))["name"] == "Zoë Zola"
    updated = await pd.update_person(person["id"], {"name": "Zoë Zola-Smith"})
    assert updated["name"] == "Zoë Zola-Smith"
    await pd.delete_person(person["id"])
    # v2 deletes are soft: the person is still readable for a while, marked deleted
    assert (await pd.get_person(person["id"]))["is_deleted"] is True
    with pytest.raises(NotFoundError):
        await pd.get_person(999_999)
    assert [p["is_deleted"] for p in snapshot(sandbox)["persons"]] == [True]


# --- leads --------------------------------------------------------------------------------------------


async def test_lead_create_read_update_delete(sandbox: SandboxServer, pd: PipedriveClient) -> None:
    code_field = deal_field_code(sandbox, "Referral Code")
    person = await pd.create_person({"name": "Lee"})
    lead = await pd.create_lead({"title": "Lee (referral)", "person_id": person["id"], code_field: "ABC123"})
    fetched = await pd.get_lead(lead["id"])
    assert fetched is not None and fetched[code_field] == "ABC123"
    assert (await pd.update_lead(lead["id"], {"title": "Lee, referred"}))["title"] == "Lee, referred"
    await pd.delete_lead(lead["id"])
    assert await pd.get_lead(lead["id"]) is None
    assert await pd.get_lead(str(uuid.uuid4())) is None


async def test_leads_for_person_follows_every_page(sandbox: SandboxServer, pd: PipedriveClient) -> None:
    person = await pd.create_person({"name": "Many Leads"})
    other = await pd.create_person({"name": "Someone Else"})
    with sandbox.state.lock:
        ids = [
            sandbox.state.pd.insert_lead({"title": f"L{i}", "person_id": person["id"]})["id"]
            for i in range(501)
        ]
        sandbox.state.pd.insert_lead({"title": "not theirs", "person_id": other["id"]})
    leads = await pd.leads_for_person(person["id"])
    assert sorted(lead["id"] for lead in leads) == sorted(ids)


# --- deals --------------------------------------------------------------------------------------------


async def test_deal_create_read_update_delete(sandbox: SandboxServer, pd: PipedriveClient) -> None:
    code_field = deal_field_code(sandbox, "Referral Code")
    stages = await pd.stages()
    deal = await pd.create_deal({"title": "Referral deal", "custom_fields": {code_field: "XYZ789"}})
    fetched = await pd.get_deal(deal["id"])
    assert fetched is not None
    assert fetched["custom_fields"][code_field] == "XYZ789"
    assert "source_lead_id" in fetched and fetched["source_lead_id"] is None
    moved = await pd.update_deal(deal["id"], {"stage_id": stages[1]["id"]})
    assert moved["stage_id"] == stages[1]["id"]
    plain = await pd.get_deal(deal["id"], include_source_lead=False)
    assert plain is not None and "source_lead_id" not in plain
    await pd.delete_deal(deal["id"])
    assert [d["is_deleted"] for d in snapshot(sandbox)["deals"]] == [True]
    assert await pd.get_deal(999_999) is None


async def test_deals_for_person_follows_every_page(sandbox: SandboxServer, pd: PipedriveClient) -> None:
    person = await pd.create_person({"name": "Many Deals"})
    with sandbox.state.lock:
        ids = [
            sandbox.state.pd.insert_deal({"title": f"D{i}", "person_id": person["id"]})["id"]
            for i in range(502)
        ]
        sandbox.state.pd.insert_deal({"title": "nobody's"})
    deals = await pd.deals_for_person(person["id"])
    assert sorted(d["id"] for d in deals) == ids
    assert all("source_lead_id" in d for d in deals)


async def test_deals_page_with_updated_since_in_whole_seconds(
    sandbox: SandboxServer, pd: PipedriveClient, sent: list[httpx.Request]
) -> None:
    old = await pd.create_deal({"title": "old"})
    sandbox.state.clock.advance(10)
    new = [await pd.create_deal({"title": f"new {i}"}) for i in range(5)]
    old_time = datetime.fromisoformat(old["update_time"].replace("Z", "+00:00"))
    # a watermark with microseconds: the API rejects fractional seconds, so the client must drop them
    since = old_time + timedelta(seconds=5, microseconds=123_456)
    seen: list[int] = []
    cursor = None
    while True:
        page = await pd.deals_page(updated_since=since, cursor=cursor, limit=2)
        seen += [d["id"] for d in page.items]
        assert all("source_lead_id" in d for d in page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [d["id"] for d in new]
    sent_since = {r.url.params.get("updated_since") for r in sent if r.method == "GET"}
    assert sent_since == {(old_time + timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")}


async def test_convert_a_lead_and_follow_the_conversion(sandbox: SandboxServer, pd: PipedriveClient) -> None:
    code_field = deal_field_code(sandbox, "Referral Code")
    person = await pd.create_person({"name": "Converted"})
    lead = await pd.create_lead({"title": "to convert", "person_id": person["id"], code_field: "CONV1"})
    stage = (await pd.stages())[2]
    conversion_id = await pd.convert_lead(lead["id"], stage_id=stage["id"])
    status = await pd.conversion_status(lead["id"], conversion_id)
    assert status["status"] == "completed"
    deal = await pd.get_deal(status["deal_id"])
    assert deal is not None
    assert (deal["source_lead_id"], deal["stage_id"], deal["custom_fields"][code_field]) == (
        lead["id"],
        stage["id"],
        "CONV1",
    )
    assert await pd.get_lead(lead["id"]) is None  # a converted lead is gone
    assert [d["id"] for d in await pd.deals_for_person(person["id"])] == [deal["id"]]


# --- errors -------------------------------------------------------------------------------------------


async def test_a_wrong_token_is_an_auth_error_that_never_shows_the_token(
    sandbox: SandboxServer, make_pd: Callable[..., PipedriveClient]
) -> None:
    token = "pd-wrong-token-0123456789"
    async with make_pd(token=token) as pd:
        with pytest.raises(AuthError) as caught:
            await pd.me()
    error = caught.value
    assert error.status == 401 and error.service == "Pipedrive"
    assert "API token" in error.message and "Settings" in error.hint
    assert token not in str(error) and token not in repr(error)
    assert pd_stats(sandbox)["requests"] == 1


async def test_the_token_travels_only_in_its_header(
    sandbox: SandboxServer, pd: PipedriveClient, sent: list[httpx.Request]
) -> None:
    await pd.me()
    await pd.search_persons_by_email("someone@example.com")
    await pd.create_person({"name": "Header Only"})
    token = sandbox.state.pd.token
    assert len(sent) == 3
    for request in sent:
        assert request.headers["x-api-token"] == token
        assert token not in str(request.url)
        assert request.headers["user-agent"].startswith("rf-desktop/")


async def test_an_unreachable_address_is_a_connection_failure(
    make_pd: Callable[..., PipedriveClient],
) -> None:
    port = closed_port()
    async with make_pd(base_url=f"http://127.0.0.1:{port}/pd") as pd:
        with pytest.raises(ConnectionFailedError) as caught:
            await pd.me()
    assert f"127.0.0.1:{port}" in caught.value.message
    assert "address" in caught.value.hint


async def test_an_address_that_is_not_pipedrive_is_a_connection_failure(
    sandbox: SandboxServer, make_pd: Callable[..., PipedriveClient], spec_failures: list[str]
) -> None:
    async with make_pd(base_url=sandbox.url + "/somewhere-else") as pd:
        with pytest.raises(ConnectionFailedError) as caught:
            await pd.get_lead(str(uuid.uuid4()))
    # a plain 404 page must not pass for "this lead is gone"
    assert "not like the Pipedrive API" in caught.value.message
    # the answer came from something that is not Pipedrive: only the request is held to the spec
    spec_failures[:] = [f for f in spec_failures if ": response: " not in f]


async def test_a_request_pipedrive_refuses_is_a_validation_error_and_not_retried(
    sandbox: SandboxServer, pd: PipedriveClient
) -> None:
    code_field = deal_field_code(sandbox, "Referral Code")
    with pytest.raises(ValidationError) as caught:
        # v2 wants custom fields inside `custom_fields`
        await pd.create_deal({"title": "misplaced", code_field: "ABC"})
    assert caught.value.status == 400 and caught.value.code == "ERR_SCHEMA_VALIDATION_FAILED"
    assert code_field in caught.value.message
    assert pd_stats(sandbox)["requests"] == 1


# --- faults and retries -------------------------------------------------------------------------------


async def brief_sleep(seconds: float) -> None:
    """Injected 429s ask for 1-2 s; these tests need not honour that for real."""
    await asyncio.sleep(min(seconds, 0.02))


async def test_reads_and_updates_are_retried_through_injected_faults(
    sandbox: SandboxServer, make_pd: Callable[..., PipedriveClient]
) -> None:
    async with make_pd() as setup:
        person = await setup.create_person({"name": "Retry Me"})
    admin_put(
        sandbox,
        "/faults/pd",
        {
            "rate_429": 0.2,
            "rate_5xx": 0.2,
            "rate_timeout": 0.1,
            "rate_drop": 0.1,
            "timeout_seconds": 5,
            "seed": 3,
        },
    )
    retry = RetryPolicy(max_attempts=12, base_delay=0.005, max_backoff=0.02, sleep=brief_sleep)
    async with make_pd(timeout=0.25, retry=retry) as pd:
        for i in range(6):
            assert len(await pd.pipelines()) == 2
            await pd.update_person(person["id"], {"name": f"Retry Me {i}"})
        assert (await pd.get_person(person["id"]))["name"] == "Retry Me 5"
    assert {"429", "5xx", "timeout", "drop"} <= set(pd_stats(sandbox)["faults"])


@pytest.mark.parametrize("kind", ["rate_5xx", "rate_timeout", "rate_drop"])
async def test_a_create_whose_answer_is_lost_is_ambiguous_and_not_resent(
    sandbox: SandboxServer, make_pd: Callable[..., PipedriveClient], kind: str
) -> None:
    admin_put(
        sandbox,
        "/faults/pd",
        {kind: 1.0, "after_commit_share": 1.0, "timeout_seconds": 5, "only_paths": ["/api/v2/persons"]},
    )
    async with make_pd(timeout=0.25) as pd:
        with pytest.raises(AmbiguousWriteError) as caught:
            await pd.create_person({"name": "Maybe Created"})
    assert "may or may not have been saved" in str(caught.value)
    assert pd_stats(sandbox)["requests"] == 1
    # it was created: the engine must look it up before creating it again
    assert [p["name"] for p in snapshot(sandbox)["persons"]] == ["Maybe Created"]


async def test_a_create_that_failed_before_processing_is_still_reported_as_ambiguous(
    sandbox: SandboxServer, make_pd: Callable[..., PipedriveClient]
) -> None:
    admin_put(
        sandbox, "/faults/pd", {"rate_5xx": 1.0, "after_commit_share": 0.0, "only_paths": ["/api/v1/leads"]}
    )
    async with make_pd() as pd:
        person = await pd.create_person({"name": "Lead Owner"})
        with pytest.raises(AmbiguousWriteError):
            await pd.create_lead({"title": "never arrived", "person_id": person["id"]})
    # from the outside the two cases look the same; the lookup finds nothing and the create is repeated
    assert snapshot(sandbox)["leads"] == []


async def test_a_rate_limited_create_is_sent_again_and_created_once(
    sandbox: SandboxServer, make_pd: Callable[..., PipedriveClient]
) -> None:
    admin_put(sandbox, "/faults/pd", {"rate_429": 1.0, "only_paths": ["/api/v2/deals"]})

    async def wait_then_lift_the_fault(seconds: float) -> None:
        admin_put(sandbox, "/faults/pd", {})

    async with make_pd(retry=RetryPolicy(max_attempts=3, sleep=wait_then_lift_the_fault)) as pd:
        deal = await pd.create_deal({"title": "Exactly once"})
    assert [d["id"] for d in snapshot(sandbox)["deals"]] == [deal["id"]]
    assert pd_stats(sandbox)["responses"] == {"200": 1, "429": 1}


# --- pacing and the daily budget ----------------------------------------------------------------------


@pytest.fixture
def plan(sandbox: SandboxServer) -> Iterator[Callable[[str], None]]:
    """Switch the sandbox company's plan; the default (Growth, one seat) is restored afterwards."""
    yield lambda name: admin_put(sandbox, "/pd/plan", {"plan": name, "seats": 1})
    admin_put(sandbox, "/pd/plan", {"plan": "growth", "seats": 1})


def no_two_in_a_row(statuses: list[int], status: int = 429) -> bool:
    return all(not (a == b == status) for a, b in itertools.pairwise(statuses))


async def test_the_burst_limiter_learns_both_windows_from_the_headers(
    make_pd: Callable[..., PipedriveClient], plan: Callable[[str], None]
) -> None:
    plan("growth")
    burst = BurstLimiter(limit=5, search_limit=3)
    async with make_pd(burst=burst) as paced:
        await paced.me()
        await paced.search_persons_by_email("someone@example.com")
    # the sandbox company is on the Growth plan: 40 requests per 2 s, and 10 for search
    assert (burst.limit, burst.search_limit) == (40, 10)


async def test_a_burst_on_the_lite_plan_stays_under_the_limit_at_nearly_full_speed(
    sandbox: SandboxServer, make_pd: Callable[..., PipedriveClient], plan: Callable[[str], None]
) -> None:
    plan("lite")
    statuses: list[int] = []
    calls = 36
    async with make_pd(burst=BurstLimiter(), on_response=lambda call: statuses.append(call.status)) as pd:
        person = await pd.create_person({"name": "Popular"})
        started = time.monotonic()
        results = await asyncio.gather(*(pd.get_person(person["id"]) for _ in range(calls)))
        elapsed = time.monotonic() - started
    assert all(r["id"] == person["id"] for r in results)
    assert statuses.count(429) <= 2 and no_two_in_a_row(statuses)
    # 90% of 20 per 2 s, spaced 0.1 s apart: two windows of 18
    assert elapsed < 2.0 * calls / 18 + 1.0
    assert snapshot(sandbox)["usage"]["rejected_429"] == statuses.count(429)


async def test_searches_are_paced_by_their_own_tighter_window(
    sandbox: SandboxServer, make_pd: Callable[..., PipedriveClient]
) -> None:
    statuses: list[int] = []
    async with make_pd(burst=BurstLimiter(), on_response=lambda call: statuses.append(call.status)) as pd:
        found = await asyncio.gather(*(pd.search_persons_by_email(f"p{i}@example.com") for i in range(12)))
    assert found == [[]] * 12
    assert statuses == [200] * 12
    assert snapshot(sandbox)["usage"]["rejected_by_reason"] == {}


async def test_hammering_after_429s_gets_blocked_and_the_error_says_so(
    make_pd: Callable[..., PipedriveClient], plan: Callable[[str], None]
) -> None:
    plan("lite")
    # no limiter and no retries: what an integration that ignores the limits would see
    async with make_pd(retry=RetryPolicy(max_attempts=1)) as pd:
        results = await asyncio.gather(*(pd.pipelines() for _ in range(60)), return_exceptions=True)
    blocked = [r for r in results if isinstance(r, BlockedError)]
    assert blocked and all(isinstance(r, list | RateLimitedError | BlockedError) for r in results)
    assert blocked[0].status == 403 and "blocked" in blocked[0].message
    assert "slow down" in blocked[0].hint


async def test_the_budget_tracker_agrees_with_what_pipedrive_charged(
    sandbox: SandboxServer, make_pd: Callable[..., PipedriveClient]
) -> None:
    budget = BudgetTracker()
    async with make_pd(budget=budget) as pd:
        person = await pd.create_person({"name": "Counted"})
        await pd.search_persons_by_email("counted@example.com")
        await pd.deal_fields()
        await pd.create_lead({"title": "Counted lead", "person_id": person["id"]})
        assert await pd.get_lead(str(uuid.uuid4())) is None  # a 404 is charged too
        await pd.deals_page()
    usage = snapshot(sandbox)["usage"]
    budget_now = budget.snapshot()
    assert budget_now.used_today == usage["tokens_used_today"] == 5 + 20 + 10 + 10 + 2 + 10
    assert budget_now.daily_budget == usage["daily_budget"]
    assert budget_now.remaining == usage["daily_budget"] - usage["tokens_used_today"]


async def test_an_exhausted_daily_budget_stops_all_calls_until_midnight(
    sandbox: SandboxServer, make_pd: Callable[..., PipedriveClient]
) -> None:
    admin_put(sandbox, "/pd/budget", {"remaining": 5})
    budget = BudgetTracker()
    async with make_pd(budget=budget) as pd:
        await pd.deal_fields()  # costs 10: overdraws the last 5 tokens
        with pytest.raises(BudgetExhaustedError) as caught:
            await pd.pipelines()
        requests_so_far = pd_stats(sandbox)["requests"]
        with pytest.raises(BudgetExhaustedError) as again:
            await pd.me()
    error = caught.value
    midnight = next_midnight_utc(datetime.now(UTC))
    assert abs((error.resets_at - midnight).total_seconds()) < 5
    assert error.status == 429 and "daily" in error.message
    # no hammering: the refused call never left this computer, and the 429 was not retried
    assert pd_stats(sandbox)["requests"] == requests_so_far == 2
    assert snapshot(sandbox)["usage"]["rejected_by_reason"] == {"daily": 1}
    assert again.value.resets_at == error.resets_at
    state = budget.snapshot()
    assert (state.remaining, state.exhausted_until) == (0, error.resets_at)


async def test_without_a_tracker_a_daily_budget_429_is_raised_not_retried(
    sandbox: SandboxServer, make_pd: Callable[..., PipedriveClient]
) -> None:
    admin_put(sandbox, "/pd/budget", {"remaining": 0})
    async with make_pd(retry=RetryPolicy(max_attempts=5, max_wait=1e6, sleep=brief_sleep)) as pd:
        with pytest.raises(BudgetExhaustedError) as caught:
            await pd.me()
    assert caught.value.retry_after is not None and caught.value.retry_after > 60
    assert pd_stats(sandbox)["requests"] == 1


async def test_the_owners_cap_refuses_calls_before_they_are_sent(
    sandbox: SandboxServer, make_pd: Callable[..., PipedriveClient]
) -> None:
    budget = BudgetTracker(cap=12)
    async with make_pd(budget=budget) as pd:
        await pd.deal_fields()  # 10 of the 12 tokens
        await pd.me()  # 2 more: exactly the cap
        with pytest.raises(BudgetExhaustedError) as caught:
            await pd.get_deal(1)
    assert "12" in caught.value.message and caught.value.status is None
    assert pd_stats(sandbox)["requests"] == 2


# --- answers the sandbox does not give: pure mapping decisions, on a mock transport ---------------------


def mock_pd(response: httpx.Response, budget: BudgetTracker | None = None) -> PipedriveClient:
    return PipedriveClient(
        "https://acme.pipedrive.com",
        "pd-token",
        transport=httpx.MockTransport(lambda request: response),
        retry=RetryPolicy(max_attempts=2, sleep=brief_sleep),
        budget=budget,
    )


async def test_a_429_with_no_tokens_left_and_a_long_wait_is_the_daily_budget() -> None:
    headers = {"retry-after": "3939", "x-daily-ratelimit-token-remaining": "0"}
    budget = BudgetTracker()
    async with mock_pd(
        httpx.Response(429, json={"success": False, "error": "Too many"}, headers=headers), budget
    ) as pd:
        with pytest.raises(BudgetExhaustedError) as caught:
            await pd.me()
    expected = datetime.now(UTC) + timedelta(seconds=3939)
    assert abs((caught.value.resets_at - expected).total_seconds()) < 5
    assert budget.snapshot().exhausted_until == caught.value.resets_at


async def test_a_daily_429_without_retry_after_is_checked_hourly_not_taken_to_end_at_midnight_utc() -> None:
    budget = BudgetTracker()
    body = {"success": False, "error": "daily request budget exceeded", "errorCode": 429}
    # the burst window's reset says nothing about the day
    async with mock_pd(httpx.Response(429, json=body, headers={"x-ratelimit-reset": "2"}), budget) as pd:
        with pytest.raises(BudgetExhaustedError) as caught:
            await pd.me()
    expected = datetime.now(UTC) + timedelta(hours=1)
    assert abs((caught.value.resets_at - expected).total_seconds()) < 5
    assert "time zone" in caught.value.message and "one call every hour" in caught.value.hint
    assert budget.snapshot().exhausted_until == caught.value.resets_at


async def test_a_short_429_is_a_burst_even_when_the_budget_header_says_zero() -> None:
    headers = {"retry-after": "1", "x-daily-ratelimit-token-remaining": "0"}
    async with mock_pd(httpx.Response(429, json={"success": False}, headers=headers)) as pd:
        with pytest.raises(RateLimitedError) as caught:
            await pd.me()
    assert type(caught.value) is RateLimitedError and caught.value.retry_after == 1


async def test_a_contact_sync_refusal_is_permission_denied_with_its_code() -> None:
    body = {"success": False, "error": "Contact Sync is not enabled", "code": "feature_not_enabled"}
    async with mock_pd(httpx.Response(403, json=body)) as pd:
        with pytest.raises(PermissionDeniedError) as caught:
            await pd.update_person(1, {"job_title": "Baker"})
    assert caught.value.code == "feature_not_enabled" and "Contact Sync" in caught.value.message
