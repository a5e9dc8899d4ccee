"""The integration settings: typed dataclasses, a JSON round-trip, and validation in plain words.

The settings follow Referral Factory's own Pipedrive integration step by step: which campaigns, Lead or
Deal, the qualification rule, the field mapping (First Name, Email, a Title and the Referral Code are
required), default fields, the person referring, and what to do with duplicates. Tokens are not settings:
they live in the keychain (`secrets.py`), so saving settings can never leak one.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal
from urllib.parse import urlsplit

from rf_desktop.core import rules, settings_json
from rf_desktop.core.rules import RuleKind
from rf_desktop.core.schema import (
    ITEM,
    PERSON,
    TEXT_FIELD_TYPES,
    FieldDef,
    Mode,
    PipedriveSchema,
    referral_code_field,
    split_target,
)

# Reading settings raises it, and so does a broken title template here.
from rf_desktop.core.settings_json import ConfigError as ConfigError

DEFAULT_RF_BASE_URL = "https://api.referral-factory.com/api/v2"
DEFAULT_PD_BASE_URL = "https://api.pipedrive.com"

META_PREFIX = "meta:"
REFERRER_PREFIX = "referrer."

# Referral Factory values that can be sent, in the order the mapping dropdown lists them.
SOURCES: tuple[tuple[str, str], ...] = (
    ("first_name", "First Name"),
    ("email", "Email"),
    ("code", "Referral Code"),
    ("url", "Referral Link"),
    ("source", "Source"),
    ("campaign_name", "Campaign Name"),
    ("signed_up_at", "Signed Up"),
)
REFERRER_SOURCES: tuple[tuple[str, str], ...] = (
    ("referrer.first_name", "Referrer First Name"),
    ("referrer.email", "Referrer Email"),
    ("referrer.code", "Referrer Referral Code"),
    ("referrer.url", "Referrer Referral Link"),
)
_SOURCE_LABELS = dict(SOURCES + REFERRER_SOURCES)

NAME_TARGET = "person:name"
EMAIL_TARGET = "person:email"
VISIBILITY_LEVELS = (1, 3, 5, 7)  # owner only, owner's group, owner's group and sub-groups, whole company
MIN_POLL_SECONDS = 2
MAX_POLL_SECONDS = 86_400


# --- the settings ---


@dataclass
class ReferralFactorySettings:
    base_url: str = DEFAULT_RF_BASE_URL
    campaign_ids: list[int] = field(default_factory=list)
    sync_invited: bool = True
    sync_referring: bool = False
    backfill: Literal["none", "all", "since"] = "none"
    backfill_since: str | None = None  # YYYY-MM-DD


@dataclass
class PipedriveSettings:
    base_url: str = DEFAULT_PD_BASE_URL
    company_domain: str | None = None


@dataclass
class FieldMap:
    """One mapping row: a Referral Factory value (see SOURCES) goes to `person:<code>` or `item:<code>`.
    `label` remembers the Pipedrive field's name when it was chosen, so a message can name a field that
    was deleted since."""

    source: str
    target: str
    label: str | None = None


@dataclass
class Defaults:
    """Fixed values for every new lead or deal (and fixed values for fields, by target). A mapped value
    wins over a default for the same field; the default fills in when the referral has no value."""

    owner_id: int | None = None
    label_ids: list[str | int] = field(default_factory=list)
    value: float | None = None
    currency: str | None = None
    visible_to: int | None = None
    fields: dict[str, Any] = field(default_factory=dict)  # target -> value; enum/set fields take labels


@dataclass
class QualificationRule:
    kind: RuleKind = "none"
    pipeline_id: int | None = None
    stage_id: int | None = None


@dataclass
class SyncSettings:
    # how often to look for new sign-ups: Referral Factory calls cost no Pipedrive tokens, and a look that
    # finds nothing is one or two calls, so every 2 s keeps sign-up -> lead within 3 s while using a tenth
    # of Referral Factory's rate limit (the engine looks less often if a look needed more calls)
    poll_seconds: int = 2
    watch_token_share: float = 0.10  # share of the daily Pipedrive token budget the conversion watch may use
    daily_token_cap: int | None = None  # the owner's cap on rf-desktop's own use per day
    log_retention_days: int = 90
    notify_qualified: bool = True
    notify_failed: bool = True


def _default_mappings() -> list[FieldMap]:
    return [FieldMap("first_name", NAME_TARGET, "Name"), FieldMap("email", EMAIL_TARGET, "Email")]


@dataclass
class Settings:
    referral_factory: ReferralFactorySettings = field(default_factory=ReferralFactorySettings)
    pipedrive: PipedriveSettings = field(default_factory=PipedriveSettings)
    mode: Mode = "lead"
    pipeline_id: int | None = None  # deals only: where new deals go
    stage_id: int | None = None  # deals only: the stage new deals start in
    title: str = "{campaign_name}: {first_name}"
    mappings: list[FieldMap] = field(default_factory=_default_mappings)
    defaults: Defaults = field(default_factory=Defaults)
    attach_referrer: bool = True
    duplicates: Literal["update", "keep"] = "update"
    qualification: QualificationRule = field(default_factory=QualificationRule)
    sync: SyncSettings = field(default_factory=SyncSettings)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any], *, strict: bool = False) -> Settings:
        """Missing keys take their defaults, wrong types raise ConfigError; unknown keys are ignored, or
        with `strict` refused (see settings_json.read)."""
        return settings_json.read(cls, data, strict=strict)

    def copy(self) -> Settings:
        return copy.deepcopy(self)

    def referral_code_target(self) -> str | None:
        """The lead/deal target the Referral Code is mapped to (the idempotency key in Pipedrive)."""
        return next(
            (m.target for m in self.mappings if m.source == "code" and m.target.startswith(f"{ITEM}:")), None
        )


# --- Referral Factory sources ---


def available_sources(campaign_fields: list[str]) -> list[tuple[str, str]]:
    """(source, label) pairs for the mapping dropdown: the built-in values, then the campaign's own form
    fields as `meta:<label>`, then the person referring."""
    meta = [(f"{META_PREFIX}{label}", label) for label in dict.fromkeys(campaign_fields) if label]
    return [*SOURCES, *meta, *REFERRER_SOURCES]


def source_label(source: str) -> str:
    if source.startswith(META_PREFIX):
        return source[len(META_PREFIX) :]
    return _SOURCE_LABELS.get(source, source)


def is_known_source(source: str) -> bool:
    return source in _SOURCE_LABELS or (source.startswith(META_PREFIX) and len(source) > len(META_PREFIX))


def is_referrer_source(source: str) -> bool:
    return source.startswith(REFERRER_PREFIX)


# --- title templates ---

# `{{` and `}}` are literal braces; `{name}` is a placeholder; a lone brace is a mistake.
_TEMPLATE_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def template_parts(template: str) -> list[tuple[str, bool]]:
    """Split a title template into (text, is_placeholder) parts. Raises ConfigError on a lone brace."""
    parts: list[tuple[str, bool]] = []
    position = 0
    for match in _TEMPLATE_TOKEN.finditer(template):
        if match.start() > position:
            parts.append((template[position : match.start()], False))
        token = match.group(0)
        if token in ("{{", "}}"):
            parts.append((token[0], False))
        elif match.group(1) is not None:
            parts.append((match.group(1).strip(), True))
        else:
            raise ConfigError(
                f"The title has a '{token}' without its partner. Write placeholders like {{first_name}}, "
                "or double the brace ({{ or }}) to show one."
            )
        position = match.end()
    if position < len(template):
        parts.append((template[position:], False))
    return parts


def template_placeholders(template: str) -> list[str]:
    return [text for text, is_placeholder in template_parts(template) if is_placeholder]


# --- validation ---

Severity = Literal["error", "warning"]


# The settings pages, and which one fixes each top-level part of the settings (the mappings otherwise).
CONNECTIONS = "connections"
MAPPING = "mapping"
RULES = "rules"
_PAGE_OF_SECTION = {
    "referral_factory": CONNECTIONS,
    "pipedrive": CONNECTIONS,
    "mode": RULES,
    "pipeline_id": RULES,
    "stage_id": RULES,
    "qualification": RULES,
    "sync": RULES,
}
_INDEX = re.compile(r"\[[^\]]*\]")


@dataclass(frozen=True)
class Issue:
    path: str  # where in the settings, e.g. "mappings[2].target"
    message: str  # what is wrong and what to do
    severity: Severity = "error"
    # something not chosen yet (settings still being set up), as opposed to a value that is wrong
    missing: bool = False

    @property
    def page(self) -> str:
        """The settings page where this issue is fixed: CONNECTIONS, MAPPING or RULES."""
        return _PAGE_OF_SECTION.get(_INDEX.sub("", self.path).split(".", 1)[0], MAPPING)


def is_valid(settings: Settings, schema: PipedriveSchema | None = None) -> bool:
    return not any(issue.severity == "error" for issue in validate(settings, schema))


def validate(settings: Settings, schema: PipedriveSchema | None = None) -> list[Issue]:
    """Everything that would stop the sync or surprise the owner. With the Pipedrive schema, also checks
    that every chosen field, pipeline, stage, owner and label still exists."""
    checks = (
        _check_referral_factory,
        _check_urls,
        _check_required_mappings,
        _check_title,
        _check_mappings,
        _check_defaults,
        _check_deal_placement,
        _check_rule,
        _check_sync,
    )
    return [issue for check in checks for issue in check(settings, schema)]


def check_campaigns(settings: Settings, campaigns: list[dict[str, Any]]) -> list[Issue]:
    """The chosen campaigns that the Referral Factory account does not have (`campaigns` as it lists them)."""
    names = {int(c["id"]): str(c.get("name") or "") for c in campaigns if isinstance(c.get("id"), int)}
    listing = ", ".join(f"{cid} ({name})" for cid, name in sorted(names.items())) or "none"
    return [
        Issue(
            "referral_factory.campaign_ids",
            f"Referral Factory has no campaign {cid}. Its campaigns are: {listing}. Choose one of them.",
        )
        for cid in settings.referral_factory.campaign_ids
        if cid not in names
    ]


def _check_referral_factory(settings: Settings, _schema: PipedriveSchema | None) -> list[Issue]:
    rf = settings.referral_factory
    issues = []
    if not rf.campaign_ids:
        issues.append(
            Issue(
                "referral_factory.campaign_ids",
                "Choose at least one Referral Factory campaign, so rf-desktop knows whose sign-ups to send.",
                missing=True,
            )
        )
    if not (rf.sync_invited or rf.sync_referring):
        issues.append(
            Issue(
                "referral_factory.sync_invited",
                "Choose who goes to Pipedrive: the people invited, the people referring, or both.",
                missing=True,
            )
        )
    if rf.backfill == "since" and not _is_date(rf.backfill_since):
        issues.append(
            Issue(
                "referral_factory.backfill_since",
                "Enter the date to start from as YYYY-MM-DD (for example 2025-01-31), or choose another "
                "option for earlier sign-ups.",
            )
        )
    return issues


def _is_date(text: str | None) -> bool:
    if not text or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _check_urls(settings: Settings, _schema: PipedriveSchema | None) -> list[Issue]:
    issues = []
    for path, url, service, default in (
        (
            "referral_factory.base_url",
            settings.referral_factory.base_url,
            "Referral Factory",
            DEFAULT_RF_BASE_URL,
        ),
        ("pipedrive.base_url", settings.pipedrive.base_url, "Pipedrive", DEFAULT_PD_BASE_URL),
    ):
        parsed = urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            issues.append(
                Issue(
                    path,
                    f"The {service} address '{url}' is not a web address. Reset it to the default "
                    f"({default}) unless you were given another one.",
                )
            )
    return issues


def _check_required_mappings(settings: Settings, schema: PipedriveSchema | None) -> list[Issue]:
    issues = []
    pairs = {(m.source, m.target) for m in settings.mappings}
    if ("first_name", NAME_TARGET) not in pairs:
        issues.append(
            Issue(
                "mappings",
                "Map 'First Name' to the Pipedrive person's 'Name'. Pipedrive needs a name to create "
                "a person.",
                missing=True,
            )
        )
    if ("email", EMAIL_TARGET) not in pairs:
        issues.append(
            Issue(
                "mappings",
                "Map 'Email' to the Pipedrive person's 'Email'. rf-desktop uses it to find people who are "
                "already in Pipedrive.",
                missing=True,
            )
        )
    code_maps = [(i, m) for i, m in enumerate(settings.mappings) if m.source == "code"]
    if not any(m.target.startswith(f"{ITEM}:") for _, m in code_maps):
        existing = referral_code_field(schema)
        first = (
            f"Map 'Referral Code' to your Pipedrive field '{existing.name}'."
            if existing is not None
            else "Create the Referral Code field in Pipedrive (a Lead/Deal text field), then map "
            "'Referral Code' to it."
        )
        issues.append(
            Issue(
                "mappings",
                f"{first} rf-desktop needs it to recognise the lead or deal when it converts.",
                missing=True,
            )
        )
    for index, mapping in code_maps:
        if mapping.target.startswith(f"{PERSON}:"):
            issues.append(
                Issue(
                    f"mappings[{index}].target",
                    "Map 'Referral Code' to a Lead/Deal field, not a person field: the code has to travel "
                    "with the lead or deal.",
                )
            )
    return issues


def _check_title(settings: Settings, _schema: PipedriveSchema | None) -> list[Issue]:
    if not settings.title.strip():
        return [
            Issue(
                "title",
                "Enter a title for the lead or deal, for example {campaign_name}: {first_name}. Pipedrive "
                "needs a title.",
                missing=True,
            )
        ]
    try:
        placeholders = template_placeholders(settings.title)
    except ConfigError as error:
        return [Issue("title", str(error))]
    issues = []
    for name in placeholders:
        if not is_known_source(name):
            known = ", ".join(f"{{{key}}}" for key, _ in SOURCES + REFERRER_SOURCES)
            issues.append(
                Issue(
                    "title",
                    f"The title uses {{{name}}}, which is not a Referral Factory field. Use one of {known}, "
                    "or {meta:<form field>} for a field of your campaign's form.",
                )
            )
    if (
        placeholders
        and all(p.startswith(META_PREFIX) for p in placeholders)
        and not _literal_text(settings.title)
    ):
        issues.append(
            Issue(
                "title",
                "The title uses only campaign form fields. A referral that leaves them empty gets no "
                "title and cannot be sent; add a field that is always filled, such as {campaign_name}.",
                "warning",
            )
        )
    return issues


def _literal_text(template: str) -> str:
    return "".join(text for text, is_placeholder in template_parts(template) if not is_placeholder).strip()


def _field_name(
    target: str, schema: PipedriveSchema | None, mode: Mode, remembered: str | None = None
) -> str:
    found = schema.field(target, mode) if schema else None
    if found is not None:
        return found.name
    if remembered:
        return remembered
    parsed = split_target(target)
    return parsed[1] if parsed else target


def _check_mappings(settings: Settings, schema: PipedriveSchema | None) -> list[Issue]:
    issues: list[Issue] = []
    first_use: dict[str, FieldMap] = {}
    for index, mapping in enumerate(settings.mappings):
        path = f"mappings[{index}]"
        label = source_label(mapping.source)
        if not is_known_source(mapping.source):
            issues.append(
                Issue(
                    f"{path}.source",
                    f"'{mapping.source}' is not a Referral Factory field. Pick another field or remove "
                    "the mapping.",
                )
            )
        if split_target(mapping.target) is None:
            issues.append(Issue(f"{path}.target", f"Pick the Pipedrive field that '{label}' goes to."))
            continue
        name = _field_name(mapping.target, schema, settings.mode, mapping.label)
        if mapping.target in first_use:
            other = source_label(first_use[mapping.target].source)
            issues.append(
                Issue(
                    f"{path}.target",
                    f"The Pipedrive field '{name}' is filled by two mappings ('{other}' and '{label}'). "
                    "Remove one of them.",
                )
            )
        first_use.setdefault(mapping.target, mapping)
        if is_referrer_source(mapping.source) and not settings.attach_referrer:
            issues.append(
                Issue(
                    path,
                    f"'{label}' is mapped, but attaching information about the person referring is off, so "
                    "it will not be sent. Turn it on or remove the mapping.",
                    "warning",
                )
            )
        if mapping.target == f"{ITEM}:title":
            issues.append(
                Issue(
                    f"{path}.target",
                    "The lead or deal title comes from the Title setting, not from a mapping. Remove this "
                    "mapping and put the field in the title instead.",
                )
            )
        elif schema is not None:
            issues.extend(_check_target(f"{path}.target", mapping.target, name, schema, settings))
    return issues


def _check_target(
    path: str, target: str, name: str, schema: PipedriveSchema, settings: Settings
) -> list[Issue]:
    found = schema.field(target, settings.mode)
    if found is None:
        if settings.mode == "deal" and schema.field(target, "lead") is not None:
            return [
                Issue(path, f"'{name}' exists only on leads. Choose 'Create a Lead', or pick a deal field.")
            ]
        misplaced = _on_other_record(target, schema, settings.mode)
        if misplaced:
            return [Issue(path, f"{misplaced} Pick it from the right list.")]
        return [
            Issue(
                path, f"The Pipedrive field '{name}' was deleted. Pick another field or remove the mapping."
            )
        ]
    if schema.is_fillable(target, settings.mode):
        if target == settings.referral_code_target() and found.field_type not in TEXT_FIELD_TYPES:
            return [
                Issue(
                    path,
                    f"The Referral Code field '{found.name}' is a {found.field_type} field, but a code "
                    "is text. Create a text field in Pipedrive and map 'Referral Code' to it.",
                )
            ]
        return []
    return [Issue(path, f"rf-desktop cannot fill the Pipedrive field '{found.name}'. Pick another field.")]


def _on_other_record(target: str, schema: PipedriveSchema, mode: Mode) -> str | None:
    """'Company' is a person field but was chosen as a lead/deal field (or the other way round)."""
    parsed = split_target(target)
    if parsed is None:
        return None
    entity, code = parsed
    other = ITEM if entity == PERSON else PERSON
    found = schema.field(f"{other}:{code}", mode)
    if found is None:
        return None
    where = (
        "a person field, not a lead/deal field"
        if other == PERSON
        else "a lead/deal field, not a person field"
    )
    return f"'{found.name}' is {where}."


def _check_defaults(settings: Settings, schema: PipedriveSchema | None) -> list[Issue]:
    defaults = settings.defaults
    issues: list[Issue] = []
    if defaults.value is not None and defaults.value < 0:
        issues.append(Issue("defaults.value", "The default value cannot be negative. Enter 0 or more."))
    if defaults.currency is not None and not re.fullmatch(r"[A-Z]{3}", defaults.currency):
        issues.append(
            Issue("defaults.currency", "Write the currency as a three-letter code, for example EUR or USD.")
        )
    if (
        defaults.value is not None
        and defaults.currency is None
        and (schema is None or not schema.default_currency)
    ):
        issues.append(Issue("defaults.currency", "Choose the currency of the default value."))
    if defaults.visible_to is not None and defaults.visible_to not in VISIBILITY_LEVELS:
        issues.append(
            Issue(
                "defaults.visible_to",
                "Choose who can see new leads and deals from the list of visibility options.",
            )
        )
    issues.extend(_check_labels(settings, schema))
    owner_unknown = schema is not None and schema.all_users and schema.user(defaults.owner_id) is None
    if defaults.owner_id is not None and owner_unknown:
        issues.append(
            Issue(
                "defaults.owner_id",
                "The owner chosen for new leads and deals is no longer a Pipedrive user. Choose another "
                "owner.",
            )
        )
    for target, value in defaults.fields.items():
        issues.extend(_check_default_field(f"defaults.fields[{target}]", target, value, settings, schema))
    return issues


def _check_labels(settings: Settings, schema: PipedriveSchema | None) -> list[Issue]:
    path = "defaults.label_ids"
    labels = settings.defaults.label_ids
    if settings.mode == "lead":
        if any(not isinstance(label, str) for label in labels):
            return [Issue(path, "Deal labels cannot be put on leads. Choose the labels for new leads again.")]
        if schema is not None and any(schema.lead_label(str(label)) is None for label in labels):
            return [
                Issue(path, "A label chosen for new leads was deleted in Pipedrive. Choose the labels again.")
            ]
        return []
    if any(isinstance(label, str) for label in labels):
        return [Issue(path, "Lead labels cannot be put on deals. Choose the labels for new deals again.")]
    known = {str(option.id) for option in schema.deal_labels()} if schema is not None else None
    if known and any(str(label) not in known for label in labels):
        return [
            Issue(path, "A label chosen for new deals was deleted in Pipedrive. Choose the labels again.")
        ]
    return []


def _check_default_field(
    path: str, target: str, value: Any, settings: Settings, schema: PipedriveSchema | None
) -> list[Issue]:
    if split_target(target) is None:
        return [Issue(path, f"'{target}' is not a Pipedrive field. Remove this default value.")]
    if schema is None:
        return []
    found = schema.field(target, settings.mode)
    if found is None:
        misplaced = _on_other_record(target, schema, settings.mode)
        if misplaced:
            return [Issue(path, f"{misplaced} Remove this default and set it again in the right list.")]
        return [
            Issue(
                path, f"A default value is set for a Pipedrive field that was deleted ({target}). Remove it."
            )
        ]
    if not schema.is_fillable(target, settings.mode):
        return [
            Issue(path, f"rf-desktop cannot fill the Pipedrive field '{found.name}'. Remove this default.")
        ]
    if found.field_type in ("enum", "set"):
        return [Issue(path, message) for message in _unknown_options(found, value)]
    return []


def option_labels(value: Any) -> list[str]:
    """The option labels in a default or mapped value: a list, or text separated by commas or semicolons."""
    items = value if isinstance(value, list) else re.split(r"[,;]", str(value))
    return [str(item).strip() for item in items if str(item).strip()]


def unknown_option_message(field_def: FieldDef, label: str) -> str:
    shown = [o.label for o in field_def.options[:10]]
    more = len(field_def.options) - len(shown)
    listing = ", ".join(shown) + (f" and {more} more" if more > 0 else "")
    return f"'{label}' is not an option of '{field_def.name}' (options: {listing or 'none'})."


def _unknown_options(field_def: FieldDef, value: Any) -> list[str]:
    return [
        f"{unknown_option_message(field_def, label)} Pick one of the options."
        for label in option_labels(value)
        if field_def.option_by_label(label) is None and field_def.option_by_id(label) is None
    ]


def _check_deal_placement(settings: Settings, schema: PipedriveSchema | None) -> list[Issue]:
    if settings.mode != "deal":
        return []
    issues = []
    if settings.pipeline_id is None:
        issues.append(Issue("pipeline_id", "Choose the pipeline new deals go into.", missing=True))
    if settings.stage_id is None:
        issues.append(Issue("stage_id", "Choose the stage new deals start in.", missing=True))
    if schema is not None:
        issues.extend(
            _check_stage_in_pipeline("", settings.pipeline_id, settings.stage_id, schema, "new deals")
        )
    return issues


def _check_stage_in_pipeline(
    prefix: str, pipeline_id: int | None, stage_id: int | None, schema: PipedriveSchema, purpose: str
) -> list[Issue]:
    pipeline = schema.pipeline(pipeline_id)
    if pipeline_id is not None and pipeline is None:
        return [
            Issue(
                f"{prefix}pipeline_id",
                f"The pipeline chosen for {purpose} was deleted in Pipedrive. Choose another.",
            )
        ]
    stage = schema.stage(stage_id)
    if stage_id is not None and stage is None:
        return [
            Issue(
                f"{prefix}stage_id",
                f"The stage chosen for {purpose} was deleted in Pipedrive. Choose another.",
            )
        ]
    if pipeline is not None and stage is not None and stage.pipeline_id != pipeline.id:
        return [
            Issue(
                f"{prefix}stage_id",
                f"The stage '{stage.name}' is not in the pipeline '{pipeline.name}'. Choose a stage of "
                f"'{pipeline.name}'.",
            )
        ]
    return []


def _check_rule(settings: Settings, schema: PipedriveSchema | None) -> list[Issue]:
    rule = settings.qualification
    problem = rules.mode_error(rule, settings.mode)
    if problem:
        return [Issue("qualification.kind", problem)]
    if not rules.needs_stage(rule.kind):
        return []
    issues = []
    if rule.pipeline_id is None:
        issues.append(
            Issue(
                "qualification.pipeline_id",
                "Choose the pipeline of the stage that makes a referral successful.",
                missing=True,
            )
        )
    if rule.stage_id is None:
        issues.append(
            Issue(
                "qualification.stage_id",
                "Choose the stage at which a referral counts as successful.",
                missing=True,
            )
        )
    if schema is None or issues:
        return issues
    issues.extend(
        _check_stage_in_pipeline("qualification.", rule.pipeline_id, rule.stage_id, schema, "the rule")
    )
    if not issues and rule.kind == "deal_stage":
        issues.extend(_deal_stage_warnings(settings, schema))
    return issues


def _deal_stage_warnings(settings: Settings, schema: PipedriveSchema) -> list[Issue]:
    """Rules that are valid but probably not what the owner meant."""
    rule = settings.qualification
    start, target = schema.stage(settings.stage_id), schema.stage(rule.stage_id)
    if start is None or target is None:
        return []
    if start.pipeline_id != target.pipeline_id:
        start_pipeline, target_pipeline = (
            schema.pipeline(start.pipeline_id),
            schema.pipeline(target.pipeline_id),
        )
        start_name = start_pipeline.name if start_pipeline else start.pipeline_id
        target_name = target_pipeline.name if target_pipeline else target.pipeline_id
        return [
            Issue(
                "qualification.pipeline_id",
                f"New deals start in '{start_name}', but the rule watches '{target_name}'. A referral "
                "qualifies only if someone moves its deal to that pipeline.",
                "warning",
            )
        ]
    if start.order_nr >= target.order_nr:
        return [
            Issue(
                "qualification.stage_id",
                f"New deals start in '{start.name}', which is already at or past '{target.name}', so every "
                "referral would qualify as soon as its deal is created. Choose a later stage.",
                "warning",
            )
        ]
    return []


def _check_sync(settings: Settings, _schema: PipedriveSchema | None) -> list[Issue]:
    sync = settings.sync
    issues = []
    if not MIN_POLL_SECONDS <= sync.poll_seconds <= MAX_POLL_SECONDS:
        issues.append(
            Issue(
                "sync.poll_seconds",
                f"Look for new sign-ups every {MIN_POLL_SECONDS} seconds at the most often, and at least "
                "once a day.",
            )
        )
    if not 0.01 <= sync.watch_token_share <= 0.5:
        issues.append(
            Issue(
                "sync.watch_token_share",
                "Let the conversion watch use between 1% and 50% of the daily Pipedrive budget; the rest is "
                "kept for sending referrals and for your other tools.",
            )
        )
    if sync.daily_token_cap is not None and sync.daily_token_cap < 100:
        issues.append(
            Issue(
                "sync.daily_token_cap",
                "A daily cap under 100 Pipedrive tokens is too small to send even one referral. Raise it or "
                "remove the cap.",
            )
        )
    if sync.log_retention_days < 1:
        issues.append(Issue("sync.log_retention_days", "Keep the sync log for at least one day."))
    return issues
