"""Before the test referral sends anything: what it will create and where, the addresses it signs up
with, sample values for the campaign's form fields, and the problems that keep it from starting, each
pointing at the page that fixes it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rf_desktop.core import rules
from rf_desktop.core.account import Account
from rf_desktop.core.config import CONNECTIONS, Settings
from rf_desktop.core.engine import SyncEngine
from rf_desktop.core.events import AUTH_ERROR, BUDGET_EXHAUSTED, STOPPED
from rf_desktop.core.schema import FieldDef, Mode
from rf_desktop.core.trial.steps import RESUME, TEST_TAG, Problem

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True)
class Plan:
    """What the run will create, where, with which addresses; and what must be fixed first."""

    campaign_id: int | None
    campaign_name: str
    campaigns: tuple[tuple[int, str], ...]
    mode: Mode
    pipedrive_account: str
    referrer_email: str
    invited_email: str
    rule: str
    creates: tuple[str, ...]
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def make_plan(
    account: Account,
    engine: SyncEngine | None,
    *,
    email_base: str,
    stamp: str,
    campaign_id: int | None,
    names: Mapping[int, str],
) -> Plan:
    """The plan from the saved settings and the cached Pipedrive schema; `names` are campaign names
    already fetched (the window's cached campaign list fills the gaps)."""
    saved = account.saved_settings()
    settings = saved or Settings()
    schema = account.schema()
    campaigns = campaign_names(account, settings, names)
    if campaign_id is None or campaign_id not in settings.referral_factory.campaign_ids:
        campaign_id = next(iter(settings.referral_factory.campaign_ids), None)
    referrer_email, invited_email = plus_addresses(email_base, stamp)
    item = "lead" if settings.mode == "lead" else "deal"
    campaign_name = dict(campaigns).get(campaign_id or -1, f"campaign {campaign_id}")
    creates = (
        "In Referral Factory: a Person Referring, and a Person Invited who signs up through the referrer's link.",
        f"In Pipedrive: a person and a {item}, sent by the sync exactly as for a real referral.",
    )
    return Plan(
        campaign_id=campaign_id,
        campaign_name=campaign_name,
        campaigns=campaigns,
        mode=settings.mode,
        pipedrive_account=pipedrive_account(account),
        referrer_email=referrer_email,
        invited_email=invited_email,
        rule=rules.describe(settings.qualification, schema),
        creates=creates,
        problems=tuple(_problems(account, engine, saved, email_base)),
    )


def campaign_names(
    account: Account, settings: Settings, names: Mapping[int, str]
) -> tuple[tuple[int, str], ...]:
    known = dict(names)
    # the window keeps the campaign list it last fetched, which may be all there is before the names
    # are fetched
    for campaign in account.cached_campaigns():
        if isinstance(campaign, dict) and "id" in campaign and campaign.get("name"):
            known.setdefault(int(campaign["id"]), str(campaign["name"]))
    return tuple((cid, known.get(cid) or f"Campaign {cid}") for cid in settings.referral_factory.campaign_ids)


def pipedrive_account(account: Account) -> str:
    """The Pipedrive account the test goes to, as the owner knows it."""
    schema = account.schema()
    where = account.web_base().removeprefix("https://").removeprefix("http://")
    company = schema.company_domain if schema is not None else None
    if company and company not in where:
        where = f"{company} at {where}"
    if schema is not None and schema.user_name:
        return f"{where}, signed in as {schema.user_name}"
    return where


def _problems(
    account: Account, engine: SyncEngine | None, settings: Settings | None, email_base: str
) -> list[Problem]:
    if settings is None:
        return [
            Problem("rf-desktop is not set up yet.", "Connect both accounts and map the fields first.", CONNECTIONS)
        ]
    problems: list[Problem] = []
    if not is_email(email_base):
        problems.append(
            Problem(
                f"“{email_base}” is not an email address.",
                "Enter an address such as you@yourcompany.com; the test adds a +rf-test tag to it.",
            )
        )
    missing = account.missing_tokens()
    if missing:
        problems.append(
            Problem(f"The {' and '.join(missing)} token is missing.", "Add it on the Connections page.", CONNECTIONS)
        )
    problems += [Problem(issue.message, "", issue.page) for issue in account.errors(settings)]
    if not settings.referral_factory.sync_invited:
        problems.append(
            Problem(
                "Sending people invited to Pipedrive is off, so the test referral would not be sent.",
                "Turn on “People invited” on the Connections page.",
                CONNECTIONS,
            )
        )
    problems.extend(_engine_problems(engine))
    return problems


def _engine_problems(engine: SyncEngine | None) -> list[Problem]:
    if engine is None:
        return [
            Problem(
                "The sync is not running, so nothing would carry the test referral to Pipedrive.",
                "Restart rf-desktop.",
            )
        ]
    if engine.paused:
        return [Problem("The sync is paused. Resume it, then run the test again.", "", None, RESUME)]
    if engine.state == AUTH_ERROR:
        return [Problem(engine.message, "Fix the token on the Connections page.", CONNECTIONS)]
    if engine.state == STOPPED:
        return [
            Problem(
                "The sync has stopped, so nothing would carry the test referral to Pipedrive.",
                "Restart rf-desktop.",
            )
        ]
    if engine.state == BUDGET_EXHAUSTED:
        return [Problem(engine.message, "Run the test once the budget is back.")]
    return []


# --- addresses and sample values -------------------------------------------------------------------------

_last_stamp = ""


def unique_stamp(moment: datetime) -> str:
    """`YYYYMMDD-HHMMSS`, never the same twice in one process (two runs in one second would otherwise
    reuse addresses Referral Factory already holds)."""
    global _last_stamp
    stamp = moment.strftime("%Y%m%d-%H%M%S")
    if stamp <= _last_stamp:
        base, _, count = _last_stamp.partition("-n")
        stamp = f"{base}-n{int(count or 1) + 1}"
    _last_stamp = stamp
    return stamp


def is_email(text: str) -> bool:
    return bool(_EMAIL.fullmatch(text.strip()))


def plus_addresses(base: str, stamp: str) -> tuple[str, str]:
    """The referrer's and the invited user's addresses: `base` with a `+rf-test-<stamp>-referrer` /
    `-invited` tag, so both are new to Referral Factory and Pipedrive and easy to search for. A tag the
    base already has is replaced."""
    local, _, domain = base.strip().rpartition("@")
    local = local.split("+", 1)[0]
    tag = f"{TEST_TAG}-{stamp}"
    return f"{local}+{tag}-referrer@{domain}", f"{local}+{tag}-invited@{domain}"


_SAMPLES_BY_TYPE = {
    "int": "42",
    "double": "42.5",
    "monetary": "100",
    "boolean": "Yes",
    "time": "09:30",
    "phone": "+1 555 0100",
    "email": "rf-test@example.com",
}


def sample_value(label: str, rf_options: list[str], target: FieldDef | None, today: str) -> str | None:
    """A value for one of the campaign's form fields that the Pipedrive field it is mapped to accepts
    (None when only a Pipedrive record id would do)."""
    if target is not None and target.options:
        matching = [o for o in rf_options if target.option_by_label(o) is not None]
        return matching[0] if matching else target.options[0].label
    if rf_options:
        return rf_options[0]
    if target is None:
        return f"Test {label}"
    if target.field_type in ("user", "people", "org"):
        return None
    if target.field_type == "date":
        return today
    return _SAMPLES_BY_TYPE.get(target.field_type, f"Test {label}")


def sample_form_values(
    fields: Iterable[Mapping[str, Any]], targets: Mapping[str, FieldDef | None], today: str
) -> dict[str, str]:
    """Values for a campaign's form fields (label -> value), fitted to the Pipedrive fields they map to,
    so the mapping is tested with every field filled."""
    values: dict[str, str] = {}
    for form_field in fields:
        label = str(form_field.get("label") or "")
        if not label:
            continue
        options = form_field.get("value")
        rf_options = [str(o) for o in options] if isinstance(options, list) else []
        value = sample_value(label, rf_options, targets.get(label), today)
        if value is not None:
            values[label] = value
    return values
