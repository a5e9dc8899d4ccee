"""Client-side pacing for Pipedrive: the burst windows and the daily token budget.

Pipedrive allows a plan-dependent number of requests per rolling 2-second window (20 on Lite, learned
from `x-ratelimit-limit`), 10 per 2 s for its search endpoints, and a company-wide daily budget of tokens
(each endpoint has a cost, `token_costs.py`). Integrations that keep sending after a 429 get blocked, so
rf-desktop paces itself to stay just under the window and stops when the budget is spent.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from rf_desktop.core.http import PIPEDRIVE, BudgetExhaustedError, header_int, parse_retry_after
from rf_desktop.core.token_costs import SEARCH_PATHS, cost_of, match_template

DEFAULT_BURST_LIMIT = 20  # the Lite plan's, the smallest there is
SEARCH_BURST_LIMIT = 10
BURST_WINDOW_SECONDS = 2.0
# a burst 429 asks for a wait of a second or two; one much longer than this is the daily budget
BURST_PAUSE_CEILING = 60.0
# Pipedrive resets the daily budget at midnight in a time zone it does not name; when a 429 does not say
# when, one call an hour finds out, and the other calls wait this long for that call's answer
CHECK_EVERY = timedelta(hours=1)
CHECK_ANSWER_WAIT = timedelta(minutes=2)


def is_search(method: str, path: str) -> bool:
    found = match_template(method, path)
    return found is not None and found[0] in SEARCH_PATHS


class _Window:
    """Our own sends against one server window: at most `utilization` of its limit in any window, and
    spaced at least window/limit apart.

    The spacing matters as much as the count: the server counts requests when they arrive, which is a
    little later than we send them and not in the same order. A burst sent the moment the previous burst
    leaves our window can still meet it in the server's window; evenly spaced sends cannot.
    """

    def __init__(self, limit: int, window: float, utilization: float) -> None:
        self.limit = limit
        self.window = window
        self.utilization = utilization
        self.sends: deque[float] = deque()
        self.paused_until = 0.0

    @property
    def target(self) -> int:
        return max(1, math.floor(self.limit * self.utilization))

    def wait(self, now: float) -> float:
        """Seconds to wait before one more send fits (0 when it fits now)."""
        while self.sends and self.sends[0] <= now - self.window:
            self.sends.popleft()
        wait = self.paused_until - now
        if self.sends:
            wait = max(wait, self.sends[-1] + self.window / self.limit - now)
        if len(self.sends) >= self.target:
            # the send that must leave the window before another fits
            wait = max(wait, self.sends[len(self.sends) - self.target] + self.window - now)
        return max(0.0, wait)

    def pause(self, until: float) -> None:
        self.paused_until = max(self.paused_until, until)


class BurstLimiter:
    """Paces Pipedrive requests under the burst windows. `acquire()` before each request, `observe()` after.

    The general window starts at a safe 20 requests per 2 s and follows `x-ratelimit-limit`; search calls
    also take a slot in the separate search window; sends are spread evenly. A response saying the window
    is used up, or a 429, pauses sending until the window resets, so a rejection is not followed by another.
    """

    def __init__(
        self,
        *,
        limit: int = DEFAULT_BURST_LIMIT,
        search_limit: int = SEARCH_BURST_LIMIT,
        window: float = BURST_WINDOW_SECONDS,
        utilization: float = 0.95,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self._general = _Window(limit, window, utilization)
        self._search = _Window(search_limit, window, utilization)
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()

    @property
    def limit(self) -> int:
        return self._general.limit

    @property
    def search_limit(self) -> int:
        return self._search.limit

    def _windows(self, method: str, path: str) -> tuple[_Window, ...]:
        return (self._general, self._search) if is_search(method, path) else (self._general,)

    async def acquire(self, method: str, path: str) -> None:
        """Wait until one more request fits in every window it counts against, then take its slot."""
        windows = self._windows(method, path)
        # one waiter at a time, so concurrent tasks queue up instead of all waking at once
        async with self._lock:
            while True:
                now = self._clock()
                wait = max(w.wait(now) for w in windows)
                if wait <= 0:
                    break
                await self._sleep(wait)
            for w in windows:
                w.sends.append(now)

    def observe(self, method: str, path: str, status: int, headers: Mapping[str, str]) -> None:
        """Learn from a response's `x-ratelimit-*` headers (which describe the search window for searches)."""
        window = self._search if is_search(method, path) else self._general
        limit = header_int(headers, "x-ratelimit-limit")
        if limit is not None and limit > 0:
            window.limit = limit
        remaining = header_int(headers, "x-ratelimit-remaining")
        reset = parse_retry_after(headers.get("x-ratelimit-reset"))
        now = self._clock()
        if status == 429:
            wait = parse_retry_after(headers.get("retry-after"))
            wait = wait if wait is not None else reset if reset is not None else window.window
            # a wait of an hour is the daily budget, not the burst window: the budget tracker and the
            # caller deal with that, and pacing must not freeze for it
            if wait <= BURST_PAUSE_CEILING:
                window.pause(now + wait)
        elif remaining == 0:
            window.pause(now + (reset if reset is not None else window.window))


# --- the daily budget ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetSnapshot:
    """Today's Pipedrive token use as rf-desktop knows it. `daily_budget` is None until Pipedrive says it."""

    used_today: int
    daily_budget: int | None
    cap: int | None
    remaining: int | None
    exhausted_until: datetime | None
    resets_at: datetime


def next_midnight_utc(now: datetime) -> datetime:
    return datetime.combine(now.astimezone(UTC).date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class BudgetTracker:
    """Counts the tokens rf-desktop spends today (UTC), corrected by Pipedrive's own figures when sent.

    `check()` refuses a call before it is sent when the budget is known to be gone, or when it would pass
    the owner's cap, so an exhausted budget is never hammered.
    """

    def __init__(
        self,
        *,
        daily_budget: int | None = None,
        cap: int | None = None,
        now: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.cap = cap
        self._now = now
        self._day = now().astimezone(UTC).date()
        self._used = 0
        self._daily_budget = daily_budget
        self._server_remaining: int | None = None
        self._exhausted_until: datetime | None = None
        # the reset time is a guess: when it comes, one call checks before the others go
        self._check_only = False

    def _roll(self) -> datetime:
        """The current time, after starting a new day's count when midnight UTC has passed."""
        now = self._now()
        today = now.astimezone(UTC).date()
        if today != self._day:
            self._day = today
            self._used = 0
            self._server_remaining = None
        if self._exhausted_until is not None and now >= self._exhausted_until and not self._check_only:
            self._exhausted_until = None
        return now

    def check(self, method: str, path: str) -> None:
        """Raise BudgetExhaustedError instead of sending a call the budget cannot pay for."""
        now = self._roll()
        resets_at = next_midnight_utc(now)
        if self._exhausted_until is not None and self._check_only and now >= self._exhausted_until:
            # this call is the hourly check; the others wait for its answer
            self._exhausted_until = now + CHECK_ANSWER_WAIT
        elif self._exhausted_until is not None:
            when = "checks again" if self._check_only else "continues"
            raise BudgetExhaustedError(
                PIPEDRIVE,
                "Pipedrive's daily API budget for this company is used up.",
                hint=f"rf-desktop {when} after {self._exhausted_until:%H:%M} UTC.",
                status=None,
                retry_after=(self._exhausted_until - now).total_seconds(),
                resets_at=self._exhausted_until,
            )
        if self.cap is not None and self._used + cost_of(method, path) > self.cap:
            raise BudgetExhaustedError(
                PIPEDRIVE,
                f"rf-desktop has used the {self.cap} Pipedrive API tokens per day you allowed it.",
                hint="Raise the daily cap in the settings, or wait until midnight UTC.",
                status=None,
                retry_after=(resets_at - now).total_seconds(),
                resets_at=resets_at,
            )

    def record(self, method: str, path: str, headers: Mapping[str, str] | None = None) -> int:
        """Charge one answered call; Pipedrive's `x-daily-*` headers, when present, override the count."""
        self._roll()
        if self._check_only:  # the hourly check was answered: the budget is back
            self._check_only = False
            self._exhausted_until = None
        cost = cost_of(method, path)
        self._used += cost
        if headers:
            self.correct(headers)
        return cost

    def correct(self, headers: Mapping[str, str]) -> None:
        """Adopt Pipedrive's figures: the budget, and what is left of it.

        `x-daily-requests-left` is deliberately not used: Pipedrive documents it as the legacy count of
        POST/PUT requests left, not tokens, and taking it for tokens could stop syncing for no reason."""
        self._roll()
        limit = header_int(headers, "x-daily-ratelimit-token-limit")
        remaining = header_int(headers, "x-daily-ratelimit-token-remaining")
        if limit is not None and limit > 0:
            self._daily_budget = limit
        if remaining is not None:
            self._server_remaining = remaining
            if self._daily_budget is not None:
                self._used = max(0, self._daily_budget - remaining)

    def exhausted(self, until: datetime, *, check_only: bool = False) -> None:
        """Pipedrive said the budget is gone: refuse calls until `until`. With `check_only` that time is a
        guess, so only one call goes then, to see whether the budget is back."""
        self._roll()
        self._exhausted_until = until
        self._check_only = check_only
        self._server_remaining = 0
        if self._daily_budget is not None:
            self._used = max(self._used, self._daily_budget)

    def snapshot(self) -> BudgetSnapshot:
        now = self._roll()
        left = [v - self._used for v in (self._daily_budget, self.cap) if v is not None]
        if self._server_remaining is not None:
            left.append(self._server_remaining)
        return BudgetSnapshot(
            used_today=self._used,
            daily_budget=self._daily_budget,
            cap=self.cap,
            remaining=max(0, min(left)) if left else None,
            exhausted_until=self._exhausted_until,
            resets_at=next_midnight_utc(now),
        )

    # --- persistence (the engine keeps this in the store's kv table) ----------------------------------

    def to_dict(self) -> dict[str, Any]:
        self._roll()
        return {
            "day": self._day.isoformat(),
            "used": self._used,
            "daily_budget": self._daily_budget,
            "cap": self.cap,
            "server_remaining": self._server_remaining,
            "exhausted_until": self._exhausted_until.isoformat() if self._exhausted_until else None,
            "check_only": self._check_only,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, now: Callable[[], datetime] = _utcnow) -> BudgetTracker:
        """Restore a saved tracker; a count saved on an earlier day is dropped (the budget has reset)."""
        tracker = cls(daily_budget=data.get("daily_budget"), cap=data.get("cap"), now=now)
        if data.get("day") == tracker._day.isoformat():
            tracker._used = int(data.get("used") or 0)
            tracker._server_remaining = data.get("server_remaining")
        until = data.get("exhausted_until")
        if until:
            tracker._exhausted_until = datetime.fromisoformat(until)
            tracker._check_only = bool(data.get("check_only"))
        tracker._roll()
        return tracker
