"""Settings: defaults, the JSON round-trip, sources, title templates, and every validation message."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from rf_desktop.core.config import (
    DEFAULT_PD_BASE_URL,
    DEFAULT_RF_BASE_URL,
    ConfigError,
    Defaults,
    FieldMap,
    Issue,
    QualificationRule,
    Settings,
    available_sources,
    check_campaigns,
    is_known_source,
    is_referrer_source,
    is_valid,
    source_label,
    template_parts,
    template_placeholders,
    validate,
)
from rf_desktop.core.schema import FieldDef, FieldOption, LeadLabel, PipedriveSchema, Pipeline, Stage, User

CODE = "a" * 40
PLAN = "b" * 40
REFERRER = "c" * 40
NUMBER = "d" * 40
RANGE = "e" * 40
LEAD_LABEL = "f08b42a0-4e75-11ea-9643-03698ef1cfd6"

SCHEMA = PipedriveSchema(
    company_domain="acme",
    user_name="Olivia",
    default_currency=None,
    person_fields=(FieldDef("name", "Name", "varchar"), FieldDef("owner_id", "Owner", "user")),
    deal_fields=(
        FieldDef("title", "Title", "varchar"),
        FieldDef("value", "Value", "monetary"),
        FieldDef("label_ids", "Label", "set", (FieldOption(5, "Hot"),)),
        FieldDef(CODE, "Referral Code", "varchar", is_custom=True),
        FieldDef(PLAN, "Plan Interest", "enum", (FieldOption(1, "Starter"), FieldOption(2, "Team")), True),
        FieldDef(REFERRER, "Referrer Email", "varchar", is_custom=True),
        FieldDef(NUMBER, "Seats", "double", is_custom=True),
        FieldDef(RANGE, "Trial", "daterange", is_custom=True),
    ),
    lead_fields=(FieldDef("was_seen", "Was seen", "boolean"),),
    pipelines=(Pipeline(1, "Sales"), Pipeline(2, "Partners")),
    stages=(Stage(11, "Qualified", 1, 1), Stage(12, "Demo", 1, 2), Stage(21, "Intro", 2, 1)),
    lead_labels=(LeadLabel(LEAD_LABEL, "Hot"),),
    users=(User(7, "Olivia"),),
    all_users=True,
)


def valid_settings(**changes: Any) -> Settings:
    settings = Settings()
    settings.referral_factory.campaign_ids = [1]
    settings.mappings.append(FieldMap("code", f"item:{CODE}", "Referral Code"))
    return dataclasses.replace(settings, **changes)


def deal_settings(**changes: Any) -> Settings:
    return valid_settings(**{"mode": "deal", "pipeline_id": 1, "stage_id": 11, **changes})


def messages(settings: Settings, schema: PipedriveSchema | None = None, severity: str = "error") -> list[str]:
    return [i.message for i in validate(settings, schema) if i.severity == severity]


def paths(settings: Settings, schema: PipedriveSchema | None = None) -> list[str]:
    return [i.path for i in validate(settings, schema) if i.severity == "error"]


# --- defaults and JSON ---


def test_defaults_match_the_product() -> None:
    settings = Settings()
    assert settings.referral_factory.base_url == DEFAULT_RF_BASE_URL
    assert settings.pipedrive.base_url == DEFAULT_PD_BASE_URL
    assert settings.mode == "lead"
    assert settings.title == "{campaign_name}: {first_name}"
    assert [(m.source, m.target) for m in settings.mappings] == [
        ("first_name", "person:name"),
        ("email", "person:email"),
    ]
    assert settings.duplicates == "update" and settings.attach_referrer
    assert settings.qualification.kind == "none"
    assert settings.sync.poll_seconds == 2 and settings.sync.watch_token_share == 0.10
    assert settings.referral_factory.sync_invited and not settings.referral_factory.sync_referring


def test_instances_do_not_share_mutable_defaults() -> None:
    a, b = Settings(), Settings()
    a.mappings.append(FieldMap("url", "item:x"))
    a.referral_factory.campaign_ids.append(3)
    assert len(b.mappings) == 2 and b.referral_factory.campaign_ids == []


def test_json_round_trip_through_text() -> None:
    settings = deal_settings(
        title="{meta:Company} via {source}",
        defaults=Defaults(
            owner_id=7,
            label_ids=[5],
            value=99.5,
            currency="EUR",
            visible_to=3,
            fields={f"item:{PLAN}": "Team"},
        ),
        qualification=QualificationRule("deal_stage", 1, 12),
        duplicates="keep",
    )
    settings.sync.daily_token_cap = 5000
    again = Settings.from_json(json.loads(json.dumps(settings.to_json())))
    assert again == settings


def test_from_json_fills_missing_keys_and_ignores_unknown_ones() -> None:
    settings = Settings.from_json(
        {"mode": "deal", "future_option": True, "sync": {"poll_seconds": 60, "x": 1}}
    )
    assert settings.mode == "deal"
    assert settings.sync.poll_seconds == 60
    assert settings.sync.watch_token_share == 0.10
    assert settings.mappings == Settings().mappings


def test_strict_from_json_names_unknown_keys_with_the_key_probably_meant() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_json(
            {
                "referral_factory": {"base_urll": "https://x.example", "campaign_ids": [1]},
                "pipedrive": {"pipeline_id": 1},
                "mappings": [{"source": "email", "target": "person:email", "lable": "Email"}],
                "colour": "blue",
            },
            strict=True,
        )
    message = str(caught.value)
    assert "referral_factory.base_urll (did you mean referral_factory.base_url?)" in message
    assert "pipedrive.pipeline_id (did you mean pipeline_id? It belongs there, not under pipedrive)" in message
    assert "mappings[0].lable (did you mean mappings[0].label?)" in message
    assert "colour (the top level takes referral_factory, pipedrive, mode" in message


def test_strict_from_json_accepts_every_key_it_writes() -> None:
    settings = Settings()
    settings.defaults.fields = {"item:" + PLAN: "Growth"}  # free keys: field targets
    assert Settings.from_json(settings.to_json(), strict=True) == settings


def test_missing_choices_are_told_apart_from_wrong_values() -> None:
    missing = [i for i in validate(Settings()) if i.severity == "error"]
    assert missing and all(i.missing for i in missing), missing
    settings = Settings()
    settings.sync.poll_seconds = 1
    settings.defaults.currency = "euro"
    wrong = {i.path for i in validate(settings) if i.severity == "error" and not i.missing}
    assert wrong == {"sync.poll_seconds", "defaults.currency"}


def test_check_campaigns_names_the_ones_the_account_lacks() -> None:
    settings = Settings()
    settings.referral_factory.campaign_ids = [1, 99]
    issues = check_campaigns(settings, [{"id": 1, "name": "Spring"}, {"id": 2, "name": "Partners"}])
    assert [i.message for i in issues] == [
        "Referral Factory has no campaign 99. Its campaigns are: 1 (Spring), 2 (Partners). Choose one of them."
    ]


def test_from_json_accepts_whole_numbers_for_floats() -> None:
    settings = Settings.from_json({"defaults": {"value": 100}, "sync": {"watch_token_share": 1}})
    assert settings.defaults.value == 100.0 and isinstance(settings.defaults.value, float)


def test_label_ids_keep_strings_and_ints() -> None:
    settings = Settings.from_json({"defaults": {"label_ids": [LEAD_LABEL, 5]}})
    assert settings.defaults.label_ids == [LEAD_LABEL, 5]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"mode": "contact"}, "settings.mode must be one of 'lead', 'deal', not 'contact'"),
        (
            {"referral_factory": {"campaign_ids": [1, "two"]}},
            "settings.referral_factory.campaign_ids[1] must be a whole number",
        ),
        ({"referral_factory": {"campaign_ids": 5}}, "campaign_ids must be a list"),
        ({"attach_referrer": "yes"}, "settings.attach_referrer must be true or false"),
        ({"sync": {"poll_seconds": True}}, "settings.sync.poll_seconds must be a whole number, not True"),
        ({"pipeline_id": "3"}, "settings.pipeline_id must be a whole number or nothing"),
        ({"mappings": [{"source": "email"}]}, "settings.mappings[0] has no target"),
        ({"mappings": ["email"]}, "settings.mappings[0] must be an object"),
        ({"defaults": {"fields": []}}, "settings.defaults.fields must be an object"),
        ({"sync": 3}, "settings.sync must be an object"),
        ({"qualification": {"kind": "when_paid"}}, "settings.qualification.kind must be one of"),
    ],
)
def test_wrong_types_raise_config_error_naming_the_place(data: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError, match="Settings are not valid") as caught:
        Settings.from_json(data)
    assert expected in str(caught.value)


def test_from_json_rejects_a_non_object() -> None:
    with pytest.raises(ConfigError, match="settings must be an object"):
        Settings.from_json([])  # type: ignore[arg-type]


def test_copy_is_deep() -> None:
    settings = valid_settings()
    copied = settings.copy()
    copied.mappings[0].target = "person:other"
    copied.defaults.fields["item:x"] = 1
    assert settings.mappings[0].target == "person:name" and not settings.defaults.fields
    assert dataclasses.replace(settings, mode="deal").mode == "deal"


# --- sources ---


def test_available_sources_order_and_labels() -> None:
    sources = available_sources(["Company", "Plan", "Company", ""])
    assert sources[:7] == [
        ("first_name", "First Name"),
        ("email", "Email"),
        ("code", "Referral Code"),
        ("url", "Referral Link"),
        ("source", "Source"),
        ("campaign_name", "Campaign Name"),
        ("signed_up_at", "Signed Up"),
    ]
    assert sources[7:9] == [("meta:Company", "Company"), ("meta:Plan", "Plan")]
    assert sources[9:] == [
        ("referrer.first_name", "Referrer First Name"),
        ("referrer.email", "Referrer Email"),
        ("referrer.code", "Referrer Referral Code"),
        ("referrer.url", "Referrer Referral Link"),
    ]


def test_source_helpers() -> None:
    assert source_label("meta:Company") == "Company"
    assert source_label("referrer.email") == "Referrer Email"
    assert source_label("mystery") == "mystery"
    assert is_known_source("meta:Anything") and not is_known_source("meta:")
    assert not is_known_source("last_name")
    assert is_referrer_source("referrer.code") and not is_referrer_source("code")


def test_referral_code_target_is_the_item_target_of_the_code() -> None:
    assert valid_settings().referral_code_target() == f"item:{CODE}"
    settings = Settings()
    settings.mappings.append(FieldMap("code", "person:x"))
    assert settings.referral_code_target() is None


# --- title templates ---


def test_template_parts_and_escaped_braces() -> None:
    assert template_parts("{campaign_name}: {{VIP}} { first_name }") == [
        ("campaign_name", True),
        (": ", False),
        ("{", False),
        ("VIP", False),
        ("}", False),
        (" ", False),
        ("first_name", True),
    ]
    assert template_placeholders("{meta:Company} / {referrer.email}") == ["meta:Company", "referrer.email"]
    assert template_placeholders("Referral") == []


@pytest.mark.parametrize("template", ["{first_name", "first_name}", "a { b"])
def test_lone_braces_are_config_errors(template: str) -> None:
    with pytest.raises(ConfigError, match="without its partner"):
        template_parts(template)


# --- validation ---


def test_valid_settings_have_no_issues_with_or_without_schema() -> None:
    assert validate(valid_settings()) == []
    assert validate(valid_settings(), SCHEMA) == []
    assert is_valid(valid_settings(), SCHEMA)
    assert validate(deal_settings(), SCHEMA) == []


def test_issue_is_frozen() -> None:
    issue = Issue("title", "x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        issue.message = "y"  # type: ignore[misc]
    assert issue.severity == "error"


def test_default_settings_need_a_campaign_and_a_referral_code() -> None:
    issues = validate(Settings())
    assert [i.path for i in issues] == ["referral_factory.campaign_ids", "mappings"]
    assert "Choose at least one Referral Factory campaign" in issues[0].message
    assert issues[1].message.startswith("Create the Referral Code field in Pipedrive")
    assert not is_valid(Settings())


def test_an_account_with_a_referral_code_field_is_asked_to_map_it_not_to_create_it() -> None:
    settings = valid_settings()
    settings.mappings = [m for m in settings.mappings if m.source != "code"]
    found = messages(settings, SCHEMA)
    assert found[0].startswith("Map 'Referral Code' to your Pipedrive field 'Referral Code'.")
    assert not any("Create the Referral Code field" in message for message in found)


def test_someone_must_be_sent() -> None:
    settings = valid_settings()
    settings.referral_factory.sync_invited = False
    assert paths(settings) == ["referral_factory.sync_invited"]
    settings.referral_factory.sync_referring = True
    assert paths(settings) == []


@pytest.mark.parametrize("since", [None, "", "31/01/2025", "2025-02-30", "2025-1-5"])
def test_backfill_since_needs_a_date(since: str | None) -> None:
    settings = valid_settings()
    settings.referral_factory.backfill = "since"
    settings.referral_factory.backfill_since = since
    assert "Enter the date to start from as YYYY-MM-DD" in messages(settings)[0]
    settings.referral_factory.backfill_since = "2025-01-31"
    assert messages(settings) == []


@pytest.mark.parametrize("url", ["api.pipedrive.com", "ftp://x.example", "", "https://"])
def test_base_urls_must_be_web_addresses(url: str) -> None:
    settings = valid_settings()
    settings.pipedrive.base_url = url
    settings.referral_factory.base_url = url
    assert paths(settings) == ["referral_factory.base_url", "pipedrive.base_url"]
    assert f"({DEFAULT_PD_BASE_URL})" in messages(settings)[1]
    settings.pipedrive.base_url = "http://127.0.0.1:8000/pd"
    settings.referral_factory.base_url = "http://127.0.0.1:8000/rf/api/v2"
    assert paths(settings) == []


def test_first_name_and_email_must_be_mapped() -> None:
    settings = valid_settings(mappings=[FieldMap("code", f"item:{CODE}")])
    found = messages(settings)
    assert found[0].startswith("Map 'First Name' to the Pipedrive person's 'Name'")
    assert found[1].startswith("Map 'Email' to the Pipedrive person's 'Email'")


def test_referral_code_mapped_to_a_person_field_is_explained() -> None:
    settings = valid_settings()
    settings.mappings.append(FieldMap("code", "person:" + "9" * 40))
    assert "not a person field" in messages(settings)[0]
    assert paths(settings) == ["mappings[3].target"]


def test_referral_code_field_must_hold_text() -> None:
    settings = valid_settings()
    settings.mappings[2] = FieldMap("code", f"item:{NUMBER}")
    assert messages(settings, SCHEMA) == [
        "The Referral Code field 'Seats' is a double field, but a code is text. Create a text field in "
        "Pipedrive and map 'Referral Code' to it."
    ]


def test_title_checks() -> None:
    assert messages(valid_settings(title="  "))[0].startswith("Enter a title for the lead or deal")
    assert "without its partner" in messages(valid_settings(title="{campaign_name"))[0]
    unknown = messages(valid_settings(title="{campaign} {first_name}"))
    assert len(unknown) == 1
    assert unknown[0].startswith("The title uses {campaign}, which is not a Referral Factory field.")
    assert "{campaign_name}" in unknown[0]
    assert messages(valid_settings(title="{meta:Company} / {referrer.first_name} {{x}}")) == []


def test_title_of_only_form_fields_is_a_warning() -> None:
    settings = valid_settings(title="{meta:Company}")
    assert messages(settings) == []
    assert "uses only campaign form fields" in messages(settings, severity="warning")[0]
    assert messages(valid_settings(title="Referral: {meta:Company}"), severity="warning") == []


def test_unknown_sources_and_missing_targets() -> None:
    settings = valid_settings()
    settings.mappings += [
        FieldMap("last_name", f"item:{REFERRER}"),
        FieldMap("url", ""),
        FieldMap("source", "deal:x"),
    ]
    assert paths(settings) == ["mappings[3].source", "mappings[4].target", "mappings[5].target"]
    found = messages(settings)
    assert (
        found[0] == "'last_name' is not a Referral Factory field. Pick another field or remove the mapping."
    )
    assert found[1] == "Pick the Pipedrive field that 'Referral Link' goes to."


def test_two_mappings_to_one_field() -> None:
    settings = valid_settings()
    settings.mappings += [FieldMap("source", f"item:{PLAN}"), FieldMap("campaign_name", f"item:{PLAN}")]
    assert messages(settings, SCHEMA) == [
        "The Pipedrive field 'Plan Interest' is filled by two mappings ('Source' and 'Campaign Name'). "
        "Remove one of them."
    ]


def test_mapping_to_the_title_field_is_refused() -> None:
    settings = valid_settings()
    settings.mappings.append(FieldMap("source", "item:title"))
    assert "comes from the Title setting" in messages(settings)[0]


def test_referrer_mappings_without_attaching_the_referrer_warn() -> None:
    settings = valid_settings(attach_referrer=False)
    settings.mappings.append(FieldMap("referrer.email", f"item:{REFERRER}"))
    assert messages(settings) == []
    assert (
        "'Referrer Email' is mapped, but attaching information" in messages(settings, severity="warning")[0]
    )


def test_deleted_field_is_named_from_the_remembered_label() -> None:
    settings = valid_settings()
    settings.mappings.append(FieldMap("source", "item:" + "0" * 40, "Plan Interest"))
    assert messages(settings, SCHEMA) == [
        "The Pipedrive field 'Plan Interest' was deleted. Pick another field or remove the mapping."
    ]
    settings.mappings[-1].label = None
    assert messages(settings, SCHEMA) == [
        f"The Pipedrive field '{'0' * 40}' was deleted. Pick another field or remove the mapping."
    ]


def test_lead_only_fields_in_deal_mode() -> None:
    settings = deal_settings()
    settings.mappings.append(FieldMap("source", "item:was_seen", "Was seen"))
    assert "'Was seen' exists only on leads" in messages(settings, SCHEMA)[0]


def test_fields_of_the_other_record_are_explained() -> None:
    settings = valid_settings(defaults=Defaults(fields={f"person:{PLAN}": "Team"}))
    settings.mappings.append(FieldMap("source", f"person:{REFERRER}"))
    assert messages(settings, SCHEMA) == [
        "'Referrer Email' is a lead/deal field, not a person field. Pick it from the right list.",
        "'Plan Interest' is a lead/deal field, not a person field. Remove this default and set it again "
        "in the right list.",
    ]


def test_unfillable_fields_are_refused() -> None:
    settings = valid_settings()
    settings.mappings += [FieldMap("source", f"item:{RANGE}"), FieldMap("url", "person:owner_id")]
    assert messages(settings, SCHEMA) == [
        "rf-desktop cannot fill the Pipedrive field 'Trial'. Pick another field.",
        "rf-desktop cannot fill the Pipedrive field 'Owner'. Pick another field.",
    ]


def test_defaults_checks_without_schema() -> None:
    settings = valid_settings(defaults=Defaults(value=-1, currency="euro", visible_to=2, label_ids=[5]))
    assert paths(settings) == [
        "defaults.value",
        "defaults.currency",
        "defaults.visible_to",
        "defaults.label_ids",
    ]
    found = messages(settings)
    assert found[0] == "The default value cannot be negative. Enter 0 or more."
    assert found[1] == "Write the currency as a three-letter code, for example EUR or USD."
    assert found[3] == "Deal labels cannot be put on leads. Choose the labels for new leads again."


def test_a_value_needs_a_currency_unless_the_account_has_one() -> None:
    settings = valid_settings(defaults=Defaults(value=100))
    assert messages(settings, SCHEMA) == ["Choose the currency of the default value."]
    assert messages(settings, dataclasses.replace(SCHEMA, default_currency="EUR")) == []


def test_labels_must_exist_and_suit_the_mode() -> None:
    assert messages(valid_settings(defaults=Defaults(label_ids=[LEAD_LABEL])), SCHEMA) == []
    assert messages(valid_settings(defaults=Defaults(label_ids=["1234"])), SCHEMA) == [
        "A label chosen for new leads was deleted in Pipedrive. Choose the labels again."
    ]
    assert messages(deal_settings(defaults=Defaults(label_ids=[5])), SCHEMA) == []
    assert messages(deal_settings(defaults=Defaults(label_ids=[LEAD_LABEL]))) == [
        "Lead labels cannot be put on deals. Choose the labels for new deals again."
    ]
    assert messages(deal_settings(defaults=Defaults(label_ids=[6])), SCHEMA) == [
        "A label chosen for new deals was deleted in Pipedrive. Choose the labels again."
    ]


def test_owner_must_still_be_a_user() -> None:
    assert messages(valid_settings(defaults=Defaults(owner_id=7)), SCHEMA) == []
    assert messages(valid_settings(defaults=Defaults(owner_id=8)), SCHEMA) == [
        "The owner chosen for new leads and deals is no longer a Pipedrive user. Choose another owner."
    ]
    # a schema that knows only the token's own user cannot tell
    partial = dataclasses.replace(SCHEMA, all_users=False)
    assert messages(valid_settings(defaults=Defaults(owner_id=8)), partial) == []


def test_default_field_values() -> None:
    fields = {
        f"item:{PLAN}": "Gold",
        "item:" + "0" * 40: "x",
        "nonsense": 1,
        f"item:{RANGE}": "2025-01-01",
        f"item:{REFERRER}": "kept",
    }
    settings = valid_settings(defaults=Defaults(fields=fields))
    assert paths(settings) == ["defaults.fields[nonsense]"]
    found = messages(settings, SCHEMA)
    assert found == [
        "'Gold' is not an option of 'Plan Interest' (options: Starter, Team). Pick one of the options.",
        f"A default value is set for a Pipedrive field that was deleted (item:{'0' * 40}). Remove it.",
        "'nonsense' is not a Pipedrive field. Remove this default value.",
        "rf-desktop cannot fill the Pipedrive field 'Trial'. Remove this default.",
    ]


def test_enum_defaults_accept_labels_in_any_case_and_set_lists() -> None:
    settings = valid_settings(defaults=Defaults(fields={f"item:{PLAN}": "team"}))
    assert messages(settings, SCHEMA) == []
    settings.defaults.fields[f"item:{PLAN}"] = ["Team", "Starter; Gold"]
    assert messages(settings, SCHEMA)[0].startswith("'Starter; Gold' is not an option")
    settings.defaults.fields[f"item:{PLAN}"] = "Team; Starter"
    assert messages(settings, SCHEMA) == []


def test_deal_mode_needs_a_pipeline_and_a_stage_of_it() -> None:
    settings = valid_settings(mode="deal")
    assert paths(settings) == ["pipeline_id", "stage_id"]
    assert messages(settings) == [
        "Choose the pipeline new deals go into.",
        "Choose the stage new deals start in.",
    ]
    assert messages(deal_settings(pipeline_id=9), SCHEMA) == [
        "The pipeline chosen for new deals was deleted in Pipedrive. Choose another."
    ]
    assert messages(deal_settings(stage_id=99), SCHEMA) == [
        "The stage chosen for new deals was deleted in Pipedrive. Choose another."
    ]
    assert messages(deal_settings(stage_id=21), SCHEMA) == [
        "The stage 'Intro' is not in the pipeline 'Sales'. Choose a stage of 'Sales'."
    ]
    assert messages(valid_settings(pipeline_id=None, stage_id=None), SCHEMA) == []  # leads need neither


@pytest.mark.parametrize(
    ("mode", "kind", "ok"),
    [
        ("lead", "lead_converted", True),
        ("lead", "deal_won", False),
        ("lead", "deal_stage", False),
        ("deal", "deal_won", True),
        ("deal", "lead_converted", False),
        ("deal", "lead_converted_stage", False),
    ],
)
def test_rule_and_mode_combinations(mode: str, kind: str, ok: bool) -> None:
    base = valid_settings() if mode == "lead" else deal_settings()
    settings = dataclasses.replace(base, qualification=QualificationRule(kind))  # type: ignore[arg-type]
    found = [i for i in validate(settings) if i.path == "qualification.kind"]
    assert (found == []) is ok


@pytest.mark.parametrize(("mode", "kind"), [("lead", "lead_converted_stage"), ("deal", "deal_stage")])
def test_stage_rules_need_a_pipeline_and_a_stage_of_it(mode: str, kind: str) -> None:
    base = valid_settings() if mode == "lead" else deal_settings()
    settings = dataclasses.replace(base, qualification=QualificationRule(kind))  # type: ignore[arg-type]
    assert messages(settings) == [
        "Choose the pipeline of the stage that makes a referral successful.",
        "Choose the stage at which a referral counts as successful.",
    ]
    settings.qualification = QualificationRule(kind, 1, 21)  # type: ignore[arg-type]
    assert paths(settings, SCHEMA) == ["qualification.stage_id"]
    settings.qualification = QualificationRule(kind, 5, 12)  # type: ignore[arg-type]
    assert messages(settings, SCHEMA) == [
        "The pipeline chosen for the rule was deleted in Pipedrive. Choose another."
    ]
    settings.qualification = QualificationRule(kind, 1, 12)  # type: ignore[arg-type]
    assert messages(settings, SCHEMA) == []


def test_deal_stage_rule_warnings() -> None:
    settings = deal_settings(qualification=QualificationRule("deal_stage", 1, 11))
    assert messages(settings, SCHEMA) == []
    assert "already at or past 'Qualified'" in messages(settings, SCHEMA, "warning")[0]
    settings.qualification = QualificationRule("deal_stage", 2, 21)
    assert messages(settings, SCHEMA, "warning") == [
        "New deals start in 'Sales', but the rule watches 'Partners'. A referral qualifies only if someone "
        "moves its deal to that pipeline."
    ]


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        ("poll_seconds", 1, "sync.poll_seconds"),
        ("poll_seconds", 100_000, "sync.poll_seconds"),
        ("watch_token_share", 0.0, "sync.watch_token_share"),
        ("watch_token_share", 0.9, "sync.watch_token_share"),
        ("daily_token_cap", 10, "sync.daily_token_cap"),
        ("log_retention_days", 0, "sync.log_retention_days"),
    ],
)
def test_sync_limits(field: str, value: object, path: str) -> None:
    settings = valid_settings()
    setattr(settings.sync, field, value)
    assert paths(settings) == [path]
