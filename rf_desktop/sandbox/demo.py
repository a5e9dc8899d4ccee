"""The demo: people signing up through referral links, and a sales team working the leads and deals that
rf-desktop creates in the simulated Pipedrive, at a pace a person watching can follow.

`speed` scales every pause (tests run it hundreds of times faster); a seed makes its choices (who signs
up, what the sales team does next) repeatable.
Each step holds the sandbox lock only while it changes the state.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rf_desktop.sandbox.referral_factory import ReferralFactoryState, RfNotFoundError

if TYPE_CHECKING:
    from rf_desktop.sandbox.pipedrive import PipedriveState
    from rf_desktop.sandbox.state import SandboxState

SIGNUP_EVERY_SECONDS = (6.0, 14.0)  # about one sign-up every 10 s, with jitter
SALES_EVERY_SECONDS = (2.0, 6.0)
FIRST_SIGNUP_AFTER_SECONDS = 2.0  # someone opening the demo sees a referral arrive almost at once
NEW_REFERRER_CHANCE = 0.12
MAX_REFERRERS_PER_CAMPAIGN = 3
NEVER_CONVERTS_SHARE = 0.25  # some leads go nowhere, as in real life
LOST_CHANCE = 0.08
WON_EARLY_CHANCE = 0.12

# (first name, last name, ASCII form of the name for the email address)
NAMES = [
    ("José", "García", "jose.garcia"),
    ("Zoë", "Müller", "zoe.mueller"),
    ("Łukasz", "Nowak", "lukasz.nowak"),
    ("李雷", "Li", "li.lei"),
    ("Emma", "Johnson", "emma.johnson"),
    ("Liam", "O'Brien", "liam.obrien"),
    ("Priya", "Sharma", "priya.sharma"),
    ("Noah", "Williams", "noah.williams"),
    ("Chloé", "Dubois", "chloe.dubois"),
    ("Mateo", "Rossi", "mateo.rossi"),
    ("Aisha", "Bello", "aisha.bello"),
    ("Hannah", "Schmidt", "hannah.schmidt"),
    ("Kenji", "Tanaka", "kenji.tanaka"),
    ("Sofia", "Andersson", "sofia.andersson"),
    ("Oliver", "Smith", "oliver.smith"),
    ("Amélie", "Laurent", "amelie.laurent"),
    ("Ines", "Costa", "ines.costa"),
    ("Tomás", "Herrera", "tomas.herrera"),
]
COMPANIES = [
    "Bright Bakery",
    "Northwind Studio",
    "Café Lumière",
    "Kowalski & Syn",
    "Blue Fern Yoga",
    "Acme Plumbing",
]
DOMAINS = ["example.com", "example.org", "example.net"]


@dataclass(frozen=True)
class FakePerson:
    first_name: str
    email: str
    meta: list[dict[str, Any]]


def fake_person(
    rf: ReferralFactoryState,
    campaign_id: int,
    *,
    role: str = "person_invited",
    rng: random.Random | None = None,
) -> FakePerson:
    """A plausible person for the campaign's form: a name (sometimes not ASCII), a plus-addressed email
    no one in the campaign has yet, and values for the campaign's custom fields of that role."""
    rng = rng or random.Random()
    first, last, local = rng.choice(NAMES)
    domain = rng.choice(DOMAINS)
    taken = {u["email"].lower() for u in rf.users.values() if u["campaign_id"] == campaign_id}
    n = len(rf.users) + 1
    while f"{local}+{n}@{domain}" in taken:
        n += 1
    try:
        fields = rf.campaign(campaign_id)["fields"][role]
    except RfNotFoundError:
        fields = []
    meta = []
    for field in fields:
        value = _field_value(field, last, rng)
        if value is not None:
            meta.append({"field": field["label"], "value": value})
    return FakePerson(first, f"{local}+{n}@{domain}", meta)


def _field_value(field: dict[str, Any], last_name: str, rng: random.Random) -> str | None:
    if field["type"] == "select" and field["value"]:
        return str(rng.choice(field["value"]))
    return {
        "Last Name": last_name,
        "Company": rng.choice(COMPANIES),
        "Phone": f"+1 555 01{rng.randint(10, 99)}",
    }.get(field["label"])


class DemoSimulation:
    """Sign-ups and a sales team, as two loops on the server's event loop."""

    def __init__(self, state: SandboxState, *, seed: int | None = None) -> None:
        self.state = state
        self.rng = random.Random(seed)
        self._never_converts: dict[str, bool] = {}

    async def run(self) -> None:
        await asyncio.gather(
            self._every(self.sign_up, SIGNUP_EVERY_SECONDS, FIRST_SIGNUP_AFTER_SECONDS),
            self._every(self.sales_step, SALES_EVERY_SECONDS),
        )

    async def _every(
        self, step: Callable[[], object], pause: tuple[float, float], first: float | None = None
    ) -> None:
        wait = first if first is not None else self.rng.uniform(*pause)
        while True:
            await asyncio.sleep(wait / self.state.demo_speed)
            step()
            wait = self.rng.uniform(*pause)

    # --- sign-ups -----------------------------------------------------------------------------------

    def sign_up(self) -> dict[str, Any] | None:
        """One person invited signs up through a referrer's link (sometimes a new referrer joins first)."""
        with self.state.lock:
            if not self.state.demo_enabled:
                return None  # disabled (or reset) since this step was scheduled
            rf = self.state.rf
            campaigns = [c["id"] for _, c in sorted(rf.campaigns.items()) if c["status"] == "launched"]
            if not campaigns:
                return None
            campaign_id = self.rng.choice(campaigns)
            referrers = rf.referrers(campaign_id)
            if not referrers or (
                len(referrers) < MAX_REFERRERS_PER_CAMPAIGN and self.rng.random() < NEW_REFERRER_CHANCE
            ):
                person = fake_person(rf, campaign_id, role="person_referring", rng=self.rng)
                referrers.append(
                    rf.create_user(
                        campaign_id, person.first_name, person.email, source="Direct", meta=person.meta
                    )
                )
            referrer = self.rng.choice(referrers)
            person = fake_person(rf, campaign_id, rng=self.rng)
            return rf.sign_up(campaign_id, person.first_name, person.email, referrer["code"], person.meta)

    # --- the sales team -------------------------------------------------------------------------------

    def sales_step(self) -> str | None:
        """One thing a salesperson does: convert a lead, or move a deal on (or win or lose it).
        Returns what was done, e.g. 'convert <lead id>'."""
        with self.state.lock:
            if not self.state.demo_enabled:
                return None
            pd = self.state.pd
            actions = [("convert", lead["id"]) for lead in _open_leads(pd) if not self._ignored(lead["id"])]
            actions += [("advance", deal["id"]) for deal in _open_deals(pd)]
            if not actions:
                return None
            action, item_id = self.rng.choice(actions)
            if action == "convert":
                pd.convert_lead(item_id)
                return f"convert {item_id}"
            return self._advance(pd, pd.deals[item_id])

    def _ignored(self, lead_id: str) -> bool:
        if lead_id not in self._never_converts:
            self._never_converts[lead_id] = self.rng.random() < NEVER_CONVERTS_SHARE
        return self._never_converts[lead_id]

    def _advance(self, pd: PipedriveState, deal: dict[str, Any]) -> str:
        stages = _stage_ids(pd, deal["pipeline_id"])
        roll = self.rng.random()
        if roll < LOST_CHANCE:
            pd.set_deal_status(deal["id"], "lost")
            return f"lose {deal['id']}"
        if roll < LOST_CHANCE + WON_EARLY_CHANCE or deal["stage_id"] == stages[-1]:
            pd.set_deal_status(deal["id"], "won")
            return f"win {deal['id']}"
        position = stages.index(deal["stage_id"]) if deal["stage_id"] in stages else -1
        next_stage = stages[position + 1]
        pd.move_deal(deal["id"], next_stage)
        return f"move {deal['id']} {next_stage}"


def _open_leads(pd: PipedriveState) -> list[dict[str, Any]]:
    return [
        lead
        for lead in pd.leads.values()
        if lead["person_id"] and not lead["is_deleted"] and not lead["is_archived"]
    ]


def _open_deals(pd: PipedriveState) -> list[dict[str, Any]]:
    return [
        deal
        for deal in pd.deals.values()
        if deal["person_id"] and deal["status"] == "open" and not deal["is_deleted"]
    ]


def _stage_ids(pd: PipedriveState, pipeline_id: int) -> list[int]:
    stages = [s for s in pd.stages.values() if s["pipeline_id"] == pipeline_id and not s["is_deleted"]]
    return [s["id"] for s in sorted(stages, key=lambda s: (s["order_nr"], s["id"]))]
