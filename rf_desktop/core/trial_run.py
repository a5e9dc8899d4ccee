"""The "send test referral" run: what Referral Factory's own guide asks the owner to do by hand (sign up as
a Person Referring in a private window, open that referral link in another browser, sign up as the Person
Invited, then look for the lead or deal in Pipedrive), done in one go and reported step by step.

The run signs both people up through the Referral Factory API, the Person Invited through the referrer's
code exactly as a real sign-up is attributed, records the invited user as a test referral (`is_test`) and
wakes the sync. From there the sync engine carries it to Pipedrive through the same code path as every
other referral: the run only listens to the engine's events (and looks at the store), then reads the
person and the lead or deal back to show which fields arrived. It can wait for the qualification rule,
and it removes exactly what it created when asked.

Nothing here knows about the sandbox, except `act_as_salesperson`, which the demo uses to play the sales
team through the sandbox's admin surface.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal, TypeVar

import httpx

from rf_desktop.core import rules
from rf_desktop.core.config import (
    META_PREFIX,
    Issue,
    Settings,
    is_referrer_source,
    source_label,
    validate,
)
from rf_desktop.core.connections import (
    pipedrive_api_base,
    pipedrive_client,
    referral_factory_client,
)
from rf_desktop.core.context import iso, utcnow
from rf_desktop.core.engine import PD_TOKEN, RF_TOKEN, SyncEngine
from rf_desktop.core.events import (
    AUTH_ERROR,
    BUDGET_EXHAUSTED,
    ERROR,
    NOT_CONFIGURED,
    PAUSED,
    STOPPED,
    Event,
    LogAdded,
    ReferralChanged,
    StateChanged,
)
from rf_desktop.core.events import RUNNING as SYNCING
from rf_desktop.core.http import (
    ApiError,
    AuthError,
    BudgetExhaustedError,
    ConnectionFailedError,
    NotFoundError,
    ValidationError,
)
from rf_desktop.core.intake import INVITED, REFERRING, to_referral
from rf_desktop.core.mapping import (
    DEFAULT_SOURCE,
    Api,
    MappingError,
    convert_value,
    referral_values,
    render_title,
)
from rf_desktop.core.pipedrive import PipedriveClient
from rf_desktop.core.readback import comparable, read_item_value, read_person_value, shown
from rf_desktop.core.referral_factory import ReferralFactoryClient
from rf_desktop.core.schema import FieldDef, Mode, PipedriveSchema
from rf_desktop.core.store import FAILED, PENDING, QUALIFIED, SKIPPED, LogRow, Referral, Store

log = logging.getLogger(__name__)

T = TypeVar("T")

# --- words the window and the tests share ---------------------------------------------------------------

StepState = Literal["running", "done", "failed", "skipped"]
RUNNING: Final = "running"
DONE: Final = "done"
FAILED_STEP: Final = "failed"
SKIPPED_STEP: Final = "skipped"

CHECKED = "connections checked"
REFERRER = "referrer created"
INVITED_STEP = "invited user created"
SEEN = "seen by the sync"
PERSON = "person found or created"
ITEM = "lead/deal created"
FIELDS = "fields read back"
QUALIFIED_STEP = "qualified"
CLEANED = "cleaned up"
RUN_STEPS = (CHECKED, REFERRER, INVITED_STEP, SEEN, PERSON, ITEM, FIELDS)

# the settings pages a problem is fixed on
CONNECTIONS = "connections"
MAPPING = "mapping"
RULES = "rules"
RESUME = "resume"  # Problem.action: resuming the sync fixes it

DEFAULT_EMAIL_BASE = "owner@example.com"
REFERRER_NAME = "Test Referrer"
INVITED_NAME = "Test Invited"
TEST_TAG = "rf-test"
LOG_ACTION = "test referral"
TEST_REMOVED = "Test removed"
ALREADY_GONE = "already gone"
PERSON_CREATED = "person created"
PERSON_MATCHED = "person matched"
WEB_PATHS = {"person": "person/{id}", "lead": "leads/inbox/{id}", "deal": "deal/{id}"}

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PAGE_OF_SECTION = {
    "referral_factory": CONNECTIONS,
    "pipedrive": CONNECTIONS,
    "mode": RULES,
    "pipeline_id": RULES,
    "stage_id": RULES,
    "qualification": RULES,
    "sync": RULES,
}
_RATE_LIMITED = "HTTP 429"
V1: Final = "v1"
V2: Final = "v2"


def settings_page(issue: Issue) -> str:
    """The settings page where a validation issue is fixed: connections, mapping or rules."""
    section = re.sub(r"\[[^\]]*\]", "", issue.path).split(".", 1)[0]
    return _PAGE_OF_SECTION.get(section, MAPPING)


def seconds_text(seconds: float) -> str:
    """A step's duration as the owner reads it: "< 0.1 s", "2.4 s", "3:05 min"."""
    if seconds < 0.05:
        return "< 0.1 s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)}:{int(seconds % 60):02d} min"


def moment_text(stamp: str | None) -> str:
    """An ISO time from an API as the owner reads it: "2025-03-01 09:30 UTC" (just the date at midnight)."""
    if not stamp:
        return ""
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    if (moment.hour, moment.minute, moment.second) == (0, 0, 0):
        return f"{moment:%Y-%m-%d}"
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def step_title(step: str, mode: Mode = "lead") -> str:
    """What a step means, in the owner's words."""
    item = "lead" if mode == "lead" else "deal"
    return {
        CHECKED: "Check both connections",
        REFERRER: "Sign up the Person Referring",
        INVITED_STEP: "Sign up the Person Invited through the referral link",
        SEEN: "The sync picks up the test referral",
        PERSON: "Pipedrive person found or created",
        ITEM: f"Pipedrive {item} created",
        FIELDS: "Fields read back from Pipedrive",
        QUALIFIED_STEP: "Referral qualified in Referral Factory",
        CLEANED: "Test records removed",
    }.get(step, step)


# --- what the run reports ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepUpdate:
    """One step's news. `seconds` is the time the step has taken so far (all of it once done or failed);
    `settings_page` names the page that fixes a failure; `data` carries ids, links and field checks."""

    step: str
    state: StepState
    seconds: float
    detail: str
    hint: str = ""
    settings_page: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Problem:
    """Something that keeps the test from starting, and where to fix it."""

    message: str
    hint: str = ""
    settings_page: str | None = None
    action: str | None = None  # RESUME: the sync is paused


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


@dataclass(frozen=True)
class FieldCheck:
    """One value the mapping sends, as read back from Pipedrive. `arrived` is None when there was nothing
    to compare (the person already existed, or the referral had no value for it)."""

    record: str  # "Person", "Lead" or "Deal"
    field: str  # the Pipedrive field's name
    value: str  # what Pipedrive holds now
    source: str  # where rf-desktop took the value from
    expected: str
    arrived: bool | None
    note: str = ""


@dataclass(frozen=True)
class CleanupItem:
    service: str  # "Referral Factory" or "Pipedrive"
    kind: str  # "user", "person", "lead" or "deal"
    ident: int | str
    label: str


@dataclass(frozen=True)
class CleanupReport:
    removed: tuple[str, ...]
    kept: tuple[str, ...]
    failed: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass
class Created:
    """What this run made (or found) so far; filled in as the steps happen."""

    referrer_id: int | None = None
    referrer_email: str = ""
    referrer_code: str = ""
    referrer_url: str = ""
    invited_id: int | None = None
    invited_email: str = ""
    campaign_name: str = ""
    company: str = ""
    # Referral Factory users whose rows this run put in the store (the invited user; the referrer too when
    # people referring are synced)
    tracked: list[int] = field(default_factory=list)


class StepFailed(Exception):
    def __init__(
        self, message: str, hint: str = "", settings_page: str | None = None, action: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.settings_page = settings_page
        self.action = action


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


# --- the run ----------------------------------------------------------------------------------------------

TokenSource = Callable[[str], str | None]
RfFactory = Callable[[Settings, str], ReferralFactoryClient]
PdFactory = Callable[..., PipedriveClient]


def _local_now() -> datetime:
    return datetime.now().astimezone()


class TrialRun:
    """One test referral. Make a new one for every run; `run()` can be called once.

    `on_update` receives every StepUpdate; `on_event` receives the sync log rows and referral changes the
    run itself makes (the window forwards them like the engine's own), both on the running loop.
    `timeout` bounds the wait for the sync to bring the referral to Pipedrive; `poll` is how often the
    store is looked at when no event arrives; `nudge_every` is how often the sync is asked to look at
    Pipedrive again while waiting for a qualification (each look costs a few Pipedrive API tokens)."""

    def __init__(
        self,
        store: Store,
        engine: SyncEngine | None,
        tokens: TokenSource,
        *,
        email_base: str = DEFAULT_EMAIL_BASE,
        campaign_id: int | None = None,
        on_update: Callable[[StepUpdate], None] | None = None,
        on_event: Callable[[Event], None] | None = None,
        timeout: float = 120.0,
        poll: float = 0.5,
        nudge_every: float = 15.0,
        rf_factory: RfFactory = referral_factory_client,
        pd_factory: PdFactory = pipedrive_client,
        now: Callable[[], datetime] = _local_now,
    ) -> None:
        self.store = store
        self.engine = engine
        self._tokens = tokens
        self.email_base = email_base.strip() or DEFAULT_EMAIL_BASE
        self.campaign_id = campaign_id
        self._on_update = on_update
        self._on_event = on_event
        self.timeout = timeout
        self.poll = poll
        self.nudge_every = nudge_every
        self._rf_factory = rf_factory
        self._pd_factory = pd_factory
        self._now = now
        self.stamp = unique_stamp(now())
        self.started_at: datetime | None = None
        self.steps: dict[str, StepUpdate] = {}
        self.fields: list[FieldCheck] = []
        self.created = Created()
        self.cleanup_report: CleanupReport | None = None
        self.seconds: float | None = None
        self._plan: Plan | None = None
        self._settings: Settings | None = None
        self._step: str | None = None
        self._step_started = 0.0
        self._run_started = 0.0
        self._started = False
        self._wake = asyncio.Event()
        self._seen: set[int] = set()
        self._person_actions: dict[int, str] = {}
        self._engine_state: tuple[str, str] | None = None
        # the sync's last problem: a cycle that fails fast is back to "running" before a look can see it
        self._last_problem = ""
        self._waiting = ""
        self._names: dict[int, str] = {}
        # the run and the cleanup share the clients and the step bookkeeping: one at a time
        self._operation = asyncio.Lock()
        self._rf: ReferralFactoryClient | None = None
        self._pd: PipedriveClient | None = None

    # --- before sending anything -----------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        return self._settings or self.store.get_settings() or Settings()

    @property
    def schema(self) -> PipedriveSchema | None:
        # the sync keeps it fresh in the store (and fetches it first if it is missing)
        return self.store.get_schema()

    def plan(self) -> Plan:
        """What will be created and where, read from the saved settings and the cached Pipedrive schema;
        with the problems that keep the test from starting, each pointing at the page that fixes it."""
        saved = self.store.get_settings()
        settings = saved or Settings()
        schema = self.store.get_schema()
        campaigns = self._campaign_names(settings)
        campaign_id = self.campaign_id
        if campaign_id is None or campaign_id not in settings.referral_factory.campaign_ids:
            campaign_id = next(iter(settings.referral_factory.campaign_ids), None)
        referrer_email, invited_email = plus_addresses(self.email_base, self.stamp)
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
            pipedrive_account=self._account(settings, schema),
            referrer_email=referrer_email,
            invited_email=invited_email,
            rule=rules.describe(settings.qualification, schema),
            creates=creates,
            problems=tuple(self._problems(saved, schema)),
        )

    def _campaign_names(self, settings: Settings) -> tuple[tuple[int, str], ...]:
        names = dict(self._names)
        # the window keeps the campaign list it last fetched, which may be all there is before
        # `load_campaign_names`
        for campaign in self.store.get_kv("referral_factory_campaigns") or []:
            if isinstance(campaign, dict) and "id" in campaign and campaign.get("name"):
                names.setdefault(int(campaign["id"]), str(campaign["name"]))
        return tuple((cid, names.get(cid) or f"Campaign {cid}") for cid in settings.referral_factory.campaign_ids)

    async def load_campaign_names(self) -> None:
        """Ask Referral Factory for the campaigns' names, so the plan can name them (one call, no Pipedrive
        tokens). A failure leaves the ids: the run's first step reports connection problems properly."""
        # a client of its own: the run may start (and use the shared one) while this is under way
        try:
            async with self._rf_factory(self.settings, self._tokens(RF_TOKEN) or "") as rf:
                campaigns = await rf.list_campaigns()
        except ApiError as error:
            log.info("could not read the campaign names: %s", error.message)
            return
        self._names = {int(c["id"]): str(c.get("name") or "") for c in campaigns if "id" in c}

    @staticmethod
    def _account(settings: Settings, schema: PipedriveSchema | None) -> str:
        base = pipedrive_api_base(settings.pipedrive.base_url, settings.pipedrive.company_domain)
        where = schema.web_base(settings.pipedrive.base_url) if schema is not None else base
        where = where.removeprefix("https://").removeprefix("http://")
        company = schema.company_domain if schema is not None else None
        if company and company not in where:
            where = f"{company} at {where}"
        if schema is not None and schema.user_name:
            return f"{where}, signed in as {schema.user_name}"
        return where

    def _problems(self, settings: Settings | None, schema: PipedriveSchema | None) -> list[Problem]:
        if settings is None:
            return [
                Problem(
                    "rf-desktop is not set up yet.",
                    "Connect both accounts and map the fields first.",
                    CONNECTIONS,
                )
            ]
        problems: list[Problem] = []
        if not is_email(self.email_base):
            problems.append(
                Problem(
                    f"“{self.email_base}” is not an email address.",
                    "Enter an address such as you@yourcompany.com; the test adds a +rf-test tag to it.",
                )
            )
        missing = [
            name for key, name in ((RF_TOKEN, "Referral Factory"), (PD_TOKEN, "Pipedrive")) if not self._tokens(key)
        ]
        if missing:
            problems.append(
                Problem(
                    f"The {' and '.join(missing)} token is missing.",
                    "Add it on the Connections page.",
                    CONNECTIONS,
                )
            )
        for issue in validate(settings, schema):
            if issue.severity == "error":
                problems.append(Problem(issue.message, "", settings_page(issue)))
        if not settings.referral_factory.sync_invited:
            problems.append(
                Problem(
                    "Sending people invited to Pipedrive is off, so the test referral would not be sent.",
                    "Turn on “People invited” on the Connections page.",
                    CONNECTIONS,
                )
            )
        problems.extend(self._engine_problems())
        return problems

    def _engine_problems(self) -> list[Problem]:
        engine = self.engine
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

    # --- the run ---------------------------------------------------------------------------------------

    async def run(self) -> bool:
        """Run every step; True when all of them succeeded. Failures are reported as step updates (and
        in the sync log), not raised. Cancelling the task stops the run and says what exists."""
        if self._started:
            raise RuntimeError("This test referral has already run; start a new one.")
        self._started = True
        async with self._operation:
            return await self._run()

    async def _run(self) -> bool:
        plan = self._plan = self.plan()
        self.started_at = self._now()
        self._run_started = time.monotonic()
        unsubscribe = self.engine.subscribe(self._heard) if self.engine is not None else None
        self._log(
            "info",
            f"Test referral started: {plan.invited_email}, invited by {plan.referrer_email}, "
            f"in “{plan.campaign_name}”.",
        )
        try:
            await self._run_steps(plan)
        except StepFailed as failure:
            self._fail(failure)
        except asyncio.CancelledError:
            self._fail(StepFailed("Stopped before it finished.", self._leftover_hint()), quiet=True)
            self._log("warning", f"Test referral stopped after {self._elapsed():.1f} s. {self._leftovers()}")
            raise
        finally:
            if unsubscribe is not None:
                unsubscribe()
            await self._close_clients()
            self.seconds = self._elapsed()
        ok = all(update.state == DONE for update in self.steps.values())
        if ok:
            self._log("info", f"Test referral finished in {self.seconds:.1f} s.")
        else:
            self._log("warning", f"Test referral ended with a problem after {self.seconds:.1f} s.")
        return ok

    async def _run_steps(self, plan: Plan) -> None:
        if not plan.ok:
            self._begin(CHECKED, "Checking the configuration…")
            first = plan.problems[0]
            raise StepFailed(first.message, first.hint, first.settings_page, first.action)
        assert plan.campaign_id is not None
        self._settings = self.store.get_settings()
        campaign = await self._check_connections(plan.campaign_id)
        referrer = await self._sign_up_referrer(plan, campaign)
        invited = await self._sign_up_invited(plan, campaign, referrer)
        await self._follow_the_sync(int(invited["id"]))
        await self._read_back(int(invited["id"]))

    async def _check_connections(self, campaign_id: int) -> dict[str, Any]:
        self._begin(CHECKED, "Checking the Referral Factory and Pipedrive tokens…")
        campaign = await self._call(self._rf_client().get_campaign(campaign_id))
        me = await self._call(self._pd_client().me())
        self.created.campaign_name = str(campaign.get("name") or f"Campaign {campaign_id}")
        self.created.company = str(me.get("company_name") or me.get("company_domain") or "")
        self._done(
            CHECKED,
            f"Referral Factory (campaign “{self.created.campaign_name}”) and Pipedrive "
            f"({self.created.company or 'the account of this token'}) answered.",
            {"campaign": self.created.campaign_name, "company": self.created.company},
        )
        return campaign

    async def _sign_up_referrer(self, plan: Plan, campaign: Mapping[str, Any]) -> dict[str, Any]:
        self._begin(REFERRER, f"Signing up {plan.referrer_email} as the Person Referring…")
        form = (campaign.get("fields") or {}).get(REFERRING) or []
        user = await self._call(
            self._rf_client().create_user(
                int(campaign["id"]),
                REFERRER_NAME,
                plan.referrer_email,
                meta=sample_form_values(form, {}, self._now().date().isoformat()),
            )
        )
        created = self.created
        created.referrer_id, created.referrer_email = int(user["id"]), plan.referrer_email
        created.referrer_code, created.referrer_url = str(user.get("code") or ""), str(user.get("url") or "")
        if self.settings.referral_factory.sync_referring:
            self._keep_referrer_out_of_pipedrive(user)
        self._done(
            REFERRER,
            f"{plan.referrer_email} signed up as Referral Factory user {created.referrer_id}. "
            f"Referral link: {created.referrer_url}",
            {"user_id": created.referrer_id, "code": created.referrer_code, "url": created.referrer_url},
        )
        return user

    def _keep_referrer_out_of_pipedrive(self, user: dict[str, Any]) -> None:
        """People referring are synced too, but the test is about the person invited: its referrer is
        recorded as skipped, so the sync does not send it (and it is cleaned up with the rest)."""
        reason = "The test referral's Person Referring is not sent to Pipedrive."
        row = dataclasses.replace(
            to_referral(user, self.created.campaign_name, {}, iso(utcnow())),
            status=SKIPPED,
            status_reason=reason,
            is_test=True,
        )
        if not self.store.record_referral(row):
            current = self.store.get(row.rf_user_id)
            if current is not None and current.status == PENDING and current.person_id is None:
                self.store.update(row.rf_user_id, status=SKIPPED, status_reason=reason, is_test=True)
            else:
                self.store.update(row.rf_user_id, is_test=True)
        self.created.tracked.append(row.rf_user_id)
        self._announce(ReferralChanged(row.rf_user_id))

    async def _sign_up_invited(
        self, plan: Plan, campaign: Mapping[str, Any], referrer: dict[str, Any]
    ) -> dict[str, Any]:
        self._begin(
            INVITED_STEP, f"Signing up {plan.invited_email} through the referral link of {plan.referrer_email}…"
        )
        form = (campaign.get("fields") or {}).get(INVITED) or []
        user = await self._call(
            self._rf_client().create_user(
                int(campaign["id"]),
                INVITED_NAME,
                plan.invited_email,
                referrer=("code", self.created.referrer_code),
                meta=sample_form_values(form, self._form_targets(), self._now().date().isoformat()),
            )
        )
        rf_user_id = int(user["id"])
        self.created.invited_id, self.created.invited_email = rf_user_id, plan.invited_email
        referral = dataclasses.replace(
            to_referral(user, self.created.campaign_name, referrer, iso(utcnow())), is_test=True
        )
        # the sync may have found the new user on its own a moment ago: then it only needs marking
        if not self.store.record_referral(referral):
            self.store.update(rf_user_id, is_test=True)
        self.created.tracked.append(rf_user_id)
        self._announce(ReferralChanged(rf_user_id))
        assert self.engine is not None
        self.engine.sync_now()
        self._done(
            INVITED_STEP,
            f"{plan.invited_email} signed up through that link as Referral Factory user {rf_user_id}, "
            "recorded as a test referral.",
            {"user_id": rf_user_id, "code": referral.code, "own_referral_link": referral.url},
        )
        return user

    def _form_targets(self) -> dict[str, FieldDef | None]:
        """Form field label -> the Pipedrive field it is mapped to."""
        settings, schema = self.settings, self.schema
        targets: dict[str, FieldDef | None] = {}
        for mapping in settings.mappings:
            if mapping.source.startswith(META_PREFIX):
                found = schema.field(mapping.target, settings.mode) if schema is not None else None
                targets[mapping.source[len(META_PREFIX) :]] = found
        return targets

    async def _follow_the_sync(self, rf_user_id: int) -> None:
        settings = self.settings
        deadline = time.monotonic() + self.timeout
        self._begin(SEEN, "Waiting for the sync to pick up the test referral…")
        await self._wait_until(rf_user_id, lambda r: r.rf_user_id in self._seen, deadline, nudge=2.0)
        self._done(SEEN, "The sync picked up the test referral and is sending it to Pipedrive.")

        self._begin(PERSON, "Waiting for the Pipedrive person…")
        row = await self._wait_until(rf_user_id, lambda r: r.person_id is not None, deadline)
        assert row.person_id is not None
        created = self.person_created(rf_user_id)
        how = {
            True: f"created for {row.email}",
            False: f"matched by email: {row.email} was already in Pipedrive",
            None: f"found for {row.email}",
        }
        self._done(
            PERSON,
            f"Person {row.person_id} {how[created]}.",
            {"person_id": row.person_id, "created": created, "url": self.web_url("person", row.person_id)},
        )

        item = settings.mode
        self._begin(ITEM, f"Waiting for the Pipedrive {item}…")
        row = await self._wait_until(rf_user_id, lambda r: _item_of(r, item) is not None, deadline)
        item_id = _item_of(row, item)
        assert item_id is not None
        self._done(
            ITEM,
            f"{item.capitalize()} {item_id} created for person {row.person_id}.",
            {"kind": item, "id": item_id, "url": self.web_url(item, item_id)},
        )

    async def _read_back(self, rf_user_id: int) -> None:
        self._begin(FIELDS, "Reading the person and the lead or deal back from Pipedrive…")
        row = self.store.get(rf_user_id)
        assert row is not None and row.person_id is not None
        pd = self._pd_client()
        person = await self._call(pd.get_person(row.person_id))
        item: dict[str, Any] | None
        if self.settings.mode == "lead":
            item = await self._call(pd.get_lead(row.lead_id)) if row.lead_id else None
        else:
            item = await self._call(pd.get_deal(row.deal_id)) if row.deal_id is not None else None
        if self.schema is None:
            self._finish(
                FIELDS,
                SKIPPED_STEP,
                "The Pipedrive fields are not known yet, so nothing was compared.",
                "Refresh the fields on the Mapping page, then run the test again.",
                MAPPING,
            )
            return
        self.fields = self.check_fields(row, person, item, self.person_created(rf_user_id))
        missing = [c for c in self.fields if c.arrived is False]
        data = {"fields": list(self.fields)}
        if missing:
            names = ", ".join(f"{c.record}: {c.field}" for c in missing)
            self._finish(
                FIELDS,
                FAILED_STEP,
                f"{len(missing)} of {len(self.fields)} values did not arrive in Pipedrive: {names}.",
                "Check these fields on the Mapping page (a field that was changed or deleted in Pipedrive, "
                "or a value Pipedrive turned down).",
                MAPPING,
                data,
            )
            return
        checked = sum(1 for c in self.fields if c.arrived)
        self._done(FIELDS, f"All {checked} mapped values arrived in Pipedrive.", data)

    # --- checking the fields ---------------------------------------------------------------------------

    def check_fields(
        self,
        referral: Referral,
        person: Mapping[str, Any],
        item: Mapping[str, Any] | None,
        person_created: bool | None,
    ) -> list[FieldCheck]:
        """Each value the mapping sends (and each default field value), compared with what Pipedrive
        holds now. A person that existed before keeps its name (and with "keep the existing person", all
        its values), so those are shown but not judged."""
        settings, schema = self.settings, self.schema
        if schema is None:
            return []
        mode = settings.mode
        record = "Lead" if mode == "lead" else "Deal"
        checks: list[FieldCheck] = []
        if item is not None:
            expected_title = render_title(settings.title, referral_values(referral))
            title = str(item.get("title") or "")
            checks.append(FieldCheck(record, "Title", title, "Title", expected_title, title == expected_title))
        currency = settings.defaults.currency or schema.default_currency
        for target, (source, raw) in self._sent_values(referral).items():
            entity, _, code = target.partition(":")
            definition = schema.field(target, mode)
            name = definition.name if definition is not None else code
            api: Api = V2
            if entity == "person":
                actual = read_person_value(person, code)
                where = "Person"
            elif item is None:
                checks.append(FieldCheck(record, name, "", source, "", None, f"The {mode} is no longer in Pipedrive."))
                continue
            else:
                actual = read_item_value(item, code, mode)
                where, api = record, (V1 if mode == "lead" else V2)
            checks.append(self._compare(where, name, source, raw, actual, definition, api, currency, code))
        if person_created is False:
            checks = [self._unjudged_existing_person(c, settings) for c in checks]
        return checks

    def _sent_values(self, referral: Referral) -> dict[str, tuple[str, Any]]:
        """target -> (source label, value) as the mapping sends them: a default first, replaced by the
        referral's own value when it has one."""
        settings = self.settings
        chosen: dict[str, tuple[str, Any]] = {
            target: (DEFAULT_SOURCE, value)
            for target, value in settings.defaults.fields.items()
            if value not in (None, "", [])
        }
        values = referral_values(referral)
        for mapping in settings.mappings:
            if is_referrer_source(mapping.source) and not settings.attach_referrer:
                continue
            value = values.get(mapping.source)
            if value not in (None, "") or mapping.target not in chosen:
                chosen[mapping.target] = (source_label(mapping.source), value)
        return chosen

    @staticmethod
    def _compare(
        record: str,
        name: str,
        source: str,
        raw: Any,
        actual: Any,
        definition: FieldDef | None,
        api: Api,
        currency: str | None,
        code: str,
    ) -> FieldCheck:
        field_type = definition.field_type if definition is not None else "varchar"
        if raw in (None, ""):
            return FieldCheck(record, name, "", source, "", None, "The test referral has no value for it.")
        if definition is None:
            return FieldCheck(record, name, "", source, str(raw), False, "The Pipedrive field no longer exists.")
        try:
            expected = comparable(convert_value(raw, definition, api, currency=currency), field_type)
        except MappingError as error:
            return FieldCheck(record, name, "", source, str(raw), False, error.message)
        if record == "Person" and code in ("email", "phone"):
            # a person has lists of addresses and numbers: ours must be among them
            values = [comparable(v, field_type) for v in actual or []]
            folded = [v.casefold() if isinstance(v, str) else v for v in values]
            wanted = expected.casefold() if isinstance(expected, str) else expected
            value_text = ", ".join(str(v) for v in values)
            return FieldCheck(record, name, value_text, source, shown(expected, definition), wanted in folded)
        got = comparable(actual, field_type)
        arrived = got == expected
        note = "" if arrived else ("Empty in Pipedrive." if got is None else "Pipedrive holds another value.")
        return FieldCheck(record, name, shown(got, definition), source, shown(expected, definition), arrived, note)

    @staticmethod
    def _unjudged_existing_person(check: FieldCheck, settings: Settings) -> FieldCheck:
        if check.record != "Person":
            return check
        if settings.duplicates == "keep":
            note = "The person was already in Pipedrive and is left as it was (duplicates: keep)."
            return dataclasses.replace(check, arrived=None, note=note)
        if check.field == "Name":
            return dataclasses.replace(check, arrived=None, note="The existing person's name is kept.")
        return check

    # --- waiting for the sync --------------------------------------------------------------------------

    def _heard(self, event: Event) -> None:
        """An engine event (on the engine's loop, which is ours)."""
        if isinstance(event, ReferralChanged) and event.rf_user_id in self.created.tracked:
            row = self.store.get(event.rf_user_id)
            # "sending" lasts only while the push runs: catch it as it happens
            if row is not None and (row.status != PENDING or row.attempts or row.person_id is not None):
                self._seen.add(event.rf_user_id)
        elif isinstance(event, LogAdded) and event.row.rf_user_id in self.created.tracked:
            if event.row.action in (PERSON_CREATED, PERSON_MATCHED):
                self._person_actions[event.row.rf_user_id] = event.row.action
        elif isinstance(event, StateChanged):
            self._engine_state = (event.state, event.message)
            if event.state == ERROR:
                self._last_problem = event.message
        self._wake.set()

    def person_created(self, rf_user_id: int) -> bool | None:
        """True when the sync created the referral's Pipedrive person, False when it matched an existing
        one by email, None when the log does not say."""
        action = self._person_actions.get(rf_user_id)
        if action is None:
            rows = self.store.log_rows(text=str(rf_user_id), limit=200)
            action = next(
                (r.action for r in rows if r.rf_user_id == rf_user_id and r.action in (PERSON_CREATED, PERSON_MATCHED)),
                None,
            )
        return None if action is None else action == PERSON_CREATED

    async def _wait_until(
        self,
        rf_user_id: int,
        reached: Callable[[Referral], bool],
        deadline: float,
        *,
        nudge: float | None = None,
    ) -> Referral:
        """Wait for the referral's row to reach a state, waking on engine events and looking at the store
        every `poll` seconds besides. Fails at once when the sync cannot go on; says what it waits for."""
        last_nudge = time.monotonic()
        while True:
            self._wake.clear()
            row = self.store.get(rf_user_id)
            if row is None:
                raise StepFailed("The test referral is no longer in rf-desktop's database.")
            if row.status != PENDING:
                self._seen.add(rf_user_id)
            if reached(row):
                return row
            waiting = self._obstacle(row)
            if waiting:
                self._progress(waiting)
            now = time.monotonic()
            if now >= deadline:
                raise self._timed_out(waiting)
            if nudge is not None and now - last_nudge >= nudge and row.status == PENDING and self.engine:
                # a wake-up that arrives while the sync is busy with a cycle can be missed: ask again
                self.engine.sync_now()
                last_nudge = now
            await self._nap(min(self.poll, deadline - now))

    async def _nap(self, seconds: float) -> None:
        """Until the engine says something, or `seconds` pass. (Not `asyncio.wait_for`: on Python 3.11 it
        can swallow a cancellation that arrives as the event fires, and a closed wizard must stop the run.)"""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    def _obstacle(self, row: Referral) -> str:
        """Why the referral is not moving, for the step's detail; raises when it never will on its own."""
        if (row.status == FAILED and row.permanent) or row.status == SKIPPED:
            reason = row.status_reason or "The sync could not send it."
            page = CONNECTIONS if "token" in reason.casefold() else MAPPING
            raise StepFailed(f"The sync could not send the test referral: {reason}", "", page)
        state, message = self._engine_state or ("", "")
        if state == AUTH_ERROR:
            raise StepFailed(message, "Fix the token on the Connections page, then run the test again.", CONNECTIONS)
        if state == NOT_CONFIGURED:
            page = CONNECTIONS if "token" in message.casefold() else self._first_problem_page()
            raise StepFailed(message, "Fix it, then run the test again.", page)
        if state == BUDGET_EXHAUSTED:
            raise StepFailed(message, "The test referral stays queued and is sent when the budget is back.")
        if state == STOPPED:
            raise StepFailed(
                "The sync stopped before the test referral reached Pipedrive.",
                "Restart rf-desktop; the test referral is sent when the sync runs again.",
            )
        if state != SYNCING:
            # while a cycle runs, what held the referral up in the last one still stands
            self._waiting = self._waiting_reason(row, state, message)
        elif not self._waiting and self._last_problem:
            self._waiting = self._waiting_reason(row, ERROR, self._last_problem)
        return self._waiting

    @staticmethod
    def _waiting_reason(row: Referral, state: str, message: str) -> str:
        if state == PAUSED:
            return "The sync is paused: resume it and the test continues."
        retry = row.status_reason if row.status in (PENDING, FAILED) else None
        for text in (retry or "", message if state == ERROR else ""):
            if _RATE_LIMITED in text:
                return (
                    "Waiting for Pipedrive's rate limit: Pipedrive asked rf-desktop to slow down, and the "
                    "sync tries again on its own."
                )
        if retry:
            return f"Waiting: {retry}"
        if state == ERROR:
            return f"Waiting: the sync had a problem ({message})"
        return ""

    def _first_problem_page(self) -> str:
        issues = [i for i in validate(self.settings, self.schema) if i.severity == "error"]
        return settings_page(issues[0]) if issues else CONNECTIONS

    def _timed_out(self, waiting: str) -> StepFailed:
        where = f" {waiting}" if waiting else ""
        if "rate limit" in waiting:
            message = f"Still waiting for Pipedrive's rate limit after {self.timeout:.0f} s."
        else:
            message = f"The test referral did not reach Pipedrive within {self.timeout:.0f} s.{where}"
        return StepFailed(
            message,
            "The sync keeps trying: the test referral stays in the queue, marked as a test, and is sent as "
            "soon as it can (see the Sync log). Or remove it with Clean up.",
        )

    # --- qualification ---------------------------------------------------------------------------------

    def explain_rule(self) -> str:
        """When the test referral qualifies, and what someone has to do in Pipedrive for that."""
        return f"{rules.describe(self.settings.qualification, self.schema)} {self.what_to_do()}"

    def what_to_do(self) -> str:
        rule = self.settings.qualification
        stage = self.schema.stage(rule.stage_id) if self.schema is not None else None
        stage_name = f"“{stage.name}”" if stage else "the chosen stage"
        return {
            "none": "Set a rule on the Rules page to have rf-desktop qualify referrals.",
            "lead_converted": "In Pipedrive, convert the test lead into a deal.",
            "lead_converted_stage": (
                f"In Pipedrive, convert the test lead into a deal and move the deal to {stage_name} or later."
            ),
            "deal_stage": f"In Pipedrive, move the test deal to {stage_name} or later.",
            "deal_won": "In Pipedrive, mark the test deal as won.",
        }.get(rule.kind, "")

    async def wait_for_qualification(self, timeout: float) -> bool:
        """Wait until Referral Factory accepted the test referral's qualification; True when it did."""
        rf_user_id = self.created.invited_id
        if rf_user_id is None:
            raise RuntimeError("Send the test referral before waiting for its qualification.")
        if not rules.needs_watch(self.settings.qualification):
            self._begin(QUALIFIED_STEP, "")
            self._finish(QUALIFIED_STEP, SKIPPED_STEP, "No qualification rule is set.", self.what_to_do(), RULES)
            return False
        self._begin(QUALIFIED_STEP, f"Waiting for the qualification. {self.what_to_do()}")
        self._engine_state = None  # what the sync said during the run may be old news
        self._last_problem = ""
        unsubscribe = self.engine.subscribe(self._heard) if self.engine is not None else None
        try:
            row = await self._wait_for_qualified(rf_user_id, timeout)
        except StepFailed as failure:
            self._fail(failure)
            return False
        finally:
            if unsubscribe is not None:
                unsubscribe()
        self._done(
            QUALIFIED_STEP,
            f"Referral Factory accepted the qualification of {row.email} on {moment_text(row.qualified_at)}.",
            {"qualified_at": row.qualified_at},
        )
        return True

    async def _wait_for_qualified(self, rf_user_id: int, timeout: float) -> Referral:
        deadline = time.monotonic() + timeout
        if self.engine is not None:
            self.engine.sync_now()
        last_nudge = time.monotonic()
        while True:
            self._wake.clear()
            row = self.store.get(rf_user_id)
            if row is None:
                raise StepFailed("The test referral is no longer in rf-desktop's database.")
            if row.status == QUALIFIED:
                return row
            waiting = self._obstacle(row)
            if waiting:
                self._progress(waiting)
            now = time.monotonic()
            if now >= deadline:
                raise StepFailed(
                    f"Not qualified within {timeout:.0f} s.",
                    f"The sync keeps watching: the test referral qualifies as soon as the rule matches. "
                    f"{self.what_to_do()}",
                )
            if self.engine is not None and now - last_nudge >= self.nudge_every:
                self.engine.sync_now()  # look at Pipedrive now rather than at the next budgeted poll
                last_nudge = now
            await self._nap(min(self.poll, deadline - now))

    async def act_as_salesperson(self, admin_url: str) -> str:
        """Demo only: do in the sandbox what the rule waits for (convert the lead, move the deal to the
        rule's stage, or mark it won) through the sandbox's admin surface; returns what was done."""
        rf_user_id = self.created.invited_id
        row = self.store.get(rf_user_id) if rf_user_id is not None else None
        rule = self.settings.qualification
        if row is None or rule.kind == "none":
            raise RuntimeError("There is no test referral with a qualification rule to act on.")
        async with httpx.AsyncClient(base_url=admin_url.rstrip("/"), timeout=10.0) as http:
            if rule.kind in rules.LEAD_RULE_KINDS:
                if not row.lead_id:
                    raise RuntimeError("The test referral has no lead yet.")
                body = {"stage_id": rule.stage_id} if rule.kind == "lead_converted_stage" else {}
                response = await http.post(f"/pd/leads/{row.lead_id}/convert", json=body)
                done = f"converted lead {row.lead_id} into deal {{id}}"
            elif row.deal_id is None:
                raise RuntimeError("The test referral has no deal yet.")
            elif rule.kind == "deal_stage":
                response = await http.post(f"/pd/deals/{row.deal_id}/stage", json={"stage_id": rule.stage_id})
                done = "moved deal {id} to the rule's stage"
            else:
                response = await http.post(f"/pd/deals/{row.deal_id}/status", json={"status": "won"})
                done = "marked deal {id} as won"
        response.raise_for_status()
        text = "Acting as the salesperson (demo): " + done.format(id=response.json().get("id")) + "."
        self._log("info", text, rf_user_id)
        if self.engine is not None:
            self.engine.sync_now()
        return text

    # --- what exists, and removing it ------------------------------------------------------------------

    def web_url(self, kind: str, ident: int | str) -> str:
        """Where a person, lead or deal opens in Pipedrive's web app."""
        pipedrive = self.settings.pipedrive
        schema = self.schema
        base = (
            schema.web_base(pipedrive.base_url)
            if schema is not None
            else pipedrive_api_base(pipedrive.base_url, pipedrive.company_domain)
        )
        return f"{base.rstrip('/')}/{WEB_PATHS[kind].format(id=ident)}"

    def cleanup_items(self) -> list[CleanupItem]:
        """Exactly what `cleanup()` removes: the Pipedrive deal or lead and the person (only when this run
        created it), then the two Referral Factory users."""
        items: list[CleanupItem] = []
        for rf_user_id in self.created.tracked:
            row = self.store.get(rf_user_id)
            if row is None:
                continue
            if row.deal_id is not None:
                items.append(CleanupItem("Pipedrive", "deal", row.deal_id, f"Pipedrive deal {row.deal_id}"))
            if row.lead_id and row.deal_id is None:
                items.append(CleanupItem("Pipedrive", "lead", row.lead_id, f"Pipedrive lead {row.lead_id}"))
            if row.person_id is not None and self.person_created(rf_user_id):
                label = f"Pipedrive person {row.person_id} ({row.email})"
                items.append(CleanupItem("Pipedrive", "person", row.person_id, label))
        for user_id, email in (
            (self.created.invited_id, self.created.invited_email),
            (self.created.referrer_id, self.created.referrer_email),
        ):
            if user_id is not None:
                label = f"Referral Factory user {user_id} ({email})"
                items.append(CleanupItem("Referral Factory", "user", user_id, label))
        return items

    def kept_items(self) -> list[str]:
        """What the test touched but does not remove: people who were in Pipedrive before."""
        kept = []
        for rf_user_id in self.created.tracked:
            row = self.store.get(rf_user_id)
            if row is not None and row.person_id is not None and self.person_created(rf_user_id) is not True:
                kept.append(
                    f"Pipedrive person {row.person_id} ({row.email}): it was already in Pipedrive, so it stays."
                )
        return kept

    async def cleanup(self) -> CleanupReport:
        """Remove what this run created (ask the owner first: `cleanup_items()` lists it). The store rows
        stay, marked "Test removed", so the sync log keeps making sense; the sync stops following them.
        A run still winding down (stopped a moment ago) finishes first."""
        async with self._operation:
            return await self._cleanup()

    async def _cleanup(self) -> CleanupReport:
        self._begin(CLEANED, "Removing the test records…")
        for rf_user_id in self.created.tracked:
            if self.store.get(rf_user_id) is not None:
                # first, so the sync does not send or watch what is being removed
                self.store.update(rf_user_id, status=SKIPPED, status_reason=TEST_REMOVED, permanent=True)
                self._announce(ReferralChanged(rf_user_id))
        removed: list[str] = []
        failed: list[str] = []
        items = self.cleanup_items()
        try:
            try:
                items = await self._with_discovered_items(items)
            except StepFailed as lookup:
                failed.append(f"Could not look for other test leads or deals in Pipedrive: {lookup.message}")
            for item in items:
                self._progress(f"Removing {item.label}…")
                problem = await self._remove(item)
                if problem in (None, ALREADY_GONE):
                    removed.append(item.label + (f" ({problem})" if problem else ""))
                    self._log("info", f"Test cleanup: removed {removed[-1]}.", self.created.invited_id)
                else:
                    failed.append(f"{item.label}: {problem}")
                    self._log("warning", f"Test cleanup: could not remove {failed[-1]}", self.created.invited_id)
        finally:
            await self._close_clients()
        report = CleanupReport(tuple(removed), tuple(self.kept_items()), tuple(failed))
        self.cleanup_report = report
        data = {"removed": list(report.removed), "kept": list(report.kept), "failed": list(report.failed)}
        if failed:
            self._finish(
                CLEANED,
                FAILED_STEP,
                f"Removed {len(removed)} of {len(removed) + len(failed)} test records. Not removed: "
                + "; ".join(failed),
                "Remove the rest by hand in Referral Factory or Pipedrive, or press Clean up again.",
                None,
                data,
            )
        else:
            self._done(CLEANED, f"Removed {len(removed)} test records.", data)
        return report

    async def _with_discovered_items(self, items: list[CleanupItem]) -> list[CleanupItem]:
        """Add leads and deals carrying the test's Referral Code that the store does not know of yet: a
        deal converted from the lead a moment ago, or a create still in flight when the run stopped."""
        code_target = self.settings.referral_code_target()
        if code_target is None:
            return items
        code_key = code_target.split(":", 1)[1]
        known = {(i.kind, str(i.ident)) for i in items}
        found: list[CleanupItem] = []
        for rf_user_id in self.created.tracked:
            row = self.store.get(rf_user_id)
            if row is None or row.person_id is None or not row.code:
                continue
            pd = self._pd_client()
            for kind, listed in (
                ("deal", await self._call(pd.deals_for_person(row.person_id))),
                ("lead", await self._call(pd.leads_for_person(row.person_id))),
            ):
                for record in listed:
                    gone = record.get("is_deleted") or record.get("status") == "deleted"
                    key = (kind, str(record["id"]))
                    if not gone and key not in known and _holds_code(record, code_key, row.code):
                        known.add(key)
                        found.append(CleanupItem("Pipedrive", kind, record["id"], f"Pipedrive {kind} {key[1]}"))
        return found + items  # leads and deals go before the person they belong to

    async def _remove(self, item: CleanupItem) -> str | None:
        """None when removed now, ALREADY_GONE when it was, otherwise why it could not be removed."""
        try:
            if item.service == "Referral Factory":
                await self._rf_client().delete_user(int(item.ident))
            elif item.kind == "deal":
                await self._pd_client().delete_deal(int(item.ident))
            elif item.kind == "lead":
                await self._pd_client().delete_lead(str(item.ident))
            else:
                await self._pd_client().delete_person(int(item.ident))
        except NotFoundError:
            return ALREADY_GONE
        except ApiError as error:
            return error.message
        return None

    def summary(self) -> str:
        """Everything the run did, as text the owner can copy into an email to support."""
        plan = self._plan or self.plan()
        mode = plan.mode
        started = f"{self.started_at:%Y-%m-%d %H:%M:%S}" if self.started_at else "not started"
        lines = [
            f"rf-desktop test referral ({started})",
            f"Referral Factory campaign: {self.created.campaign_name or plan.campaign_name}",
            f"Pipedrive account: {self.created.company or plan.pipedrive_account}",
            f"Person Referring: {plan.referrer_email}",
            f"Person Invited: {plan.invited_email}",
            "",
            "Steps:",
        ]
        marks = {DONE: "✓", FAILED_STEP: "✗", SKIPPED_STEP: "-", RUNNING: "…"}
        order = [*RUN_STEPS, QUALIFIED_STEP, CLEANED]
        for step in order:
            update = self.steps.get(step)
            if update is None:
                if step in RUN_STEPS:
                    lines.append(f"  · {step_title(step, mode)}: not run")
                continue
            lines.append(
                f"  {marks[update.state]} {step_title(step, mode)} ({seconds_text(update.seconds)}): {update.detail}"
            )
            if update.state == FAILED_STEP and update.hint:
                lines.append(f"      What to do: {update.hint}")
            url = update.data.get("url")
            if url and url not in update.detail:
                lines.append(f"      {url}")
        if self.fields:
            lines += ["", "Fields in Pipedrive (field = value, from):"]
            for check in self.fields:
                mark = {True: "✓", False: "✗", None: "·"}[check.arrived]
                text = f"  {mark} {check.record}: {check.field} = {check.value or '(empty)'} (from {check.source})"
                if check.arrived is False:
                    text += f"; expected {check.expected or '(a value)'}"
                if check.note:
                    text += f". {check.note}"
                lines.append(text)
        lines.append("")
        if self.seconds is not None:
            outcome = "finished" if all(u.state == DONE for u in self.steps.values()) else "ended with a problem"
            lines.append(f"The test referral {outcome} in {seconds_text(self.seconds)}.")
        lines += self._summary_of_records()
        return "\n".join(lines)

    def _summary_of_records(self) -> list[str]:
        report = self.cleanup_report
        if report is not None:
            lines = [f"Removed: {', '.join(report.removed) or 'nothing'}."]
            if report.failed:
                lines.append(f"Not removed: {'; '.join(report.failed)}.")
            return lines + [f"Kept: {k}" for k in report.kept]
        items = self.cleanup_items()
        if not items:
            return ["Nothing was created."]
        lines = ["Still in your accounts (Clean up removes them):"]
        lines += [f"  - {item.label}" for item in items]
        lines += [f"  - {kept}" for kept in self.kept_items()]
        return lines

    def _leftovers(self) -> str:
        items = self.cleanup_items()
        if not items:
            return "Nothing was created."
        return "Created so far: " + "; ".join(item.label for item in items) + "."

    def _leftover_hint(self) -> str:
        if not self.cleanup_items():
            return "Nothing was created."
        return f"{self._leftovers()} Clean up removes them."

    # --- small parts -----------------------------------------------------------------------------------

    def _rf_client(self) -> ReferralFactoryClient:
        if self._rf is None:
            self._rf = self._rf_factory(self.settings, self._tokens(RF_TOKEN) or "")
        return self._rf

    def _pd_client(self) -> PipedriveClient:
        if self._pd is None:
            token = self._tokens(PD_TOKEN) or ""
            if self.engine is not None:
                # the run's few calls count against the same budget and burst window as the sync's
                self._pd = self._pd_factory(self.settings, token, burst=self.engine.burst, budget=self.engine.budget)
            else:
                self._pd = self._pd_factory(self.settings, token)
        return self._pd

    async def _close_clients(self) -> None:
        clients, self._rf, self._pd = (self._rf, self._pd), None, None
        for client in clients:
            if client is not None:
                await client.aclose()

    async def _call(self, call: Awaitable[T]) -> T:
        """An API call of the current step; its failure becomes the step's failure, in plain words."""
        try:
            return await call
        except AuthError as error:
            raise StepFailed(error.message, error.hint, CONNECTIONS) from error
        except ConnectionFailedError as error:
            raise StepFailed(error.message, error.hint, CONNECTIONS) from error
        except BudgetExhaustedError as error:
            raise StepFailed(error.message, error.hint) from error
        except ValidationError as error:
            page = CONNECTIONS if error.service == "Referral Factory" else MAPPING
            raise StepFailed(error.message, error.hint, page) from error
        except ApiError as error:
            raise StepFailed(error.message, error.hint) from error

    def _elapsed(self) -> float:
        return time.monotonic() - self._run_started if self._run_started else 0.0

    def _begin(self, step: str, detail: str) -> None:
        self._step = step
        self._waiting = ""
        self._step_started = time.monotonic()
        self._emit(StepUpdate(step, RUNNING, 0.0, detail))

    def _progress(self, detail: str) -> None:
        """A running step's detail changed (only said when it did)."""
        step = self._step
        if step is None:
            return
        current = self.steps.get(step)
        if current is not None and current.detail == detail:
            return
        self._emit(StepUpdate(step, RUNNING, time.monotonic() - self._step_started, detail))

    def _done(self, step: str, detail: str, data: dict[str, Any] | None = None) -> None:
        self._finish(step, DONE, detail, "", None, data or {})

    def _finish(
        self,
        step: str,
        state: StepState,
        detail: str,
        hint: str,
        page: str | None,
        data: dict[str, Any] | None = None,
    ) -> None:
        seconds = time.monotonic() - self._step_started
        self._emit(StepUpdate(step, state, seconds, detail, hint, page, data or {}))
        level = "info" if state in (DONE, SKIPPED_STEP) else "warning"
        self._log(level, f"{step_title(step, self.settings.mode)}: {detail}", self.created.invited_id)
        self._step = None

    def _fail(self, failure: StepFailed, *, quiet: bool = False) -> None:
        step = self._step or CHECKED
        seconds = time.monotonic() - self._step_started
        data = {"action": failure.action} if failure.action else {}
        self._emit(StepUpdate(step, FAILED_STEP, seconds, failure.message, failure.hint, failure.settings_page, data))
        if not quiet:
            text = f"{step_title(step, self.settings.mode)} failed: {failure.message} {failure.hint}".strip()
            self._log("error", text, self.created.invited_id)
        self._step = None

    def _emit(self, update: StepUpdate) -> None:
        self.steps[update.step] = update
        if self._on_update is not None:
            self._on_update(update)

    def _log(self, level: str, message: str, rf_user_id: int | None = None) -> LogRow:
        row = self.store.log(level, LOG_ACTION, message, rf_user_id=rf_user_id, is_test=True)
        self._announce(LogAdded(row))
        return row

    def _announce(self, event: Event) -> None:
        if self._on_event is not None:
            self._on_event(event)


def _item_of(referral: Referral, mode: str) -> str | int | None:
    return referral.lead_id if mode == "lead" else referral.deal_id


def _holds_code(record: Mapping[str, Any], code_key: str, code: str) -> bool:
    """A lead (flat v1 keys) or a deal (v2 `custom_fields`) carrying this Referral Code."""
    custom = record.get("custom_fields")
    value = custom.get(code_key) if isinstance(custom, dict) else record.get(code_key)
    return value == code
