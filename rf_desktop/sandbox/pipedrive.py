"""The simulated Pipedrive: one company's persons, leads, deals, fields, pipelines and stages, its rate
limits, and the HTTP surface under `/pd` (v1 and v2 API, plus small "web app" pages).

`PipedriveState` holds the data and does what both the API and a salesperson in Pipedrive's web app do
(create, convert a lead, move a deal, win it). Callers hold the sandbox lock around every use.
Records are stored in the shape the API returns (v2 persons and deals, v1 leads), except custom field
values, which are kept in the canonical v2 shape (see `pipedrive_values`) and rendered per API version.
"""

from __future__ import annotations

import copy
import secrets
import uuid
from typing import TYPE_CHECKING, Any

from starlette.routing import BaseRoute

from rf_desktop.sandbox import pipedrive_seed as seed
from rf_desktop.sandbox import pipedrive_v1, pipedrive_v2, pipedrive_web
from rf_desktop.sandbox.clock import Clock
from rf_desktop.sandbox.limits import PipedriveLimiter
from rf_desktop.sandbox.pipedrive_values import render_v1_flat, render_v2

if TYPE_CHECKING:
    from rf_desktop.sandbox.state import SandboxState

DEFAULT_TOKEN = "pd-sandbox-token"  # noqa: S105 (the sandbox's well-known demo token)
ENTITIES = ("person", "deal")
DEAL_STATUSES = ("open", "won", "lost")


class PipedriveState:
    """Everything one simulated Pipedrive company holds. Not thread-safe: hold the sandbox lock."""

    def __init__(self, clock: Clock, *, plan: str = "growth", seats: int = 1) -> None:
        self.clock = clock
        self._plan_at_start, self._seats_at_start = plan, seats
        self.reset()

    # --- lifecycle ----------------------------------------------------------------------------

    def reset(self) -> None:
        """Empty everything: records, fields, pipelines, usage. The token, the plan and the limits go back
        to what the company started with."""
        self.token = DEFAULT_TOKEN
        self.limiter = PipedriveLimiter(self.clock, plan=self._plan_at_start, seats=self._seats_at_start)
        self.persons: dict[int, dict[str, Any]] = {}
        self.leads: dict[str, dict[str, Any]] = {}
        self.deals: dict[int, dict[str, Any]] = {}
        self.fields: dict[str, dict[str, dict[str, Any]]] = {entity: {} for entity in ENTITIES}
        self.pipelines: dict[int, dict[str, Any]] = {}
        self.stages: dict[int, dict[str, Any]] = {}
        self.lead_labels: dict[str, dict[str, Any]] = {}
        self.conversions: dict[str, dict[str, Any]] = {}
        # "immediate": `POST /leads/{id}/convert/deal` converts before it answers; "async": it only starts a
        # job, which runs on the next status read and completes on the one after (docs/sandbox.md)
        self.conversion_mode = "immediate"
        self.next_ids = {"person": 1, "deal": 1, "field": 100, "option": 1, "pipeline": 1, "stage": 1}

    def _next(self, kind: str) -> int:
        value = self.next_ids[kind]
        self.next_ids[kind] = value + 1
        return value

    def seed(self, with_referral_fields: bool = True) -> None:
        """The default company: pipelines and stages, built-in and custom fields, lead labels."""
        now = self.now()
        for order, (name, stages) in enumerate(seed.PIPELINES, start=1):
            pipeline_id = self._next("pipeline")
            self.pipelines[pipeline_id] = {
                "id": pipeline_id,
                "name": name,
                "order_nr": order,
                "is_deleted": False,
                "is_deal_probability_enabled": True,
                "add_time": now,
                "update_time": now,
            }
            for stage_order, (stage_name, probability) in enumerate(stages, start=1):
                stage_id = self._next("stage")
                self.stages[stage_id] = {
                    "id": stage_id,
                    "order_nr": stage_order,
                    "name": stage_name,
                    "is_deleted": False,
                    "deal_probability": probability,
                    "pipeline_id": pipeline_id,
                    "is_deal_rot_enabled": False,
                    "days_to_rotten": None,
                    "add_time": now,
                    "update_time": now,
                }
        for entity in ENTITIES:
            for code, name, field_type, options, subfields in seed.builtins_for(entity):
                self._store_field(entity, code, name, field_type, options, subfields, custom=False)
            for name, field_type, labels in seed.custom_fields_for(entity, with_referral_fields):
                self.add_field(entity, name, field_type, labels, code=seed.custom_field_code(entity, name))
        lead_time = self.now_ms()
        for name, color in seed.LEAD_LABELS:
            label_id = seed.lead_label_id(name)
            self.lead_labels[label_id] = {
                "id": label_id,
                "name": name,
                "color": color,
                "add_time": lead_time,
                "update_time": lead_time,
            }

    # --- time ---------------------------------------------------------------------------------

    def now(self) -> str:
        """v2 timestamps: whole-second RFC 3339."""
        return self.clock.iso()

    def now_ms(self) -> str:
        """v1 lead timestamps: ISO 8601 with milliseconds."""
        return self.clock.now().isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def today(self) -> str:
        return self.clock.now().date().isoformat()

    # --- fields -------------------------------------------------------------------------------

    def _store_field(
        self,
        entity: str,
        code: str,
        name: str,
        field_type: str,
        options: Any,
        subfields: Any,
        *,
        custom: bool,
    ) -> dict[str, Any]:
        now = self.now()
        field = {
            "id": self._next("field"),
            "field_name": name,
            "field_code": code,
            "field_type": field_type,
            "description": None,
            "options": copy.deepcopy(options),
            "subfields": copy.deepcopy(subfields),
            "is_custom_field": custom,
            "is_optional_response_field": False,
            "add_time": now,
            "update_time": now,
        }
        self.fields[entity][code] = field
        return field

    def add_field(
        self,
        entity: str,
        name: str,
        field_type: str,
        option_labels: list[str] | None = None,
        *,
        code: str | None = None,
    ) -> dict[str, Any]:
        """A new custom field; enum/set options get company-wide integer ids."""
        options = None
        if field_type in ("enum", "set"):
            options = [{"id": self._next("option"), "label": label} for label in option_labels or []]
        subfields = None
        if field_type == "monetary":
            subfields = [
                {"field_code": "value", "field_name": f"Amount of {name}", "field_type": "double"},
                {"field_code": "currency", "field_name": f"Currency of {name}", "field_type": "varchar"},
            ]
        return self._store_field(
            entity, code or secrets.token_hex(20), name, field_type, options, subfields, custom=True
        )

    def custom_fields(self, entity: str) -> dict[str, dict[str, Any]]:
        return {code: field for code, field in self.fields[entity].items() if field["is_custom_field"]}

    def delete_field(self, entity: str, field_code: str) -> None:
        """What deleting a custom field in Settings does: the field and its values are gone."""
        field = self.fields[entity].get(field_code)
        if field is None or not field["is_custom_field"]:
            raise KeyError(f"{entity} field {field_code} does not exist or is not a custom field")
        del self.fields[entity][field_code]
        records = (
            self.persons.values() if entity == "person" else [*self.deals.values(), *self.leads.values()]
        )
        for record in records:
            record["custom_fields"].pop(field_code, None)

    def refs(self) -> dict[str, set[int]]:
        """Existing ids that `user` and `people` custom fields may point at."""
        people = {pid for pid, person in self.persons.items() if not person["is_deleted"]}
        return {"user": {user["id"] for user in seed.USERS}, "people": people}

    # --- persons ------------------------------------------------------------------------------

    def insert_person(self, values: dict[str, Any]) -> dict[str, Any]:
        """A new person from validated v2 values."""
        now = values.pop("add_time", None) or self.now()
        person_id = self._next("person")
        person: dict[str, Any] = {
            "id": person_id,
            "name": "",
            "first_name": None,
            "last_name": None,
            "owner_id": seed.TOKEN_USER_ID,
            "org_id": None,
            "add_time": now,
            "update_time": now,
            "emails": [],
            "phones": [],
            "is_deleted": False,
            "visible_to": 3,
            "label_ids": [],
            "picture_id": None,
            "custom_fields": {},
        }
        self.persons[person_id] = person
        return self.update_person(person_id, values)

    def update_person(self, person_id: int, values: dict[str, Any]) -> dict[str, Any]:
        person = self.persons[person_id]
        custom = values.pop("custom_fields", None) or {}
        person.update(values)
        if "name" in values:
            first, _, last = values["name"].partition(" ")
            person["first_name"], person["last_name"] = first, last or None
        elif "first_name" in values or "last_name" in values:
            person["name"] = " ".join(part for part in (person["first_name"], person["last_name"]) if part)
        _merge_custom(person["custom_fields"], custom)
        person["update_time"] = self.now()
        return person

    # --- deals --------------------------------------------------------------------------------

    def first_stage(self, pipeline_id: int | None = None) -> dict[str, Any]:
        """The first stage of a pipeline, by default of the first pipeline (new deals land there)."""
        if pipeline_id is None:
            pipeline_id = min(self.pipelines.values(), key=lambda p: (p["order_nr"], p["id"]))["id"]
        stages = [s for s in self.stages.values() if s["pipeline_id"] == pipeline_id and not s["is_deleted"]]
        return min(stages, key=lambda s: (s["order_nr"], s["id"]))

    def insert_deal(self, values: dict[str, Any]) -> dict[str, Any]:
        """A new deal from validated v2 values (stage, else pipeline, else the default pipeline)."""
        now = self.now()
        deal_id = self._next("deal")
        stage = self._stage_for(values.pop("stage_id", None), values.pop("pipeline_id", None))
        deal: dict[str, Any] = {
            "id": deal_id,
            "title": "",
            "creator_user_id": seed.TOKEN_USER_ID,
            "owner_id": seed.TOKEN_USER_ID,
            "value": 0,
            "person_id": None,
            "org_id": None,
            "stage_id": stage["id"],
            "pipeline_id": stage["pipeline_id"],
            "currency": seed.DEFAULT_CURRENCY,
            "archive_time": None,
            "add_time": now,
            "update_time": now,
            "stage_change_time": None,
            "status": "open",
            "is_archived": False,
            "is_deleted": False,
            "probability": None,
            "lost_reason": None,
            "visible_to": 3,
            "close_time": None,
            "won_time": None,
            "lost_time": None,
            "local_won_date": None,
            "local_lost_date": None,
            "local_close_date": None,
            "expected_close_date": None,
            "label_ids": [],
            "origin": "API",
            "origin_id": None,
            "channel": None,
            "channel_id": None,
            "source_lead_id": None,
            "arr": None,
            "mrr": None,
            "acv": None,
            "custom_fields": {},
        }
        self.deals[deal_id] = deal
        return self.update_deal(deal_id, values)

    def _stage_for(self, stage_id: int | None, pipeline_id: int | None) -> dict[str, Any]:
        if stage_id is not None:
            return self.stages[stage_id]
        return self.first_stage(pipeline_id)

    def update_deal(self, deal_id: int, values: dict[str, Any]) -> dict[str, Any]:
        """Apply validated v2 values. The pipeline follows the stage; a pipeline alone moves the deal to
        that pipeline's first stage (unless it is already there); `status` goes through `set_deal_status`."""
        deal = self.deals[deal_id]
        stage_id, pipeline_id = values.pop("stage_id", None), values.pop("pipeline_id", None)
        if stage_id is None and pipeline_id is not None and pipeline_id != deal["pipeline_id"]:
            stage_id = self.first_stage(pipeline_id)["id"]
        if stage_id is not None and stage_id != deal["stage_id"]:
            self.move_deal(deal_id, stage_id)
        status = values.pop("status", None)
        _merge_custom(deal["custom_fields"], values.pop("custom_fields", None) or {})
        deal.update(values)
        if status is not None and status != deal["status"]:
            self.set_deal_status(deal_id, status)
        deal["update_time"] = self.now()
        return deal

    def deal(self, deal_id: int) -> dict[str, Any]:
        """The stored deal, or KeyError with a sentence saying which one is missing."""
        if deal_id not in self.deals:
            raise KeyError(f"deal {deal_id} does not exist")
        return self.deals[deal_id]

    def move_deal(self, deal_id: int, stage_id: int) -> dict[str, Any]:
        """Drag the deal to another stage (of any pipeline): the pipeline follows the stage."""
        deal = self.deal(deal_id)
        stage = self.stages.get(stage_id)
        if stage is None or stage["is_deleted"]:
            raise KeyError(f"stage {stage_id} does not exist")
        now = self.now()
        deal.update(
            stage_id=stage_id, pipeline_id=stage["pipeline_id"], stage_change_time=now, update_time=now
        )
        return deal

    def set_deal_status(self, deal_id: int, status: str) -> dict[str, Any]:
        """Mark the deal won, lost, or open again, with the times Pipedrive records."""
        if status not in DEAL_STATUSES:
            raise ValueError(f"a deal's status is one of {', '.join(DEAL_STATUSES)}, not {status!r}")
        deal = self.deal(deal_id)
        now, today = self.now(), self.today()
        closed = status != "open"
        deal.update(
            status=status,
            close_time=now if closed else None,
            local_close_date=today if closed else None,
            won_time=now if status == "won" else None,
            local_won_date=today if status == "won" else None,
            lost_time=now if status == "lost" else None,
            local_lost_date=today if status == "lost" else None,
            update_time=now,
        )
        if status != "lost":
            deal["lost_reason"] = None
        return deal

    # --- leads --------------------------------------------------------------------------------

    def insert_lead(self, values: dict[str, Any]) -> dict[str, Any]:
        """A new lead from validated v1 values, as `POST /v1/leads` creates it."""
        now = self.now_ms()
        lead_id = str(uuid.uuid4())
        lead: dict[str, Any] = {
            "id": lead_id,
            "title": "",
            "owner_id": seed.TOKEN_USER_ID,
            "creator_id": seed.TOKEN_USER_ID,
            "label_ids": [],
            "person_id": None,
            "organization_id": None,
            "source_name": "API",
            "origin": "API",
            "origin_id": None,
            "channel": None,
            "channel_id": None,
            "source_deal_id": None,
            "is_archived": False,
            "was_seen": False,
            "value": None,
            "expected_close_date": None,
            "next_activity_id": None,
            "add_time": now,
            "update_time": now,
            "visible_to": "3",
            "cc_email": f"{seed.COMPANY['company_domain']}+{seed.COMPANY['company_id']}+lead{lead_id[:8]}"
            "@sandbox.pipedrivemail.com",
            "custom_fields": {},
            "is_deleted": False,
        }
        self.leads[lead_id] = lead
        self.update_lead(lead_id, values)
        lead["update_time"] = now
        return lead

    def update_lead(self, lead_id: str, values: dict[str, Any]) -> dict[str, Any]:
        lead = self.leads[lead_id]
        _merge_custom(lead["custom_fields"], values.pop("custom_fields", None) or {})
        lead.update(values)
        lead["update_time"] = self.now_ms()
        return lead

    def live_lead(self, lead_id: str) -> dict[str, Any]:
        """A lead that is neither deleted nor converted, or KeyError."""
        lead = self.leads.get(lead_id)
        if lead is None or lead["is_deleted"]:
            raise KeyError(f"lead {lead_id} does not exist")
        return lead

    def convert_lead(
        self, lead_id: str, stage_id: int | None = None, pipeline_id: int | None = None
    ) -> dict[str, Any]:
        """Convert a lead to a deal, as the web app and `POST /api/v2/leads/{id}/convert/deal` do: the lead
        is marked deleted; the new deal keeps its title, person, organization, owner, value and custom
        field values (leads share the deal fields), and remembers the lead in `source_lead_id`."""
        lead = self.live_lead(lead_id)
        value = lead["value"] or {"amount": 0, "currency": seed.DEFAULT_CURRENCY}
        deal = self.insert_deal(
            {
                "title": lead["title"],
                "person_id": lead["person_id"],
                "org_id": lead["organization_id"],
                "owner_id": lead["owner_id"],
                "value": value["amount"],
                "currency": value["currency"],
                "expected_close_date": lead["expected_close_date"],
                "visible_to": int(lead["visible_to"]),
                "stage_id": stage_id,
                "pipeline_id": pipeline_id,
                "custom_fields": copy.deepcopy(lead["custom_fields"]),
            }
        )
        deal.update(
            source_lead_id=lead_id,
            origin=lead["origin"],
            origin_id=lead["origin_id"],
            channel=lead["channel"],
            channel_id=lead["channel_id"],
        )
        lead.update(is_deleted=True, update_time=self.now_ms())
        return deal

    def start_conversion(
        self, lead_id: str, stage_id: int | None = None, pipeline_id: int | None = None
    ) -> dict[str, Any]:
        """The conversion job the API starts for a live lead (KeyError when there is none): done at once,
        or, in the "async" mode, left to `advance_conversion`."""
        self.live_lead(lead_id)
        job: dict[str, Any] = {"lead_id": lead_id, "conversion_id": str(uuid.uuid4()), "status": "not_started"}
        if self.conversion_mode == "async":
            job["target"] = {"stage_id": stage_id, "pipeline_id": pipeline_id}
        else:
            job.update(status="completed", deal_id=self.convert_lead(lead_id, stage_id, pipeline_id)["id"])
        self.conversions[job["conversion_id"]] = job
        return job

    def advance_conversion(self, conversion_id: str) -> dict[str, Any]:
        """A status read moves an async job on: not started -> running -> completed (or failed, when the
        lead was converted or deleted meanwhile). Returns what the API shows of it."""
        job = self.conversions[conversion_id]
        if job["status"] == "not_started":
            job["status"] = "running"
        elif job["status"] == "running":
            target = job.pop("target")
            try:
                deal = self.convert_lead(job["lead_id"], target["stage_id"], target["pipeline_id"])
            except KeyError:
                job["status"] = "failed"
            else:
                job.update(status="completed", deal_id=deal["id"])
        return {key: value for key, value in job.items() if key != "target"}

    # --- plan and budget ----------------------------------------------------------------------

    def set_plan(self, plan: str, seats: int) -> None:
        self.limiter.set_plan(plan, seats)

    def set_daily_remaining(self, tokens: int) -> None:
        self.limiter.set_daily_remaining(tokens)

    # --- rendering ----------------------------------------------------------------------------

    def custom_values_v2(
        self,
        entity: str,
        record: dict[str, Any],
        *,
        keys: list[str] | None = None,
        option_labels: bool = False,
    ) -> dict[str, Any]:
        """`custom_fields` as v2 returns it: every current custom field, null when unset
        (or only `keys` when the request names some)."""
        fields = self.custom_fields(entity)
        wanted = [code for code in keys if code in fields] if keys else list(fields)
        stored = record["custom_fields"]
        return {
            code: render_v2(fields[code], stored.get(code), option_labels=option_labels) for code in wanted
        }

    def lead_v1(self, lead: dict[str, Any]) -> dict[str, Any]:
        """A lead as v1 returns it: custom field values as flat keys, unset ones omitted."""
        body = {key: value for key, value in lead.items() if key not in ("custom_fields", "is_deleted")}
        for code, field in self.custom_fields("deal").items():
            body.update(render_v1_flat(field, lead["custom_fields"].get(code)))
        return body

    def web_page(self, kind: str, ident: str, base: str = "") -> tuple[int, str]:
        """(status, HTML) of a web-app page (kind `deal`, `lead` or `person`); `base` prefixes its links."""
        return pipedrive_web.render_page(self, kind, ident, base)

    def snapshot(self) -> dict[str, Any]:
        """A deep copy of what Pipedrive holds, for tests and the admin surface."""
        return copy.deepcopy(
            {
                "persons": list(self.persons.values()),
                "leads": list(self.leads.values()),
                "deals": list(self.deals.values()),
                "person_fields": list(self.fields["person"].values()),
                "deal_fields": list(self.fields["deal"].values()),
                "pipelines": list(self.pipelines.values()),
                "stages": list(self.stages.values()),
                "lead_labels": list(self.lead_labels.values()),
                "usage": self.limiter.usage(),
            }
        )

    # --- persistence --------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return copy.deepcopy(
            {
                "token": self.token,
                "persons": list(self.persons.values()),
                "leads": list(self.leads.values()),
                "deals": list(self.deals.values()),
                "fields": {entity: list(fields.values()) for entity, fields in self.fields.items()},
                "pipelines": list(self.pipelines.values()),
                "stages": list(self.stages.values()),
                "lead_labels": list(self.lead_labels.values()),
                "conversions": self.conversions,
                "conversion_mode": self.conversion_mode,
                "next_ids": self.next_ids,
                "limits": self.limiter.to_json(),
            }
        )

    def from_json(self, data: dict[str, Any]) -> None:
        self.reset()
        data = copy.deepcopy(data)
        self.token = data.get("token", DEFAULT_TOKEN)
        self.persons = {p["id"]: p for p in data.get("persons", [])}
        self.leads = {lead["id"]: lead for lead in data.get("leads", [])}
        self.deals = {d["id"]: d for d in data.get("deals", [])}
        for entity in ENTITIES:
            self.fields[entity] = {f["field_code"]: f for f in data.get("fields", {}).get(entity, [])}
        self.pipelines = {p["id"]: p for p in data.get("pipelines", [])}
        self.stages = {s["id"]: s for s in data.get("stages", [])}
        self.lead_labels = {label["id"]: label for label in data.get("lead_labels", [])}
        self.conversions = data.get("conversions", {})
        self.conversion_mode = data.get("conversion_mode", self.conversion_mode)
        self.next_ids.update(data.get("next_ids", {}))
        if "limits" in data:
            self.limiter.from_json(data["limits"])


def _merge_custom(stored: dict[str, Any], updates: dict[str, Any]) -> None:
    """Apply canonical custom field updates; None clears a field."""
    for code, value in updates.items():
        if value is None:
            stored.pop(code, None)
        else:
            stored[code] = value


def routes(state: SandboxState) -> list[BaseRoute]:
    """Everything under `/pd`: the v1 and v2 API (v1 also without the `/api` prefix) and the web pages."""
    return [*pipedrive_v1.routes(state), *pipedrive_v2.routes(state), *pipedrive_web.routes(state)]
