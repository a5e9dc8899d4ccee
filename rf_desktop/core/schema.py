"""The shape of one Pipedrive account: its fields, pipelines, stages, lead labels and users.

It fills the mapping dropdowns, lets validation name a field or stage that was deleted, and gives the
qualification rules the order of the stages. `PipedriveSchema.from_api` builds it from the raw API
payloads; the store caches it as JSON (`to_json`/`from_json`) so the window opens without spending tokens.

Targets name a field on one of the two records rf-desktop writes: `person:<field_code>` for the person and
`item:<field_code>` for the lead or the deal. Leads have no custom fields of their own (they share the
deal custom fields), so item targets use dealFields codes; a few lead-only built-ins come from leadFields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Literal
from urllib.parse import urlsplit

Mode = Literal["lead", "deal"]
Entity = Literal["person", "item"]

PERSON = "person"
ITEM = "item"

# Built-in fields a referral can fill. Everything else built in (owner, labels, visibility, value...) is
# either set by rf-desktop itself or chosen once under "Default fields".
PERSON_BUILTINS = ("name", "email", "phone")
ITEM_BUILTINS = ("value", "expected_close_date")

# Field types rf-desktop knows how to fill from a Referral Factory value (see mapping.convert_value).
# Ranges, pictures and the like are left out of the dropdowns.
FILLABLE_FIELD_TYPES = frozenset(
    {
        "varchar", "varchar_auto", "varchar_options", "text", "phone", "email", "address",
        "double", "int", "monetary", "enum", "set", "date", "time", "boolean", "user", "people", "org",
    }
)  # fmt: skip
TEXT_FIELD_TYPES = frozenset({"varchar", "varchar_auto", "text"})


def split_target(target: str) -> tuple[Entity, str] | None:
    """`"item:abc"` -> `("item", "abc")`; None when the target is not of the form `person:`/`item:` + code."""
    entity, sep, code = target.partition(":")
    if not sep or not code:
        return None
    if entity == "person":
        return "person", code
    if entity == "item":
        return "item", code
    return None


@dataclass(frozen=True)
class FieldOption:
    id: int | str  # ints for custom fields, strings for some built-ins
    label: str


@dataclass(frozen=True)
class FieldDef:
    code: str
    name: str
    field_type: str
    options: tuple[FieldOption, ...] = ()
    is_custom: bool = False
    subfields: tuple[str, ...] = ()

    def option_by_label(self, label: str) -> FieldOption | None:
        """The option whose label matches, ignoring case and surrounding spaces."""
        wanted = label.strip().casefold()
        return next((o for o in self.options if o.label.strip().casefold() == wanted), None)

    def option_by_id(self, option_id: int | str) -> FieldOption | None:
        return next((o for o in self.options if str(o.id) == str(option_id)), None)

    @property
    def is_fillable(self) -> bool:
        return self.field_type in FILLABLE_FIELD_TYPES


_PERSON_BUILTIN_DEFS = (
    FieldDef("name", "Name", "varchar"),
    FieldDef("email", "Email", "varchar"),
    FieldDef("phone", "Phone", "phone"),
)


@dataclass(frozen=True)
class Pipeline:
    id: int
    name: str


@dataclass(frozen=True)
class Stage:
    id: int
    name: str
    pipeline_id: int
    order_nr: int


@dataclass(frozen=True)
class LeadLabel:
    id: str  # a UUID, unlike deal label ids
    name: str


@dataclass(frozen=True)
class User:
    id: int
    name: str


@dataclass(frozen=True)
class PipedriveSchema:
    company_domain: str | None
    user_name: str
    default_currency: str | None
    person_fields: tuple[FieldDef, ...] = ()
    deal_fields: tuple[FieldDef, ...] = ()
    lead_fields: tuple[FieldDef, ...] = ()
    pipelines: tuple[Pipeline, ...] = ()
    stages: tuple[Stage, ...] = ()
    lead_labels: tuple[LeadLabel, ...] = ()
    users: tuple[User, ...] = ()
    fetched_at: str = ""
    all_users: bool = False  # True when `users` is the company's full list, not just the token's user

    @classmethod
    def from_api(
        cls,
        me: dict[str, Any],
        person_fields: list[dict[str, Any]],
        deal_fields: list[dict[str, Any]],
        lead_fields: list[dict[str, Any]],
        lead_labels: list[dict[str, Any]],
        pipelines: list[dict[str, Any]],
        stages: list[dict[str, Any]],
        *,
        users: list[dict[str, Any]] | None = None,
        fetched_at: str | None = None,
    ) -> PipedriveSchema:
        """Parse the `data` of each response (all pages joined): `GET /api/v1/users/me`, v2 personFields and
        dealFields, v1 leadFields and leadLabels, v2 pipelines and stages, and optionally `GET /api/v1/users`.
        Without that list the token's own user is the only owner on offer, and other owners cannot be
        checked."""
        owner_list = users if users is not None else [me]
        return cls(
            company_domain=me.get("company_domain") or None,
            user_name=str(me.get("name") or ""),
            default_currency=me.get("default_currency") or None,
            person_fields=_parse_fields(person_fields),
            deal_fields=_parse_fields(deal_fields),
            lead_fields=_parse_fields(lead_fields),
            pipelines=tuple(
                Pipeline(int(p["id"]), str(p.get("name") or "")) for p in pipelines if not p.get("is_deleted")
            ),
            stages=tuple(
                Stage(
                    int(s["id"]), str(s.get("name") or ""), int(s["pipeline_id"]), int(s.get("order_nr") or 0)
                )
                for s in stages
                if not s.get("is_deleted")
            ),
            lead_labels=tuple(
                LeadLabel(str(label["id"]), str(label.get("name") or "")) for label in lead_labels
            ),
            users=tuple(
                User(int(u["id"]), str(u.get("name") or "")) for u in owner_list if u.get("id") is not None
            ),
            fetched_at=fetched_at or datetime.now(UTC).isoformat(timespec="seconds"),
            all_users=users is not None,
        )

    # --- JSON (the store's cache) ---

    def to_json(self) -> dict[str, Any]:
        def fields(defs: tuple[FieldDef, ...]) -> list[dict[str, Any]]:
            return [
                {
                    "code": f.code,
                    "name": f.name,
                    "field_type": f.field_type,
                    "options": [{"id": o.id, "label": o.label} for o in f.options],
                    "is_custom": f.is_custom,
                    "subfields": list(f.subfields),
                }
                for f in defs
            ]

        return {
            "company_domain": self.company_domain,
            "user_name": self.user_name,
            "default_currency": self.default_currency,
            "person_fields": fields(self.person_fields),
            "deal_fields": fields(self.deal_fields),
            "lead_fields": fields(self.lead_fields),
            "pipelines": [{"id": p.id, "name": p.name} for p in self.pipelines],
            "stages": [
                {"id": s.id, "name": s.name, "pipeline_id": s.pipeline_id, "order_nr": s.order_nr}
                for s in self.stages
            ],
            "lead_labels": [{"id": label.id, "name": label.name} for label in self.lead_labels],
            "users": [{"id": u.id, "name": u.name} for u in self.users],
            "fetched_at": self.fetched_at,
            "all_users": self.all_users,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PipedriveSchema:
        """Rebuild from `to_json()`. Raises ValueError when the data is not a schema (a damaged cache is
        simply fetched again)."""
        try:

            def fields(raw: list[dict[str, Any]]) -> tuple[FieldDef, ...]:
                return tuple(
                    FieldDef(
                        code=str(f["code"]),
                        name=str(f["name"]),
                        field_type=str(f["field_type"]),
                        options=tuple(FieldOption(o["id"], str(o["label"])) for o in f.get("options", [])),
                        is_custom=bool(f.get("is_custom", False)),
                        subfields=tuple(str(s) for s in f.get("subfields", [])),
                    )
                    for f in raw
                )

            return cls(
                company_domain=data.get("company_domain"),
                user_name=str(data.get("user_name") or ""),
                default_currency=data.get("default_currency"),
                person_fields=fields(data.get("person_fields", [])),
                deal_fields=fields(data.get("deal_fields", [])),
                lead_fields=fields(data.get("lead_fields", [])),
                pipelines=tuple(Pipeline(int(p["id"]), str(p["name"])) for p in data.get("pipelines", [])),
                stages=tuple(
                    Stage(int(s["id"]), str(s["name"]), int(s["pipeline_id"]), int(s["order_nr"]))
                    for s in data.get("stages", [])
                ),
                lead_labels=tuple(
                    LeadLabel(str(x["id"]), str(x["name"])) for x in data.get("lead_labels", [])
                ),
                users=tuple(User(int(u["id"]), str(u["name"])) for u in data.get("users", [])),
                fetched_at=str(data.get("fetched_at") or ""),
                all_users=bool(data.get("all_users", False)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"The saved Pipedrive account details are unreadable ({exc!r}).") from exc

    # --- lookups ---

    @cached_property
    def _person_by_code(self) -> dict[str, FieldDef]:
        # every account has these three, even when a field list leaves one out
        return {**{f.code: f for f in _PERSON_BUILTIN_DEFS}, **{f.code: f for f in self.person_fields}}

    @cached_property
    def _deal_by_code(self) -> dict[str, FieldDef]:
        return {f.code: f for f in self.deal_fields}

    @cached_property
    def _lead_by_code(self) -> dict[str, FieldDef]:
        return {f.code: f for f in self.lead_fields}

    @cached_property
    def _stage_by_id(self) -> dict[int, Stage]:
        return {s.id: s for s in self.stages}

    def field(self, target: str, mode: Mode = "deal") -> FieldDef | None:
        """The field behind `person:<code>` or `item:<code>`. Item targets are deal fields; in lead mode the
        lead-only built-ins from leadFields count too."""
        parsed = split_target(target)
        if parsed is None:
            return None
        entity, code = parsed
        if entity == PERSON:
            return self._person_by_code.get(code)
        found = self._deal_by_code.get(code)
        if found is None and mode == "lead":
            found = self._lead_by_code.get(code)
        return found

    def is_fillable(self, target: str, mode: Mode = "deal") -> bool:
        """True when a referral value may go to this target: a custom field of a type rf-desktop can fill,
        or one of the few built-ins (`PERSON_BUILTINS`, `ITEM_BUILTINS`)."""
        found = self.field(target, mode)
        if found is None or not found.is_fillable:
            return False
        builtins = PERSON_BUILTINS if target.startswith(f"{PERSON}:") else ITEM_BUILTINS
        return found.is_custom or found.code in builtins

    def person_targets(self) -> list[tuple[str, str]]:
        """(label, target) pairs for the person dropdown: Name, Email, Phone, then custom fields by name."""
        return self._targets(PERSON, tuple(self._person_by_code.values()), PERSON_BUILTINS)

    def item_targets(self, mode: Mode) -> list[tuple[str, str]]:
        """(label, target) pairs for the lead/deal dropdown: Value, Expected close date, then the custom
        fields by name."""
        defs = self.deal_fields
        if mode == "lead":
            defs = defs + tuple(f for f in self.lead_fields if f.code not in self._deal_by_code)
        return self._targets(ITEM, defs, ITEM_BUILTINS)

    @staticmethod
    def _targets(entity: str, defs: tuple[FieldDef, ...], builtins: tuple[str, ...]) -> list[tuple[str, str]]:
        by_code = {f.code: f for f in defs}
        first = [(by_code[code].name, f"{entity}:{code}") for code in builtins if code in by_code]
        custom = sorted(
            ((f.name, f"{entity}:{f.code}") for f in defs if f.is_custom and f.is_fillable),
            key=lambda pair: pair[0].casefold(),
        )
        return first + custom

    def pipeline(self, pipeline_id: int | None) -> Pipeline | None:
        return next((p for p in self.pipelines if p.id == pipeline_id), None)

    def stage(self, stage_id: int | None) -> Stage | None:
        return self._stage_by_id.get(stage_id) if stage_id is not None else None

    def stages_of(self, pipeline_id: int | None) -> list[Stage]:
        """The pipeline's stages in board order (left to right)."""
        return sorted(
            (s for s in self.stages if s.pipeline_id == pipeline_id), key=lambda s: (s.order_nr, s.id)
        )

    def user(self, user_id: int | None) -> User | None:
        return next((u for u in self.users if u.id == user_id), None)

    def lead_label(self, label_id: str) -> LeadLabel | None:
        return next((label for label in self.lead_labels if label.id == label_id), None)

    def deal_labels(self) -> tuple[FieldOption, ...]:
        """Deal labels are the options of the deal's built-in label field (integer ids)."""
        for code in ("label_ids", "label"):
            found = self._deal_by_code.get(code)
            if found is not None:
                return found.options
        return ()

    def web_base(self, pd_base_url: str) -> str:
        """Where records open in a browser: `https://{company_domain}.pipedrive.com` for the real API,
        the Pipedrive base URL itself otherwise (the sandbox serves its own record pages)."""
        if self.company_domain and urlsplit(pd_base_url).hostname == "api.pipedrive.com":
            return f"https://{self.company_domain}.pipedrive.com"
        return pd_base_url.rstrip("/")


def _parse_fields(raw_fields: list[dict[str, Any]]) -> tuple[FieldDef, ...]:
    """v2 fields (`field_code`, `field_name`, `is_custom_field`) and v1 fields (`key`, `name`, `edit_flag`)
    side by side; inactive v1 fields are dropped."""
    parsed = []
    for raw in raw_fields:
        if raw.get("active_flag") is False:
            continue
        v2 = "field_code" in raw
        code = raw.get("field_code") if v2 else raw.get("key")
        if not code:
            continue
        subfields = raw.get("subfields") or []
        parsed.append(
            FieldDef(
                code=str(code),
                name=str((raw.get("field_name") if v2 else raw.get("name")) or code),
                field_type=str(raw.get("field_type") or "varchar"),
                options=tuple(
                    FieldOption(o["id"], str(o.get("label") or ""))
                    for o in raw.get("options") or []
                    if "id" in o
                ),
                is_custom=bool(raw.get("is_custom_field") if v2 else raw.get("edit_flag")),
                subfields=tuple(
                    str(s.get("field_code") or s.get("key"))
                    for s in subfields
                    if s.get("field_code") or s.get("key")
                ),
            )
        )
    return tuple(parsed)


def _normalised(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.casefold())


def referral_code_field(schema: PipedriveSchema | None) -> FieldDef | None:
    """A lead/deal custom text field meant for the Referral Code ("Referral Code", "referral-code"...)."""
    if schema is None:
        return None
    custom = [f for f in schema.deal_fields if f.is_custom]
    exact = [f for f in custom if _normalised(f.name) == "referralcode"]
    loose = [
        f for f in custom if "referralcode" in _normalised(f.name) and "referrer" not in f.name.casefold()
    ]
    return next(iter(exact or loose), None)
