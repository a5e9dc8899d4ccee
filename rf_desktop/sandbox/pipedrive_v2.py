"""The simulated Pipedrive API v2: fields, pipelines, stages, persons, deals, search and lead conversion.

Lists use keyset cursors (`additional_data.next_cursor`, null on the last page as the docs say), bodies
are validated strictly (see `pipedrive_checks`), and `updated_since`/`updated_until` take whole-second
RFC 3339 only.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from starlette.routing import BaseRoute, Route

from rf_desktop.sandbox import pipedrive_checks as check
from rf_desktop.sandbox.pipedrive_http import (
    ApiError,
    ApiRequest,
    Handler,
    Reply,
    cursor_page,
    endpoint,
    error_body,
    not_found,
    ok,
    parse_time,
    schema_error,
)
from rf_desktop.sandbox.pipedrive_values import CREATABLE_TYPES, SEARCHABLE_TYPES, display

if TYPE_CHECKING:
    from rf_desktop.sandbox.pipedrive import PipedriveState
    from rf_desktop.sandbox.state import SandboxState

V2 = "/api/v2"
SORT_FIELDS = ("id", "update_time", "add_time")
FIELD_INCLUDES = ("ui_visibility", "important_fields", "required_fields")
DEAL_INCLUDES = (
    "next_activity_id",
    "last_activity_id",
    "first_won_time",
    "products_count",
    "files_count",
    "notes_count",
    "followers_count",
    "email_messages_count",
    "activities_count",
    "done_activities_count",
    "undone_activities_count",
    "participants_count",
    "last_incoming_mail_time",
    "last_outgoing_mail_time",
    "smart_bcc_email",
    "source_lead_id",
)
PERSON_INCLUDES = (
    "next_activity_id",
    "last_activity_id",
    "open_deals_count",
    "related_open_deals_count",
    "closed_deals_count",
    "related_closed_deals_count",
    "participant_open_deals_count",
    "participant_closed_deals_count",
    "email_messages_count",
    "activities_count",
    "done_activities_count",
    "undone_activities_count",
    "files_count",
    "notes_count",
    "followers_count",
    "won_deals_count",
    "related_won_deals_count",
    "lost_deals_count",
    "related_lost_deals_count",
    "last_incoming_mail_time",
    "last_outgoing_mail_time",
    "marketing_status",
    "doi_status",
    "smart_bcc_email",
)
# these person fields exist only once Contact Sync is set up; sending them otherwise is refused
CONTACT_SYNC_FIELDS = ("postal_address", "notes", "im", "birthday", "job_title")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

Record = dict[str, Any]


# --- shared helpers -------------------------------------------------------------------------------


def _id(req: ApiRequest, name: str = "id") -> int:
    raw = req.path_params[name]
    if not raw.isdigit():
        raise schema_error(f"{name}: Expected number, received string")
    return int(raw)


def _references_checked(pd: PipedriveState, entity: str, values: Record, problems: list[str]) -> Record:
    """`values` of a person or deal whose owner and labels exist, with typed custom fields; a 400 naming
    every record that does not exist (`problems` holds those found already)."""
    check.existing(problems, "owner_id", values.get("owner_id"), pd.refs()["user"], "User")
    label_options = pd.fields[entity]["label_ids"]["options"] or []
    check.existing(problems, "label_ids", values.get("label_ids"), [o["id"] for o in label_options], "Label")
    if problems:
        raise schema_error(*problems)
    values["custom_fields"] = check.custom_values(pd, entity, values.get("custom_fields"))
    return values


def _by_id(records: dict[int, Record], req: ApiRequest, what: str, *, live: bool = False) -> Record:
    """The record the path's id names, or Pipedrive's 404 ("Deal not found"); `live` refuses a deleted one."""
    record = records.get(_id(req))
    if record is None or (live and record["is_deleted"]):
        raise not_found(f"{what} not found")
    return record


def _uuid(req: ApiRequest, name: str = "id") -> str:
    raw = req.path_params[name]
    if not _UUID.match(raw):
        raise schema_error(f"{name}: Invalid uuid")
    return raw


def _sorted_page(
    items: list[Record], req: ApiRequest, sort_fields: tuple[str, ...] = SORT_FIELDS
) -> tuple[list[Record], dict[str, Any]]:
    sort_by = req.choice_param("sort_by", sort_fields, "id")
    direction = req.choice_param("sort_direction", ("asc", "desc"), "asc")
    page, next_cursor = cursor_page(
        items, req, lambda item: (item[sort_by], item["id"]), field=sort_by, direction=direction
    )
    return page, {"next_cursor": next_cursor}


def _updated_between(items: Iterable[Record], req: ApiRequest) -> list[Record]:
    since, until = req.datetime_param("updated_since"), req.datetime_param("updated_until")
    return [
        item
        for item in items
        if (since is None or parse_time(item["update_time"]) >= since)
        and (until is None or parse_time(item["update_time"]) < until)
    ]


def _ids_filter(req: ApiRequest) -> set[int] | None:
    raw = req.list_param("ids", max_items=100)
    if not raw:
        return None
    if not all(item.isdigit() for item in raw):
        raise schema_error("ids: Expected a comma-separated list of numbers")
    return {int(item) for item in raw}


def _entity_out(
    pd: PipedriveState, entity: str, record: Record, req: ApiRequest, includes: tuple[str, ...]
) -> Record:
    """A person or deal as v2 returns it, honouring include_fields, custom_fields and the label options."""
    include = req.list_param("include_fields", includes)
    keys = req.list_param("custom_fields", max_items=15)
    option_labels = req.bool_param("include_option_labels")
    out = {key: value for key, value in record.items() if key not in ("custom_fields", "source_lead_id")}
    for name in include:
        # only source_lead_id is simulated; the other optional fields come back empty
        out[name] = record.get(name) if name == "source_lead_id" else (0 if name.endswith("_count") else None)
    if req.bool_param("include_labels"):
        options = {o["id"]: o["label"] for o in pd.fields[entity]["label_ids"]["options"] or []}
        out["labels"] = [{"id": label_id, "label": options.get(label_id)} for label_id in record["label_ids"]]
    out["custom_fields"] = pd.custom_values_v2(entity, record, keys=keys or None, option_labels=option_labels)
    return out


# --- fields ---------------------------------------------------------------------------------------


def _field_out(field: Record, include: Iterable[str] = ()) -> Record:
    """A field as the v2 Fields API returns it (`description` only when the field has one)."""
    keys = (
        "field_name",
        "field_code",
        "description",
        "field_type",
        "options",
        "subfields",
        "is_custom_field",
        "is_optional_response_field",
    )
    out = {key: field[key] for key in keys if not (key == "description" and field[key] is None)}
    extras = {
        "ui_visibility": {"add_visible_flag": True, "details_visible_flag": True},
        "important_fields": {"enabled": False, "stage_ids": []},
        "required_fields": {"enabled": False},
    }
    out.update({name: extras[name] for name in include})
    return out


def _field(pd: PipedriveState, entity: str, req: ApiRequest) -> Record:
    field = pd.fields[entity].get(req.path_params["field_code"])
    if field is None:
        raise not_found("Field not found")
    return field


def list_fields(entity: str, pd: PipedriveState, req: ApiRequest) -> Reply:
    include = req.list_param("include_fields", FIELD_INCLUDES)
    page, next_cursor = cursor_page(list(pd.fields[entity].values()), req, lambda f: (f["id"], f["id"]))
    return ok([_field_out(field, include) for field in page], {"next_cursor": next_cursor})


def get_field(entity: str, pd: PipedriveState, req: ApiRequest) -> Reply:
    return ok(_field_out(_field(pd, entity, req), req.list_param("include_fields", FIELD_INCLUDES)))


def add_field(entity: str, pd: PipedriveState, req: ApiRequest) -> Reply:
    checks = {
        "field_name": check.non_empty_string,
        "field_type": check.one_of(*sorted(CREATABLE_TYPES)),
        "options": check.option_labels,
        "description": check.nullable(check.string),
        "ui_visibility": check.json_object,
        "important_fields": check.json_object,
        "required_fields": check.json_object,
    }
    values = check.validate(req.json_object(), checks, required=("field_name", "field_type"))
    if len(values["field_name"]) > 255:
        raise schema_error("field_name: String must contain at most 255 character(s)")
    has_options = values["field_type"] in ("enum", "set")
    if has_options and not values.get("options"):
        raise schema_error("options: Required for enum and set fields")
    if not has_options and "options" in values:
        raise schema_error("options: Only enum and set fields have options")
    field = pd.add_field(entity, values["field_name"], values["field_type"], values.get("options"))
    field["description"] = values.get("description")
    return ok(_field_out(field))


def delete_field(entity: str, pd: PipedriveState, req: ApiRequest) -> Reply:
    field = _field(pd, entity, req)
    if not field["is_custom_field"]:
        raise ApiError(400, error_body("Built-in fields cannot be deleted"))
    pd.delete_field(entity, field["field_code"])
    return ok(_field_out(field))


# --- pipelines and stages -------------------------------------------------------------------------


def list_pipelines(pd: PipedriveState, req: ApiRequest) -> Reply:
    page, additional = _sorted_page(list(pd.pipelines.values()), req)
    return ok(page, additional)


def get_pipeline(pd: PipedriveState, req: ApiRequest) -> Reply:
    return ok(_by_id(pd.pipelines, req, "Pipeline"))


def list_stages(pd: PipedriveState, req: ApiRequest) -> Reply:
    pipeline_id = req.int_param("pipeline_id")
    stages = [s for s in pd.stages.values() if pipeline_id is None or s["pipeline_id"] == pipeline_id]
    page, additional = _sorted_page(stages, req, (*SORT_FIELDS, "order_nr"))
    return ok(page, additional)


def get_stage(pd: PipedriveState, req: ApiRequest) -> Reply:
    return ok(_by_id(pd.stages, req, "Stage"))


# --- persons --------------------------------------------------------------------------------------

PERSON_CHECKS: dict[str, check.Check] = {
    "name": check.non_empty_string,
    "first_name": check.string,
    "last_name": check.string,
    "owner_id": check.integer,
    "org_id": check.nullable(check.integer),
    "add_time": check.timestamp,
    "emails": check.contacts,
    "phones": check.contacts,
    "visible_to": check.visible_to,
    "label_ids": check.int_list,
    "marketing_status": check.one_of("no_consent", "unsubscribed", "subscribed", "archived"),
    "custom_fields": check.json_object,
}


def _person_values(pd: PipedriveState, body: Record, *, creating: bool) -> Record:
    refused = [key for key in CONTACT_SYNC_FIELDS if key in body]
    if refused:
        raise ApiError(403, error_body(f"Fields {', '.join(refused)} need Contact Sync, which is not set up"))
    checks = PERSON_CHECKS if creating else {k: v for k, v in PERSON_CHECKS.items() if k != "add_time"}
    values = check.validate(body, checks)
    if creating and not values.get("name") and not (values.get("first_name") and values.get("last_name")):
        raise schema_error("name: Required (or both first_name and last_name)")
    return _references_checked(pd, "person", values, [])


def list_persons(pd: PipedriveState, req: ApiRequest) -> Reply:
    ids = _ids_filter(req)
    owner_id, org_id, deal_id = req.int_param("owner_id"), req.int_param("org_id"), req.int_param("deal_id")
    deal_person = pd.deals[deal_id]["person_id"] if deal_id in pd.deals else None
    persons = [
        p
        for p in _updated_between(pd.persons.values(), req)
        if not p["is_deleted"]
        and (ids is None or p["id"] in ids)
        and (owner_id is None or p["owner_id"] == owner_id)
        and (org_id is None or p["org_id"] == org_id)
        and (deal_id is None or p["id"] == deal_person)
    ]
    page, additional = _sorted_page(persons, req)
    return ok([_entity_out(pd, "person", p, req, PERSON_INCLUDES) for p in page], additional)


def get_person(pd: PipedriveState, req: ApiRequest) -> Reply:
    person = _by_id(pd.persons, req, "Person")
    return ok(_entity_out(pd, "person", person, req, PERSON_INCLUDES))


def add_person(pd: PipedriveState, req: ApiRequest) -> Reply:
    person = pd.insert_person(_person_values(pd, req.json_object(), creating=True))
    return ok(_entity_out(pd, "person", person, req, PERSON_INCLUDES))


def update_person(pd: PipedriveState, req: ApiRequest) -> Reply:
    person = _by_id(pd.persons, req, "Person", live=True)
    values = _person_values(pd, req.json_object(), creating=False)
    return ok(_entity_out(pd, "person", pd.update_person(person["id"], values), req, PERSON_INCLUDES))


def delete_person(pd: PipedriveState, req: ApiRequest) -> Reply:
    person = _by_id(pd.persons, req, "Person", live=True)
    person.update(is_deleted=True, update_time=pd.now())
    return ok({"id": person["id"]})


# --- deals ----------------------------------------------------------------------------------------

DEAL_CHECKS: dict[str, check.Check] = {
    "title": check.non_empty_string,
    "owner_id": check.integer,
    "person_id": check.nullable(check.integer),
    "org_id": check.nullable(check.integer),
    "pipeline_id": check.integer,
    "stage_id": check.integer,
    "value": check.number,
    "currency": check.currency,
    "is_deleted": check.boolean,
    "is_archived": check.boolean,
    "archive_time": check.nullable(check.timestamp),
    "status": check.one_of("open", "won", "lost"),
    "probability": check.nullable(check.number),
    "lost_reason": check.nullable(check.string),
    "visible_to": check.visible_to,
    "close_time": check.nullable(check.timestamp),
    "won_time": check.timestamp,
    "lost_time": check.timestamp,
    "expected_close_date": check.nullable(check.date),
    "label_ids": check.int_list,
    "custom_fields": check.json_object,
}


def _deal_values(pd: PipedriveState, body: Record, *, creating: bool) -> Record:
    values = check.validate(body, DEAL_CHECKS, required=("title",) if creating else ())
    problems: list[str] = []
    live_persons = [pid for pid, p in pd.persons.items() if not p["is_deleted"]]
    check.existing(problems, "person_id", values.get("person_id"), live_persons, "Person")
    check.existing(problems, "pipeline_id", values.get("pipeline_id"), pd.pipelines, "Pipeline")
    check.existing(problems, "stage_id", values.get("stage_id"), pd.stages, "Stage")
    return _references_checked(pd, "deal", values, problems)


def _deal_out(pd: PipedriveState, deal: Record, req: ApiRequest) -> Record:
    return _entity_out(pd, "deal", deal, req, DEAL_INCLUDES)


def list_deals(pd: PipedriveState, req: ApiRequest) -> Reply:
    ids = _ids_filter(req)
    statuses = set(req.list_param("status", ("open", "won", "lost", "deleted")))
    wanted = {
        name: req.int_param(name) for name in ("owner_id", "person_id", "org_id", "pipeline_id", "stage_id")
    }

    def listed(deal: Record) -> bool:
        if deal["is_archived"] or (ids is not None and deal["id"] not in ids):
            return False
        if any(value is not None and deal[name] != value for name, value in wanted.items()):
            return False
        if deal["is_deleted"]:
            return "deleted" in statuses
        return not statuses or deal["status"] in statuses

    deals = [deal for deal in _updated_between(pd.deals.values(), req) if listed(deal)]
    page, additional = _sorted_page(deals, req)
    return ok([_deal_out(pd, deal, req) for deal in page], additional)


def get_deal(pd: PipedriveState, req: ApiRequest) -> Reply:
    return ok(_deal_out(pd, _by_id(pd.deals, req, "Deal"), req))


def add_deal(pd: PipedriveState, req: ApiRequest) -> Reply:
    return ok(_deal_out(pd, pd.insert_deal(_deal_values(pd, req.json_object(), creating=True)), req))


def update_deal(pd: PipedriveState, req: ApiRequest) -> Reply:
    deal = _by_id(pd.deals, req, "Deal", live=True)
    values = _deal_values(pd, req.json_object(), creating=False)
    return ok(_deal_out(pd, pd.update_deal(deal["id"], values), req))


def delete_deal(pd: PipedriveState, req: ApiRequest) -> Reply:
    deal = _by_id(pd.deals, req, "Deal", live=True)
    deal.update(is_deleted=True, update_time=pd.now())
    return ok({"id": deal["id"]})


# --- search ---------------------------------------------------------------------------------------


def _score(texts: Iterable[str], term: str, exact: bool) -> float:
    """How well the best of `texts` matches: 1 for the whole text (any case), less for a part of it."""
    best = 0.0
    needle = term.casefold()
    for text in texts:
        haystack = text.casefold()
        if haystack == needle:
            return 1.0
        if not exact and haystack.startswith(needle):
            best = max(best, 0.7)
        elif not exact and needle in haystack:
            best = max(best, 0.4)
    return best


def _search_terms(req: ApiRequest, fields: tuple[str, ...]) -> tuple[str, bool, list[str]]:
    term = req.query.get("term")
    exact = req.bool_param("exact_match")
    if term is None:
        raise schema_error("term: Required")
    minimum = 1 if exact else 2
    if len(term.strip()) < minimum:
        raise schema_error(f"term: String must contain at least {minimum} character(s)")
    return term.strip(), exact, req.list_param("fields", fields) or list(fields)


def _custom_texts(pd: PipedriveState, entity: str, record: Record) -> list[str]:
    fields = pd.custom_fields(entity)
    return [
        display(fields[code], value)
        for code, value in record["custom_fields"].items()
        if code in fields and fields[code]["field_type"] in SEARCHABLE_TYPES
    ]


def _search_page(hits: list[tuple[float, Record]], req: ApiRequest) -> Reply:
    rows = [{"result_score": score, "item": item} for score, item in hits]
    page, next_cursor = cursor_page(
        rows, req, lambda row: (-row["result_score"], row["item"]["id"]), field="result_score"
    )
    return ok({"items": page}, {"next_cursor": next_cursor})


def _person_ref(pd: PipedriveState, person_id: int | None) -> Record | None:
    person = pd.persons.get(person_id) if person_id is not None else None
    return {"id": person["id"], "name": person["name"]} if person else None


def search_persons(pd: PipedriveState, req: ApiRequest) -> Reply:
    term, exact, fields = _search_terms(req, ("custom_fields", "email", "notes", "phone", "name"))
    org_id = req.int_param("organization_id")
    hits = []
    for person in pd.persons.values():
        if person["is_deleted"] or (org_id is not None and person["org_id"] != org_id):
            continue
        texts = {
            "name": [person["name"]],
            "email": [e["value"] for e in person["emails"]],
            "phone": [p["value"] for p in person["phones"]],
            "custom_fields": _custom_texts(pd, "person", person),
        }
        score = max(_score(texts.get(name, []), term, exact) for name in fields)
        if score:
            matched = [
                t for t in texts["custom_fields"] if "custom_fields" in fields and _score([t], term, exact)
            ]
            hits.append(
                (
                    score,
                    {
                        "id": person["id"],
                        "type": "person",
                        "name": person["name"],
                        "phones": texts["phone"],
                        "emails": texts["email"],
                        "visible_to": person["visible_to"],
                        "owner": {"id": person["owner_id"]},
                        "organization": {"id": person["org_id"], "name": None} if person["org_id"] else None,
                        "custom_fields": matched,
                        "notes": [],
                    },
                )
            )
    return _search_page(hits, req)


def search_deals(pd: PipedriveState, req: ApiRequest) -> Reply:
    term, exact, fields = _search_terms(req, ("custom_fields", "notes", "title"))
    person_id, org_id = req.int_param("person_id"), req.int_param("organization_id")
    status = req.query.get("status")
    if status is not None:
        req.choice_param("status", ("open", "won", "lost"), "open")
    hits = []
    for deal in pd.deals.values():
        if deal["is_deleted"] or (status and deal["status"] != status):
            continue
        if (person_id is not None and deal["person_id"] != person_id) or (
            org_id is not None and deal["org_id"] != org_id
        ):
            continue
        texts = {"title": [deal["title"]], "custom_fields": _custom_texts(pd, "deal", deal)}
        score = max(_score(texts.get(name, []), term, exact) for name in fields)
        if score:
            stage = pd.stages[deal["stage_id"]]
            hits.append(
                (
                    score,
                    {
                        "id": deal["id"],
                        "type": "deal",
                        "title": deal["title"],
                        "value": deal["value"],
                        "currency": deal["currency"],
                        "status": deal["status"],
                        "visible_to": deal["visible_to"],
                        "owner": {"id": deal["owner_id"]},
                        "stage": {"id": stage["id"], "name": stage["name"]},
                        "person": _person_ref(pd, deal["person_id"]),
                        "organization": {"id": deal["org_id"], "name": None} if deal["org_id"] else None,
                        "custom_fields": [t for t in texts["custom_fields"] if _score([t], term, exact)],
                        "notes": [],
                        "is_archived": deal["is_archived"],
                    },
                )
            )
    return _search_page(hits, req)


def search_leads(pd: PipedriveState, req: ApiRequest) -> Reply:
    term, exact, fields = _search_terms(req, ("custom_fields", "notes", "title"))
    person_id, org_id = req.int_param("person_id"), req.int_param("organization_id")
    hits = []
    for lead in pd.leads.values():
        if (
            lead["is_deleted"]
            or (person_id is not None and lead["person_id"] != person_id)
            or (org_id is not None and lead["organization_id"] != org_id)
        ):
            continue
        texts = {"title": [lead["title"]], "custom_fields": _custom_texts(pd, "deal", lead)}
        score = max(_score(texts.get(name, []), term, exact) for name in fields)
        if score:
            person = pd.persons.get(lead["person_id"]) if lead["person_id"] else None
            value = lead["value"] or {}
            hits.append(
                (
                    score,
                    {
                        "id": lead["id"],
                        "type": "lead",
                        "title": lead["title"],
                        "owner": {"id": lead["owner_id"]},
                        "person": _person_ref(pd, lead["person_id"]),
                        "organization": {"id": lead["organization_id"], "name": None}
                        if lead["organization_id"]
                        else None,
                        "phones": [p["value"] for p in person["phones"]] if person else [],
                        "emails": [e["value"] for e in person["emails"]] if person else [],
                        "custom_fields": [t for t in texts["custom_fields"] if _score([t], term, exact)],
                        "notes": [],
                        "value": value.get("amount"),
                        "currency": value.get("currency"),
                        "visible_to": int(lead["visible_to"]),
                        "is_archived": lead["is_archived"],
                    },
                )
            )
    return _search_page(hits, req)


# --- lead conversion ------------------------------------------------------------------------------


def convert_lead(pd: PipedriveState, req: ApiRequest) -> Reply:
    lead_id = _uuid(req)
    values = check.validate(req.json_object(), {"stage_id": check.integer, "pipeline_id": check.integer})
    problems: list[str] = []
    check.existing(problems, "stage_id", values.get("stage_id"), pd.stages, "Stage")
    check.existing(problems, "pipeline_id", values.get("pipeline_id"), pd.pipelines, "Pipeline")
    if problems:
        raise schema_error(*problems)
    try:
        job = pd.start_conversion(lead_id, values.get("stage_id"), values.get("pipeline_id"))
    except KeyError:
        raise not_found() from None
    return ok({"conversion_id": job["conversion_id"]})


def conversion_status(pd: PipedriveState, req: ApiRequest) -> Reply:
    lead_id, conversion_id = _uuid(req), _uuid(req, "conversion_id")
    conversion = pd.conversions.get(conversion_id)
    if conversion is None or conversion["lead_id"] != lead_id:
        raise not_found()
    return ok(pd.advance_conversion(conversion_id))


# --- routes ---------------------------------------------------------------------------------------


def _table() -> list[tuple[str, str, Handler]]:
    table: list[tuple[str, str, Handler]] = []
    for entity, path in (("person", "personFields"), ("deal", "dealFields")):
        table += [
            ("GET", f"/{path}", functools.partial(list_fields, entity)),
            ("POST", f"/{path}", functools.partial(add_field, entity)),
            ("GET", f"/{path}/{{field_code}}", functools.partial(get_field, entity)),
            ("DELETE", f"/{path}/{{field_code}}", functools.partial(delete_field, entity)),
        ]
    # search paths come before /{id} so that "search" is not taken for an id
    return [
        *table,
        ("GET", "/pipelines", list_pipelines),
        ("GET", "/pipelines/{id}", get_pipeline),
        ("GET", "/stages", list_stages),
        ("GET", "/stages/{id}", get_stage),
        ("GET", "/persons/search", search_persons),
        ("GET", "/persons", list_persons),
        ("POST", "/persons", add_person),
        ("GET", "/persons/{id}", get_person),
        ("PATCH", "/persons/{id}", update_person),
        ("DELETE", "/persons/{id}", delete_person),
        ("GET", "/deals/search", search_deals),
        ("GET", "/deals", list_deals),
        ("POST", "/deals", add_deal),
        ("GET", "/deals/{id}", get_deal),
        ("PATCH", "/deals/{id}", update_deal),
        ("DELETE", "/deals/{id}", delete_deal),
        ("GET", "/leads/search", search_leads),
        ("POST", "/leads/{id}/convert/deal", convert_lead),
        ("GET", "/leads/{id}/convert/status/{conversion_id}", conversion_status),
    ]


def routes(state: SandboxState) -> list[BaseRoute]:
    return [
        Route(V2 + path, endpoint(state, method, V2 + path, handler), methods=[method])
        for method, path, handler in _table()
    ]
