"""Did the mapped values arrive? Each value the mapping sends for the test referral, compared with what
Pipedrive holds now (read back in one comparable form by `readback`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from rf_desktop.core.config import Settings, is_referrer_source, source_label
from rf_desktop.core.mapping import DEFAULT_SOURCE, Api, MappingError, convert_value, referral_values, render_title
from rf_desktop.core.readback import comparable, read_item_value, read_person_value, shown
from rf_desktop.core.schema import FieldDef, PipedriveSchema
from rf_desktop.core.store import Referral

V1: Final = "v1"
V2: Final = "v2"


@dataclass(frozen=True)
class FieldCheck:
    """One value the mapping sends, as read back from Pipedrive. `arrived` is None when there was nothing
    to compare (the person already existed, or the referral had no value for it)."""

    record: str  # "Person", "Lead" or "Deal"
    field: str  # the Pipedrive field's name
    value: str  # what Pipedrive holds now
    source: str  # where rf-desktop took the value from
    expected: str
    arrived: bool | None
    note: str = ""


def check_fields(
    settings: Settings,
    schema: PipedriveSchema | None,
    referral: Referral,
    person: Mapping[str, Any],
    item: Mapping[str, Any] | None,
    person_created: bool | None,
) -> list[FieldCheck]:
    """Each value the mapping sends (and each default field value), compared with what Pipedrive holds
    now. A person that existed before keeps its name (and with "keep the existing person", all its
    values), so those are shown but not judged."""
    if schema is None:
        return []
    mode = settings.mode
    record = "Lead" if mode == "lead" else "Deal"
    checks: list[FieldCheck] = []
    if item is not None:
        expected_title = render_title(settings.title, referral_values(referral))
        title = str(item.get("title") or "")
        checks.append(FieldCheck(record, "Title", title, "Title", expected_title, title == expected_title))
    currency = settings.defaults.currency or schema.default_currency
    for target, (source, raw) in sent_values(settings, referral).items():
        entity, _, code = target.partition(":")
        definition = schema.field(target, mode)
        name = definition.name if definition is not None else code
        api: Api = V2
        if entity == "person":
            actual = read_person_value(person, code)
            where = "Person"
        elif item is None:
            checks.append(FieldCheck(record, name, "", source, "", None, f"The {mode} is no longer in Pipedrive."))
            continue
        else:
            actual = read_item_value(item, code, mode)
            where, api = record, (V1 if mode == "lead" else V2)
        checks.append(_compare(where, name, source, raw, actual, definition, api, currency, code))
    if person_created is False:
        checks = [_unjudged_existing_person(c, settings) for c in checks]
    return checks


def sent_values(settings: Settings, referral: Referral) -> dict[str, tuple[str, Any]]:
    """target -> (source label, value) as the mapping sends them: a default first, replaced by the
    referral's own value when it has one."""
    chosen: dict[str, tuple[str, Any]] = {
        target: (DEFAULT_SOURCE, value)
        for target, value in settings.defaults.fields.items()
        if value not in (None, "", [])
    }
    values = referral_values(referral)
    for mapping in settings.mappings:
        if is_referrer_source(mapping.source) and not settings.attach_referrer:
            continue
        value = values.get(mapping.source)
        if value not in (None, "") or mapping.target not in chosen:
            chosen[mapping.target] = (source_label(mapping.source), value)
    return chosen


def _compare(
    record: str,
    name: str,
    source: str,
    raw: Any,
    actual: Any,
    definition: FieldDef | None,
    api: Api,
    currency: str | None,
    code: str,
) -> FieldCheck:
    field_type = definition.field_type if definition is not None else "varchar"
    if raw in (None, ""):
        return FieldCheck(record, name, "", source, "", None, "The test referral has no value for it.")
    if definition is None:
        return FieldCheck(record, name, "", source, str(raw), False, "The Pipedrive field no longer exists.")
    try:
        expected = comparable(convert_value(raw, definition, api, currency=currency), field_type)
    except MappingError as error:
        return FieldCheck(record, name, "", source, str(raw), False, error.message)
    if record == "Person" and code in ("email", "phone"):
        # a person has lists of addresses and numbers: ours must be among them
        values = [comparable(v, field_type) for v in actual or []]
        folded = [v.casefold() if isinstance(v, str) else v for v in values]
        wanted = expected.casefold() if isinstance(expected, str) else expected
        value_text = ", ".join(str(v) for v in values)
        return FieldCheck(record, name, value_text, source, shown(expected, definition), wanted in folded)
    got = comparable(actual, field_type)
    arrived = got == expected
    note = "" if arrived else ("Empty in Pipedrive." if got is None else "Pipedrive holds another value.")
    return FieldCheck(record, name, shown(got, definition), source, shown(expected, definition), arrived, note)


def _unjudged_existing_person(check: FieldCheck, settings: Settings) -> FieldCheck:
    if check.record != "Person":
        return check
    if settings.duplicates == "keep":
        note = "The person was already in Pipedrive and is left as it was (duplicates: keep)."
        return dataclasses.replace(check, arrived=None, note=note)
    if check.field == "Name":
        return dataclasses.replace(check, arrived=None, note="The existing person's name is kept.")
    return check
