"""BurstLimiter and BudgetTracker on a fake clock: the arithmetic, without waiting for real seconds.

Their behaviour against the sandbox's real Pipedrive limits is in test_ratelimit_sandbox.py.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from rf_desktop.core.http import BudgetExhaustedError
from rf_desktop.core.ratelimit import BudgetTracker, BurstLimiter, is_search, next_midnight_utc

pytestmark = pytest.mark.anyio


class FakeTime:
    """A monotonic clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def limiter(clock: FakeTime) -> BurstLimiter:
    return BurstLimiter(clock=clock, sleep=clock.sleep)


async def send_times(
    burst: BurstLimiter, clock: FakeTime, count: int, path: str = "/api/v2/deals"
) -> list[float]:
    times = []
    for _ in range(count):
        await burst.acquire("GET", path)
        times.append(clock.now)
    return times


def test_search_paths_are_recognised() -> None:
    assert is_search("GET", "/api/v2/persons/search")
    assert not is_search("GET", "/api/v2/persons/42")
    assert not is_search("GET", "/api/v1/leads")


def in_any_window(times: list[float], window: float = 2.0) -> int:
    """The most sends that fall within one window, wherever it starts."""
    return max(sum(1 for t in times if start <= t < start + window - 1e-9) for start in times)


async def test_default_pace_is_95_percent_of_20_per_2_seconds_evenly_spaced() -> None:
    clock = FakeTime()
    burst = limiter(clock)
    times = await send_times(burst, clock, 40)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) == pytest.approx(0.1)  # 2 s / 20
    assert in_any_window(times) == 19
    # 40 sends: two full windows of 19, then 2 more
    assert times[-1] - times[0] == pytest.approx(4.1)


async def test_search_calls_also_respect_the_search_window() -> None:
    clock = FakeTime()
    burst = limiter(clock)
    times = await send_times(burst, clock, 10, "/api/v2/persons/search")
    assert in_any_window(times) == 9
    assert times[1] - times[0] == pytest.approx(0.2)  # 2 s / 10
    assert times[9] == pytest.approx(1002.0)
    # the general window counted the searches too, but it has room: only its own spacing applies
    await burst.acquire("GET", "/api/v2/deals")
    assert clock.now == pytest.approx(1002.1)


async def test_limit_is_learned_from_headers_per_window() -> None:
    clock = FakeTime()
    burst = limiter(clock)
    burst.observe("GET", "/api/v2/deals", 200, {"x-ratelimit-limit": "40", "x-ratelimit-remaining": "39"})
    burst.observe(
        "GET", "/api/v2/persons/search", 200, {"x-ratelimit-limit": "10", "x-ratelimit-remaining": "9"}
    )
    assert (burst.limit, burst.search_limit) == (40, 10)
    times = await send_times(burst, clock, 80)
    assert in_any_window(times) == 38  # 95% of 40
    assert times[1] - times[0] == pytest.approx(0.05)


async def test_a_429_pauses_until_retry_after() -> None:
    clock = FakeTime()
    burst = limiter(clock)
    burst.observe("GET", "/api/v2/deals", 429, {"retry-after": "2", "x-ratelimit-remaining": "0"})
    await burst.acquire("GET", "/api/v2/deals")
    assert clock.now == pytest.approx(1002.0)


async def test_a_daily_budget_429_does_not_freeze_the_pacing() -> None:
    clock = FakeTime()
    burst = limiter(clock)
    burst.observe(
        "GET", "/api/v2/deals", 429, {"retry-after": "3939", "x-daily-ratelimit-token-remaining": "0"}
    )
    await burst.acquire("GET", "/api/v2/deals")
    assert clock.slept == []


async def test_an_empty_window_reported_by_the_server_pauses_until_its_reset() -> None:
    clock = FakeTime()
    burst = limiter(clock)
    # another program using the same token has used the window up
    burst.observe("GET", "/api/v2/deals", 200, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1"})
    await burst.acquire("GET", "/api/v2/deals")
    assert clock.slept == [pytest.approx(1.0)]


async def test_missing_or_malformed_headers_change_nothing() -> None:
    clock = FakeTime()
    burst = limiter(clock)
    burst.observe("GET", "/api/v2/deals", 200, {"x-ratelimit-limit": "lots"})
    await burst.acquire("GET", "/api/v2/deals")
    assert burst.limit == 20 and clock.slept == []


# --- the daily budget ----------------------------------------------------------------------------------


class FakeNow:
    def __init__(self, start: datetime) -> None:
        self.value = start

    def __call__(self) -> datetime:
        return self.value


NOON = datetime(2026, 3, 4, 12, 0, 0, tzinfo=UTC)


def test_record_charges_the_endpoint_cost_and_headers_correct_it() -> None:
    tracker = BudgetTracker(now=FakeNow(NOON))
    assert tracker.record("GET", "/api/v2/persons/search") == 20
    assert tracker.record("POST", "/api/v1/leads") == 10
    snap = tracker.snapshot()
    assert (snap.used_today, snap.daily_budget, snap.remaining) == (30, None, None)
    tracker.record(
        "GET",
        "/api/v2/deals/5",
        {"x-daily-ratelimit-token-limit": "60000", "x-daily-ratelimit-token-remaining": "59000"},
    )
    snap = tracker.snapshot()
    assert (snap.used_today, snap.daily_budget, snap.remaining) == (1000, 60000, 59000)
    assert snap.resets_at == datetime(2026, 3, 5, tzinfo=UTC)


def test_the_legacy_requests_left_header_is_not_taken_for_tokens() -> None:
    # it counts POST/PUT requests, not tokens
    tracker = BudgetTracker(daily_budget=30000, now=FakeNow(NOON))
    tracker.record("GET", "/api/v2/deals", {"x-daily-requests-left": "100"})
    assert (tracker.snapshot().used_today, tracker.snapshot().remaining) == (10, 29990)


def test_the_owner_cap_refuses_a_call_that_would_pass_it() -> None:
    tracker = BudgetTracker(cap=25, now=FakeNow(NOON))
    tracker.record("GET", "/api/v2/persons/search")
    tracker.check("POST", "/api/v2/persons")  # 20 + 5 fits exactly
    with pytest.raises(BudgetExhaustedError) as caught:
        tracker.check("GET", "/api/v2/deals")  # 20 + 10 would not
    assert caught.value.resets_at == datetime(2026, 3, 5, tzinfo=UTC)
    assert "25" in str(caught.value)
    assert tracker.snapshot().remaining == 5


def test_exhaustion_refuses_calls_until_the_reset_and_a_new_day_starts_fresh() -> None:
    clock = FakeNow(NOON)
    tracker = BudgetTracker(daily_budget=1000, now=clock)
    tracker.record("GET", "/api/v2/deals")
    tracker.exhausted(next_midnight_utc(NOON))
    with pytest.raises(BudgetExhaustedError) as caught:
        tracker.check("GET", "/api/v2/deals/1")
    assert caught.value.retry_after == pytest.approx(12 * 3600)
    assert tracker.snapshot().remaining == 0
    clock.value = NOON + timedelta(hours=12, seconds=1)
    tracker.check("GET", "/api/v2/deals/1")
    snap = tracker.snapshot()
    assert (snap.used_today, snap.exhausted_until, snap.remaining) == (0, None, 1000)


def test_round_trip_through_a_dict_keeps_today_and_drops_yesterday() -> None:
    clock = FakeNow(NOON)
    tracker = BudgetTracker(daily_budget=30000, cap=5000, now=clock)
    tracker.record("GET", "/api/v2/deals")
    tracker.exhausted(NOON + timedelta(hours=1))
    saved = tracker.to_dict()
    restored = BudgetTracker.from_dict(saved, now=clock)
    assert restored.snapshot() == tracker.snapshot()
    clock.value = NOON + timedelta(days=1)
    tomorrow = BudgetTracker.from_dict(saved, now=clock)
    assert (tomorrow.snapshot().used_today, tomorrow.snapshot().exhausted_until, tomorrow.cap) == (
        0,
        None,
        5000,
    )


def test_a_guessed_reset_lets_one_call_check_each_hour_and_holds_the_others() -> None:
    clock = FakeNow(NOON)
    tracker = BudgetTracker(daily_budget=1000, now=clock)
    tracker.exhausted(NOON + timedelta(hours=1), check_only=True)
    with pytest.raises(BudgetExhaustedError) as before:
        tracker.check("GET", "/api/v2/deals")
    assert "checks again after 13:00 UTC" in str(before.value)

    clock.value = NOON + timedelta(hours=1, seconds=1)
    tracker.check("GET", "/api/v1/users/me")  # the hour's one check goes
    with pytest.raises(BudgetExhaustedError):
        tracker.check("GET", "/api/v2/deals")  # the others wait for its answer
    assert BudgetTracker.from_dict(tracker.to_dict(), now=clock).snapshot() == tracker.snapshot()

    tracker.record("GET", "/api/v1/users/me")  # answered: the budget is back
    tracker.check("GET", "/api/v2/deals")
    assert tracker.snapshot().exhausted_until is None
