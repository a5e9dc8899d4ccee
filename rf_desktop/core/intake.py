"""Intake: find the people who signed up in Referral Factory since the last look, and record them in the
store before anything is sent anywhere (the store is the outbox).

Referral Factory's user list has no documented campaign or created-since filter, no documented sort order
and no documented page count (only `data`, `links.next` and `meta.current_page`), and it may ignore
`per_page`. So the scan works from a high-water mark on the user id, one per campaign (a campaign picked
later gets its own backfill), and detects the order itself:
- newest first: read from page 1 until a page reaches users at or below the mark;
- oldest first: the new people are at the end. Start on the page where the newest user was last time
  (remembered in kv; else the last page, which the list may tell or which is found by doubling the page
  number, then halving), step back while that page is past the mark (users deleted since then move
  everyone forward), then read to the end.
So when nothing is new a poll costs two requests at most, however long the list.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from rf_desktop.core.config import Settings
from rf_desktop.core.context import off_the_loop
from rf_desktop.core.http import NotFoundError
from rf_desktop.core.referral_factory import Page, ReferralFactoryClient
from rf_desktop.core.store import PENDING, Referral, Store

# the mark of one campaign: the highest user id that intake has looked at for it
HIGH_WATER_KEY = "rf_high_water:{campaign_id}"
# the single mark older versions kept for every campaign; it becomes the mark of the campaigns picked then
SHARED_HIGH_WATER_KEY = "rf_high_water"
# the page of the list where the newest user was found last time (where an oldest-first scan starts)
NEWEST_PAGE_KEY = "rf_newest_page"
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
            try:
                self._known[user_id] = await self._rf.get_user(user_id)
            except NotFoundError:
                # a deleted referrer: the referral is recorded without the referrer's details rather than
                # holding up every sign-up behind it
                self._known[user_id] = {}
        return self._known[user_id]


def _newest_first(users: list[dict[str, Any]]) -> bool:
    return len(users) >= 2 and int(users[0]["id"]) > int(users[-1]["id"])


def _reaches(users: list[dict[str, Any]], floor: int | None) -> bool:
    """Whether the page holds a user at or below `floor` (None: no history wanted, any page will do)."""
    return floor is None or any(int(u["id"]) <= floor for u in users)


async def _last_page(first: Page, fetch: Callable[[int], Awaitable[Page]]) -> int:
    """The last page with users. Without a page count in the list, doubling the page number until a page
    is empty, then halving the gap, costs about 2·log2(pages) requests instead of one per page."""
    if first.last_page is not None:
        return first.last_page
    if not first.has_next:
        return 1
    low, high = 1, 2  # `low` has users and a next page; `high` is to be tried
    while True:
        page = await fetch(high)
        if not page.items:
            break
        if not page.has_next:
            return high
        low, high = high, high * 2
    while high - low > 1:  # users on `low`, none on `high`
        middle = (low + high) // 2
        page = await fetch(middle)
        if page.items and not page.has_next:
            return middle
        low, high = (middle, high) if page.items else (low, middle)
    return low


async def _pages_above(
    rf: ReferralFactoryClient, floor: int | None, position: int | None
) -> AsyncIterator[tuple[int, list[dict[str, Any]]]]:
    """Yield (page number, users) for every page that may hold a user above `floor`. With `floor` None,
    only enough of the list to find the newest user. `position` is the page where the newest user was
    found last time in an oldest-first list."""
    first = await rf.users_page(1, PER_PAGE)
    if not first.items:
        return
    if _newest_first(first.items):
        number, current = 1, first
        while True:
            yield number, current.items
            if _reaches(current.items, floor) or not current.has_next:
                return
            number += 1
            current = await rf.users_page(number, PER_PAGE)
            if not current.items:
                return
    pages = {1: first}

    async def fetch(n: int) -> Page:
        if n not in pages:
            pages[n] = await rf.users_page(n, PER_PAGE)
        return pages[n]

    number = max(1, position or await _last_page(first, fetch))
    current = await fetch(number)
    while number > 1 and (not current.items or (floor is not None and not _reaches(current.items, floor))):
        number -= 1
        current = await fetch(number)
    while current.items:
        yield number, current.items
        if not current.has_next:
            return
        number += 1
        current = await fetch(number)


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
        # qualified already (in Referral Factory's dashboard, by its own integrations): never asked again
        qualified_at=str(user["qualified_at"]) if user.get("qualified_at") else None,
        recorded_at=recorded_at,
        updated_at=recorded_at,
    )


def _marks(store: Store, campaign_ids: list[int]) -> dict[int, int]:
    """The high-water mark of each picked campaign that has one."""
    shared = store.get_kv(SHARED_HIGH_WATER_KEY)
    marks: dict[int, int] = {}
    for campaign_id in campaign_ids:
        mark = store.get_kv(HIGH_WATER_KEY.format(campaign_id=campaign_id), shared)
        if mark is not None:
            marks[campaign_id] = int(mark)
    return marks


async def collect_new_users(
    rf: ReferralFactoryClient,
    store: Store,
    settings: Settings,
    campaign_names: dict[int, str],
    referrers: ReferrerCache,
    recorded_at: str,
) -> IntakeResult:
    """Record every wanted user above its campaign's mark; a campaign without a mark (the first run, or a
    campaign picked since) gets the backfill choice."""
    # the store's calls run off the loop: it is the window's thread, and the store may be busy writing
    campaign_ids = list(settings.referral_factory.campaign_ids)
    marks = await off_the_loop(_marks, store, campaign_ids)
    new_campaigns = [c for c in campaign_ids if c not in marks]
    backfill = settings.referral_factory.backfill
    if new_campaigns and backfill != "none":
        floor: int | None = 0
    else:
        floor = min(marks.values(), default=None)
    recorded: list[int] = []
    scanned = 0
    newest, newest_page = 0, None  # the newest user in the list now, and its page
    async for number, page in _pages_above(rf, floor, await off_the_loop(store.get_kv, NEWEST_PAGE_KEY)):
        candidates: list[dict[str, Any]] = []
        for user in page:
            scanned += 1
            user_id = int(user["id"])
            if user_id > newest:
                newest, newest_page = user_id, number
            mark = marks.get(int(user.get("campaign_id") or 0))
            fresh = _in_backfill(user, settings) if mark is None else user_id > mark
            if fresh and _wanted(user, settings):
                candidates.append(user)
        known = await off_the_loop(store.get_many, [int(user["id"]) for user in candidates]) if candidates else {}
        batch: list[Referral] = []
        for user in candidates:
            if int(user["id"]) in known:
                continue
            referrer = await referrers.get(user.get("referrer_id"))
            batch.append(to_referral(user, campaign_names.get(int(user["campaign_id"]), ""), referrer, recorded_at))
        if batch:  # one transaction (one disk sync) per page, before anything about these people is sent
            await off_the_loop(store.record_referrals, batch)
        recorded.extend(r.rf_user_id for r in batch)
    # the marks move only after every new user is safely in the store
    await off_the_loop(_move_marks, store, campaign_ids, marks, newest, newest_page)
    return IntakeResult(recorded=sorted(recorded), scanned=scanned, first_run=bool(new_campaigns))


def _move_marks(
    store: Store, campaign_ids: list[int], marks: dict[int, int], newest: int, newest_page: int | None
) -> None:
    """Raise each picked campaign's mark to the newest user seen, and remember the newest user's page."""
    for campaign_id in campaign_ids:
        store.set_kv(HIGH_WATER_KEY.format(campaign_id=campaign_id), max(newest, marks.get(campaign_id, 0)))
    if store.get_kv(SHARED_HIGH_WATER_KEY) is not None:
        store.set_kv(SHARED_HIGH_WATER_KEY, None)
    if newest_page is not None:
        store.set_kv(NEWEST_PAGE_KEY, newest_page)
