"""What Pipedrive holds, read back in one comparable form.

A value can come back from Pipedrive in the v1 shape (leads: flat keys, a monetary field split into
`<key>` and `<key>_currency`, enum ids as strings, sets as "12,13") or the v2 shape (persons and deals:
`custom_fields`, option ids as numbers, `{value, currency}` objects), and rf-desktop sends yet another.
The test referral uses these to say, field by field, whether what was mapped really arrived.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rf_desktop.core.schema import FieldDef, Mode


def _number_text(value: float) -> str:
    return str(int(value)) if value.is_integer() else str(value)


def comparable(value: Any, field_type: str) -> Any:
    """A Pipedrive value (as v1 or v2 returns it, or as rf-desktop sends it) in one form that compares
    equal however it was written; None when empty."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, dict):
        if "currency" in value:
            amount = value.get("value", value.get("amount"))
            return (float(amount), str(value["currency"])) if amount is not None else None
        value = value.get("id", value.get("value"))
        if value is None:
            return None
    if field_type == "set":
        items = value if isinstance(value, list) else str(value).split(",")
        return frozenset(str(i.get("id") if isinstance(i, dict) else i).strip() for i in items)
    if isinstance(value, bool) or field_type == "boolean":
        return bool(value) if not isinstance(value, str) else value.strip().casefold() in ("true", "yes", "1")
    if field_type in ("double", "int", "monetary", "user", "people", "org"):
        try:
            return float(value)
        except (TypeError, ValueError):
            return str(value).strip()
    if field_type == "date":
        return str(value)[:10]
    if field_type == "time":
        return str(value)[:5]
    return str(value).strip()


def shown(value: Any, definition: FieldDef | None) -> str:
    """A comparable value as the owner reads it in Pipedrive: option labels, "100 EUR", "Yes"."""
    if value is None:
        return ""
    if isinstance(value, frozenset | list):
        return ", ".join(shown(v, definition) for v in sorted(value, key=str))
    if isinstance(value, tuple):
        return f"{_number_text(value[0])} {value[1]}"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if definition is not None and definition.options:
        option = definition.option_by_id(str(value))
        if option is not None:
            return option.label
    if isinstance(value, float):
        return _number_text(value)
    return str(value)


def read_person_value(person: Mapping[str, Any], code: str) -> Any:
    if code in ("email", "phone"):
        return [e.get("value") if isinstance(e, dict) else e for e in person.get(f"{code}s") or []]
    if code == "name":
        return person.get("name")
    return (person.get("custom_fields") or {}).get(code, person.get(code))


def read_item_value(item: Mapping[str, Any], code: str, mode: Mode) -> Any:
    if code == "value":
        if mode == "lead":
            return item.get("value")
        return {"value": item.get("value"), "currency": item.get("currency")} if item.get("value") else None
    custom = item.get("custom_fields")
    if isinstance(custom, dict) and code in custom:
        return custom[code]
    if f"{code}_currency" in item and item.get(code) is not None:
        # v1 leads split a monetary field into the amount and `<key>_currency`
        return {"value": item[code], "currency": item[f"{code}_currency"]}
    return item.get(code)
