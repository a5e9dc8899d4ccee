"""Custom field values in the simulated Pipedrive: validated by field type, stored in one canonical shape
(the v2 `custom_fields` shape), written back out as v2 values or as v1 flat keys (leads).

v2 (`custom_fields` on persons and deals) follows the migration guide strictly: numbers are not coerced
from strings, an enum is an existing option id, a set is a non-empty list of option ids (`[]` is an error,
`null` clears), dates are `YYYY-MM-DD`, monetary/time/daterange/timerange/address are objects (a monetary
value without a currency takes the company's default currency, a time without a zone the user's zone).

v1 leads take custom fields as flat 40-hex keys at the top level. Pipedrive documents them only as "the same
format as the Deals endpoints"; the exact shapes per type are unverified, so the sandbox accepts the v1
forms the notes describe and a little more, and writes the classic v1 forms back:
- enum: option id as an int or a numeric string; written back as a string (`"12"`);
- set: a list of option ids or a comma string (`"12,13"`); written back as a comma string;
- monetary: `key` = amount (number or numeric string) plus `key_currency` (or a `{value, currency}` object);
- daterange/timerange: `key` + `key_until`; time: `"HH:MM[:SS]"` (+ `key_timezone_name`);
- address: `key` = the address text (+ `key_route`, `key_locality`, ... subfields);
- varchar/text/phone strings, double numbers (numeric strings accepted), date `YYYY-MM-DD`.
"""

from __future__ import annotations

import re
from collections.abc import Container, Mapping
from datetime import date
from typing import Any

from rf_desktop.sandbox.pipedrive_seed import DEFAULT_CURRENCY, TIMEZONE_NAME

CUSTOM_KEY = re.compile(r"^[0-9a-f]{40}$")
CREATABLE_TYPES = frozenset(
    {
        "varchar",
        "varchar_auto",
        "text",
        "double",
        "monetary",
        "date",
        "set",
        "enum",
        "user",
        "org",
        "people",
        "phone",
        "time",
        "timerange",
        "daterange",
        "address",
    }
)
SEARCHABLE_TYPES = frozenset({"address", "varchar", "text", "varchar_auto", "double", "monetary", "phone"})
TEXT_TYPES = frozenset({"varchar", "varchar_auto", "text", "phone"})
MAX_LENGTH = {"varchar": 255, "varchar_auto": 255, "phone": 255, "text": 65_535}
ADDRESS_PARTS = (
    "subpremise",
    "street_number",
    "route",
    "sublocality",
    "locality",
    "admin_area_level_1",
    "admin_area_level_2",
    "country",
    "postal_code",
    "formatted_address",
)
# suffixes of the v1 flat subfield keys (`<key>_currency`, `<key>_until`, ...)
V1_SUFFIXES = ("currency", "until", "timezone_name", "timezone_id", *ADDRESS_PARTS)
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

Field = Mapping[str, Any]


class FieldValueError(ValueError):
    """A value that does not fit its field; `str()` is the `path: problem` part of a validation message."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(path: str, value: Any, *, coerce: bool) -> int | float:
    if _is_number(value):
        return value  # type: ignore[no-any-return]
    if coerce and isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            return int(number) if number.is_integer() else number
    raise FieldValueError(path, f"Expected number, received {kind_of(value)}")


def kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if _is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _string(path: str, value: Any, field_type: str) -> str:
    if not isinstance(value, str):
        raise FieldValueError(path, f"Expected string, received {kind_of(value)}")
    limit = MAX_LENGTH.get(field_type)
    if limit is not None and len(value) > limit:
        raise FieldValueError(path, f"String must contain at most {limit} character(s)")
    return value


def _date(path: str, value: Any) -> str:
    if isinstance(value, str) and _DATE.match(value):
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    raise FieldValueError(path, f"'{value}' is not a valid date (YYYY-MM-DD)")


def _time(path: str, value: Any) -> str:
    if isinstance(value, str) and _TIME.match(value):
        return value if value.count(":") == 2 else value + ":00"
    raise FieldValueError(path, f"'{value}' is not a valid time (HH:MM:SS)")


def _object(path: str, value: Any, required: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FieldValueError(path, f"Expected object, received {kind_of(value)}")
    for key in required:
        if value.get(key) is None:
            raise FieldValueError(f"{path}.{key}", "Required")
    return value


def _option_id(path: str, field: Field, value: Any, *, coerce: bool) -> int:
    if coerce and isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool):
        raise FieldValueError(path, f"Expected number, received {kind_of(value)}")
    if value not in {option["id"] for option in field.get("options") or []}:
        raise FieldValueError(path, f"Option {value} does not exist for field '{field['field_name']}'")
    return value


def _timezone(path: str, value: dict[str, Any]) -> str:
    timezone = value.get("timezone_name")
    if timezone is None:
        return TIMEZONE_NAME  # Pipedrive falls back to the user's time zone
    if not isinstance(timezone, str) or not timezone:
        raise FieldValueError(f"{path}.timezone_name", "Expected a time zone name")
    return timezone


def parse_v2(field: Field, value: Any, refs: Mapping[str, Container[int]], path: str) -> Any:
    """The canonical stored value of a v2 `custom_fields` entry, or None to clear the field.

    `refs` holds the existing ids for `user` and `people` fields (an `org` is not simulated: any id)."""
    if value is None:
        return None
    field_type = field["field_type"]
    if field_type in TEXT_TYPES:
        return _string(path, value, field_type)
    if field_type == "double":
        return _number(path, value, coerce=False)
    if field_type == "monetary":
        obj = _object(path, value, ("value",))
        currency = obj.get("currency", DEFAULT_CURRENCY)
        if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
            raise FieldValueError(f"{path}.currency", "Expected a 3-letter currency code")
        return {"value": _number(f"{path}.value", obj["value"], coerce=False), "currency": currency}
    if field_type == "enum":
        return _option_id(path, field, value, coerce=False)
    if field_type == "set":
        if not isinstance(value, list):
            raise FieldValueError(path, f"Expected array, received {kind_of(value)}")
        if not value:
            raise FieldValueError(path, "Array must contain at least 1 element(s); send null to clear")
        ids = [_option_id(f"{path}.{i}", field, item, coerce=False) for i, item in enumerate(value)]
        return list(dict.fromkeys(ids))
    if field_type == "date":
        return _date(path, value)
    if field_type == "daterange":
        obj = _object(path, value, ("value", "until"))
        start, until = _date(f"{path}.value", obj["value"]), _date(f"{path}.until", obj["until"])
        if until < start:
            raise FieldValueError(f"{path}.until", "The end date is before the start date")
        return {"value": start, "until": until}
    if field_type in ("time", "timerange"):
        required = ("value", "until") if field_type == "timerange" else ("value",)
        obj = _object(path, value, required)
        parsed = {key: _time(f"{path}.{key}", obj[key]) for key in required}
        return {**parsed, "timezone_name": _timezone(path, obj)}
    if field_type == "address":
        obj = _object(path, value, ("value",))
        parts = {part: obj.get(part) for part in ADDRESS_PARTS}
        for part, text in parts.items():
            if text is not None and not isinstance(text, str):
                raise FieldValueError(f"{path}.{part}", f"Expected string, received {kind_of(text)}")
        # omitted subfields are set to null, on POST and on PATCH alike
        return {"value": _string(f"{path}.value", obj["value"], "text"), **parts}
    if field_type in ("user", "people", "org"):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise FieldValueError(path, f"Expected a positive integer id, received {kind_of(value)}")
        known = refs.get(field_type)
        if known is not None and value not in known:
            raise FieldValueError(path, f"{field_type} {value} does not exist")
        return value
    raise FieldValueError(path, f"Fields of type {field_type} cannot be written")


def render_v2(field: Field, value: Any, *, option_labels: bool = False) -> Any:
    """A stored value as v2 returns it; enum/set become `{id, label}` objects with `include_option_labels`."""
    if value is None or not option_labels or field["field_type"] not in ("enum", "set"):
        return value
    labels = {option["id"]: option["label"] for option in field.get("options") or []}
    if field["field_type"] == "enum":
        return {"id": value, "label": labels.get(value)}
    return [{"id": option_id, "label": labels.get(option_id)} for option_id in value]


def v1_flat_updates(
    fields: Mapping[str, Field], body: Mapping[str, Any], refs: Mapping[str, Container[int]]
) -> dict[str, Any]:
    """The custom field changes in a v1 lead body (flat 40-hex keys): {field_code: canonical value or None}.

    A 40-hex key that is not a current deal field is an error, as Pipedrive refuses unknown fields."""
    updates: dict[str, Any] = {}
    for key in body:
        code, _, suffix = key.partition("_")
        if not CUSTOM_KEY.match(code):
            continue
        if code not in fields or (suffix and suffix not in V1_SUFFIXES):
            raise FieldValueError(key, f"Custom field '{key}' does not exist")
        if code not in updates:
            updates[code] = _parse_v1(fields[code], body, refs)
    return updates


def _parse_v1(field: Field, body: Mapping[str, Any], refs: Mapping[str, Container[int]]) -> Any:
    code = field["field_code"]
    value = body.get(code)
    field_type = field["field_type"]
    if field_type == "monetary":
        if isinstance(value, dict):
            return parse_v2(field, value, refs, code)
        if value is None:
            return None
        currency = body.get(f"{code}_currency", DEFAULT_CURRENCY)
        return parse_v2(field, {"value": _number(code, value, coerce=True), "currency": currency}, refs, code)
    if value is None or isinstance(value, dict):
        return parse_v2(field, value, refs, code)
    if field_type == "double":
        return _number(code, value, coerce=True)
    if field_type == "enum":
        return _option_id(code, field, value, coerce=True)
    if field_type == "set":
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list) or not items:
            raise FieldValueError(code, "Expected option ids as a list or a comma-separated string")
        return list(dict.fromkeys(_option_id(code, field, item, coerce=True) for item in items))
    if field_type in ("daterange", "timerange", "time"):
        obj = {
            "value": value,
            "until": body.get(f"{code}_until"),
            "timezone_name": body.get(f"{code}_timezone_name"),
        }
        return parse_v2(field, obj, refs, code)
    if field_type == "address":
        parts = {part: body.get(f"{code}_{part}") for part in ADDRESS_PARTS}
        return parse_v2(field, {"value": value, **parts}, refs, code)
    if field_type in TEXT_TYPES and _is_number(value):
        value = str(value)
    return parse_v2(field, value, refs, code)


def render_v1_flat(field: Field, value: Any) -> dict[str, Any]:
    """A stored value as v1 flat keys (leads); unset fields are omitted, as v1 leads do."""
    code, field_type = field["field_code"], field["field_type"]
    if value is None:
        return {}
    if field_type == "monetary":
        return {code: value["value"], f"{code}_currency": value["currency"]}
    if field_type == "enum":
        return {code: str(value)}
    if field_type == "set":
        return {code: ",".join(str(option_id) for option_id in value)}
    if field_type in ("daterange", "timerange", "time"):
        flat = {code: value["value"]}
        flat.update({f"{code}_{key}": part for key, part in value.items() if key != "value"})
        return flat
    if field_type == "address":
        return {code: value["value"], **{f"{code}_{part}": value.get(part) for part in ADDRESS_PARTS}}
    return {code: value}


def display(field: Field, value: Any) -> str:
    """A stored value as a person reads it (the web-app pages, search hits)."""
    if value is None:
        return ""
    field_type = field["field_type"]
    labels = {option["id"]: option["label"] for option in field.get("options") or []}
    if field_type == "monetary":
        return f"{value['value']} {value['currency']}"
    if field_type == "enum":
        return str(labels.get(value, value))
    if field_type == "set":
        return ", ".join(str(labels.get(option_id, option_id)) for option_id in value)
    if field_type in ("daterange", "timerange"):
        return f"{value['value']} to {value['until']}"
    if field_type == "time":
        return f"{value['value']} ({value['timezone_name']})"
    if field_type == "address":
        return str(value.get("formatted_address") or value["value"])
    return str(value)
