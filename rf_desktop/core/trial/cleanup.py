"""What the test referral made, and removing exactly that: the Pipedrive deal or lead, the person (only
when the run created it), then the two Referral Factory users."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from rf_desktop.core.config import Settings
from rf_desktop.core.http import PIPEDRIVE, REFERRAL_FACTORY, ApiError, NotFoundError
from rf_desktop.core.pipedrive import PipedriveClient
from rf_desktop.core.referral_factory import ReferralFactoryClient
from rf_desktop.core.store import Store
from rf_desktop.core.trial.steps import Created

T = TypeVar("T")

ALREADY_GONE = "already gone"


@dataclass(frozen=True)
class CleanupItem:
    service: str  # "Referral Factory" or "Pipedrive"
    kind: str  # "user", "person", "lead" or "deal"
    ident: int | str
    label: str


@dataclass(frozen=True)
class CleanupReport:
    removed: tuple[str, ...]
    kept: tuple[str, ...]
    failed: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.failed


PersonCreated = Callable[[int], bool | None]


def cleanup_items(store: Store, created: Created, person_created: PersonCreated) -> list[CleanupItem]:
    """Exactly what a cleanup removes, in the order it removes them."""
    items: list[CleanupItem] = []
    for rf_user_id in created.tracked:
        row = store.get(rf_user_id)
        if row is None:
            continue
        if row.deal_id is not None:
            items.append(CleanupItem(PIPEDRIVE, "deal", row.deal_id, f"Pipedrive deal {row.deal_id}"))
        if row.lead_id and row.deal_id is None:
            items.append(CleanupItem(PIPEDRIVE, "lead", row.lead_id, f"Pipedrive lead {row.lead_id}"))
        if row.person_id is not None and person_created(rf_user_id):
            label = f"Pipedrive person {row.person_id} ({row.email})"
            items.append(CleanupItem(PIPEDRIVE, "person", row.person_id, label))
    for user_id, email in (
        (created.invited_id, created.invited_email),
        (created.referrer_id, created.referrer_email),
    ):
        if user_id is not None:
            items.append(CleanupItem(REFERRAL_FACTORY, "user", user_id, f"Referral Factory user {user_id} ({email})"))
    return items


def kept_items(store: Store, created: Created, person_created: PersonCreated) -> list[str]:
    """What the test touched but does not remove: people who were in Pipedrive before."""
    kept = []
    for rf_user_id in created.tracked:
        row = store.get(rf_user_id)
        if row is not None and row.person_id is not None and person_created(rf_user_id) is not True:
            kept.append(f"Pipedrive person {row.person_id} ({row.email}): it was already in Pipedrive, so it stays.")
    return kept


async def with_discovered_items(
    items: list[CleanupItem],
    store: Store,
    created: Created,
    settings: Settings,
    pd: PipedriveClient,
    call: Callable[[Awaitable[Any]], Awaitable[Any]],
) -> list[CleanupItem]:
    """Add leads and deals carrying the test's Referral Code that the store does not know of yet: a
    deal converted from the lead a moment ago, or a create still in flight when the run stopped."""
    code_target = settings.referral_code_target()
    if code_target is None:
        return items
    code_key = code_target.split(":", 1)[1]
    known = {(i.kind, str(i.ident)) for i in items}
    found: list[CleanupItem] = []
    for rf_user_id in created.tracked:
        row = store.get(rf_user_id)
        if row is None or row.person_id is None or not row.code:
            continue
        for kind, listed in (
            ("deal", await call(pd.deals_for_person(row.person_id))),
            ("lead", await call(pd.leads_for_person(row.person_id))),
        ):
            for record in listed:
                gone = record.get("is_deleted") or record.get("status") == "deleted"
                key = (kind, str(record["id"]))
                if not gone and key not in known and _holds_code(record, code_key, row.code):
                    known.add(key)
                    found.append(CleanupItem(PIPEDRIVE, kind, record["id"], f"Pipedrive {kind} {key[1]}"))
    return found + items  # leads and deals go before the person they belong to


async def remove(item: CleanupItem, rf: ReferralFactoryClient, pd: PipedriveClient) -> str | None:
    """None when removed now, ALREADY_GONE when it was, otherwise why it could not be removed."""
    try:
        if item.service == REFERRAL_FACTORY:
            await rf.delete_user(int(item.ident))
        elif item.kind == "deal":
            await pd.delete_deal(int(item.ident))
        elif item.kind == "lead":
            await pd.delete_lead(str(item.ident))
        else:
            await pd.delete_person(int(item.ident))
    except NotFoundError:
        return ALREADY_GONE
    except ApiError as error:
        return error.message
    return None


def leftovers(items: list[CleanupItem]) -> str:
    if not items:
        return "Nothing was created."
    return "Created so far: " + "; ".join(item.label for item in items) + "."


def leftover_hint(items: list[CleanupItem]) -> str:
    if not items:
        return "Nothing was created."
    return f"{leftovers(items)} Clean up removes them."


def _holds_code(record: Mapping[str, Any], code_key: str, code: str) -> bool:
    """A lead (flat v1 keys) or a deal (v2 `custom_fields`) carrying this Referral Code."""
    custom = record.get("custom_fields")
    value = custom.get(code_key) if isinstance(custom, dict) else record.get(code_key)
    return value == code
