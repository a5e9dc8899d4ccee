"""Setting the mapping up, without the window: the referral fields rf-desktop creates in Pipedrive (one
table, used by the Mapping page, the first run and the sandbox's presets), finding and mapping them in an
account, the choices a Pipedrive field dropdown offers, and the made-up referral the preview shows."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from rf_desktop.core.config import FieldMap, Settings, is_referrer_source
from rf_desktop.core.schema import Mode, PipedriveSchema, referral_code_field
from rf_desktop.core.store import Referral

# The lead/deal fields rf-desktop creates in Pipedrive, by name, with the Referral Factory value each is
# filled from. The first, the Referral Code, is the one every referral needs.
REFERRAL_FIELDS: Mapping[str, str] = {
    "Referral Code": "code",
    "Referrer First Name": "referrer.first_name",
    "Referrer Email Address": "referrer.email",
    "Referral Campaign": "campaign_name",
    "Referral Link": "url",
}
REFERRAL_CODE_FIELD, *_optional = REFERRAL_FIELDS
OPTIONAL_FIELDS = tuple(_optional)
# The values Pipedrive needs on every referral (config.validate says where each must go).
REQUIRED_SOURCES = ("first_name", "email", "code")
NOT_SENT = "(not sent)"



def campaign_field_labels(campaigns: Iterable[Mapping[str, Any]], campaign_ids: list[int]) -> list[str]:
    """The form field labels of the chosen campaigns, from the cached campaign list."""
    chosen = set(campaign_ids)
    return [label for c in campaigns if c["id"] in chosen for label in c.get("fields", [])]


def target_name(target: str, schema: PipedriveSchema | None, mode: Mode, remembered: str | None) -> str:
    found = schema.field(target, mode) if schema else None
    return found.name if found else (remembered or target.partition(":")[2])


def target_items(
    schema: PipedriveSchema | None, mode: Mode, keep: list[tuple[str, str | None]]
) -> list[tuple[str, str | None]]:
    """(text, target) items for a Pipedrive field dropdown: "(not sent)", the person's fields, the lead's
    or deal's fields; plus the targets in `keep` (target, remembered name) that the schema no longer has,
    marked as deleted, so the current choice stays visible."""
    record = "Lead" if mode == "lead" else "Deal"
    items: list[tuple[str, str | None]] = [(NOT_SENT, None)]
    if schema is not None:
        items += [(f"Person: {label}", target) for label, target in schema.person_targets()]
        items += [(f"{record}: {label}", target) for label, target in schema.item_targets(mode)]
    listed = {target for _text, target in items}
    for target, remembered in keep:
        if target not in listed:
            record_name = "Person" if target.startswith("person:") else record
            suffix = " (deleted in Pipedrive)" if schema is not None else ""
            items.append((f"{record_name}: {remembered or target.partition(':')[2]}{suffix}", target))
            listed.add(target)
    return items


def sample_referral(campaigns: list[dict[str, Any]], settings: Settings) -> Referral:
    """A made-up sign-up for the preview, with the campaign's name and a value for each form field."""
    by_id = {c["id"]: c for c in campaigns}
    campaign_id = settings.referral_factory.campaign_ids[0] if settings.referral_factory.campaign_ids else 0
    campaign = by_id.get(campaign_id, {})
    labels = campaign_field_labels(campaigns, settings.referral_factory.campaign_ids)
    return Referral(
        rf_user_id=0,
        campaign_id=campaign_id,
        campaign_name=str(campaign.get("name") or "Your campaign"),
        first_name="Alex",
        email="alex.sample@example.com",
        code="SAMPLE01",
        url="https://referral-factory.com/join/SAMPLE01",
        source="Referred",
        signed_up_at=datetime.now(UTC).date().isoformat(),
        meta={label: f"Sample {label.lower()}" for label in labels},
        referrer_first_name="Sam",
        referrer_email="sam.sample@example.com",
        referrer_code="SAMPLE00",
        referrer_url="https://referral-factory.com/join/SAMPLE00",
    )


def with_source_mapped(
    mappings: list[FieldMap], source: str, target: str | None, label: str | None
) -> list[FieldMap]:
    """The mappings with `source` sent to `target` only (or not sent when None), other rows untouched and
    the row kept in its place, so validation messages keep pointing at the same rows."""
    result: list[FieldMap] = []
    placed = False
    for item in mappings:
        if item.source != source:
            result.append(item)
        elif target is not None and not placed:
            result.append(FieldMap(source, target, label))
            placed = True
    if target is not None and not placed:
        result.append(FieldMap(source, target, label))
    return result


def auto_map_referral_fields(settings: Settings, schema: PipedriveSchema) -> Settings:
    """Map the referral fields the account has ("Referral Code", "Referrer First Name"..., the ones
    rf-desktop creates or the owner made by the same names) to their values, when those values are not
    sent anywhere yet."""
    found = [(REFERRAL_FIELDS.get(f.name), f) for f in schema.deal_fields if f.is_custom]
    code_field = referral_code_field(schema)
    if code_field is not None:
        found.insert(0, ("code", code_field))
    mappings = list(settings.mappings)
    for source, field_def in found:
        if source and not any(m.source == source for m in mappings):
            mappings = with_source_mapped(mappings, source, f"item:{field_def.code}", field_def.name)
    attach = settings.attach_referrer or any(is_referrer_source(m.source) for m in mappings)
    return dataclasses.replace(settings, mappings=mappings, attach_referrer=attach)


def preselect_referral_code(settings: Settings, schema: PipedriveSchema | None) -> Settings:
    """The Referral Code sent to the account's own Referral Code field, when it is sent nowhere yet."""
    field_def = referral_code_field(schema)
    if field_def is None or any(m.source == "code" for m in settings.mappings):
        return settings
    mappings = with_source_mapped(settings.mappings, "code", f"item:{field_def.code}", field_def.name)
    return dataclasses.replace(settings, mappings=mappings)
