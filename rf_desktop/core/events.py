"""What the sync engine tells its listeners (the GUI, the headless runner, tests).

Plain frozen dataclasses, delivered synchronously on the engine's event loop, so a GUI on the same
qasync loop can turn them into Qt signals without polling the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rf_desktop.core.store import LogRow, Reason

# Engine states, in the words the status bar and the tray use.
IDLE = "idle"
RUNNING = "running"
PAUSED = "paused"
ERROR = "error"
AUTH_ERROR = "auth_error"
BUDGET_EXHAUSTED = "budget_exhausted"
NOT_CONFIGURED = "not_configured"
STOPPED = "stopped"


@dataclass(frozen=True)
class ReferralChanged:
    rf_user_id: int


@dataclass(frozen=True)
class LogAdded:
    row: LogRow


@dataclass(frozen=True)
class StateChanged:
    state: str
    message: str
    next_poll_at: datetime | None  # the engine's next cycle, whatever it is for (a retry after a problem too)
    next_signups_at: datetime | None = None  # the next look for new sign-ups in Referral Factory
    next_conversions_at: datetime | None = None  # the next look for conversions; None when nothing waits
    # the service whose token or address the owner must fix (rejected token, address not reachable)
    service: str = ""
    # the kind of trouble behind an error state, when it is known
    reason: Reason | None = None


@dataclass(frozen=True)
class BudgetChanged:
    used_today: int
    daily_budget: int | None
    cap: int | None
    resets_at: datetime | None


@dataclass(frozen=True)
class ReferralQualified:
    rf_user_id: int
    name: str


@dataclass(frozen=True)
class ReferralFailed:
    rf_user_id: int
    name: str
    reason: str


@dataclass(frozen=True)
class Progress:
    """Long work under way (a backfill): `done` of `total` referrals sent; done == total when finished."""

    what: str
    done: int
    total: int


Event = ReferralChanged | LogAdded | StateChanged | BudgetChanged | ReferralQualified | ReferralFailed | Progress
