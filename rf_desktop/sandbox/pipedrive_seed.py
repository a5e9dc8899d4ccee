"""The simulated Pipedrive company a fresh sandbox starts with: users, pipelines and stages, person and
deal fields (built-in and custom), lead labels.

Keys and ids are stable (custom field keys are the SHA-1 of entity and name, label ids are UUID5s), so a
demo, a test and a saved state all agree on them.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

COMPANY = {
    "company_id": 7_100_001,
    "company_name": "Sandbox Bakery",
    "company_domain": "sandbox-bakery",
    "company_country": "DE",
    "company_industry": "Food & Beverage",
}
DEFAULT_CURRENCY = "EUR"
TIMEZONE_NAME = "Europe/Berlin"

USERS: list[dict[str, Any]] = [
    {"id": 1, "name": "Sam Owner", "email": "sam@sandbox-bakery.example", "role_id": 1, "admin": True},
    {"id": 2, "name": "Riley Sales", "email": "riley@sandbox-bakery.example", "role_id": 2, "admin": False},
]
TOKEN_USER_ID = 1

PIPELINES: list[tuple[str, list[tuple[str, int]]]] = [
    (
        "Sales pipeline",
        [
            ("Qualified", 10),
            ("Contact Made", 20),
            ("Demo Scheduled", 40),
            ("Proposal Made", 60),
            ("Negotiations Started", 80),
        ],
    ),
    ("Partnerships", [("Introduced", 20), ("Meeting Held", 50), ("Agreement Signed", 90)]),
]

LEAD_LABELS = [("Hot", "red"), ("Warm", "yellow"), ("Cold", "blue")]
_LABEL_NAMESPACE = uuid.UUID("6f1c2d1e-8a53-4c55-9a0e-5d7c1b2f4e01")

# Pipedrive writes built-in option ids as strings; custom field options get integer ids
VISIBLE_TO_OPTIONS = [
    {"id": "1", "label": "Owner & followers"},
    {"id": "3", "label": "Entire company"},
    {"id": "5", "label": "Owner's visibility group"},
    {"id": "7", "label": "Owner's visibility group and sub-groups"},
]
DEAL_STATUS_OPTIONS = [
    {"id": "open", "label": "Open"},
    {"id": "won", "label": "Won"},
    {"id": "lost", "label": "Lost"},
    {"id": "deleted", "label": "Deleted"},
]
PERSON_LABEL_OPTIONS = [
    {"id": 1, "label": "Customer"},
    {"id": 2, "label": "Hot lead"},
    {"id": 3, "label": "Cold lead"},
]
DEAL_LABEL_OPTIONS = [{"id": 1, "label": "Hot"}, {"id": 2, "label": "Warm"}, {"id": 3, "label": "Cold"}]

# (field_code, field_name, field_type, options, subfields)
Builtin = tuple[str, str, str, list[dict[str, Any]] | None, list[dict[str, str]] | None]

PERSON_BUILTINS: list[Builtin] = [
    ("name", "Name", "varchar", None, None),
    ("first_name", "First name", "varchar", None, None),
    ("last_name", "Last name", "varchar", None, None),
    ("email", "Email", "varchar", None, None),
    ("phone", "Phone", "phone", None, None),
    ("owner_id", "Owner", "user", None, None),
    ("org_id", "Organization", "org", None, None),
    ("label_ids", "Labels", "set", PERSON_LABEL_OPTIONS, None),
    ("visible_to", "Visible to", "visible_to", VISIBLE_TO_OPTIONS, None),
    ("add_time", "Person created", "date", None, None),
    ("update_time", "Update time", "date", None, None),
]

DEAL_BUILTINS: list[Builtin] = [
    ("title", "Title", "varchar", None, None),
    (
        "value",
        "Value",
        "monetary",
        None,
        [
            {"field_code": "value", "field_name": "Amount of Value", "field_type": "double"},
            {"field_code": "currency", "field_name": "Currency of Value", "field_type": "varchar"},
        ],
    ),
    ("owner_id", "Owner", "user", None, None),
    ("person_id", "Contact person", "people", None, None),
    ("org_id", "Organization", "org", None, None),
    ("pipeline_id", "Pipeline", "int", None, None),
    ("stage_id", "Stage", "stage", None, None),
    ("status", "Status", "status", DEAL_STATUS_OPTIONS, None),
    ("expected_close_date", "Expected close date", "date", None, None),
    ("probability", "Probability", "double", None, None),
    ("label_ids", "Labels", "set", DEAL_LABEL_OPTIONS, None),
    ("visible_to", "Visible to", "visible_to", VISIBLE_TO_OPTIONS, None),
    ("lost_reason", "Lost reason", "varchar_options", None, None),
    ("add_time", "Deal created", "date", None, None),
    ("update_time", "Update time", "date", None, None),
    ("stage_change_time", "Last stage change", "date", None, None),
    ("won_time", "Won time", "date", None, None),
    ("lost_time", "Lost time", "date", None, None),
    ("close_time", "Deal closed on", "date", None, None),
    ("origin", "Source origin", "varchar", None, None),
]

# (name, field_type, option labels)
Custom = tuple[str, str, list[str] | None]

PERSON_CUSTOM: list[Custom] = [
    ("Referrer Email", "varchar", None),
    ("Customer Since", "date", None),
    ("Preferred Contact", "enum", ["Email", "Phone", "WhatsApp"]),
]

DEAL_REFERRAL_CUSTOM: list[Custom] = [
    ("Referral Code", "varchar", None),
    ("Referrer First Name", "varchar", None),
    ("Referrer Email Address", "varchar", None),
    ("Referral Campaign", "varchar", None),
    ("Referral Link", "varchar", None),
]

DEAL_CUSTOM: list[Custom] = [
    ("Plan Interest", "enum", ["Starter", "Team", "Enterprise"]),
    ("Interests", "set", ["Bread", "Cakes", "Catering"]),
    ("Expected Revenue", "monetary", None),
    ("Signup Date", "date", None),
    ("Team Size", "double", None),
    ("Contact Phone", "phone", None),
    ("Notes From Referral", "text", None),
    ("Start Time", "time", None),
]

# The v1 lead schema (`GET /v1/leadFields`): lead built-ins, then every deal custom field.
# (key, name, field_type)
LEAD_BUILTINS: list[tuple[str, str, str]] = [
    ("title", "Title", "varchar"),
    ("owner_id", "Owner", "user"),
    ("value", "Value", "monetary"),
    ("label_ids", "Labels", "set"),
    ("person_id", "Person", "people"),
    ("organization_id", "Organization", "org"),
    ("expected_close_date", "Expected close date", "date"),
    ("visible_to", "Visible to", "visible_to"),
]


def custom_field_code(entity: str, name: str) -> str:
    """A stable 40-hex key, like the ones Pipedrive generates for custom fields."""
    return hashlib.sha1(f"{entity}:{name}".encode(), usedforsecurity=False).hexdigest()


def lead_label_id(name: str) -> str:
    return str(uuid.uuid5(_LABEL_NAMESPACE, f"lead-label:{name}"))


def custom_fields_for(entity: str, with_referral_fields: bool) -> list[Custom]:
    if entity == "person":
        return PERSON_CUSTOM
    return (DEAL_REFERRAL_CUSTOM if with_referral_fields else []) + DEAL_CUSTOM


def builtins_for(entity: str) -> list[Builtin]:
    return PERSON_BUILTINS if entity == "person" else DEAL_BUILTINS
