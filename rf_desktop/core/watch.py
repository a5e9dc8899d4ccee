"""Watch: notice when a lead becomes a deal, a deal moves to a stage, or a deal is won, spending as few
Pipedrive tokens as possible.

One `GET /api/v2/deals?updated_since=…&include_fields=source_lead_id` page (10 tokens) covers all three:
a converted lead shows up as a new deal whose `source_lead_id` is one of our leads (and which carries our
Referral Code), and stage changes and wins bump a deal's `update_time`. The watch only runs while some
referral is waiting, at an interval fitted to the share of the daily token budget the owner allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rf_desktop.core.context import SyncContext
from rf_desktop.core.rules import DealState
from rf_desktop.core.store import Referral

WATERMARK_KEY = "deals_updated_since"
# update_time has whole seconds and writes in the same second can land on either side of a page,
# so each poll re-reads a minute back; deals already seen are simply matched again.
OVERLAP = timedelta(seconds=60)
PAGE_COST = 10  # GET /api/v2/deals
MIN_INTERVAL = 20.0
MAX_PAGES_PER_POLL = 20
SMALLEST_DAILY_BUDGET = 30_000  # Lite plan, one seat: assumed until Pipedrive tells us the real budget
# the daily schema refresh (users/me, fields, lead labels, pipelines, stages, users) comes out of the same
# share, so the whole background cost stays within what the owner allowed
SCHEMA_TOKENS_PER_DAY = 82


def watch_interval(daily_budget: int | None, share: float, cap: int | None = None) -> float:
    """Seconds between polls so that a day of polling (one page each) plus the daily schema refresh spends
    at most `share` of the budget."""
    budget = daily_budget or SMALLEST_DAILY_BUDGET
    if cap is not None:
        budget = min(budget, cap)
    allowance = max(budget * max(share, 0.001) - SCHEMA_TOKENS_PER_DAY, PAGE_COST)
    return max(MIN_INTERVAL, 86_400 * PAGE_COST / allowance)


@dataclass(frozen=True)
class Match:
    referral: Referral
    deal: DealState


def deal_state(deal: dict[str, Any]) -> DealState:
    return DealState(
        deal_id=int(deal["id"]),
        stage_id=deal.get("stage_id"),
        pipeline_id=deal.get("pipeline_id"),
        status=str(deal.get("status") or "open"),
        source_lead_id=deal.get("source_lead_id"),
    )


def _match(ctx: SyncContext, deal: dict[str, Any], code_key: str | None) -> Referral | None:
    store = ctx.store
    found = store.find_by_deal(int(deal["id"]))
    if found is None and deal.get("source_lead_id"):
        found = store.find_by_lead(str(deal["source_lead_id"]))
    if found is None and code_key:
        code = (deal.get("custom_fields") or {}).get(code_key)
        if isinstance(code, str) and code:
            found = store.find_by_code(code)
    return found


def _is_its_deal(referral: Referral, deal: dict[str, Any], earlier: Match | None) -> bool:
    """Whether `deal` is the one deal this referral follows.

    Two deals can carry one Referral Code (a salesperson's copy, or a lead sent twice and both converted).
    The referral keeps the deal it was first linked to; with none yet it takes the one its own lead became,
    else the oldest. So its deal never flips between them from one poll to the next."""
    if referral.deal_id is not None:
        return int(deal["id"]) == referral.deal_id
    if earlier is None:
        return True

    def rank(source_lead_id: Any, deal_id: int) -> tuple[bool, int]:
        return (not referral.lead_id or source_lead_id != referral.lead_id, deal_id)

    return rank(deal.get("source_lead_id"), int(deal["id"])) < rank(
        earlier.deal.source_lead_id, earlier.deal.deal_id
    )


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def poll_deals(ctx: SyncContext, since: datetime) -> tuple[list[Match], datetime]:
    """Deals changed since `since` that belong to our referrals, and the new watermark."""
    target = ctx.settings.referral_code_target()
    code_key = target.split(":", 1)[1] if target else None
    matches: dict[int, Match] = {}
    newest = since
    cursor: str | None = None
    for _ in range(MAX_PAGES_PER_POLL):
        page = await ctx.pd.deals_page(updated_since=since - OVERLAP, cursor=cursor)
        for deal in page.items:
            if not isinstance(deal.get("id"), int):
                continue  # a malformed entry names no deal
            updated = _parse_time(deal.get("update_time"))
            if updated and updated > newest:
                newest = updated
            referral = _match(ctx, deal, code_key)
            if referral is not None and _is_its_deal(referral, deal, matches.get(referral.rf_user_id)):
                matches[referral.rf_user_id] = Match(referral, deal_state(deal))
        cursor = page.next_cursor
        if not cursor:
            break
    return list(matches.values()), newest
