"""Qualify: tell Referral Factory that a referral succeeded, exactly once.

Referral Factory is the truth about who is qualified: someone may have qualified the user already (in its
dashboard, by its own integrations, by Zapier, or another rf-desktop). So the user is read back first, and
only a user it shows as pending is asked for. The intent is recorded before anything is asked, so a
failure or an answer that is lost is settled by the next cycle's read. A 422 is read back too: only a user still pending
after it was really refused.
"""

from __future__ import annotations

from typing import Any

from rf_desktop.core.context import SyncContext, display_name, iso
from rf_desktop.core.events import ReferralQualified
from rf_desktop.core.http import ApiError, NotFoundError, ValidationError
from rf_desktop.core.store import FAILED, QUALIFIED, Referral

QUALIFY = "qualify"
ALREADY = "Referral already qualified in Referral Factory; rf-desktop did not ask again."


async def _record(ctx: SyncContext, referral: Referral, qualified_at: str, message: str) -> Referral:
    referral = await ctx.update(
        referral,
        status=QUALIFIED,
        status_reason=None,
        qualified_at=qualified_at,
        intent=None,
        next_attempt_at=None,
    )
    await ctx.log("info", "qualified", message, referral)
    ctx.emit(ReferralQualified(referral.rf_user_id, display_name(referral)))
    return referral


async def _refused(ctx: SyncContext, referral: Referral, error: ApiError) -> Referral:
    # a Person Referring, a deleted user: asking again would get the same answer
    referral = await ctx.update(
        referral,
        status=FAILED,
        status_reason=f"Referral Factory refused the qualification: {error.message}",
        permanent=1,
        intent=None,
    )
    await ctx.log("error", "qualify failed", referral.status_reason or "", referral)
    return referral


async def _read_back(ctx: SyncContext, referral: Referral) -> dict[str, Any]:
    return await ctx.rf.get_user(referral.rf_user_id)


async def qualify(ctx: SyncContext, referral: Referral) -> Referral:
    if referral.status == QUALIFIED:
        return referral
    if referral.qualified_at:
        # it arrived qualified: nothing to ask
        return await _record(ctx, referral, referral.qualified_at, ALREADY)
    interrupted = referral.intent == QUALIFY
    # recorded first: whatever fails from here on, the next cycle picks the qualification up again
    referral = await ctx.update(referral, intent=QUALIFY)
    try:
        user = await _read_back(ctx, referral)
    except NotFoundError as error:
        return await _refused(ctx, referral, error)
    if user.get("qualified_at"):
        message = (
            "Referral qualified in Referral Factory (confirmed after an interruption)."
            if interrupted
            else ALREADY
        )
        return await _record(ctx, referral, str(user["qualified_at"]), message)
    try:
        user = await ctx.rf.qualify(referral.rf_user_id, True)
    except NotFoundError as error:
        return await _refused(ctx, referral, error)
    except ValidationError as error:
        # Referral Factory may answer 422 for a user qualified meanwhile: only a pending one was refused
        user = await _read_back(ctx, referral)
        if user.get("qualified_at"):
            return await _record(ctx, referral, str(user["qualified_at"]), ALREADY)
        return await _refused(ctx, referral, error)
    qualified_at = str(user.get("qualified_at") or iso(ctx.now()))
    return await _record(ctx, referral, qualified_at, "Referral qualified in Referral Factory.")
