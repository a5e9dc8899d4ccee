"""Qualify: tell Referral Factory that a referral succeeded, exactly once.

The intent is recorded before `PUT /users/qualification`. If the answer is lost, the next attempt reads the
user back and only asks again when Referral Factory has no `qualified_at` for it, so a reward is never
triggered twice by us.
"""

from __future__ import annotations

from rf_desktop.core.context import SyncContext, display_name, iso
from rf_desktop.core.events import ReferralQualified
from rf_desktop.core.http import NotFoundError, ValidationError
from rf_desktop.core.store import FAILED, QUALIFIED, Referral

QUALIFY = "qualify"


def _record(ctx: SyncContext, referral: Referral, qualified_at: str, note: str) -> Referral:
    referral = ctx.update(
        referral,
        status=QUALIFIED,
        status_reason=None,
        qualified_at=qualified_at,
        intent=None,
        next_attempt_at=None,
    )
    ctx.log("info", "qualified", f"Referral qualified in Referral Factory{note}.", referral)
    ctx.emit(ReferralQualified(referral.rf_user_id, display_name(referral)))
    return referral


async def qualify(ctx: SyncContext, referral: Referral) -> Referral:
    if referral.qualified_at:
        return referral
    if referral.intent == QUALIFY:
        user = await ctx.rf.get_user(referral.rf_user_id)
        if user.get("qualified_at"):
            return _record(ctx, referral, str(user["qualified_at"]), " (confirmed after an interruption)")
    referral = ctx.update(referral, intent=QUALIFY)
    try:
        user = await ctx.rf.qualify(referral.rf_user_id, True)
    except (ValidationError, NotFoundError) as error:
        # Referral Factory refuses what it cannot qualify (a Person Referring, a deleted user): permanent.
        referral = ctx.update(
            referral,
            status=FAILED,
            status_reason=f"Referral Factory refused the qualification: {error.message}",
            permanent=1,
            intent=None,
        )
        ctx.log("error", "qualify failed", referral.status_reason or "", referral)
        return referral
    qualified_at = str(user.get("qualified_at") or iso(ctx.now()))
    return _record(ctx, referral, qualified_at, "")
