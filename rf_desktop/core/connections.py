"""Talking to the two accounts outside the sync loop: building clients from the settings, checking a
token, fetching the Pipedrive schema that fills the mapping dropdowns, creating the Referral Code field.

The GUI's "Test connection" and "Refresh" buttons and the engine both come through here, so a check in
the window behaves exactly like the sync will.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from rf_desktop.core.config import DEFAULT_PD_BASE_URL, Settings
from rf_desktop.core.http import ApiError
from rf_desktop.core.pipedrive import PipedriveClient
from rf_desktop.core.ratelimit import BudgetTracker, BurstLimiter
from rf_desktop.core.referral_factory import ReferralFactoryClient
from rf_desktop.core.schema import FieldDef, PipedriveSchema


def pipedrive_api_base(base_url: str, company_domain: str | None) -> str:
    """Pipedrive asks integrations to call `{company}.pipedrive.com` once the company domain is known."""
    if company_domain and base_url.rstrip("/") == DEFAULT_PD_BASE_URL:
        return f"https://{company_domain}.pipedrive.com"
    return base_url.rstrip("/")


def referral_factory_client(settings: Settings, token: str) -> ReferralFactoryClient:
    return ReferralFactoryClient(settings.referral_factory.base_url, token)


def pipedrive_client(
    settings: Settings, token: str, *, burst: BurstLimiter | None = None, budget: BudgetTracker | None = None
) -> PipedriveClient:
    pd = settings.pipedrive
    return PipedriveClient(
        pipedrive_api_base(pd.base_url, pd.company_domain), token, burst=burst, budget=budget
    )


@dataclass(frozen=True)
class RFCheck:
    ok: bool
    message: str
    hint: str = ""
    campaigns: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class PDCheck:
    ok: bool
    message: str
    hint: str = ""
    user_name: str = ""
    company_name: str = ""
    company_domain: str = ""


def _url_problem(base_url: str) -> str | None:
    parsed = urlparse(base_url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        return f"“{base_url}” is not a web address. It should look like https://api.example.com/…"
    return None


def _before_calling(base_url: str, token: str, service: str, where_to_find: str) -> tuple[str, str] | None:
    """(message, hint) when there is no point calling: a malformed address or no token."""
    problem = _url_problem(base_url)
    if problem:
        return problem, "Fix the base URL under Advanced, or reset it to the default."
    if not token.strip():
        return f"No {service} token yet.", where_to_find
    return None


async def check_referral_factory(base_url: str, token: str) -> RFCheck:
    refused = _before_calling(base_url, token, "Referral Factory", "Paste the API token from your campaign's settings.")
    if refused:
        return RFCheck(False, *refused)
    try:
        async with ReferralFactoryClient(base_url, token.strip()) as rf:
            campaigns = await rf.list_campaigns()
    except ApiError as error:
        return RFCheck(False, error.message, error.hint)
    count = len(campaigns)
    noun = "campaign" if count == 1 else "campaigns"
    return RFCheck(True, f"Connected to Referral Factory: {count} {noun} found.", "", campaigns)


async def check_pipedrive(base_url: str, token: str) -> PDCheck:
    refused = _before_calling(
        base_url, token, "Pipedrive", "Copy it from Pipedrive: Settings → Personal preferences → API."
    )
    if refused:
        return PDCheck(False, *refused)
    try:
        async with PipedriveClient(base_url, token.strip()) as pd:
            me = await pd.me()
    except ApiError as error:
        return PDCheck(False, error.message, error.hint)
    name = str(me.get("name") or "")
    company = str(me.get("company_name") or "")
    domain = str(me.get("company_domain") or "")
    return PDCheck(True, f"Connected to Pipedrive as {name} at {company}.", "", name, company, domain)


async def load_schema(pd: PipedriveClient) -> PipedriveSchema:
    """Everything the mapping needs from the account: about 80 tokens of the daily budget."""
    me = await pd.me()
    return PipedriveSchema.from_api(
        me,
        await pd.person_fields(),
        await pd.deal_fields(),
        await pd.lead_fields(),
        await pd.lead_labels(),
        await pd.pipelines(),
        await pd.stages(),
        users=await pd.users(),
    )


async def fetch_schema(base_url: str, token: str) -> PipedriveSchema:
    async with PipedriveClient(base_url, token) as pd:
        return await load_schema(pd)


async def create_referral_fields(base_url: str, token: str, names: list[str]) -> list[FieldDef]:
    """Create the lead/deal custom fields the integration writes to (text fields). Leads share the deal
    fields, so one set serves both modes."""
    created: list[FieldDef] = []
    async with PipedriveClient(base_url, token) as pd:
        for name in names:
            raw = await pd.create_deal_field(name, "varchar")
            created.append(
                FieldDef(
                    code=str(raw["field_code"]),
                    name=str(raw["field_name"]),
                    field_type="varchar",
                    is_custom=True,
                )
            )
    return created


async def campaign_fields(base_url: str, token: str, campaign_id: int) -> list[str]:
    """Labels of the campaign's custom form fields for the Person Invited (mappable as `meta:<label>`)."""
    async with ReferralFactoryClient(base_url, token) as rf:
        return invited_form_labels(await rf.get_campaign(campaign_id))


def invited_form_labels(campaign: Mapping[str, Any]) -> list[str]:
    """The labels of a campaign's form fields for the Person Invited, as Referral Factory lists them."""
    fields = (campaign.get("fields") or {}).get("person_invited") or []
    return [str(f["label"]) for f in fields if isinstance(f, dict) and f.get("label")]
