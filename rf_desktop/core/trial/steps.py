"""The test referral's vocabulary: its steps, their states and titles, what a step reports, and the
failure that ends a step. Shared by the run, the window and the tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from rf_desktop.core.schema import Mode

StepState = Literal["running", "done", "failed", "skipped"]
RUNNING: Final = "running"
DONE: Final = "done"
FAILED_STEP: Final = "failed"
SKIPPED_STEP: Final = "skipped"

CHECKED = "connections checked"
REFERRER = "referrer created"
INVITED_STEP = "invited user created"
SEEN = "seen by the sync"
PERSON = "person found or created"
ITEM = "lead/deal created"
FIELDS = "fields read back"
QUALIFIED_STEP = "qualified"
CLEANED = "cleaned up"
RUN_STEPS = (CHECKED, REFERRER, INVITED_STEP, SEEN, PERSON, ITEM, FIELDS)

RESUME = "resume"  # Problem.action: resuming the sync fixes it

REFERRER_NAME = "Test Referrer"
INVITED_NAME = "Test Invited"
TEST_TAG = "rf-test"
LOG_ACTION = "test referral"
TEST_REMOVED = "Test removed"


def seconds_text(seconds: float) -> str:
    """A step's duration as the owner reads it: "< 0.1 s", "2.4 s", "3:05 min"."""
    if seconds < 0.05:
        return "< 0.1 s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)}:{int(seconds % 60):02d} min"


def moment_text(stamp: str | None) -> str:
    """An ISO time from an API as the owner reads it: "2025-03-01 09:30 UTC" (just the date at midnight)."""
    if not stamp:
        return ""
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    if (moment.hour, moment.minute, moment.second) == (0, 0, 0):
        return f"{moment:%Y-%m-%d}"
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def step_title(step: str, mode: Mode = "lead") -> str:
    """What a step means, in the owner's words."""
    item = "lead" if mode == "lead" else "deal"
    return {
        CHECKED: "Check both connections",
        REFERRER: "Sign up the Person Referring",
        INVITED_STEP: "Sign up the Person Invited through the referral link",
        SEEN: "The sync picks up the test referral",
        PERSON: "Pipedrive person found or created",
        ITEM: f"Pipedrive {item} created",
        FIELDS: "Fields read back from Pipedrive",
        QUALIFIED_STEP: "Referral qualified in Referral Factory",
        CLEANED: "Test records removed",
    }.get(step, step)


@dataclass(frozen=True)
class StepUpdate:
    """One step's news. `seconds` is the time the step has taken so far (all of it once done or failed);
    `settings_page` names the page that fixes a failure; `data` carries ids, links and field checks."""

    step: str
    state: StepState
    seconds: float
    detail: str
    hint: str = ""
    settings_page: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Problem:
    """Something that keeps the test from starting, and where to fix it."""

    message: str
    hint: str = ""
    settings_page: str | None = None
    action: str | None = None  # RESUME: the sync is paused


class StepFailed(Exception):
    def __init__(
        self, message: str, hint: str = "", settings_page: str | None = None, action: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.settings_page = settings_page
        self.action = action


@dataclass
class Created:
    """What this run made (or found) so far; filled in as the steps happen."""

    referrer_id: int | None = None
    referrer_email: str = ""
    referrer_code: str = ""
    referrer_url: str = ""
    invited_id: int | None = None
    invited_email: str = ""
    campaign_name: str = ""
    company: str = ""
    # Referral Factory users whose rows this run put in the store (the invited user; the referrer too when
    # people referring are synced)
    tracked: list[int] = field(default_factory=list)
