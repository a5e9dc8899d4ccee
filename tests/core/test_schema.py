"""The Pipedrive schema: parsing raw API payloads, JSON round-trip, lookups for the dropdowns."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from rf_desktop.core.schema import FieldDef, FieldOption, PipedriveSchema, split_target

CODE_HASH = "a" * 40
PLAN_HASH = "b" * 40
BUDGET_HASH = "c" * 40
RANGE_HASH = "d" * 40
NEWSLETTER_HASH = "e" * 40

ME = {"id": 7, "name": "Olivia Owner", "company_domain": "acme", "default_currency": "EUR"}
PERSON_FIELDS = [
    {
        "field_name": "Name",
        "field_code": "name",
        "field_type": "varchar",
        "options": None,
        "subfields": None,
        "is_custom_field": False,
    },
    {
        "field_name": "Phone",
        "field_code": "phone",
        "field_type": "phone",
        "options": None,
        "subfields": None,
        "is_custom_field": False,
    },
    {
        "field_name": "Owner",
        "field_code": "owner_id",
        "field_type": "user",
        "options": None,
        "subfields": None,
        "is_custom_field": False,
    },
    {
        "field_name": "newsletter",
        "field_code": NEWSLETTER_HASH,
        "field_type": "enum",
        "options": [{"id": 1, "label": "Yes"}, {"id": 2, "label": "No"}],
        "subfields": None,
        "is_custom_field": True,
    },
]
DEAL_FIELDS = [
    {"field_name": "Title", "field_code": "title", "field_type": "varchar", "is_custom_field": False},
    {
        "field_name": "Value",
        "field_code": "value",
        "field_type": "monetary",
        "is_custom_field": False,
        "subfields": [
            {"field_code": "value", "field_name": "Amount", "field_type": "double"},
            {"field_code": "currency", "field_name": "Currency", "field_type": "varchar"},
        ],
    },
    {
        "field_name": "Expected close date",
        "field_code": "expected_close_date",
        "field_type": "date",
        "is_custom_field": False,
    },
    {
        "field_name": "Label",
        "field_code": "label_ids",
        "field_type": "set",
        "is_custom_field": False,
        "options": [{"id": 5, "label": "Hot"}, {"id": 6, "label": "Cold"}],
    },
    {
        "field_name": "Referral Code",
        "field_code": CODE_HASH,
        "field_type": "varchar",
        "is_custom_field": True,
    },
    {
        "field_name": "Plan Interest",
        "field_code": PLAN_HASH,
        "field_type": "enum",
        "is_custom_field": True,
        "options": [
            {"id": 11, "label": "Starter"},
            {"id": 12, "label": "Team"},
            {"id": 13, "label": "Enterprise"},
        ],
    },
    {
        "field_name": "budget",
        "field_code": BUDGET_HASH,
        "field_type": "monetary",
        "is_custom_field": True,
        "subfields": [{"field_code": "value"}, {"field_code": "currency"}],
    },
    {
        "field_name": "Trial dates",
        "field_code": RANGE_HASH,
        "field_type": "daterange",
        "is_custom_field": True,
    },
]
LEAD_FIELDS = [
    {
        "id": 1,
        "key": "title",
        "name": "Title",
        "field_type": "varchar",
        "edit_flag": False,
        "active_flag": True,
    },
    {"id": 2, "key": "was_seen", "name": "Was seen", "field_type": "boolean", "edit_flag": False},
    {"id": 3, "key": CODE_HASH, "name": "Referral Code", "field_type": "varchar", "edit_flag": True},
    {
        "id": 4,
        "key": "f" * 40,
        "name": "Old field",
        "field_type": "varchar",
        "edit_flag": True,
        "active_flag": False,
    },
]
LEAD_LABELS = [{"id": "f08b42a0-4e75-11ea-9643-03698ef1cfd6", "name": "Hot", "color": "red"}]
PIPELINES = [
    {"id": 1, "name": "Sales"},
    {"id": 2, "name": "Partners"},
    {"id": 3, "name": "Old", "is_deleted": True},
]
STAGES = [
    {"id": 12, "name": "Demo", "pipeline_id": 1, "order_nr": 2},
    {"id": 11, "name": "Qualified", "pipeline_id": 1, "order_nr": 1},
    {"id": 13, "name": "Won-ish", "pipeline_id": 1, "order_nr": 3},
    {"id": 21, "name": "Intro", "pipeline_id": 2, "order_nr": 1},
    {"id": 99, "name": "Gone", "pipeline_id": 1, "order_nr": 4, "is_deleted": True},
]


def make_schema(**changes: object) -> PipedriveSchema:
    schema = PipedriveSchema.from_api(
        ME,
        PERSON_FIELDS,
        DEAL_FIELDS,
        LEAD_FIELDS,
        LEAD_LABELS,
        PIPELINES,
        STAGES,
        fetched_at="2025-01-01T00:00:00Z",
    )
    return replace(schema, **changes)  # type: ignore[arg-type]


def test_from_api_reads_account_and_fields() -> None:
    schema = make_schema()
    assert schema.company_domain == "acme"
    assert schema.user_name == "Olivia Owner"
    assert schema.default_currency == "EUR"
    assert [u.id for u in schema.users] == [7]
    plan = schema.field(f"item:{PLAN_HASH}")
    assert plan == FieldDef(
        PLAN_HASH,
        "Plan Interest",
        "enum",
        (FieldOption(11, "Starter"), FieldOption(12, "Team"), FieldOption(13, "Enterprise")),
        is_custom=True,
    )
    assert schema.field("item:value").subfields == ("value", "currency")  # type: ignore[union-attr]


def test_v1_lead_fields_use_key_name_and_edit_flag_and_drop_inactive_ones() -> None:
    schema = make_schema()
    codes = [f.code for f in schema.lead_fields]
    assert codes == ["title", "was_seen", CODE_HASH]
    assert schema.lead_fields[2].is_custom and not schema.lead_fields[0].is_custom


def test_deleted_pipelines_and_stages_are_left_out_and_stages_sorted() -> None:
    schema = make_schema()
    assert [p.name for p in schema.pipelines] == ["Sales", "Partners"]
    assert [s.name for s in schema.stages_of(1)] == ["Qualified", "Demo", "Won-ish"]
    assert schema.stage(99) is None
    assert schema.stage(21).pipeline_id == 2  # type: ignore[union-attr]
    assert schema.pipeline(2).name == "Partners"  # type: ignore[union-attr]


def test_an_explicit_user_list_offers_every_owner() -> None:
    schema = PipedriveSchema.from_api(
        ME, [], [], [], [], [], [], users=[{"id": 1, "name": "A"}, {"id": 2, "name": "B"}]
    )
    assert [u.name for u in schema.users] == ["A", "B"]
    assert schema.all_users and not make_schema().all_users
    assert schema.fetched_at  # stamped when not given


def test_json_round_trip_is_lossless_and_survives_json_text() -> None:
    schema = make_schema()
    again = PipedriveSchema.from_json(json.loads(json.dumps(schema.to_json())))
    assert again == schema
    listed = replace(schema, all_users=True)
    assert PipedriveSchema.from_json(listed.to_json()) == listed
    assert again.field(f"item:{PLAN_HASH}").option_by_label("team").id == 12  # type: ignore[union-attr]


def test_damaged_json_raises_value_error() -> None:
    with pytest.raises(ValueError, match="unreadable"):
        PipedriveSchema.from_json({"pipelines": [{"name": "no id"}]})


def test_option_lookup_ignores_case_and_spaces() -> None:
    plan = make_schema().field(f"item:{PLAN_HASH}")
    assert plan is not None
    assert plan.option_by_label("  ENTERPRISE ") == FieldOption(13, "Enterprise")
    assert plan.option_by_label("Gold") is None
    assert plan.option_by_id("12") == FieldOption(12, "Team")


def test_split_target() -> None:
    assert split_target("item:abc") == ("item", "abc")
    assert split_target("person:name") == ("person", "name")
    for bad in ("deal:abc", "item:", "name", ""):
        assert split_target(bad) is None


def test_field_lookup_by_target_and_mode() -> None:
    schema = make_schema()
    assert schema.field("person:phone").name == "Phone"  # type: ignore[union-attr]
    assert schema.field(f"item:{CODE_HASH}").name == "Referral Code"  # type: ignore[union-attr]
    # lead-only built-ins count for item targets only in lead mode
    assert schema.field("item:was_seen", "deal") is None
    assert schema.field("item:was_seen", "lead") is not None
    assert schema.field("item:" + "0" * 40) is None
    assert schema.field("bogus") is None


def test_person_builtins_exist_even_when_the_field_list_omits_them() -> None:
    schema = make_schema()  # PERSON_FIELDS has no "email" entry
    assert schema.field("person:email") is not None
    assert schema.is_fillable("person:email")


def test_person_targets_list_builtins_first_then_fillable_custom_fields() -> None:
    assert make_schema().person_targets() == [
        ("Name", "person:name"),
        ("Email", "person:email"),
        ("Phone", "person:phone"),
        ("newsletter", f"person:{NEWSLETTER_HASH}"),
    ]


def test_item_targets_skip_unfillable_types_and_sort_by_name() -> None:
    targets = make_schema().item_targets("deal")
    assert targets == [
        ("Value", "item:value"),
        ("Expected close date", "item:expected_close_date"),
        ("budget", f"item:{BUDGET_HASH}"),
        ("Plan Interest", f"item:{PLAN_HASH}"),
        ("Referral Code", f"item:{CODE_HASH}"),
    ]
    assert ("Trial dates", f"item:{RANGE_HASH}") not in targets  # daterange cannot be filled


def test_item_targets_in_lead_mode_add_lead_only_custom_fields() -> None:
    lead_only = {"id": 9, "key": "9" * 40, "name": "Lead note", "field_type": "text", "edit_flag": True}
    schema = PipedriveSchema.from_api(ME, [], DEAL_FIELDS, [*LEAD_FIELDS, lead_only], [], [], [])
    assert ("Lead note", "item:" + "9" * 40) in schema.item_targets("lead")
    assert ("Lead note", "item:" + "9" * 40) not in schema.item_targets("deal")


def test_is_fillable_excludes_other_builtins() -> None:
    schema = make_schema()
    assert not schema.is_fillable("item:title")
    assert not schema.is_fillable("person:owner_id")
    assert not schema.is_fillable(f"item:{RANGE_HASH}")
    assert schema.is_fillable("item:expected_close_date")


def test_labels_and_users() -> None:
    schema = make_schema()
    assert schema.lead_label("f08b42a0-4e75-11ea-9643-03698ef1cfd6").name == "Hot"  # type: ignore[union-attr]
    assert [o.label for o in schema.deal_labels()] == ["Hot", "Cold"]
    assert schema.user(7).name == "Olivia Owner"  # type: ignore[union-attr]
    assert schema.user(8) is None


def test_web_base_uses_company_domain_only_for_the_real_api() -> None:
    schema = make_schema()
    assert schema.web_base("https://api.pipedrive.com") == "https://acme.pipedrive.com"
    assert schema.web_base("http://127.0.0.1:8123/pd/") == "http://127.0.0.1:8123/pd"
    assert (
        make_schema(company_domain=None).web_base("https://api.pipedrive.com/") == "https://api.pipedrive.com"
    )
