"""Request body checks for the simulated Pipedrive v2 API, which validates strictly: unknown top-level
keys are refused ("Parameter 'x' is not allowed for this request"), numbers are not coerced from strings,
booleans are true/false, dates are `YYYY-MM-DD`, custom fields go inside `custom_fields`."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from rf_desktop.sandbox.pipedrive_http import not_allowed, schema_error
from rf_desktop.sandbox.pipedrive_values import FieldValueError, kind_of, parse_v2

if TYPE_CHECKING:
    from rf_desktop.sandbox.pipedrive import PipedriveState

Check = Callable[[str, Any], Any]
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
VISIBLE_TO = (1, 3, 5, 7)


def string(path: str, value: Any) -> str:
    if not isinstance(value, str):
        raise FieldValueError(path, f"Expected string, received {kind_of(value)}")
    return value


def non_empty_string(path: str, value: Any) -> str:
    if not string(path, value).strip():
        raise FieldValueError(path, "String must contain at least 1 character(s)")
    return value  # type: ignore[no-any-return]


def integer(path: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise FieldValueError(path, f"Expected number, received {kind_of(value)}")
    return value


def number(path: str, value: Any) -> int | float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise FieldValueError(path, f"Expected number, received {kind_of(value)}")
    return value


def boolean(path: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise FieldValueError(path, f"Expected boolean, received {kind_of(value)}")
    return value


def date(path: str, value: Any) -> str:
    if not isinstance(value, str) or not _DATE.match(value):
        raise FieldValueError(path, f"'{value}' is not a valid date")
    return value


def timestamp(path: str, value: Any) -> str:
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise FieldValueError(path, f"'{value}' is not a valid datetime")
    return value


def currency(path: str, value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Z]{3}", value):
        raise FieldValueError(path, "Expected a 3-letter currency code")
    return value


def visible_to(path: str, value: Any) -> int:
    if integer(path, value) not in VISIBLE_TO:
        raise FieldValueError(path, "Invalid enum value. Expected 1 | 3 | 5 | 7")
    return value  # type: ignore[no-any-return]


def int_list(path: str, value: Any) -> list[int]:
    if not isinstance(value, list):
        raise FieldValueError(path, f"Expected array, received {kind_of(value)}")
    return [integer(f"{path}.{i}", item) for i, item in enumerate(value)]


def json_object(path: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FieldValueError(path, f"Expected object, received {kind_of(value)}")
    return value


def nullable(check: Check) -> Check:
    def nullable_check(path: str, value: Any) -> Any:
        return None if value is None else check(path, value)

    return nullable_check


def one_of(*choices: str) -> Check:
    def choice(path: str, value: Any) -> str:
        if value not in choices:
            raise FieldValueError(path, f"Invalid enum value. Expected {' | '.join(choices)}")
        return value  # type: ignore[no-any-return]

    return choice


def option_labels(path: str, value: Any) -> list[str]:
    """The options of a new enum/set field: `[{label}]`."""
    if not isinstance(value, list):
        raise FieldValueError(path, f"Expected array, received {kind_of(value)}")
    return [
        non_empty_string(f"{path}.{i}.label", json_object(f"{path}.{i}", item).get("label"))
        for i, item in enumerate(value)
    ]


def contacts(path: str, value: Any) -> list[dict[str, Any]]:
    """Emails or phones: `[{value, primary?, label?}]`; label defaults to work, the first is primary when
    none is."""
    if not isinstance(value, list):
        raise FieldValueError(path, f"Expected array, received {kind_of(value)}")
    items = []
    for i, item in enumerate(value):
        obj = json_object(f"{path}.{i}", item)
        items.append(
            {
                "value": non_empty_string(f"{path}.{i}.value", obj.get("value")),
                "primary": boolean(f"{path}.{i}.primary", obj.get("primary", False)),
                "label": string(f"{path}.{i}.label", obj.get("label", "work")),
            }
        )
    if items and not any(item["primary"] for item in items):
        items[0]["primary"] = True
    return items


def validate(
    body: Mapping[str, Any], checks: Mapping[str, Check], required: Iterable[str] = ()
) -> dict[str, Any]:
    """The checked values of a v2 body, or a 400 ERR_SCHEMA_VALIDATION_FAILED naming every problem."""
    problems = [not_allowed(key) for key in body if key not in checks]
    problems += [f"{key}: Required" for key in required if body.get(key) is None]
    values: dict[str, Any] = {}
    for key, value in body.items():
        if key in checks:
            try:
                values[key] = checks[key](key, value)
            except FieldValueError as exc:
                problems.append(str(exc))
    if problems:
        raise schema_error(*problems)
    return values


def custom_values(pd: PipedriveState, entity: str, raw: Any) -> dict[str, Any]:
    """A v2 `custom_fields` object, validated against the entity's current custom fields (a deleted or
    unknown key is refused by name): {field_code: canonical value or None}."""
    if raw is None:
        return {}
    obj = validate({"custom_fields": raw}, {"custom_fields": json_object})["custom_fields"]
    fields = pd.custom_fields(entity)
    refs = pd.refs()
    problems, values = [], {}
    for code, value in obj.items():
        path = f"custom_fields.{code}"
        if code not in fields:
            problems.append(f"{path}: Custom field '{code}' does not exist")
            continue
        try:
            values[code] = parse_v2(fields[code], value, refs, path)
        except FieldValueError as exc:
            problems.append(str(exc))
    if problems:
        raise schema_error(*problems)
    return values


def existing(problems: list[str], path: str, value: Any, known: Iterable[Any], what: str) -> None:
    """Collect a problem when a referenced id does not exist."""
    if value is None:
        return
    known = set(known)
    for item in value if isinstance(value, list) else [value]:
        if item not in known:
            problems.append(f"{path}: {what} {item} does not exist")
