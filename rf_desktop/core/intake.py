"""Intake: find the people who signed up in Referral Factory since the last look, and record them in the
store before anything is sent anywhere (the store is the outbox).

Referral Factory's user list has no documented campaign or created-since filter and no documented sort
order, so the scan works from a high-water mark on the user id and detects the order itself: newest-first
lists are read from the front, oldest-first lists from the back, and both stop at the first page that
reaches users already seen.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from rf_desktop.core.config import Settings
from rf_desktop.core.referral_factory import ReferralFactoryClient
from rf_desktop.core.store import PENDING, Referral, Store

HIGH_WATER_KEY = "rf_high_water"
PER_PAGE = 250
INVITED = "person_invited"
REFERRING = "person_referring"


@dataclass(frozen=True)
class IntakeResult:
    recorded: list[int]
    scanned: int
    first_run: bool


class ReferrerCache:
    """Referrer details by Referral Factory user id; a referrer is fetched once per session."""

    def __init__(self, rf: ReferralFactoryClient) -> None:
        self._rf = rf
        self._known: dict[int, dict[str, Any]] = {}

    async def get(self, user_id: int | None) -> dict[str, Any]:
        if user_id is None:
            return {}
        if user_id not in self._known:
            self._known[user_id] = await self._rf.get_user(user_id)
        return self._known[user_id]


async def _pages_newer_than(
    rf: ReferralFactoryClient, high_water: int | None
) -> AsyncIterator[list[dict[str, Any]]]:
    """Yield pages of users, stopping once a page reaches ids at or below `high_water`."""
    first = await rf.users_page(1, PER_PAGE)
    users = first.users
    if not users:
        return
    ascending = len(users) < 2 or users[0]["id"] <= users[-1]["id"]
    if not ascending or first.last_page in (None, 1):
        page, current = 1, first
        while True:
            yield current.users
            if high_water is not None and min(u["id"] for u in current.users) <= high_water:
                return
            if not current.has_next:
                return
            page += 1
            current = await rf.users_page(page, PER_PAGE)
            if not current.users:
                return
    else:
        # oldest first: the new people are at the end, so walk back from the last page
        assert first.last_page is not None
        for page in range(first.last_page, 0, -1):
            current = first if page == 1 else await rf.users_page(page, PER_PAGE)
            if not current.users:
                continue
            yield current.users
            if high_water is not None and min(u["id"] for u in current.users) <= high_water:
                return


def _wanted(user: dict[str, Any], settings: Settings) -> bool:
    rf = settings.referral_factory
    if user.get("campaign_id") not in rf.campaign_ids:
        return False
    kind = user.get("type")
    return (kind == INVITED and rf.sync_invited) or (kind == REFERRING and rf.sync_referring)


def _in_backfill(user: dict[str, Any], settings: Settings) -> bool:
    rf = settings.referral_factory
    if rf.backfill == "all":
        return True
    if rf.backfill == "since" and rf.backfill_since:
        signed_up = str(user.get("signed_up_at") or "")[:10]
        return signed_up >= date.fromisoformat(rf.backfill_since).isoformat()
    return False


def to_referral(
    user: dict[str, Any], campaign_name: str, referrer: dict[str, Any], recorded_at: str
) -> Referral:
    meta = {str(m.get("field")): str(m.get("value") or "") for m in user.get("meta") or [] if m.get("field")}
    return Referral(
        rf_user_id=int(user["id"]),
        campaign_id=int(user["campaign_id"]),
        campaign_name=campaign_name,
        user_type=str(user.get("type") or INVITED),
        first_name=(user.get("first_name") or "").strip(),
        email=(user.get("email") or "").strip(),
        code=user.get("code") or "",
        url=user.get("url") or "",
        source=user.get("source") or "",
        signed_up_at=str(user.get("signed_up_at") or ""),
        meta=meta,
        referrer_id=user.get("referrer_id"),
        referrer_first_name=referrer.get("first_name"),
        referrer_email=referrer.get("email"),
        referrer_code=referrer.get("code"),
        referrer_url=referrer.get("url"),
        status=PENDING,
        recorded_at=recorded_at,
        updated_at=recorded_at,
    )


async def collect_new_users(
    rf: ReferralFactoryClient,
    store: Store,
    settings: Settings,
    campaign_names: dict[int, str],
    referrers: ReferrerCache,
    recorded_at: str,
) -> IntakeResult:
    """Record every wanted user newer than the high-water mark; on the first run apply the backfill choice."""
    high_water = store.get_kv(HIGH_WATER_KEY)
    first_run = high_water is None
    recorded: list[int] = []
    scanned = 0
    newest = high_water or 0
    backfill = settings.referral_factory.backfill
    async for page in _pages_newer_than(rf, high_water):
        if first_run and backfill == "none":
            # nothing before today is wanted: the newest page is enough to set the mark
            newest = max([newest, *(int(u["id"]) for u in page)])
            break
        batch: list[Referral] = []
        for user in page:
            scanned += 1
            user_id = int(user["id"])
            newest = max(newest, user_id)
            if high_water is not None and user_id <= high_water:
                continue
            if not _wanted(user, settings) or (first_run and not _in_backfill(user, settings)):
                continue
            if store.get(user_id) is not None:
                continue
            referrer = await referrers.get(user.get("referrer_id"))
            batch.append(to_referral(user, campaign_names.get(int(user["campaign_id"]), ""), referrer, recorded_at))
        # one transaction (one disk sync) per page, before anything about these people is sent
        store.record_referrals(batch)
        recorded.extend(r.rf_user_id for r in batch)
    # the mark moves only after every new user is safely in the store
    store.set_kv(HIGH_WATER_KEY, newest)
    return IntakeResult(recorded=sorted(recorded), scanned=scanned, first_run=first_run)
