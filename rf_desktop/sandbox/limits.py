"""Rate limits of the simulated services.

Pipedrive: a rolling 2-second burst window per API token (its size depends on the plan), a tighter window
for the search endpoints, a company-wide daily token budget charged with each endpoint's `x-token-cost`,
and the edge's abuse protection that answers 403 to a token that keeps sending after 429s.
Referral Factory: 600 calls per minute per token.

Time comes from the sandbox `Clock` (monotonic time for the windows, wall time for the daily reset at
midnight in `time_zone`, UTC unless set), so tests can move it instead of sleeping.

Two shapes the public material leaves open are modes of `PipedriveLimiter` (docs/sandbox.md):
`time_zone`, the zone whose midnight resets the daily budget (Pipedrive says "the server's time zone"),
and `rate_limit_headers`, off for an account that sends no `x-ratelimit-*`, `x-daily-*` or `retry-after`.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from rf_desktop.sandbox.clock import Clock

BURST_WINDOW_SECONDS = 2.0
BURST_LIMITS = {"lite": 20, "growth": 40, "premium": 100, "ultimate": 120}
SEARCH_BURST_LIMIT = 10
DAILY_TOKENS_PER_SEAT = 30_000
PLAN_MULTIPLIERS = {"lite": 1, "growth": 2, "premium": 5, "ultimate": 7}


class RollingWindow:
    """At most `limit` accepted calls in any `window` seconds."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._calls: deque[float] = deque()

    def _prune(self, now: float) -> None:
        while self._calls and self._calls[0] <= now - self.window:
            self._calls.popleft()

    def remaining(self, now: float) -> int:
        self._prune(now)
        return max(0, self.limit - len(self._calls))

    def seconds_until_free(self, now: float) -> float:
        """Seconds until the oldest call leaves the window (0 when nothing is in it)."""
        self._prune(now)
        return self._calls[0] + self.window - now if self._calls else 0.0

    def add(self, now: float) -> None:
        self._calls.append(now)


def _whole_seconds(seconds: float) -> int:
    """Retry-After style: whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(seconds))


class PerMinuteLimiter:
    """Referral Factory's limit: `limit` calls per `window` seconds for each token."""

    def __init__(self, clock: Clock, limit: int = 600, window: float = 60.0) -> None:
        self.clock = clock
        self.limit = limit
        self.window = window
        self._windows: dict[str, RollingWindow] = {}

    def check(self, key: str) -> tuple[bool, float]:
        """(allowed, retry_after seconds); an allowed call is counted."""
        now = self.clock.monotonic()
        window = self._windows.setdefault(key, RollingWindow(self.limit, self.window))
        if window.remaining(now) == 0:
            return False, float(_whole_seconds(window.seconds_until_free(now)))
        window.add(now)
        return True, 0.0

    def reset(self) -> None:
        self._windows.clear()


@dataclass(frozen=True)
class Admission:
    """The limiter's answer to one request. `reason` is None when allowed, else one of
    `burst`, `search_burst`, `daily` (all 429) or `blocked` (the edge's 403)."""

    allowed: bool
    reason: str | None = None
    retry_after: int = 0


class PipedriveLimiter:
    """Pipedrive's limits for one company. Rejected requests are not charged and do not take a slot."""

    def __init__(
        self,
        clock: Clock,
        *,
        plan: str = "growth",
        seats: int = 1,
        window: float = BURST_WINDOW_SECONDS,
        search_limit: int = SEARCH_BURST_LIMIT,
        abuse_threshold: int = 20,
        abuse_window: float = 10.0,
        block_seconds: float = 60.0,
        time_zone: str = "UTC",
        rate_limit_headers: bool = True,
    ) -> None:
        self.clock = clock
        self.zone = ZoneInfo(time_zone)
        self.rate_limit_headers = rate_limit_headers
        self.window = window
        self.search_limit = search_limit
        self.abuse_threshold = abuse_threshold
        self.abuse_window = abuse_window
        self.block_seconds = block_seconds
        self.reset()
        self.set_plan(plan, seats)

    # --- configuration -------------------------------------------------------------------------

    def set_plan(self, plan: str, seats: int) -> None:
        if plan not in BURST_LIMITS:
            raise ValueError(f"unknown Pipedrive plan {plan!r}; expected one of {', '.join(BURST_LIMITS)}")
        if seats < 1:
            raise ValueError("a Pipedrive company has at least one seat")
        self.plan = plan
        self.seats = seats
        # a plan change resizes the burst windows; calls already made stay counted
        for window in self._burst.values():
            window.limit = self.burst_limit

    @property
    def burst_limit(self) -> int:
        return BURST_LIMITS[self.plan]

    @property
    def daily_budget(self) -> int:
        return DAILY_TOKENS_PER_SEAT * PLAN_MULTIPLIERS[self.plan] * self.seats

    def reset(self) -> None:
        """Forget all usage: windows, blocks, today's tokens and the counters."""
        self._burst: dict[str, RollingWindow] = {}
        self._search: dict[str, RollingWindow] = {}
        self._rejections: dict[str, deque[float]] = {}
        self._blocked_until: dict[str, float] = {}
        self._day = self._local_now().date()
        self._used_today = 0
        self.requests = 0
        self.rejected_by_reason: dict[str, int] = {}

    # --- the daily budget ----------------------------------------------------------------------

    def set_time_zone(self, name: str) -> None:
        """Reset the daily budget at midnight in this IANA time zone from now on."""
        self.zone = ZoneInfo(name)  # raises for an unknown name
        self._day = self._local_now().date()

    def _local_now(self) -> datetime:
        return self.clock.now().astimezone(self.zone)

    def _today(self) -> date:
        today = self._local_now().date()
        if today != self._day:
            # the budget resets at midnight in the server's time zone
            self._day = today
            self._used_today = 0
        return today

    @property
    def tokens_used_today(self) -> int:
        self._today()
        return self._used_today

    @property
    def tokens_remaining_today(self) -> int:
        return max(0, self.daily_budget - self.tokens_used_today)

    def set_daily_remaining(self, tokens: int) -> None:
        self._today()
        self._used_today = max(0, self.daily_budget - max(0, tokens))

    def seconds_until_reset(self) -> int:
        now = self._local_now()
        midnight = datetime.combine(self._today() + timedelta(days=1), time(0), tzinfo=self.zone)
        return _whole_seconds((midnight - now).total_seconds())

    def charge(self, tokens: int) -> None:
        self._today()
        self._used_today += tokens

    # --- admission -----------------------------------------------------------------------------

    def _windows_for(self, key: str) -> tuple[RollingWindow, RollingWindow]:
        burst = self._burst.setdefault(key, RollingWindow(self.burst_limit, self.window))
        search = self._search.setdefault(key, RollingWindow(self.search_limit, self.window))
        return burst, search

    def admit(self, key: str, *, search: bool = False) -> Admission:
        """Decide on one request of token `key`; an admitted request takes its slot(s) in the windows."""
        now = self.clock.monotonic()
        blocked_until = self._blocked_until.get(key, 0.0)
        if now < blocked_until:
            return self._reject(key, now, Admission(False, "blocked", _whole_seconds(blocked_until - now)))
        burst, search_window = self._windows_for(key)
        if self.tokens_remaining_today <= 0:
            # exhausted: every request gets 429 until midnight (a request may overdraw the last tokens)
            return self._reject(key, now, Admission(False, "daily", self.seconds_until_reset()))
        for reason, window, applies in (("burst", burst, True), ("search_burst", search_window, search)):
            if applies and window.remaining(now) == 0:
                wait = _whole_seconds(window.seconds_until_free(now))
                return self._reject(key, now, Admission(False, reason, wait))
        burst.add(now)
        if search:
            search_window.add(now)
        self.requests += 1
        return Admission(True)

    def _reject(self, key: str, now: float, admission: Admission) -> Admission:
        assert admission.reason is not None
        self.rejected_by_reason[admission.reason] = self.rejected_by_reason.get(admission.reason, 0) + 1
        if admission.reason != "blocked":
            recent = self._rejections.setdefault(key, deque())
            recent.append(now)
            while recent and recent[0] <= now - self.abuse_window:
                recent.popleft()
            if len(recent) > self.abuse_threshold:
                # the token ignored the 429s: the edge blocks it for a while
                self._blocked_until[key] = now + self.block_seconds
                recent.clear()
        return admission

    def headers(self, key: str, *, search: bool = False) -> dict[str, str]:
        """The rate-limit headers Pipedrive sends with every response to this token (none in the mode
        without them)."""
        if not self.rate_limit_headers:
            return {}
        now = self.clock.monotonic()
        burst, search_window = self._windows_for(key)
        window = search_window if search else burst
        remaining_tokens = str(self.tokens_remaining_today)
        return {
            "x-ratelimit-limit": str(window.limit),
            "x-ratelimit-remaining": str(window.remaining(now)),
            "x-ratelimit-reset": str(math.ceil(window.seconds_until_free(now))),
            "x-daily-requests-left": remaining_tokens,
            "x-daily-ratelimit-token-limit": str(self.daily_budget),
            "x-daily-ratelimit-token-remaining": remaining_tokens,
        }

    # --- reporting and persistence -------------------------------------------------------------

    def usage(self) -> dict[str, Any]:
        rejected_429 = sum(n for reason, n in self.rejected_by_reason.items() if reason != "blocked")
        return {
            "plan": self.plan,
            "seats": self.seats,
            "tokens_used_today": self.tokens_used_today,
            "daily_budget": self.daily_budget,
            "requests": self.requests,
            "rejected_429": rejected_429,
            "rejected_by_reason": dict(self.rejected_by_reason),
        }

    def retry_after(self, admission: Admission) -> dict[str, str]:
        """The `retry-after` header of a 429 (none in the mode without rate-limit headers)."""
        return {"retry-after": str(admission.retry_after)} if self.rate_limit_headers else {}

    def to_json(self) -> dict[str, Any]:
        return {
            "plan": self.plan,
            "seats": self.seats,
            "time_zone": self.zone.key,
            "rate_limit_headers": self.rate_limit_headers,
            "day": self._today().isoformat(),
            "tokens_used": self._used_today,
        }

    def from_json(self, data: dict[str, Any]) -> None:
        self.reset()
        self.set_plan(data.get("plan", self.plan), int(data.get("seats", self.seats)))
        self.set_time_zone(data.get("time_zone", self.zone.key))
        self.rate_limit_headers = bool(data.get("rate_limit_headers", self.rate_limit_headers))
        if data.get("day") == self._today().isoformat():
            self._used_today = int(data.get("tokens_used", 0))
