"""Pipedrive's rate limits as the sandbox applies them (burst window, search window, daily token budget,
the edge's block), over real HTTP, and the limiters themselves with a moved clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from rf_desktop.core.token_costs import cost_of
from rf_desktop.sandbox.clock import Clock
from rf_desktop.sandbox.limits import PerMinuteLimiter, PipedriveLimiter
from rf_desktop.sandbox.server import SandboxServer

TOKEN = "pd-sandbox-token"
GROWTH_BUDGET = 60_000


@pytest.fixture
def pd(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.pd_base_url, headers={"x-api-token": TOKEN}, timeout=10) as client:
        yield client


def seconds_to_midnight(clock: Clock) -> float:
    now = clock.now()
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    return (midnight - now).total_seconds()


def test_the_41st_request_within_two_seconds_gets_429_on_growth(
    sandbox: SandboxServer, pd: httpx.Client
) -> None:
    responses = [pd.get("/api/v1/users/me") for _ in range(41)]
    assert [r.status_code for r in responses] == [200] * 40 + [429]
    assert [int(r.headers["x-ratelimit-remaining"]) for r in responses[:40]] == list(range(39, -1, -1))
    refused = responses[-1]
    assert refused.json() == {"success": False, "error": "Request over limit", "errorCode": 429}
    assert 1 <= int(refused.headers["retry-after"]) <= 2
    assert (refused.headers["x-ratelimit-limit"], refused.headers["x-ratelimit-remaining"]) == ("40", "0")
    assert refused.headers["x-daily-ratelimit-token-remaining"] == str(GROWTH_BUDGET - 40 * 2)
    sandbox.state.clock.advance(2)
    assert pd.get("/api/v1/users/me").status_code == 200


def test_the_11th_search_within_two_seconds_gets_429(pd: httpx.Client) -> None:
    params = {"term": "jane@example.com", "fields": "email", "exact_match": "true"}
    searches = [pd.get("/api/v2/persons/search", params=params) for _ in range(11)]
    assert [r.status_code for r in searches] == [200] * 10 + [429]
    assert searches[0].headers["x-ratelimit-limit"] == "10" and searches[-1].headers["retry-after"] in (
        "1",
        "2",
    )
    assert (
        pd.get("/api/v2/deals/search", params={"term": "jane"}).status_code == 429
    )  # one window for all searches
    assert pd.get("/api/v2/pipelines").status_code == 200  # the general window still has room


def test_each_request_is_charged_its_token_cost(pd: httpx.Client) -> None:
    calls = [
        ("GET", "/api/v1/users/me"),
        ("GET", "/api/v2/deals"),
        ("GET", "/api/v1/leads"),
        ("GET", "/api/v2/stages"),
        ("POST", "/api/v2/persons"),
    ]
    remaining = GROWTH_BUDGET
    for method, path in calls:
        response = pd.request(method, path, json={"name": "Jane"} if method == "POST" else None)
        remaining -= cost_of(method, path)
        assert response.headers["x-daily-ratelimit-token-remaining"] == str(remaining)
        assert response.headers["x-daily-requests-left"] == str(remaining)
        assert response.headers["x-daily-ratelimit-token-limit"] == str(GROWTH_BUDGET)
    assert remaining == GROWTH_BUDGET - (2 + 10 + 20 + 5 + 5)


def test_the_daily_budget_runs_out_until_midnight_utc(sandbox: SandboxServer, pd: httpx.Client) -> None:
    with sandbox.state.lock:
        sandbox.state.pd.set_daily_remaining(12)
    assert pd.get("/api/v2/deals").headers["x-daily-ratelimit-token-remaining"] == "2"
    assert pd.get("/api/v1/users/me").headers["x-daily-ratelimit-token-remaining"] == "0"
    exhausted = pd.get("/api/v1/users/me")
    assert exhausted.status_code == 429
    assert exhausted.json() == {"success": False, "error": "daily request budget exceeded", "errorCode": 429}
    assert abs(int(exhausted.headers["retry-after"]) - seconds_to_midnight(sandbox.state.clock)) <= 2
    assert exhausted.headers["x-daily-ratelimit-token-remaining"] == "0"
    assert sandbox.state.pd.limiter.usage()["rejected_by_reason"] == {"daily": 1}
    sandbox.state.clock.advance(int(exhausted.headers["retry-after"]) + 1)
    next_day = pd.get("/api/v2/deals")
    assert next_day.status_code == 200
    assert next_day.headers["x-daily-ratelimit-token-remaining"] == str(GROWTH_BUDGET - 10)


def test_refused_requests_are_not_charged(sandbox: SandboxServer, pd: httpx.Client) -> None:
    for _ in range(45):
        pd.get("/api/v2/pipelines")
    usage = sandbox.state.pd.limiter.usage()
    assert (usage["requests"], usage["rejected_429"], usage["tokens_used_today"]) == (40, 5, 40 * 5)


def test_a_token_that_ignores_429s_is_blocked_by_the_edge(sandbox: SandboxServer, pd: httpx.Client) -> None:
    limiter = sandbox.state.pd.limiter
    with sandbox.state.lock:
        limiter.abuse_threshold = 5
    statuses = [pd.get("/api/v2/pipelines").status_code for _ in range(47)]
    assert statuses == [200] * 40 + [429] * 6 + [403]
    blocked = pd.get("/api/v2/pipelines")
    assert blocked.status_code == 403 and blocked.headers["content-type"].startswith("text/html")
    assert "Sorry, you have been blocked" in blocked.text
    sandbox.state.clock.advance(limiter.block_seconds - 1)
    assert pd.get("/api/v2/pipelines").status_code == 403
    sandbox.state.clock.advance(2)
    assert pd.get("/api/v2/pipelines").status_code == 200
    assert limiter.usage()["rejected_by_reason"] == {"burst": 6, "blocked": 3}


@pytest.mark.parametrize(
    ("plan", "seats", "burst", "budget"),
    [
        ("lite", 1, 20, 30_000),
        ("growth", 3, 40, 180_000),
        ("premium", 2, 100, 300_000),
        ("ultimate", 1, 120, 210_000),
    ],
)
def test_the_plan_sets_the_burst_limit_and_the_daily_budget(
    sandbox: SandboxServer, pd: httpx.Client, plan: str, seats: int, burst: int, budget: int
) -> None:
    with sandbox.state.lock:
        sandbox.state.pd.set_plan(plan, seats)
    headers = pd.get("/api/v2/pipelines").headers
    assert (headers["x-ratelimit-limit"], headers["x-daily-ratelimit-token-limit"]) == (
        str(burst),
        str(budget),
    )


def test_unknown_plans_and_seat_counts_are_refused() -> None:
    limiter = PipedriveLimiter(Clock())
    with pytest.raises(ValueError, match="unknown Pipedrive plan"):
        limiter.set_plan("enterprise", 1)
    with pytest.raises(ValueError, match="at least one seat"):
        limiter.set_plan("lite", 0)


def test_the_burst_window_rolls_rather_than_resets() -> None:
    clock = Clock()
    limiter = PipedriveLimiter(clock, plan="lite")
    for _ in range(10):
        assert limiter.admit("t").allowed
    clock.advance(1.5)
    for _ in range(10):
        assert limiter.admit("t").allowed
    assert limiter.admit("t").reason == "burst"
    clock.advance(0.6)  # the first ten leave the window; the last ten are still in it
    assert limiter.headers("t")["x-ratelimit-remaining"] == "10"
    assert limiter.admit("other-token").allowed  # windows are per token


def test_the_referral_factory_limiter_allows_600_calls_a_minute() -> None:
    clock = Clock()
    limiter = PerMinuteLimiter(clock)
    assert all(limiter.check("rf")[0] for _ in range(600))
    allowed, retry_after = limiter.check("rf")
    assert not allowed and 1 <= retry_after <= 60
    assert limiter.check("another-token") == (True, 0.0)
    clock.advance(retry_after)
    assert limiter.check("rf")[0]


def test_the_daily_budget_can_reset_at_midnight_in_another_time_zone(
    sandbox: SandboxServer, pd: httpx.Client
) -> None:
    admin = httpx.put(f"{sandbox.admin_url}/pd/shape", json={"time_zone": "Pacific/Kiritimati"}, timeout=10)
    assert admin.json()["time_zone"] == "Pacific/Kiritimati"  # UTC+14: its midnight is 10:00 UTC
    with sandbox.state.lock:
        sandbox.state.pd.set_daily_remaining(0)
    exhausted = pd.get("/api/v1/users/me")
    now = sandbox.state.clock.now()
    local_midnight = datetime.combine(now.date(), datetime.min.time(), tzinfo=UTC) + timedelta(hours=10)
    if local_midnight <= now:
        local_midnight += timedelta(days=1)
    assert abs(int(exhausted.headers["retry-after"]) - (local_midnight - now).total_seconds()) <= 2
    sandbox.state.clock.advance(int(exhausted.headers["retry-after"]) + 1)
    assert pd.get("/api/v1/users/me").status_code == 200


def test_a_mode_without_rate_limit_headers_sends_none_even_on_a_429(
    sandbox: SandboxServer, pd: httpx.Client
) -> None:
    httpx.put(f"{sandbox.admin_url}/pd/shape", json={"rate_limit_headers": False}, timeout=10)
    with sandbox.state.lock:
        sandbox.state.pd.set_daily_remaining(2)
    answered, exhausted = pd.get("/api/v1/users/me"), pd.get("/api/v1/users/me")
    assert (answered.status_code, exhausted.status_code) == (200, 429)
    assert exhausted.json()["error"] == "daily request budget exceeded"
    for response in (answered, exhausted):
        assert not [h for h in response.headers if h.startswith(("x-ratelimit", "x-daily", "retry-after"))]


def test_unknown_pipedrive_modes_are_refused(sandbox: SandboxServer) -> None:
    for body in ({"time_zone": "Nowhere/Land"}, {"conversion": "later"}, {"headers": False}):
        assert httpx.put(f"{sandbox.admin_url}/pd/shape", json=body, timeout=10).status_code == 422
    shape = httpx.get(f"{sandbox.admin_url}/pd/shape", timeout=10).json()
    assert shape == {"time_zone": "UTC", "rate_limit_headers": True, "conversion": "immediate"}
