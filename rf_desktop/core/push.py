"""Push: turn one recorded referral into a Pipedrive person plus a lead or a deal, exactly once.

Every create follows the same three steps: write the intent to the store, send, write the new id. When a
row still carries an intent, the create may have happened remotely before a crash or a lost answer, so the
engine looks for it (the person in a fresh read of the person index, the lead or deal by the Referral Code on
the person's leads or deals) before it creates anything. See ARCHITECTURE.md, "Writes that cannot happen
twice".
"""

from __future__ import annotations

import asyncio
from typing import Any

from rf_desktop.core import mapping, rules
from rf_desktop.core.context import SyncContext
from rf_desktop.core.http import NotFoundError
from rf_desktop.core.person_index import PersonIndex
from rf_desktop.core.qualify import QUALIFY
from rf_desktop.core.store import SENDING, SENT, WAITING, Referral
from rf_desktop.core.watch import deal_state

PERSON = "person"
ITEM = "item"


class EmailLocks:
    """One lock per email address, so two referrals for the same person never both create it."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    def __call__(self, email: str) -> asyncio.Lock:
        return self._locks.setdefault(email.casefold(), asyncio.Lock())


def _carries_code(item: dict[str, Any], code_field: str, code: str) -> bool:
    """True when a lead (flat v1 keys) or a deal (v2 `custom_fields`) holds this Referral Code."""
    value = (item.get("custom_fields") or {}).get(code_field, item.get(code_field))
    return value == code


async def _existing_person(ctx: SyncContext, person_id: int, index: PersonIndex) -> dict[str, Any] | None:
    try:
        return await ctx.pd.get_person(person_id)
    except NotFoundError:
        index.forget(person_id)  # deleted or merged away in Pipedrive since the index saw it
        return None


async def ensure_person(
    ctx: SyncContext, referral: Referral, locks: EmailLocks, index: PersonIndex
) -> Referral:
    if referral.person_id is not None:
        return referral
    async with locks(referral.email):
        if referral.intent == PERSON:
            await index.refresh(ctx.pd)  # the create that was interrupted may have landed
        person_id = index.find(referral.email)
        existing = await _existing_person(ctx, person_id, index) if person_id is not None else None
        if existing is not None:
            if ctx.settings.duplicates == "update":
                body = mapping.build_person(referral, ctx.settings, ctx.schema, existing=existing)
                if body:  # empty when the person already has everything we would write
                    await ctx.pd.update_person(int(existing["id"]), body)
                note = "updated with the referral's details"
            else:
                note = "left untouched (duplicates: keep the existing person)"
            referral = await ctx.update(referral, person_id=int(existing["id"]), intent=None)
            await ctx.log("info", "person matched", f"{referral.email} is already in Pipedrive; {note}.", referral)
            return referral
        body = mapping.build_person(referral, ctx.settings, ctx.schema)
        referral = await ctx.update(referral, intent=PERSON)
        created = await ctx.pd.create_person(body)
        index.remember(referral.email, int(created["id"]), created_here=True)
        referral = await ctx.update(referral, person_id=int(created["id"]), intent=None)
        await ctx.log("info", "person created", f"Created Pipedrive person {created.get('name', '')}.", referral)
        return referral


def _oldest(items: list[dict[str, Any]], code_field: str, code: str) -> dict[str, Any] | None:
    """Of the items carrying this Referral Code, the first one made: the one the sales team works with."""
    carrying = [item for item in items if _carries_code(item, code_field, code) and item.get("id")]
    return min(carrying, key=lambda item: (str(item.get("add_time") or ""), str(item["id"])), default=None)


async def _find_existing_item(ctx: SyncContext, referral: Referral, code_field: str) -> dict[str, Any] | None:
    """The person's lead or deal for this referral, made by an interrupted create or by another install.

    In lead mode a deal counts too: the salesperson may have converted the lead since (the deal carries the
    Referral Code and `source_lead_id`)."""
    assert referral.person_id is not None
    if ctx.settings.mode == "lead":
        lead = _oldest(await ctx.pd.leads_for_person(referral.person_id), code_field, referral.code)
        if lead is not None:
            return lead
    return _oldest(await ctx.pd.deals_for_person(referral.person_id), code_field, referral.code)


def _has_item(mode: str, referral: Referral) -> bool:
    # in lead mode a referral linked to the deal its lead became has no lead any more
    return bool(referral.deal_id) if mode == "deal" else bool(referral.lead_id or referral.deal_id)


async def ensure_item(ctx: SyncContext, referral: Referral, index: PersonIndex) -> Referral:
    """Create the lead or deal, unless this referral already has one: in the store, or in Pipedrive (after an
    interruption, or made by another install for a person who was already there)."""
    person_id = referral.person_id
    assert person_id is not None
    mode = ctx.settings.mode
    if _has_item(mode, referral):
        return referral
    code_field = ctx.settings.referral_code_target()
    assert code_field is not None, "validated settings always map the Referral Code"
    code_key = code_field.split(":", 1)[1]
    # a person this sync created a moment ago cannot have one yet, so new people cost nothing extra
    if referral.intent == ITEM or not index.created_here(person_id):
        found = await _find_existing_item(ctx, referral, code_key)
        if found is not None:
            what = "deal" if _is_deal(found) else "lead"
            text = (
                f"Found the {what} created before the interruption."
                if referral.intent == ITEM
                else f"Pipedrive already has a {what} for this Referral Code; linked to it instead of "
                "creating another."
            )
            await ctx.log("info", f"{mode} recovered", text, referral)
            return await _store_item(ctx, referral, found)
    if mode == "lead":
        body = mapping.build_lead(referral, ctx.settings, ctx.schema, person_id)
        referral = await ctx.update(referral, intent=ITEM)
        created = await ctx.pd.create_lead(body)
    else:
        body = mapping.build_deal(referral, ctx.settings, ctx.schema, person_id)
        referral = await ctx.update(referral, intent=ITEM)
        created = await ctx.pd.create_deal(body)
    referral = await _store_item(ctx, referral, created)
    await ctx.log("info", f"{mode} created", f"Created Pipedrive {mode} “{created.get('title', '')}”.", referral)
    return referral


def _is_deal(item: dict[str, Any]) -> bool:
    return isinstance(item.get("id"), int)  # lead ids are UUID strings, deal ids numbers


def _deal_qualifies(ctx: SyncContext, referral: Referral) -> bool:
    if referral.deal_id is None:
        return False
    state = rules.DealState(
        deal_id=referral.deal_id,
        stage_id=referral.deal_stage_id,
        pipeline_id=referral.deal_pipeline_id,
        status=referral.deal_status or "open",
        source_lead_id=referral.lead_id,
    )
    return rules.qualifies(ctx.settings.qualification, state, ctx.schema)


async def _store_item(ctx: SyncContext, referral: Referral, item: dict[str, Any]) -> Referral:
    if not _is_deal(item):
        return await ctx.update(referral, lead_id=str(item["id"]), intent=None)
    state = deal_state(item)
    changes: dict[str, Any] = {}
    if state.source_lead_id and not referral.lead_id:
        changes["lead_id"] = str(state.source_lead_id)
    return await ctx.update(
        referral,
        deal_id=state.deal_id,
        deal_stage_id=state.stage_id,
        deal_pipeline_id=state.pipeline_id,
        deal_status=state.status,
        intent=None,
        **changes,
    )


async def push(ctx: SyncContext, referral: Referral, locks: EmailLocks, index: PersonIndex) -> Referral:
    """Person, then lead/deal, then the status the rule calls for. Raises the clients' errors."""
    referral = await ctx.update(referral, status=SENDING, status_reason=None)
    referral = await ensure_person(ctx, referral, locks, index)
    referral = await ensure_item(ctx, referral, index)
    rule = ctx.settings.qualification
    # only a Person Invited can be qualified in Referral Factory; a Person Referring is just sent
    if rules.needs_watch(rule) and referral.user_type != "person_referring":
        reason = rules.describe(rule, ctx.schema)
        # a deal found in Pipedrive may have met the rule already: the watch qualifies it on this cycle,
        # reading the user back first in case it was qualified meanwhile
        intent = QUALIFY if _deal_qualifies(ctx, referral) else None
        return await ctx.update(
            referral,
            status=WAITING,
            status_reason=reason,
            attempts=0,
            next_attempt_at=None,
            permanent=0,
            intent=intent,
        )
    return await ctx.update(
        referral, status=SENT, status_reason=None, attempts=0, next_attempt_at=None, permanent=0
    )
