"""The simulated Pipedrive API v1: `users/me`, `users`, leads, lead fields and lead labels (the parts
with no v2 replacement). Served under both `/api/v1/...` and `/v1/...`, as the real API is.

v1 is lenient where v1 was (unknown non-custom keys are ignored, `start`/`limit` are clamped) and strict
where the notes warn about client bugs: lead `value` is `{amount, currency}`, `label_ids` are UUIDs of
existing labels, `visible_to` is a string, and custom fields are flat 40-hex keys of existing deal fields.

A deleted lead, and a lead converted to a deal (which Pipedrive marks deleted), answers 404
`requested lead not found` on GET/PATCH/DELETE, the error the spec documents for a missing lead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.routing import BaseRoute, Route

from rf_desktop.sandbox import pipedrive_seed as seed
from rf_desktop.sandbox.pipedrive_http import (
    ApiError,
    ApiRequest,
    Handler,
    Reply,
    bad_request,
    endpoint,
    error_body,
    offset_page,
    ok,
    parse_time,
)
from rf_desktop.sandbox.pipedrive_values import FieldValueError, kind_of, v1_flat_updates

if TYPE_CHECKING:
    from rf_desktop.sandbox.pipedrive import PipedriveState
    from rf_desktop.sandbox.state import SandboxState

LEAD_SORT_FIELDS = (
    "id",
    "title",
    "owner_id",
    "creator_id",
    "was_seen",
    "expected_close_date",
    "next_activity_id",
    "add_time",
    "update_time",
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

Record = dict[str, Any]


def _v1_time(text: str) -> str:
    """v1 field timestamps: `YYYY-MM-DD HH:MM:SS` in UTC."""
    return parse_time(text).strftime("%Y-%m-%d %H:%M:%S")


# --- users --------------------------------------------------------------------------------------


def _user(pd: PipedriveState, user: Record) -> Record:
    """A user object as v1 returns it (`users` and, with the company added, `users/me`)."""
    created = _v1_time(min(p["add_time"] for p in pd.pipelines.values())) if pd.pipelines else None
    now = _v1_time(pd.now())
    return {
        "id": user["id"],
        "name": user["name"],
        "default_currency": seed.DEFAULT_CURRENCY,
        "locale": "en_US",
        "lang": 1,
        "email": user["email"],
        "phone": None,
        "activated": True,
        "last_login": now,
        "created": created or now,
        "modified": now,
        "has_created_company": user["id"] == seed.TOKEN_USER_ID,
        "access": [
            {
                "app": app,
                "admin": user["admin"],
                "permission_set_id": f"a1f0e1d2-0000-4000-8000-00000000000{n}",
            }
            for n, app in enumerate(("sales", "global"), start=1)
        ],
        "active_flag": True,
        "timezone_name": seed.TIMEZONE_NAME,
        "timezone_offset": "+01:00",
        "role_id": user["role_id"],
        "icon_url": None,
        "is_you": user["id"] == seed.TOKEN_USER_ID,
        "is_deleted": False,
    }


def users_me(pd: PipedriveState, req: ApiRequest) -> Reply:
    me = next(u for u in seed.USERS if u["id"] == seed.TOKEN_USER_ID)
    return ok({**_user(pd, me), **seed.COMPANY, "language": {"language_code": "en", "country_code": "US"}})


def users(pd: PipedriveState, req: ApiRequest) -> Reply:
    return ok([_user(pd, user) for user in seed.USERS])


# --- lead fields and labels -----------------------------------------------------------------------


def _lead_field(
    field_id: int,
    key: str,
    name: str,
    field_type: str,
    options: Any,
    *,
    custom: bool,
    add_time: str,
    order_nr: int,
) -> Record:
    return {
        "id": field_id,
        "key": key,
        "name": name,
        "order_nr": order_nr,
        "field_type": field_type,
        "add_time": add_time,
        "update_time": add_time,
        "last_updated_by_user_id": seed.TOKEN_USER_ID,
        "created_by_user_id": seed.TOKEN_USER_ID,
        "active_flag": True,
        "edit_flag": custom,
        "index_visible_flag": True,
        "details_visible_flag": True,
        "add_visible_flag": True,
        "important_flag": False,
        "bulk_edit_allowed": True,
        "searchable_flag": custom,
        "filtering_allowed": True,
        "sortable_flag": True,
        "mandatory_flag": key == "title",
        "options": options,
    }


def lead_fields(pd: PipedriveState, req: ApiRequest) -> Reply:
    """The lead schema: lead built-ins, then every deal custom field (leads share them)."""
    # the lead built-ins are as old as the company's deal built-ins
    title = pd.fields["deal"].get("title")
    since = _v1_time(title["add_time"] if title else pd.now())
    label_options = [
        {"id": label["id"], "label": label["name"], "color": label["color"]}
        for label in pd.lead_labels.values()
    ]
    items = [
        _lead_field(
            index,
            key,
            name,
            field_type,
            label_options if key == "label_ids" else None,
            custom=False,
            add_time=since,
            order_nr=index,
        )
        for index, (key, name, field_type) in enumerate(seed.LEAD_BUILTINS, start=1)
    ]
    for order_nr, field in enumerate(pd.custom_fields("deal").values(), start=len(items) + 1):
        item = _lead_field(
            field["id"],
            field["field_code"],
            field["field_name"],
            field["field_type"],
            field["options"],
            custom=True,
            add_time=_v1_time(field["add_time"]),
            order_nr=order_nr,
        )
        if field["field_type"] == "monetary":
            item["subfields"] = [
                {
                    "key": f"{field['field_code']}_currency",
                    "name": f"Currency of {field['field_name']}",
                    "field_type": "varchar",
                }
            ]
        items.append(item)
    page, additional = offset_page(items, req)
    return ok(page, additional)


def lead_labels(pd: PipedriveState, req: ApiRequest) -> Reply:
    return ok(list(pd.lead_labels.values()))


# --- leads ----------------------------------------------------------------------------------------


def _lead_values(pd: PipedriveState, body: Record) -> Record:
    """The lead changes in a v1 body, or a v1 400 saying what is wrong."""
    values: Record = {}
    problems: list[str] = []

    def take(key: str, accept: Callable[[Any], bool], expected: str, nullable: bool = False) -> None:
        if key not in body:
            return
        value = body[key]
        if (value is None and nullable) or (value is not None and accept(value)):
            values[key] = value
        else:
            problems.append(f"{key} must be {expected}, not {kind_of(value)}")

    take("title", lambda v: isinstance(v, str) and bool(v.strip()), "a non-empty string")
    take("owner_id", lambda v: _is_int(v) and v in pd.refs()["user"], "the id of a user")
    take("person_id", lambda v: _is_int(v) and v in pd.refs()["people"], "the id of an existing person", True)
    take("organization_id", _is_int, "an integer", True)
    take(
        "label_ids",
        lambda v: isinstance(v, list) and all(i in pd.lead_labels for i in v),
        "a list of lead label ids (UUIDs from /leadLabels)",
    )
    take("value", _is_lead_value, "an object {amount, currency}", True)
    take(
        "expected_close_date",
        lambda v: isinstance(v, str) and bool(_DATE.match(v)),
        "a date YYYY-MM-DD",
        True,
    )
    take("visible_to", lambda v: v in ("1", "3", "5", "7"), 'a string: "1", "3", "5" or "7"')
    take("was_seen", lambda v: isinstance(v, bool), "true or false")
    take("is_archived", lambda v: isinstance(v, bool), "true or false")
    take("origin_id", lambda v: isinstance(v, str), "a string", True)
    take("channel", _is_int, "an integer", True)
    take("channel_id", lambda v: isinstance(v, str), "a string", True)
    try:
        values["custom_fields"] = v1_flat_updates(pd.custom_fields("deal"), body, pd.refs())
    except FieldValueError as exc:
        problems.append(str(exc))
    if problems:
        raise bad_request("; ".join(problems))
    return values


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_lead_value(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and set(value) == {"amount", "currency"}
        and isinstance(value["amount"], int | float)
        and not isinstance(value["amount"], bool)
        and isinstance(value["currency"], str)
    )


def _lead(pd: PipedriveState, req: ApiRequest) -> Record:
    try:
        return pd.live_lead(req.path_params["id"])
    except KeyError:
        raise ApiError(404, error_body("requested lead not found", "Object was not found.")) from None


def add_lead(pd: PipedriveState, req: ApiRequest) -> Reply:
    body = req.body if isinstance(req.body, dict) else {}
    if body.get("title") is None:
        raise bad_request("title is required")
    values = _lead_values(pd, body)
    if values.get("person_id") is None and values.get("organization_id") is None:
        raise bad_request(
            "A lead must be linked to a person or an organization (person_id or organization_id)"
        )
    values.pop("is_archived", None)
    return ok(pd.lead_v1(pd.insert_lead(values)), status=201)


def update_lead(pd: PipedriveState, req: ApiRequest) -> Reply:
    lead = _lead(pd, req)
    values = _lead_values(pd, req.body if isinstance(req.body, dict) else {})
    if lead["is_archived"] and (set(values) - {"is_archived", "custom_fields"} or values["custom_fields"]):
        # since 2025-07-15 archived leads are read-only; only un-archiving is allowed
        raise bad_request("Archived leads cannot be edited; unarchive the lead first")
    linked = {**lead, **values}
    if linked["person_id"] is None and linked["organization_id"] is None:
        raise bad_request(
            "A lead must be linked to a person or an organization (person_id or organization_id)"
        )
    return ok(pd.lead_v1(pd.update_lead(lead["id"], values)))


def delete_lead(pd: PipedriveState, req: ApiRequest) -> Reply:
    lead = _lead(pd, req)
    lead.update(is_deleted=True, update_time=pd.now_ms())
    return ok({"id": lead["id"]})


def get_lead(pd: PipedriveState, req: ApiRequest) -> Reply:
    return ok(pd.lead_v1(_lead(pd, req)))


def _sort_leads(leads: list[Record], sort: str | None) -> list[Record]:
    """`sort=field ASC, other DESC` (v1 style); by default oldest first."""
    for clause in reversed([c.strip() for c in (sort or "").split(",") if c.strip()]):
        name, _, direction = clause.partition(" ")
        direction = direction.strip().upper() or "ASC"
        if name not in LEAD_SORT_FIELDS or direction not in ("ASC", "DESC"):
            raise bad_request(f"Invalid sort clause '{clause}'")
        # unset values sort first on ascending order, like SQL's NULLS FIRST
        leads = sorted(
            leads,
            key=lambda lead: (lead[name] is not None, "" if lead[name] is None else lead[name]),
            reverse=direction == "DESC",
        )
    return leads


def _listed_leads(pd: PipedriveState, req: ApiRequest, *, archived: bool) -> Reply:
    filters: dict[str, int] = {}
    for name in ("owner_id", "person_id", "organization_id"):
        raw = req.query.get(name)
        if raw is not None:
            if not raw.isdigit():
                raise bad_request(f"{name} must be an integer")
            filters[name] = int(raw)
    since: datetime | None = None
    if req.query.get("updated_since"):
        try:
            since = parse_time(req.query["updated_since"])
        except ValueError:
            raise bad_request(
                "updated_since must be an ISO 8601 date-time, e.g. 2025-01-01T10:20:00Z"
            ) from None
    leads = [
        lead
        for lead in pd.leads.values()
        if not lead["is_deleted"]
        and lead["is_archived"] == archived
        and all(lead[name] == value for name, value in filters.items())
        and (since is None or parse_time(lead["update_time"]) >= since)
    ]
    page, additional = offset_page(_sort_leads(leads, req.query.get("sort")), req)
    return ok([pd.lead_v1(lead) for lead in page], additional)


def list_leads(pd: PipedriveState, req: ApiRequest) -> Reply:
    return _listed_leads(pd, req, archived=False)


def list_archived_leads(pd: PipedriveState, req: ApiRequest) -> Reply:
    return _listed_leads(pd, req, archived=True)


# --- routes ---------------------------------------------------------------------------------------

TABLE: list[tuple[str, str, Handler]] = [
    ("GET", "/users/me", users_me),
    ("GET", "/users", users),
    ("GET", "/leadFields", lead_fields),
    ("GET", "/leadLabels", lead_labels),
    ("GET", "/leads/archived", list_archived_leads),
    ("GET", "/leads", list_leads),
    ("POST", "/leads", add_lead),
    ("GET", "/leads/{id}", get_lead),
    ("PATCH", "/leads/{id}", update_lead),
    ("DELETE", "/leads/{id}", delete_lead),
]


def routes(state: SandboxState) -> list[BaseRoute]:
    """Each v1 endpoint at `/api/v1/...` and at `/v1/...`; both are charged as the `/api/v1` template."""
    return [
        Route(prefix + path, endpoint(state, method, "/api/v1" + path, handler), methods=[method])
        for prefix in ("/api/v1", "/v1")
        for method, path, handler in TABLE
    ]
