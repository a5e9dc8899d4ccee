"""Reading a settings document (JSON) into the settings dataclasses, with messages in plain words.

Missing keys take their defaults; a wrong type or a missing required key raises ConfigError naming where
(`settings.sync.poll_seconds must be a whole number, not 'often'`). Strict reading, for files the owner
writes by hand, also refuses keys the settings do not have and names the key that was probably meant.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints


class ConfigError(Exception):
    """Settings that cannot be read (wrong types in the JSON, a broken title template)."""


_T = TypeVar("_T")
_TYPE_NAMES = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}


def read(cls: type[_T], data: Any, *, strict: bool = False) -> _T:
    """The dataclass `cls` from JSON `data`. Unknown keys are ignored (the stored settings of another
    version still load), or with `strict` refused: a file the owner wrote by hand with `base_urll` must
    not quietly lose that setting."""
    unknown: list[str] | None = [] if strict else None
    value = _from_dict(cls, data, "settings", unknown)
    if unknown:
        raise ConfigError(_unknown_keys_message(cls, unknown))
    return value


def _from_dict(cls: type[_T], data: Any, path: str, unknown: list[str] | None) -> _T:
    """`unknown` collects the paths of keys the dataclass does not have (None: ignore them)."""
    if not isinstance(data, dict):
        raise ConfigError(f"Settings are not valid: {path} must be an object, not {_shown(data)}.")
    hints = get_type_hints(cls)
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    if unknown is not None:
        names = {f.name for f in fields}
        unknown.extend(f"{path}.{key}" for key in data if key not in names)
    missing = [
        f.name
        for f in fields
        if f.name not in data
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"Settings are not valid: {path} has no {', '.join(missing)}.")
    values = {
        f.name: _convert(data[f.name], hints[f.name], f"{path}.{f.name}", unknown)
        for f in fields
        if f.name in data
    }
    return cls(**values)


def _convert(value: Any, hint: Any, path: str, unknown: list[str] | None) -> Any:
    origin = get_origin(hint)
    if hint is Any:
        return value
    if origin is Literal:
        choices = get_args(hint)
        if isinstance(value, str) and value in choices:
            return value
        listed = ", ".join(f"'{c}'" for c in choices)
        raise ConfigError(f"Settings are not valid: {path} must be one of {listed}, not {_shown(value)}.")
    if origin in (Union, types.UnionType):
        return _convert_union(value, get_args(hint), path, unknown)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"Settings are not valid: {path} must be a list, not {_shown(value)}.")
        (item,) = get_args(hint)
        return [_convert(v, item, f"{path}[{i}]", unknown) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"Settings are not valid: {path} must be an object, not {_shown(value)}.")
        _, item = get_args(hint)
        return {str(k): _convert(v, item, f"{path}[{k}]", unknown) for k, v in value.items()}
    if dataclasses.is_dataclass(hint):
        return _from_dict(hint, value, path, unknown)  # type: ignore[arg-type]
    return _convert_scalar(value, hint, path)


def _convert_union(value: Any, options: tuple[Any, ...], path: str, unknown: list[str] | None) -> Any:
    if value is None and type(None) in options:
        return None
    for option in options:
        if option is type(None):
            continue
        try:
            return _convert(value, option, path, unknown)
        except ConfigError:
            continue
    wanted = " or ".join(_TYPE_NAMES.get(o, "nothing" if o is type(None) else str(o)) for o in options)
    raise ConfigError(f"Settings are not valid: {path} must be {wanted}, not {_shown(value)}.")


def _convert_scalar(value: Any, hint: Any, path: str) -> Any:
    # bool is an int in Python, but `true` is never a count or an id
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, int | float) and not isinstance(value, bool),
        str: isinstance(value, str),
    }.get(hint)
    if ok is None:
        raise TypeError(f"no JSON reader for {hint!r} at {path}")
    if not ok:
        raise ConfigError(f"Settings are not valid: {path} must be {_TYPE_NAMES[hint]}, not {_shown(value)}.")
    return float(value) if hint is float else value


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# --- unknown keys, with the key that was probably meant ---


def _setting_paths(cls: Any, prefix: str = "settings") -> dict[str, list[str]]:
    """Every object in the settings (`settings.sync`, `settings.mappings[]`) -> the keys it takes."""
    found: dict[str, list[str]] = {prefix: []}
    for name, hint in get_type_hints(cls).items():
        found[prefix].append(name)
        inner, suffix = hint, ""
        if get_origin(hint) is list:
            (inner,) = get_args(hint)
            suffix = "[]"
        if dataclasses.is_dataclass(inner):
            found.update(_setting_paths(inner, f"{prefix}.{name}{suffix}"))
    return found


def _shown_path(path: str) -> str:
    return "the top level" if path == "settings" else path.removeprefix("settings.")


def _suggestion(path: str, known: dict[str, list[str]]) -> str:
    parent, _, key = path.rpartition(".")
    siblings = known.get(re.sub(r"\[\d+\]", "[]", parent), [])
    close = difflib.get_close_matches(key, siblings, n=1, cutoff=0.7)
    if close:
        return f" (did you mean {_shown_path(f'{parent}.{close[0]}')}?)"
    elsewhere = [f"{where}.{key}" for where, keys in known.items() if key in keys]
    if elsewhere:
        return f" (did you mean {_shown_path(elsewhere[0])}? It belongs there, not under {_shown_path(parent)})"
    return f" ({_shown_path(parent)} takes {', '.join(siblings)})" if siblings else ""


def _unknown_keys_message(cls: Any, paths: list[str]) -> str:
    known = _setting_paths(cls)
    listed = "; ".join(f"{_shown_path(path)}{_suggestion(path, known)}" for path in paths)
    if len(paths) == 1:
        return f"Settings are not valid: unknown setting {listed}. Correct or remove it."
    return f"Settings are not valid: unknown settings {listed}. Correct or remove them."
