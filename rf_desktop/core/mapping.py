"""Referral -> Pipedrive payloads: pure functions that know each field type.

Three payloads, three shapes:
- person (`POST/PATCH /api/v2/persons`): `name`, `emails`/`phones` lists, custom fields in `custom_fields`;
- lead (`POST /v1/leads`): custom fields FLAT at the top level under their 40-hex keys (a monetary field
  as `<key>` plus `<key>_currency`), label ids as UUID strings, `value` as `{amount, currency}`,
  `visible_to` as a string;
- deal (`POST /api/v2/deals`): custom fields NESTED in `custom_fields`, `value` and `currency` flat,
  label ids and `visible_to` as integers.

Where a value comes from: a default (Defaults.fields) fills a field first, and a mapped Referral Factory
value replaces it when the referral has one. Mappings whose value is empty are skipped, except the
required ones (name, email, Referral Code), which raise MappingError. Referrer mappings count only when
"attach the person referring" is on. A value that cannot be converted raises MappingError naming the
field, so the owner can fix the mapping rather than lose data silently.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, Literal, NamedTuple

from rf_desktop.core.config import (
    EMAIL_TARGET,
    NAME_TARGET,
    ConfigError,
    Settings,
    is_known_source,
    is_referrer_source,
    option_labels,
    source_label,
    template_parts,
    unknown_option_message,
)
from rf_desktop.core.schema import FieldDef, FieldOption, PipedriveSchema
from rf_desktop.core.store import Referral

Api = Literal["v1", "v2"]

VARCHAR_LIMIT = 255
TEXT_LIMIT = 65_535
TITLE_LIMIT = 255
PHONE_TARGET = "person:phone"
VALUE_TARGET = "item:value"
CLOSE_DATE_TARGET = "item:expected_close_date"
DEFAULT_SOURCE = "Default value"
VISIBILITY_NAMES = {
    1: "Owner only",
    3: "Owner's visibility group",
    5: "Owner's visibility group and sub-groups",
    7: "Entire company",
}


class MappingError(Exception):
    """A referral value that cannot go to Pipedrive, explained in one plain sentence."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- values of a referral ---


def referral_values(referral: Referral) -> dict[str, Any]:
    """Source key -> value: the built-in values, `meta:<label>` form fields and `referrer.*`."""
    values: dict[str, Any] = {
        "first_name": referral.first_name,
        "email": referral.email,
        "code": referral.code,
        "url": referral.url,
        "source": referral.source,
        "campaign_name": referral.campaign_name,
        "signed_up_at": referral.signed_up_at,
        "referrer.first_name": referral.referrer_first_name,
        "referrer.email": referral.referrer_email,
        "referrer.code": referral.referrer_code,
        "referrer.url": referral.referrer_url,
    }
    values.update({f"meta:{label}": value for label, value in referral.meta.items()})
    return values


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, list):
        return ", ".join(_as_text(v) for v in value)
    return str(value).strip()


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def render_title(template: str, values: dict[str, Any]) -> str:
    """Fill the title template: placeholders become the referral's values (a known field with no value
    becomes empty), spaces are tidied, and the result is cut to Pipedrive's 255 characters."""
    try:
        parts = template_parts(template)
    except ConfigError as error:
        raise MappingError(str(error)) from None
    pieces = []
    for text, is_placeholder in parts:
        if not is_placeholder:
            pieces.append(text)
        elif text in values or is_known_source(text):
            value = values.get(text)
            pieces.append("" if _is_empty(value) else _as_text(value))
        else:
            raise MappingError(
                f"The title uses {{{text}}}, which is not a Referral Factory field. Change the title in the "
                "mapping settings."
            )
    title = " ".join("".join(pieces).split())
    if not title:
        raise MappingError(
            "The title for this referral is empty because the fields it uses have no value. Add a field "
            "that is always filled to the title, such as {campaign_name}."
        )
    return title if len(title) <= TITLE_LIMIT else title[: TITLE_LIMIT - 1].rstrip() + "…"


# --- converting one value for one field ---

Converter = Callable[[Any, FieldDef, Api, str | None], Any]


def convert_value(value: Any, field: FieldDef, api: Api, *, currency: str | None = None) -> Any:
    """The value as Pipedrive wants it for this field (`api` is "v1" for leads, "v2" for persons and
    deals). Monetary values come back as `{"value": amount, "currency": code}` for both; the lead
    payload splits them into `<key>` and `<key>_currency`. `currency` is used when the value has none."""
    if isinstance(value, str):
        value = value.strip()
    converter = _CONVERTERS.get(field.field_type)
    if converter is None:
        raise MappingError(
            f"rf-desktop cannot fill the Pipedrive field '{field.name}' ({field.field_type} fields are not "
            "supported). Pick another field."
        )
    return converter(value, field, api, currency)


def _limited_text(value: Any, field: FieldDef, limit: int) -> str:
    text = _as_text(value)
    if len(text) > limit:
        raise MappingError(
            f"'{_short(text)}' is {len(text)} characters long, but the Pipedrive field '{field.name}' "
            f"holds at most {limit}. Map it to a large text field, or map a shorter value."
        )
    return text


def _varchar(value: Any, field: FieldDef, _api: Api, _currency: str | None) -> str:
    return _limited_text(value, field, VARCHAR_LIMIT)


def _long_text(value: Any, field: FieldDef, _api: Api, _currency: str | None) -> str:
    return _limited_text(value, field, TEXT_LIMIT)


_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _email(value: Any, field: FieldDef, _api: Api, _currency: str | None) -> str:
    text = _limited_text(value, field, VARCHAR_LIMIT)
    if not _EMAIL.fullmatch(text):
        raise MappingError(f"'{_short(text)}' is not an email address, so it cannot go into '{field.name}'.")
    return text


def _address(value: Any, field: FieldDef, api: Api, _currency: str | None) -> Any:
    text = _limited_text(value, field, VARCHAR_LIMIT)
    return {"value": text} if api == "v2" else text


# Spaces (also no-break and thin ones), apostrophes and currency signs are only decoration in a number.
_NUMBER_NOISE = re.compile(r"[\s\u00a0\u202f'\u2019$\u20ac\u00a3\u00a5]")
_THOUSANDS_COMMA = re.compile(r"[-+]?\d{1,3}(,\d{3})+")
_THOUSANDS_DOT = re.compile(r"[-+]?\d{1,3}(\.\d{3}){2,}")


def parse_number(value: Any, field: FieldDef) -> float:
    """Numbers as people type them: "1200", "1 200", "12,5", "1,200.50", "1.200,50", "$1,200".
    A comma followed by exactly three digits is read as a thousands separator ("1,200" is 1200);
    any other lone comma is a decimal comma ("12,5" is 12.5)."""
    if isinstance(value, bool):
        raise MappingError(f"'{_as_text(value)}' is not a number, so it cannot go into '{field.name}'.")
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = _NUMBER_NOISE.sub("", str(value))
        if "," in text and "." in text:
            # whichever comes last is the decimal separator
            if text.rfind(",") > text.rfind("."):
                text = text.replace(".", "").replace(",", ".")
            else:
                text = text.replace(",", "")
        elif _THOUSANDS_COMMA.fullmatch(text):
            text = text.replace(",", "")
        elif _THOUSANDS_DOT.fullmatch(text):
            text = text.replace(".", "")
        else:
            text = text.replace(",", ".")
        try:
            number = float(text)
        except ValueError:
            raise MappingError(
                f"'{_short(_as_text(value))}' is not a number, so it cannot go into '{field.name}'."
            ) from None
    if not math.isfinite(number):
        raise MappingError(f"'{_as_text(value)}' is not a number, so it cannot go into '{field.name}'.")
    return number


def _double(value: Any, field: FieldDef, _api: Api, _currency: str | None) -> float:
    return parse_number(value, field)


def _int(value: Any, field: FieldDef, _api: Api, _currency: str | None) -> int:
    number = parse_number(value, field)
    if not number.is_integer():
        raise MappingError(f"'{_as_text(value)}' is not a whole number, so it cannot go into '{field.name}'.")
    return int(number)


_CURRENCY_FIRST = re.compile(r"([A-Za-z]{3})\s*(.+)")
_CURRENCY_LAST = re.compile(r"(.+?)\s*([A-Za-z]{3})")


def _monetary(value: Any, field: FieldDef, _api: Api, currency: str | None) -> dict[str, Any]:
    """`{"value": amount, "currency": code}`; "EUR 1200" and "1200 EUR" carry their own currency."""
    amount: Any = value
    if isinstance(value, dict):
        amount, currency = value.get("value"), value.get("currency") or currency
    elif isinstance(value, str):
        match = _CURRENCY_FIRST.fullmatch(value) or _CURRENCY_LAST.fullmatch(value)
        if match:
            code_first = match.re is _CURRENCY_FIRST
            code, rest = (match.group(1), match.group(2)) if code_first else (match.group(2), match.group(1))
            amount, currency = rest, code.upper()
    number = parse_number(amount, field)
    if not currency:
        raise MappingError(
            f"No currency is known for '{field.name}'. Choose a currency under Default fields."
        )
    return {"value": number, "currency": currency}


def _option(value: Any, field: FieldDef) -> FieldOption:
    """The option named by this label (any case) or, failing that, by its id."""
    found = None
    if isinstance(value, str):
        found = field.option_by_label(value) or field.option_by_id(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        found = field.option_by_id(value)
    if found is None:
        raise MappingError(unknown_option_message(field, _as_text(value)))
    return found


def _enum(value: Any, field: FieldDef, _api: Api, _currency: str | None) -> int | str:
    return _option(value, field).id


def _set(value: Any, field: FieldDef, _api: Api, _currency: str | None) -> list[int | str] | None:
    """Labels separated by commas or semicolons (or a list) -> option ids; None when there are none
    (Pipedrive rejects an empty list)."""
    labels: list[Any] = value if isinstance(value, list) else option_labels(value)
    ids = list(dict.fromkeys(_option(label, field).id for label in labels))
    return ids or None


_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ].+")
_DOTTED_DATE = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})")
_SLASHED_DATE = re.compile(r"(\d{1,2})[/-](\d{1,2})[/-](\d{4})")
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def parse_date(value: Any, field: FieldDef) -> date:
    """YYYY-MM-DD, an ISO date-time (its date as written), D.M.YYYY, or D/M/YYYY and M/D/YYYY when
    only one reading is possible. "05/06/2025" could be 5 June or May 6, so it is refused."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = _as_text(value)
    try:
        if match := _ISO_DATE.fullmatch(text):
            return date(int(match[1]), int(match[2]), int(match[3]))
        if _ISO_DATETIME.fullmatch(text):
            return datetime.fromisoformat(text.replace("Z", "+00:00")).date()
        if match := _DOTTED_DATE.fullmatch(text):
            return date(int(match[3]), int(match[2]), int(match[1]))
        if match := _SLASHED_DATE.fullmatch(text):
            first, second, year = int(match[1]), int(match[2]), int(match[3])
            if first == second or (first > 12 >= second):
                return date(year, second, first)
            if second > 12 >= first:
                return date(year, first, second)
            if first <= 12 and second <= 12:
                day_first = f"{first} {_MONTHS[second - 1]}"
                month_first = f"{_MONTHS[first - 1]} {second}"
                raise MappingError(
                    f"'{text}' could mean {day_first} or {month_first}, so it cannot go into '{field.name}'. "
                    "Dates written as YYYY-MM-DD are always understood."
                )
    except ValueError:
        pass
    raise MappingError(f"'{_short(text)}' is not a date, so it cannot go into '{field.name}'.")


def _date(value: Any, field: FieldDef, _api: Api, _currency: str | None) -> str:
    return parse_date(value, field).isoformat()


_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")


def _time(value: Any, field: FieldDef, api: Api, _currency: str | None) -> Any:
    if isinstance(value, datetime | time):
        hour, minute, second = value.hour, value.minute, value.second
    else:
        text = _as_text(value)
        match = _TIME.fullmatch(text)
        if not match:
            raise MappingError(f"'{_short(text)}' is not a time, so it cannot go into '{field.name}'.")
        hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
        if hour > 23 or minute > 59 or second > 59:
            raise MappingError(f"'{text}' is not a time, so it cannot go into '{field.name}'.")
    text = f"{hour:02d}:{minute:02d}:{second:02d}"
    # v2 takes an object (Pipedrive uses the owner's time zone when none is given)
    return {"value": text} if api == "v2" else text


_TRUE = frozenset({"true", "yes", "y", "1", "on", "x"})
_FALSE = frozenset({"false", "no", "n", "0", "off"})


def _boolean(value: Any, field: FieldDef, _api: Api, _currency: str | None) -> bool:
    if isinstance(value, bool):
        return value
    text = _as_text(value).casefold()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise MappingError(f"'{_short(text)}' is neither yes nor no, so it cannot go into '{field.name}'.")


_RECORD_NAMES = {"user": "user", "people": "person", "org": "organization"}


def _record_id(value: Any, field: FieldDef, _api: Api, _currency: str | None) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    text = _as_text(value)
    if text.isascii() and text.isdigit() and int(text) > 0:
        return int(text)
    kind = _RECORD_NAMES.get(field.field_type, "record")
    raise MappingError(f"'{_short(text)}' is not a Pipedrive {kind} id, so it cannot go into '{field.name}'.")


_CONVERTERS: dict[str, Converter] = {
    "varchar": _varchar,
    "varchar_auto": _varchar,
    "varchar_options": _varchar,
    "phone": _varchar,
    "text": _long_text,
    "email": _email,
    "address": _address,
    "double": _double,
    "int": _int,
    "monetary": _monetary,
    "enum": _enum,
    "set": _set,
    "date": _date,
    "time": _time,
    "boolean": _boolean,
    "user": _record_id,
    "people": _record_id,
    "org": _record_id,
}


# --- gathering the values for one record ---


@dataclass(frozen=True)
class _Entry:
    target: str
    label: str  # the Pipedrive field's name
    source: str  # where the value came from, for the preview
    raw: Any
    field: FieldDef | None = None
    value: Any = None  # converted
    error: str | None = None


def _gather(
    referral: Referral, settings: Settings, schema: PipedriveSchema, entity: str, api: Api
) -> dict[str, _Entry]:
    """target -> entry for every non-empty default and mapped value of one record (person or item)."""
    prefix = f"{entity}:"
    chosen: dict[str, tuple[str, Any, str | None]] = {
        target: (DEFAULT_SOURCE, value, None)
        for target, value in settings.defaults.fields.items()
        if target.startswith(prefix) and not _is_empty(value)
    }
    values = referral_values(referral)
    for mapping in settings.mappings:
        if not mapping.target.startswith(prefix):
            continue
        if is_referrer_source(mapping.source) and not settings.attach_referrer:
            continue
        value = values.get(mapping.source)
        if not _is_empty(value):
            chosen[mapping.target] = (source_label(mapping.source), value, mapping.label)
    currency = settings.defaults.currency or schema.default_currency
    return {
        target: _convert_entry(target, source, raw, remembered, settings, schema, api, currency)
        for target, (source, raw, remembered) in chosen.items()
    }


def _convert_entry(
    target: str,
    source: str,
    raw: Any,
    remembered: str | None,
    settings: Settings,
    schema: PipedriveSchema,
    api: Api,
    currency: str | None,
) -> _Entry:
    found = schema.field(target, settings.mode)
    if found is None:
        name = remembered or target.partition(":")[2]
        message = f"The Pipedrive field '{name}' was deleted. Pick another field or remove the mapping."
        return _Entry(target, name, source, raw, error=message)
    if not schema.is_fillable(target, settings.mode):
        message = f"rf-desktop cannot fill the Pipedrive field '{found.name}'. Pick another field."
        return _Entry(target, found.name, source, raw, found, error=message)
    try:
        converted = convert_value(raw, found, api, currency=currency)
    except MappingError as error:
        return _Entry(target, found.name, source, raw, found, error=error.message)
    return _Entry(target, found.name, source, raw, found, converted)


def _raise_first_error(entries: dict[str, _Entry]) -> None:
    for entry in entries.values():
        if entry.error:
            raise MappingError(entry.error)


def _missing(referral: Referral, settings: Settings, target: str, purpose: str) -> MappingError:
    """The error for a required value that is not there: unmapped, or empty for this referral."""
    mapping = next((m for m in settings.mappings if m.target == target), None)
    if mapping is None:
        return MappingError(f"Nothing is mapped to {purpose}. Map it in the mapping settings.")
    what = {
        "first_name": "first name",
        "email": "email address",
        "code": "Referral Code",
    }.get(mapping.source, f"'{source_label(mapping.source)}'")
    consequence = {
        NAME_TARGET: "Pipedrive cannot create a person for it",
        EMAIL_TARGET: "it cannot be matched to a Pipedrive person",
    }.get(target, "its lead or deal could not be recognised when it converts")
    return MappingError(f"This referral has no {what}, so {consequence}.")


def _custom_entries(entries: dict[str, _Entry]) -> list[_Entry]:
    return [e for e in entries.values() if e.field is not None and e.field.is_custom and e.value is not None]


# --- the person ---


def build_person(
    referral: Referral, settings: Settings, schema: PipedriveSchema, existing: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The v2 person body. Without `existing`: a create body. With `existing` (the person found by email,
    duplicates set to "update"): a PATCH body that adds our email/phone to the person's lists instead of
    replacing them and keeps the person's name (Pipedrive often has the full name where Referral Factory
    has only a first name). An empty dict means there is nothing to change."""
    entries = _gather(referral, settings, schema, "person", "v2")
    _raise_first_error(entries)
    email_entry = entries.get(EMAIL_TARGET)
    if email_entry is None:
        raise _missing(referral, settings, EMAIL_TARGET, "the person's Email")
    phone_entry = entries.get(PHONE_TARGET)
    phone = phone_entry.value if phone_entry else None
    custom = {e.field.code: e.value for e in _custom_entries(entries) if e.field}
    if existing is not None:
        body: dict[str, Any] = {}
        emails = _merged(existing.get("emails"), email_entry.value, _same_email)
        if emails is not None:
            body["emails"] = emails
        phones = _merged(existing.get("phones"), phone, _same_phone) if phone else None
        if phones is not None:
            body["phones"] = phones
        if custom:
            body["custom_fields"] = custom
        return body
    name_entry = entries.get(NAME_TARGET)
    if name_entry is None:
        raise _missing(referral, settings, NAME_TARGET, "the person's Name")
    body = {
        "name": name_entry.value,
        "emails": [{"value": email_entry.value, "primary": True, "label": "work"}],
    }
    if phone:
        body["phones"] = [{"value": phone, "primary": True, "label": "work"}]
    if settings.defaults.owner_id is not None:
        body["owner_id"] = settings.defaults.owner_id
    if custom:
        body["custom_fields"] = custom
    return body


def _same_email(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()


def _same_phone(a: str, b: str) -> bool:
    # "+1 (555) 010-2000" and "+15550102000" are the same number
    digits_a, digits_b = re.sub(r"\D", "", a), re.sub(r"\D", "", b)
    return digits_a == digits_b if digits_a or digits_b else a.strip() == b.strip()


def _merged(current: Any, ours: str | None, same: Callable[[str, str], bool]) -> list[dict[str, Any]] | None:
    """The person's list with our entry added; None when it is already there (nothing to send).
    Search results list bare strings; person records list `{value, primary, label}` objects."""
    if ours is None:
        return None
    entries = []
    for index, item in enumerate(current or []):
        if isinstance(item, dict):
            if not item.get("value"):
                continue
            entries.append(
                {
                    "value": item["value"],
                    "primary": bool(item.get("primary")),
                    "label": item.get("label") or "work",
                }
            )
        elif item:
            entries.append({"value": str(item), "primary": index == 0, "label": "work"})
    if any(same(entry["value"], ours) for entry in entries):
        return None
    has_primary = any(entry["primary"] for entry in entries)
    return [*entries, {"value": ours, "primary": not has_primary, "label": "work"}]


# --- the lead or the deal ---


@dataclass(frozen=True)
class _Item:
    title: str
    entries: dict[str, _Entry]
    amount: float | None
    currency: str | None


def _item(referral: Referral, settings: Settings, schema: PipedriveSchema, api: Api) -> _Item:
    title = render_title(settings.title, referral_values(referral))
    entries = _gather(referral, settings, schema, "item", api)
    _raise_first_error(entries)
    code_target = settings.referral_code_target()
    if code_target is None:
        raise MappingError(
            "Nothing is mapped to the Referral Code field. Create the Referral Code field in Pipedrive, then "
            "map 'Referral Code' to it."
        )
    if code_target not in entries:
        raise _missing(referral, settings, code_target, "the Referral Code field")
    amount, currency = _money(entries, settings, schema)
    return _Item(title, entries, amount, currency)


def _money(
    entries: dict[str, _Entry], settings: Settings, schema: PipedriveSchema
) -> tuple[float | None, str | None]:
    currency = settings.defaults.currency or schema.default_currency
    mapped = entries.get(VALUE_TARGET)
    if mapped is not None:
        if isinstance(mapped.value, dict):
            return float(mapped.value["value"]), str(mapped.value["currency"])
        amount: float | None = float(mapped.value)
    else:
        amount = settings.defaults.value
    if amount is None:
        return None, None
    if not currency:
        raise MappingError("Choose the currency of the lead or deal value under Default fields.")
    return amount, currency


def _label_ids(settings: Settings, kind: Literal["lead", "deal"]) -> list[Any]:
    labels = settings.defaults.label_ids
    if kind == "lead":
        return [str(label) for label in labels]
    try:
        return [int(label) for label in labels]
    except ValueError:
        raise MappingError(
            "Lead labels cannot be put on deals. Choose the labels for new deals again."
        ) from None


def build_lead(
    referral: Referral, settings: Settings, schema: PipedriveSchema, person_id: int
) -> dict[str, Any]:
    """The `POST /v1/leads` body, custom fields flat at the top level."""
    item = _item(referral, settings, schema, "v1")
    defaults = settings.defaults
    body: dict[str, Any] = {"title": item.title, "person_id": person_id}
    if defaults.owner_id is not None:
        body["owner_id"] = defaults.owner_id
    if defaults.label_ids:
        body["label_ids"] = _label_ids(settings, "lead")
    if item.amount is not None:
        body["value"] = {"amount": item.amount, "currency": item.currency}
    if defaults.visible_to is not None:
        body["visible_to"] = str(defaults.visible_to)
    close = item.entries.get(CLOSE_DATE_TARGET)
    if close is not None:
        body["expected_close_date"] = close.value
    for entry in _custom_entries(item.entries):
        assert entry.field is not None
        if entry.field.field_type == "monetary":
            body[entry.field.code] = entry.value["value"]
            body[f"{entry.field.code}_currency"] = entry.value["currency"]
        else:
            body[entry.field.code] = entry.value
    return body


def build_deal(
    referral: Referral, settings: Settings, schema: PipedriveSchema, person_id: int
) -> dict[str, Any]:
    """The `POST /api/v2/deals` body, custom fields nested in `custom_fields`."""
    item = _item(referral, settings, schema, "v2")
    defaults = settings.defaults
    body: dict[str, Any] = {"title": item.title, "person_id": person_id}
    if settings.pipeline_id is not None:
        body["pipeline_id"] = settings.pipeline_id
    if settings.stage_id is not None:
        body["stage_id"] = settings.stage_id
    if defaults.owner_id is not None:
        body["owner_id"] = defaults.owner_id
    if item.amount is not None:
        body["value"] = item.amount
        body["currency"] = item.currency
    if defaults.label_ids:
        body["label_ids"] = _label_ids(settings, "deal")
    if defaults.visible_to is not None:
        body["visible_to"] = defaults.visible_to
    close = item.entries.get(CLOSE_DATE_TARGET)
    if close is not None:
        body["expected_close_date"] = close.value
    custom = {e.field.code: e.value for e in _custom_entries(item.entries) if e.field}
    if custom:
        body["custom_fields"] = custom
    return body


# --- the dry run ---


class PreviewRow(NamedTuple):
    field: str  # "Person: Email", "Lead: Referral Code"
    value: str  # as the owner would read it in Pipedrive
    source: str  # "Email", "Default value", "Title template"


@dataclass(frozen=True)
class Preview:
    """What would be sent for one referral. A payload is None when an error stops it; `errors` says why.
    The item's `person_id` is None: the person does not exist yet."""

    person: dict[str, Any] | None
    item: dict[str, Any] | None
    rows: list[PreviewRow]
    errors: list[str]

    @property
    def ok(self) -> bool:
        return not self.errors


def preview(referral: Referral, settings: Settings, schema: PipedriveSchema) -> Preview:
    item_name = "Lead" if settings.mode == "lead" else "Deal"
    item_api: Api = "v1" if settings.mode == "lead" else "v2"
    errors: list[str] = []
    rows = [
        _row("Person", entry, errors)
        for entry in _gather(referral, settings, schema, "person", "v2").values()
    ]
    try:
        rows.append(
            PreviewRow(
                f"{item_name}: Title", render_title(settings.title, referral_values(referral)), "Title"
            )
        )
    except MappingError as error:
        errors.append(error.message)
    rows += _default_rows(item_name, settings, schema)
    rows += [
        _row(item_name, e, errors) for e in _gather(referral, settings, schema, "item", item_api).values()
    ]

    person = _attempt(lambda: build_person(referral, settings, schema), errors)
    build = build_lead if settings.mode == "lead" else build_deal
    item = _attempt(lambda: build(referral, settings, schema, 0), errors)
    if item is not None:
        item["person_id"] = None
    return Preview(person, item, rows, list(dict.fromkeys(errors)))


def _attempt(build: Callable[[], dict[str, Any]], errors: list[str]) -> dict[str, Any] | None:
    try:
        return build()
    except MappingError as error:
        errors.append(error.message)
        return None


def _row(record: str, entry: _Entry, errors: list[str]) -> PreviewRow:
    if entry.error:
        errors.append(entry.error)
        shown = _as_text(entry.raw)
    else:
        shown = _display(entry.value, entry.field)
    return PreviewRow(f"{record}: {entry.label}", shown, entry.source)


def _display(value: Any, field: FieldDef | None) -> str:
    """A converted value as the owner would read it: option labels, "1200 EUR", "Yes"."""
    if field is not None and field.field_type in ("enum", "set"):
        ids = value if isinstance(value, list) else [value]
        return ", ".join(option.label if (option := field.option_by_id(i)) else str(i) for i in ids)
    if isinstance(value, dict) and "currency" in value:
        return f"{_as_text(value['value'])} {value['currency']}"
    if isinstance(value, dict):
        return _as_text(value.get("value"))
    return _as_text(value)


def _default_rows(item_name: str, settings: Settings, schema: PipedriveSchema) -> list[PreviewRow]:
    defaults = settings.defaults
    rows: list[tuple[str, str]] = []
    if settings.mode == "deal":
        pipeline, stage = schema.pipeline(settings.pipeline_id), schema.stage(settings.stage_id)
        if pipeline:
            rows.append(("Pipeline", pipeline.name))
        if stage:
            rows.append(("Stage", stage.name))
    if defaults.owner_id is not None:
        owner = schema.user(defaults.owner_id)
        rows.append(("Owner", owner.name if owner else str(defaults.owner_id)))
    if defaults.label_ids:
        rows.append(
            ("Labels", ", ".join(_label_name(label, settings, schema) for label in defaults.label_ids))
        )
    if defaults.value is not None:
        currency = defaults.currency or schema.default_currency or ""
        rows.append(("Value", f"{_as_text(defaults.value)} {currency}".strip()))
    if defaults.visible_to is not None:
        rows.append(("Visible to", VISIBILITY_NAMES.get(defaults.visible_to, str(defaults.visible_to))))
    return [PreviewRow(f"{item_name}: {name}", shown, DEFAULT_SOURCE) for name, shown in rows]


def _label_name(label: str | int, settings: Settings, schema: PipedriveSchema) -> str:
    if settings.mode == "lead":
        found = schema.lead_label(str(label))
        return found.name if found else str(label)
    option = next((o for o in schema.deal_labels() if str(o.id) == str(label)), None)
    return option.label if option else str(label)
