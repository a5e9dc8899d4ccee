"""When the sync looks next: for new sign-ups, and for conversions. The two run on separate clocks.

Looking for sign-ups reads Referral Factory only (no Pipedrive tokens), so it runs often: every
`sync.poll_seconds`, slowed down when a look needed more calls than its share of Referral Factory's
rate limit allows. Looking for conversions reads Pipedrive and is paced by the daily token budget
(`watch.watch_interval`), and only runs while some referral is waiting for one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

RF_CALLS_PER_MINUTE = 600  # Referral Factory's limit per token
RF_SHARE = 0.10  # of that limit, what the background looks may use
SECONDS_PER_RF_CALL = 60.0 / (RF_CALLS_PER_MINUTE * RF_SHARE)


@dataclass
class Cadence:
    """The next look for each; None means "at the next cycle"."""

    signups_at: datetime | None = None
    conversions_at: datetime | None = None
    # False once a look found nothing waiting for a conversion; a new lead or deal sets it again
    watching: bool = True

    def look_now(self) -> None:
        """Both looks at the next cycle (start-up, "Sync now")."""
        self.signups_at = self.conversions_at = None
        self.watching = True

    def signups_due(self, now: datetime) -> bool:
        return self.signups_at is None or now >= self.signups_at

    def conversions_due(self, now: datetime) -> bool:
        return self.watching and (self.conversions_at is None or now >= self.conversions_at)

    def looked_for_signups(self, started: datetime, poll_seconds: float, rf_calls: int) -> None:
        """Schedule the next look `poll_seconds` after this one began, or later if this one made so many
        Referral Factory calls that looking again sooner would use more than `RF_SHARE` of its limit."""
        seconds = max(float(poll_seconds), rf_calls * SECONDS_PER_RF_CALL)
        self.signups_at = started + timedelta(seconds=seconds)

    def looked_for_conversions(self, started: datetime, interval: float, anything_waiting: bool) -> None:
        self.watching = anything_waiting
        self.conversions_at = started + timedelta(seconds=interval) if anything_waiting else None

    def something_to_watch(self) -> None:
        """A referral now waits for its conversion: watch again (at the time already planned, if any)."""
        self.watching = True

    @property
    def next_conversions_at(self) -> datetime | None:
        """When the next look for conversions is planned; None while nothing waits for one."""
        return self.conversions_at if self.watching else None

    def next_look(self, now: datetime) -> datetime:
        """The earliest planned look (now when one is due)."""
        planned = [self.signups_at or now]
        if self.watching:
            planned.append(self.conversions_at or now)
        return min(planned)
