"""What every sync step needs at hand: the store, the settings, the Pipedrive schema, the two clients,
and one way to write a log row and tell listeners about it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from rf_desktop.core.config import Settings
from rf_desktop.core.events import Event, LogAdded, ReferralChanged, ReferralFailed
from rf_desktop.core.pipedrive import PipedriveClient
from rf_desktop.core.referral_factory import ReferralFactoryClient
from rf_desktop.core.schema import PipedriveSchema
from rf_desktop.core.store import FAILED, Referral, Store


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def display_name(referral: Referral) -> str:
    return referral.first_name or referral.email or f"Referral {referral.rf_user_id}"


@dataclass
class SyncContext:
    store: Store
    settings: Settings
    schema: PipedriveSchema
    rf: ReferralFactoryClient
    pd: PipedriveClient
    emit: Callable[[Event], None]
    now: Callable[[], datetime] = utcnow

    def log(self, level: str, action: str, message: str, referral: Referral | None = None) -> None:
        """A sync log row (with the referral's Pipedrive ids as they are now), and the event for it."""
        if referral is None:
            row = self.store.log(level, action, message)
        else:
            row = self.store.log(
                level,
                action,
                message,
                rf_user_id=referral.rf_user_id,
                person_id=referral.person_id,
                lead_id=referral.lead_id,
                deal_id=referral.deal_id,
                is_test=referral.is_test,
            )
        self.emit(LogAdded(row))

    def update(self, referral: Referral, **fields: object) -> Referral:
        """Write to the referral's row at once (the store commits), then tell listeners."""
        updated = self.store.update(referral.rf_user_id, **fields)
        self.emit(ReferralChanged(referral.rf_user_id))
        if fields.get("status") == FAILED and referral.status != FAILED:
            self.emit(ReferralFailed(referral.rf_user_id, display_name(updated), updated.status_reason or ""))
        return updated
