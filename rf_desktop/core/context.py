"""What every sync step needs at hand: the store, the settings, the Pipedrive schema, the two clients,
and one way to write a log row and tell listeners about it."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

from rf_desktop.core.config import Settings
from rf_desktop.core.events import Event, LogAdded, ReferralChanged, ReferralFailed
from rf_desktop.core.pipedrive import PipedriveClient
from rf_desktop.core.referral_factory import ReferralFactoryClient
from rf_desktop.core.schema import PipedriveSchema
from rf_desktop.core.store import FAILED, Referral, Store

T = TypeVar("T")
P = ParamSpec("P")


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def display_name(referral: Referral) -> str:
    return referral.first_name or referral.email or f"Referral {referral.rf_user_id}"


async def off_the_loop(call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`call(*args, **kwargs)`, a store call, on a worker thread. It waits for the store's lock (another
    thread may be committing), and a write for the disk to confirm it, 1-40 ms; a count or scan of 100,000
    rows takes milliseconds too: time the loop, and a window sharing it, should not spend. Cancelled
    meanwhile, it still waits for the call to finish: a write is never left halfway, nor the store closed
    under a call."""
    done = asyncio.get_running_loop().run_in_executor(None, functools.partial(call, *args, **kwargs))
    try:
        return await asyncio.shield(done)
    except asyncio.CancelledError:
        await asyncio.wait([done])
        raise


@dataclass
class SyncContext:
    store: Store
    settings: Settings
    schema: PipedriveSchema
    rf: ReferralFactoryClient
    pd: PipedriveClient
    emit: Callable[[Event], None]
    now: Callable[[], datetime] = utcnow

    async def log(self, level: str, action: str, message: str, referral: Referral | None = None) -> None:
        """A sync log row (with the referral's Pipedrive ids as they are now), and the event for it."""
        ids: dict[str, Any] = {}
        if referral is not None:
            ids = {
                "rf_user_id": referral.rf_user_id,
                "person_id": referral.person_id,
                "lead_id": referral.lead_id,
                "deal_id": referral.deal_id,
                "is_test": referral.is_test,
            }
        row = await off_the_loop(self.store.log, level, action, message, **ids)
        self.emit(LogAdded(row))

    async def update(self, referral: Referral, **fields: object) -> Referral:
        """Write to the referral's row (committed before this returns), then tell listeners."""
        updated = await off_the_loop(self.store.update, referral.rf_user_id, **fields)
        self.emit(ReferralChanged(referral.rf_user_id))
        if fields.get("status") == FAILED and referral.status != FAILED:
            self.emit(ReferralFailed(referral.rf_user_id, display_name(updated), updated.status_reason or ""))
        return updated
