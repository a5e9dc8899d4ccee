"""Referral -> Pipedrive payloads: every field type, the three payload shapes, errors and the preview."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, time
from typing import Any

import pytest

from rf_desktop.core import mapping
from rf_desktop.core.config import Defaults, FieldMap, Settings
from rf_desktop.core.mapping import (
    MappingError,
    PreviewRow,
    build_deal,
    build_lead,
    build_person,
    convert_value,
    preview,
    referral_values,
    render_title,
)
from rf_desktop.core.schema import (
    FILLABLE_FIELD_TYPES,
    FieldDef,
    FieldOption,
    LeadLabel,
    PipedriveSchema,
    Pipeline,
    Stage,
    User,
)
from rf_desktop.core.store import Referral

CODE = "c0de" + "0" * 36
PLAN = "9a1a" + "0" * 36
TOPICS = "70b1" + "0" * 36
BUDGET = "b0d6" + "0" * 36
SEATS = "5ea7" + "0" * 36
START = "da7e" + "0" * 36
REF_EMAIL = "ee11" + "0" * 36
REF_NAME = "ee22" + "0" * 36
LINK = "11ce" + "0" * 36
SOURCE = "50c0" + "0" * 36
NEWSLETTER = "4e55" + "0" * 36
COMPANY = "c011" + "0" * 36
LEAD_LABEL = "f08b42a0-4e75-11ea-9643-03698ef1cfd6"

PLAN_FIELD = FieldDef(
    PLAN,
    "Plan Interest",
    "enum",
    (FieldOption(1, "Starter"), FieldOption(2, "Team"), FieldOption(3, "Enterprise")),
    True,
)
TOPICS_FIELD = FieldDef(TOPICS, "Topics", "set", (FieldOption(7, "Sales"), FieldOption(8, "Support")), True)

SCHEMA = PipedriveSchema(
    company_domain="acme",
    user_name="Olivia",
    default_currency="EUR",
    person_fields=(
        FieldDef("name", "Name", "varchar"),
        FieldDef("email", "Email", "varchar"),
        FieldDef("phone", "Phone", "phone"),
        FieldDef(NEWSLETTER, "Newsletter", "enum", (FieldOption(31, "Yes"), FieldOption(32, "No")), True),
        FieldDef(COMPANY, "Company", "varchar", is_custom=True),
    ),
    deal_fields=(
        FieldDef("title", "Title", "varchar"),
        FieldDef("value", "Value", "monetary", subfields=("value", "currency")),
        FieldDef("expected_close_date", "Expected close date", "date"),
        FieldDef("label_ids", "Label", "set", (FieldOption(5, "Hot"),)),
        FieldDef(CODE, "Referral Code", "varchar", is_custom=True),
        PLAN_FIELD,
        TOPICS_FIELD,
        FieldDef(BUDGET, "Budget", "monetary", is_custom=True, subfields=("value", "currency")),
        FieldDef(SEATS, "Seats", "double", is_custom=True),
        FieldDef(START, "Start date", "date", is_custom=True),
        FieldDef(REF_EMAIL, "Referrer Email Address", "varchar", is_custom=True),
        FieldDef(REF_NAME, "Referrer First Name", "varchar", is_custom=True),
        FieldDef(LINK, "Referral Link", "text", is_custom=True),
        FieldDef(SOURCE, "Referral Source", "varchar", is_custom=True),
    ),
    pipelines=(Pipeline(1, "Sales"),),
    stages=(Stage(11, "Qualified", 1, 1), Stage(12, "Demo", 1, 2)),
    lead_labels=(LeadLabel(LEAD_LABEL, "Warm"),),
    users=(User(7, "Olivia"),),
)


def make_referral(**fields: Any) -> Referral:
    values: dict[str, Any] = {
        "rf_user_id": 101,
        "campaign_id": 1,
        "campaign_name": "Spring Friends",
        "first_name": "Jane",
        "email": "jane@acme.io",
        "code": "ueONFmUp",
        "url": "https://acme.referral-factory.com/ueONFmUp",
        "source": "Referred",
        "signed_up_at": "2025-02-28",
        "meta": {"Company": "Acme Ltd", "Plan": "team", "Seats": "1 200", "Phone": "+44 20 7946 0000"},
        "referrer_id": 9,
        "referrer_first_name": "Rita",
        "referrer_email": "rita@example.com",
        "referrer_code": "RITA42",
        "referrer_url": "https://acme.referral-factory.com/RITA42",
    }
    values.update(fields)
    return Referral(**values)


def make_settings(mode: str = "lead", **changes: Any) -> Settings:
    settings = Settings(mode=mode)  # type: ignore[arg-type]
    if mode == "deal":
        settings.pipeline_id, settings.stage_id = 1, 11
    settings.mappings += [
        FieldMap("code", f"item:{CODE}"),
        FieldMap("meta:Plan", f"item:{PLAN}"),
        FieldMap("meta:Seats", f"item:{SEATS}"),
        FieldMap("referrer.email", f"item:{REF_EMAIL}"),
        FieldMap("referrer.first_name", f"item:{REF_NAME}"),
        FieldMap("url", f"item:{LINK}"),
        FieldMap("meta:Company", f"person:{COMPANY}"),
        FieldMap("meta:Phone", "person:phone"),
    ]
    return dataclasses.replace(settings, **changes)


def field(field_type: str, name: str = "Field", options: tuple[FieldOption, ...] = ()) -> FieldDef:
    return FieldDef("f" * 40, name, field_type, options, is_custom=True)


# --- values and the title ---


def test_referral_values_cover_every_source() -> None:
    values = referral_values(make_referral())
    assert values["first_name"] == "Jane" and values["campaign_name"] == "Spring Friends"
    assert values["meta:Company"] == "Acme Ltd"
    assert values["referrer.code"] == "RITA42" and values["referrer.url"].endswith("RITA42")
    assert values["signed_up_at"] == "2025-02-28"


def test_render_title() -> None:
    values = referral_values(make_referral())
    assert render_title("{campaign_name}: {first_name}", values) == "Spring Friends: Jane"
    assert render_title("{meta:Company}", values) == "Acme Ltd"
    assert render_title("  {{VIP}}  {first_name}\n ", values) == "{VIP} Jane"
    assert render_title("{meta:Unknown form field} {source}", values) == "Referred"  # empty meta is fine


def test_render_title_errors() -> None:
    values = referral_values(make_referral(first_name=""))
    with pytest.raises(
        MappingError, match=r"The title uses \{last_name\}, which is not a Referral Factory field"
    ):
        render_title("{last_name}", values)
    with pytest.raises(MappingError, match="The title for this referral is empty"):
        render_title("{first_name}", values)
    with pytest.raises(MappingError, match="without its partner"):
        render_title("{first_name", values)


def test_render_title_is_cut_to_255_characters() -> None:
    title = render_title("{first_name}", {"first_name": "x" * 300})
    assert len(title) == 255 and title.endswith("…")


# --- conversions, type by type ---


def test_every_fillable_type_has_a_converter() -> None:
    assert set(mapping._CONVERTERS) == FILLABLE_FIELD_TYPES


@pytest.mark.parametrize("field_type", ["varchar", "varchar_auto", "varchar_options", "phone"])
def test_short_text_types(field_type: str) -> None:
    assert convert_value("  Acme  ", field(field_type), "v2") == "Acme"
    assert convert_value(12.0, field(field_type), "v1") == "12"
    assert convert_value(True, field(field_type), "v1") == "Yes"
    assert convert_value(["a", "b"], field(field_type), "v1") == "a, b"
    assert convert_value("x" * 255, field(field_type), "v2") == "x" * 255
    with pytest.raises(MappingError) as caught:
        convert_value("x" * 256, field(field_type, "Notes"), "v2")
    assert "is 256 characters long, but the Pipedrive field 'Notes' holds at most 255" in caught.value.message


def test_long_text() -> None:
    assert convert_value("x" * 5000, field("text"), "v2") == "x" * 5000
    with pytest.raises(MappingError, match="holds at most 65535"):
        convert_value("x" * 70_000, field("text"), "v2")


def test_email_type() -> None:
    assert convert_value(" a@b.io ", field("email"), "v2") == "a@b.io"
    with pytest.raises(
        MappingError, match="'not-an-email' is not an email address, so it cannot go into 'Field'"
    ):
        convert_value("not-an-email", field("email"), "v2")


def test_address_type() -> None:
    assert convert_value("1 Main St", field("address"), "v2") == {"value": "1 Main St"}
    assert convert_value("1 Main St", field("address"), "v1") == "1 Main St"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1200", 1200.0),
        ("1 200", 1200.0),
        ("1\u00a0200,50", 1200.5),
        ("12,5", 12.5),
        ("1234,56", 1234.56),
        ("1,200", 1200.0),
        ("1,200,000", 1_200_000.0),
        ("1.200.000", 1_200_000.0),
        ("1,200.50", 1200.5),
        ("1.200,50", 1200.5),
        ("$1,200", 1200.0),
        ("€ 99", 99.0),
        ("-3.5", -3.5),
        (7, 7.0),
        (2.25, 2.25),
    ],
)
def test_double_parses_numbers_as_people_type_them(raw: Any, expected: float) -> None:
    assert convert_value(raw, field("double"), "v2") == expected


@pytest.mark.parametrize("raw", ["twelve", "", "1.2.3,4,5", True, "nan", "inf"])
def test_double_rejects_what_is_not_a_number(raw: Any) -> None:
    with pytest.raises(MappingError, match="is not a number, so it cannot go into 'Seats'"):
        convert_value(raw, field("double", "Seats"), "v2")


def test_int_type() -> None:
    assert convert_value("1 200", field("int"), "v2") == 1200
    assert convert_value(3.0, field("int"), "v2") == 3
    with pytest.raises(MappingError, match=r"'2\.5' is not a whole number"):
        convert_value("2.5", field("int"), "v2")


def test_monetary_type() -> None:
    budget = field("monetary", "Budget")
    assert convert_value("1 200", budget, "v2", currency="EUR") == {"value": 1200.0, "currency": "EUR"}
    assert convert_value("USD 99.5", budget, "v2", currency="EUR") == {"value": 99.5, "currency": "USD"}
    assert convert_value("99,5 gbp", budget, "v1") == {"value": 99.5, "currency": "GBP"}
    assert convert_value({"value": 5, "currency": "SEK"}, budget, "v2") == {"value": 5.0, "currency": "SEK"}
    with pytest.raises(
        MappingError, match=r"No currency is known for 'Budget'\. Choose a currency under Default"
    ):
        convert_value("100", budget, "v2")
    with pytest.raises(MappingError, match="is not a number"):
        convert_value("lots EUR", budget, "v2")


def test_enum_type_matches_labels_in_any_case_or_ids() -> None:
    assert convert_value("team", PLAN_FIELD, "v2") == 2
    assert convert_value(" ENTERPRISE ", PLAN_FIELD, "v1") == 3
    assert convert_value(1, PLAN_FIELD, "v2") == 1
    assert convert_value("1", PLAN_FIELD, "v2") == 1
    builtin = field("enum", options=(FieldOption("open", "Open"),))
    assert convert_value("open", builtin, "v2") == "open"


def test_enum_unknown_label_lists_the_options() -> None:
    with pytest.raises(MappingError) as caught:
        convert_value("Gold", PLAN_FIELD, "v2")
    assert (
        caught.value.message
        == "'Gold' is not an option of 'Plan Interest' (options: Starter, Team, Enterprise)."
    )
    many = field("enum", "Country", tuple(FieldOption(i, f"C{i}") for i in range(25)))
    with pytest.raises(MappingError, match=r"C9 and 15 more\)"):
        convert_value("Atlantis", many, "v2")
    with pytest.raises(MappingError, match="'Yes' is not an option"):
        convert_value(True, PLAN_FIELD, "v2")


def test_set_type() -> None:
    assert convert_value("Sales; support", TOPICS_FIELD, "v2") == [7, 8]
    assert convert_value("Sales, Sales", TOPICS_FIELD, "v2") == [7]
    assert convert_value(["Support"], TOPICS_FIELD, "v1") == [8]
    assert convert_value(" ; ", TOPICS_FIELD, "v2") is None
    with pytest.raises(MappingError, match="'Billing' is not an option of 'Topics'"):
        convert_value("Sales, Billing", TOPICS_FIELD, "v2")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2025-03-01", "2025-03-01"),
        ("2025-3-1", "2025-03-01"),
        ("2025-03-01T23:30:00Z", "2025-03-01"),
        ("2025-03-01 08:00:00+02:00", "2025-03-01"),
        ("01.03.2025", "2025-03-01"),
        ("25/12/2025", "2025-12-25"),
        ("12/25/2025", "2025-12-25"),
        ("07/07/2025", "2025-07-07"),
        ("25-12-2025", "2025-12-25"),
        (date(2025, 1, 2), "2025-01-02"),
        (datetime(2025, 1, 2, 15, 0), "2025-01-02"),
    ],
)
def test_date_type(raw: Any, expected: str) -> None:
    assert convert_value(raw, field("date"), "v2") == expected
    assert convert_value(raw, field("date"), "v1") == expected


def test_ambiguous_dates_are_refused_with_both_readings() -> None:
    with pytest.raises(MappingError) as caught:
        convert_value("05/06/2025", field("date", "Start date"), "v2")
    assert caught.value.message == (
        "'05/06/2025' could mean 5 June or May 6, so it cannot go into 'Start date'. Dates written as "
        "YYYY-MM-DD are always understood."
    )


@pytest.mark.parametrize("raw", ["2025-02-30", "yesterday", "31/31/2025", "2025-13-01T00:00:00"])
def test_invalid_dates(raw: str) -> None:
    with pytest.raises(MappingError, match="is not a date, so it cannot go into 'Field'"):
        convert_value(raw, field("date"), "v2")


def test_time_type() -> None:
    assert convert_value("9:05", field("time"), "v1") == "09:05:00"
    assert convert_value("09:05:30", field("time"), "v2") == {"value": "09:05:30"}
    assert convert_value(time(14, 0), field("time"), "v1") == "14:00:00"
    for bad in ("25:00", "noon", "9:61"):
        with pytest.raises(MappingError, match="is not a time"):
            convert_value(bad, field("time"), "v1")


@pytest.mark.parametrize(
    ("raw", "expected"), [("Yes", True), ("no", False), ("1", True), ("off", False), (True, True)]
)
def test_boolean_type(raw: Any, expected: bool) -> None:
    assert convert_value(raw, field("boolean"), "v2") is expected


def test_boolean_rejects_other_words() -> None:
    with pytest.raises(MappingError, match="'maybe' is neither yes nor no"):
        convert_value("maybe", field("boolean"), "v2")


@pytest.mark.parametrize(
    ("field_type", "kind"), [("user", "user"), ("people", "person"), ("org", "organization")]
)
def test_record_id_types(field_type: str, kind: str) -> None:
    assert convert_value("42", field(field_type), "v2") == 42
    assert convert_value(42, field(field_type), "v1") == 42
    with pytest.raises(MappingError, match=f"'Bob' is not a Pipedrive {kind} id"):
        convert_value("Bob", field(field_type), "v2")
    with pytest.raises(MappingError, match="is not a Pipedrive"):
        convert_value(0, field(field_type), "v2")


def test_unsupported_types_say_so() -> None:
    with pytest.raises(
        MappingError, match=r"cannot fill the Pipedrive field 'Trial' \(daterange fields are not"
    ):
        convert_value("2025-01-01", field("daterange", "Trial"), "v2")


# --- the person ---


def test_build_person_for_a_new_person() -> None:
    settings = make_settings(defaults=Defaults(owner_id=7, fields={f"person:{NEWSLETTER}": "yes"}))
    body = build_person(make_referral(), settings, SCHEMA)
    assert body == {
        "name": "Jane",
        "emails": [{"value": "jane@acme.io", "primary": True, "label": "work"}],
        "phones": [{"value": "+44 20 7946 0000", "primary": True, "label": "work"}],
        "owner_id": 7,
        "custom_fields": {COMPANY: "Acme Ltd", NEWSLETTER: 31},
    }


def test_build_person_without_optional_values() -> None:
    referral = make_referral(meta={})
    body = build_person(referral, make_settings(), SCHEMA)
    assert body == {"name": "Jane", "emails": [{"value": "jane@acme.io", "primary": True, "label": "work"}]}


def test_a_mapped_value_wins_over_a_default_and_a_default_fills_in_when_empty() -> None:
    settings = make_settings(defaults=Defaults(fields={f"person:{COMPANY}": "Unknown company"}))
    assert build_person(make_referral(), settings, SCHEMA)["custom_fields"] == {COMPANY: "Acme Ltd"}
    referral = make_referral(meta={"Company": "  "})
    assert build_person(referral, settings, SCHEMA)["custom_fields"] == {COMPANY: "Unknown company"}


def test_required_person_values() -> None:
    with pytest.raises(MappingError) as caught:
        build_person(make_referral(email=""), make_settings(), SCHEMA)
    assert (
        caught.value.message
        == "This referral has no email address, so it cannot be matched to a Pipedrive person."
    )
    with pytest.raises(MappingError) as caught:
        build_person(make_referral(first_name=" "), make_settings(), SCHEMA)
    assert (
        caught.value.message == "This referral has no first name, so Pipedrive cannot create a person for it."
    )
    settings = make_settings()
    settings.mappings = [m for m in settings.mappings if m.target != "person:email"]
    with pytest.raises(MappingError, match="Nothing is mapped to the person's Email"):
        build_person(make_referral(), settings, SCHEMA)
    settings.mappings.insert(0, FieldMap("meta:Work email", "person:email"))
    with pytest.raises(MappingError, match="This referral has no 'Work email', so it cannot be matched"):
        build_person(make_referral(), settings, SCHEMA)


def test_update_body_merges_emails_and_phones_and_keeps_the_name() -> None:
    existing = {
        "id": 5,
        "name": "Jane Doe",
        "emails": [{"value": "jane.doe@home.net", "primary": True, "label": "home"}],
        "phones": [{"value": "+44 (20) 7946-0000", "primary": True, "label": "mobile"}],
    }
    body = build_person(make_referral(), make_settings(), SCHEMA, existing=existing)
    assert body == {
        "emails": [
            {"value": "jane.doe@home.net", "primary": True, "label": "home"},
            {"value": "jane@acme.io", "primary": False, "label": "work"},
        ],
        "custom_fields": {COMPANY: "Acme Ltd"},  # the phone is the same number, written differently
    }


def test_update_body_from_a_search_result_and_when_nothing_changes() -> None:
    found = {"id": 5, "name": "Jane", "emails": ["JANE@acme.io"], "phones": []}
    body = build_person(make_referral(), make_settings(), SCHEMA, existing=found)
    assert "emails" not in body  # already there, ignoring case
    assert body["phones"] == [{"value": "+44 20 7946 0000", "primary": True, "label": "work"}]
    referral = make_referral(meta={})
    assert build_person(referral, make_settings(), SCHEMA, existing=found) == {}


def test_update_body_adds_a_primary_email_when_the_person_has_none() -> None:
    body = build_person(make_referral(meta={}), make_settings(), SCHEMA, existing={"id": 5, "emails": None})
    assert body == {"emails": [{"value": "jane@acme.io", "primary": True, "label": "work"}]}


def test_a_person_can_be_updated_even_without_a_first_name() -> None:
    body = build_person(
        make_referral(first_name="", meta={}), make_settings(), SCHEMA, existing={"emails": []}
    )
    assert body["emails"][0]["value"] == "jane@acme.io"


# --- the lead ---


def test_build_lead_puts_custom_fields_flat() -> None:
    settings = make_settings(
        defaults=Defaults(
            owner_id=7,
            label_ids=[LEAD_LABEL],
            value=250,
            visible_to=3,
            fields={
                f"item:{BUDGET}": "EUR 1,500",
                f"item:{TOPICS}": "Sales",
                "item:expected_close_date": "31/12/2025",
            },
        )
    )
    body = build_lead(make_referral(), settings, SCHEMA, person_id=55)
    assert body == {
        "title": "Spring Friends: Jane",
        "person_id": 55,
        "owner_id": 7,
        "label_ids": [LEAD_LABEL],
        "value": {"amount": 250.0, "currency": "EUR"},
        "visible_to": "3",
        "expected_close_date": "2025-12-31",
        BUDGET: 1500.0,
        f"{BUDGET}_currency": "EUR",
        TOPICS: [7],
        CODE: "ueONFmUp",
        PLAN: 2,
        SEATS: 1200.0,
        REF_EMAIL: "rita@example.com",
        REF_NAME: "Rita",
        LINK: "https://acme.referral-factory.com/ueONFmUp",
    }
    assert "custom_fields" not in body


def test_lead_without_defaults_has_no_optional_keys() -> None:
    body = build_lead(make_referral(meta={}), make_settings(), SCHEMA, person_id=55)
    assert set(body) == {"title", "person_id", CODE, REF_EMAIL, REF_NAME, LINK}


def test_referrer_mappings_are_dropped_when_the_referrer_is_not_attached() -> None:
    body = build_lead(make_referral(), make_settings(attach_referrer=False), SCHEMA, person_id=55)
    assert REF_EMAIL not in body and REF_NAME not in body and body[CODE] == "ueONFmUp"


def test_referral_code_is_required() -> None:
    with pytest.raises(MappingError) as caught:
        build_lead(make_referral(code=""), make_settings(), SCHEMA, person_id=1)
    assert caught.value.message == (
        "This referral has no Referral Code, so its lead or deal could not be recognised when it converts."
    )
    settings = make_settings()
    settings.mappings = [m for m in settings.mappings if m.source != "code"]
    with pytest.raises(MappingError, match="Nothing is mapped to the Referral Code field"):
        build_lead(make_referral(), settings, SCHEMA, person_id=1)


def test_a_bad_optional_value_stops_the_lead_with_the_field_named() -> None:
    with pytest.raises(MappingError, match="'Gold' is not an option of 'Plan Interest'"):
        build_lead(make_referral(meta={"Plan": "Gold"}), make_settings(), SCHEMA, person_id=1)


def test_a_deleted_or_unfillable_target_stops_the_lead() -> None:
    settings = make_settings()
    settings.mappings.append(FieldMap("source", "item:" + "0" * 40, "Lead Channel"))
    with pytest.raises(MappingError, match="The Pipedrive field 'Lead Channel' was deleted"):
        build_lead(make_referral(), settings, SCHEMA, person_id=1)
    settings.mappings[-1] = FieldMap("source", "item:title")
    with pytest.raises(MappingError, match="cannot fill the Pipedrive field 'Title'"):
        build_lead(make_referral(), settings, SCHEMA, person_id=1)


def test_a_value_without_any_currency_is_an_error() -> None:
    schema = dataclasses.replace(SCHEMA, default_currency=None)
    with pytest.raises(
        MappingError, match="Choose the currency of the lead or deal value under Default fields"
    ):
        build_lead(make_referral(), make_settings(defaults=Defaults(value=10)), schema, person_id=1)


def test_a_mapped_value_fills_the_lead_value() -> None:
    settings = make_settings()
    settings.mappings.append(FieldMap("meta:Budget", "item:value"))
    body = build_lead(make_referral(meta={"Budget": "USD 300"}), settings, SCHEMA, person_id=1)
    assert body["value"] == {"amount": 300.0, "currency": "USD"}


def test_title_errors_stop_the_lead() -> None:
    with pytest.raises(MappingError, match="title for this referral is empty"):
        build_lead(make_referral(), make_settings(title="{meta:Nothing}"), SCHEMA, person_id=1)


# --- the deal ---


def test_build_deal_nests_custom_fields() -> None:
    settings = make_settings(
        "deal",
        defaults=Defaults(owner_id=7, label_ids=[5], value=99.5, currency="USD", visible_to=7,
                          fields={f"item:{BUDGET}": "1200"}),
    )  # fmt: skip
    body = build_deal(make_referral(), settings, SCHEMA, person_id=55)
    assert body == {
        "title": "Spring Friends: Jane",
        "person_id": 55,
        "pipeline_id": 1,
        "stage_id": 11,
        "owner_id": 7,
        "value": 99.5,
        "currency": "USD",
        "label_ids": [5],
        "visible_to": 7,
        "custom_fields": {
            BUDGET: {"value": 1200.0, "currency": "USD"},
            CODE: "ueONFmUp",
            PLAN: 2,
            SEATS: 1200.0,
            REF_EMAIL: "rita@example.com",
            REF_NAME: "Rita",
            LINK: "https://acme.referral-factory.com/ueONFmUp",
        },
    }
    assert not any(len(key) == 40 for key in body)  # v2 refuses custom keys at the top level


def test_deal_dates_and_times_use_v2_shapes() -> None:
    settings = make_settings("deal")
    settings.mappings += [
        FieldMap("signed_up_at", f"item:{START}"),
        FieldMap("meta:Close", "item:expected_close_date"),
    ]
    body = build_deal(make_referral(meta={"Close": "2025-06-30"}), settings, SCHEMA, person_id=1)
    assert body["custom_fields"][START] == "2025-02-28"
    assert body["expected_close_date"] == "2025-06-30"


def test_deal_labels_must_be_numbers() -> None:
    settings = make_settings("deal", defaults=Defaults(label_ids=[LEAD_LABEL]))
    with pytest.raises(MappingError, match="Lead labels cannot be put on deals"):
        build_deal(make_referral(), settings, SCHEMA, person_id=1)


# --- the preview ---


def test_preview_shows_every_value_as_the_owner_reads_it() -> None:
    settings = make_settings(
        defaults=Defaults(owner_id=7, label_ids=[LEAD_LABEL], value=250, visible_to=3,
                          fields={f"item:{TOPICS}": "sales;support"}),
    )  # fmt: skip
    result = preview(make_referral(), settings, SCHEMA)
    assert result.ok and result.errors == []
    assert result.person == build_person(make_referral(), settings, SCHEMA)
    assert result.item is not None and result.item["person_id"] is None and result.item[CODE] == "ueONFmUp"
    rows = {row.field: row for row in result.rows}
    assert rows["Person: Name"] == PreviewRow("Person: Name", "Jane", "First Name")
    assert rows["Person: Phone"].value == "+44 20 7946 0000"
    assert rows["Lead: Title"] == PreviewRow("Lead: Title", "Spring Friends: Jane", "Title")
    assert rows["Lead: Plan Interest"] == PreviewRow("Lead: Plan Interest", "Team", "Plan")
    assert rows["Lead: Topics"] == PreviewRow("Lead: Topics", "Sales, Support", "Default value")
    assert rows["Lead: Seats"].value == "1200"
    assert rows["Lead: Owner"].value == "Olivia"
    assert rows["Lead: Labels"].value == "Warm"
    assert rows["Lead: Value"].value == "250 EUR"
    assert rows["Lead: Visible to"].value == "Owner's visibility group"
    assert rows["Lead: Referrer Email Address"].source == "Referrer Email"


def test_preview_of_a_deal_names_pipeline_stage_and_money() -> None:
    settings = make_settings("deal", defaults=Defaults(fields={f"item:{BUDGET}": "99 SEK"}, label_ids=[5]))
    rows = {row.field: row.value for row in preview(make_referral(), settings, SCHEMA).rows}
    assert rows["Deal: Pipeline"] == "Sales" and rows["Deal: Stage"] == "Qualified"
    assert rows["Deal: Budget"] == "99 SEK"
    assert rows["Deal: Labels"] == "Hot"


def test_preview_collects_every_error_instead_of_stopping() -> None:
    referral = make_referral(email="", code="", meta={"Plan": "Gold", "Seats": "lots"})
    result = preview(referral, make_settings(), SCHEMA)
    assert not result.ok
    assert result.person is None and result.item is None
    assert result.errors == [
        "'Gold' is not an option of 'Plan Interest' (options: Starter, Team, Enterprise).",
        "'lots' is not a number, so it cannot go into 'Seats'.",
        "This referral has no email address, so it cannot be matched to a Pipedrive person.",
    ]
    rows = {row.field: row.value for row in result.rows}
    assert rows["Lead: Plan Interest"] == "Gold"  # the raw value, since it could not be converted


def test_preview_reports_title_errors() -> None:
    result = preview(make_referral(), make_settings(title="{nope}"), SCHEMA)
    assert result.errors[0].startswith("The title uses {nope}")
    assert result.person is not None and result.item is None
