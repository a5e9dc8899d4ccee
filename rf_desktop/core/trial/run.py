"""The "send test referral" run: what Referral Factory's own guide asks the owner to do by hand (sign up as
a Person Referring in a private window, open that referral link in another browser, sign up as the Person
Invited, then look for the lead or deal in Pipedrive), done in one go and reported step by step.

The run signs both people up through the Referral Factory API, the Person Invited through the referrer's
code exactly as a real sign-up is attributed, records the invited user as a test referral (`is_test`) and
wakes the sync. From there the sync engine carries it to Pipedrive through the same code path as every
other referral: the run only listens to the engine's events (and looks at the store), then reads the
person and the lead or deal back to show which fields arrived. It can wait for the qualification rule,
and it removes exactly what it created when asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from rf_desktop.core import rules
from rf_desktop.core.account import Account
from rf_desktop.core.config import CONNECTIONS, MAPPING, META_PREFIX, RULES, Settings
from rf_desktop.core.context import iso, utcnow
from rf_desktop.core.engine import SyncEngine
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
    REFERRAL_FACTORY,
    ApiError,
    AuthError,
    BudgetExhaustedError,
    ConnectionFailedError,
    ValidationError,
)
from rf_desktop.core.intake import INVITED, REFERRING, to_referral
from rf_desktop.core.pipedrive import PipedriveClient
from rf_desktop.core.referral_factory import ReferralFactoryClient
from rf_desktop.core.schema import FieldDef, PipedriveSchema
from rf_desktop.core.store import FAILED, PENDING, QUALIFIED, SKIPPED, LogRow, Reason, Referral, Store
from rf_desktop.core.trial import cleanup as cleaning
from rf_desktop.core.trial import report
from rf_desktop.core.trial.cleanup import ALREADY_GONE, CleanupItem, CleanupReport
from rf_desktop.core.trial.fields import FieldCheck, check_fields
from rf_desktop.core.trial.plan import Plan, make_plan, sample_form_values, unique_stamp
from rf_desktop.core.trial.steps import (
    CHECKED,
    CLEANED,
    DONE,
    FAILED_STEP,
    FIELDS,
    INVITED_NAME,
    INVITED_STEP,
    ITEM,
    LOG_ACTION,
    PERSON,
    QUALIFIED_STEP,
    REFERRER,
    REFERRER_NAME,
    RUNNING,
    SEEN,
    SKIPPED_STEP,
    TEST_REMOVED,
    Created,
    StepFailed,
    StepState,
    StepUpdate,
    moment_text,
    step_title,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_EMAIL_BASE = "owner@example.com"
PERSON_CREATED = "person created"
PERSON_MATCHED = "person matched"
LOG_GRACE_SECONDS = 5.0  # how long the log row saying how the person was found may follow its id
# referral reasons the Connections page fixes (the Mapping page fixes the others)
_TOKEN_REASONS = (Reason.AUTH, Reason.MISSING_TOKEN)


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
        account: Account,
        engine: SyncEngine | None,
        *,
        email_base: str = DEFAULT_EMAIL_BASE,
        campaign_id: int | None = None,
        on_update: Callable[[StepUpdate], None] | None = None,
        on_event: Callable[[Event], None] | None = None,
        timeout: float = 120.0,
        poll: float = 0.5,
        nudge_every: float = 15.0,
        now: Callable[[], datetime] = _local_now,
    ) -> None:
        self.account = account
        self.store: Store = account.store
        self.engine = engine
        self.email_base = email_base.strip() or DEFAULT_EMAIL_BASE
        self.campaign_id = campaign_id
        self._on_update, self._on_event = on_update, on_event
        self.timeout, self.poll, self.nudge_every = timeout, poll, nudge_every
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
        self._engine_state: StateChanged | None = None
        # the sync's last problem: a cycle that fails fast is back to "running" before a look can see it
        self._last_problem: StateChanged | None = None
        self._waiting = ""
        self._rate_limited = False
        self._names: dict[int, str] = {}
        # the run and the cleanup share the clients and the step bookkeeping: one at a time
        self._operation = asyncio.Lock()
        self._rf: ReferralFactoryClient | None = None
        self._pd: PipedriveClient | None = None

    # --- before sending anything -----------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        return self._settings or self.account.settings()

    @property
    def schema(self) -> PipedriveSchema | None:
        # the sync keeps it fresh (and fetches it first if it is missing)
        return self.account.schema()

    def plan(self) -> Plan:
        """What will be created and where, read from the saved settings and the cached Pipedrive schema;
        with the problems that keep the test from starting, each pointing at the page that fixes it."""
        return make_plan(
            self.account,
            self.engine,
            email_base=self.email_base,
            stamp=self.stamp,
            campaign_id=self.campaign_id,
            names=self._names,
        )

    async def load_campaign_names(self) -> None:
        """Ask Referral Factory for the campaigns' names, so the plan can name them (one call, no Pipedrive
        tokens). A failure leaves the ids: the run's first step reports connection problems properly."""
        try:
            self._names = await self.account.fetch_campaign_names()
        except ApiError as error:
            log.info("could not read the campaign names: %s", error.message)

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
            items = self.cleanup_items()
            self._fail(StepFailed("Stopped before it finished.", cleaning.leftover_hint(items)), quiet=True)
            self._log("warning", f"Test referral stopped after {self._elapsed():.1f} s. {cleaning.leftovers(items)}")
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
        self._settings = self.account.saved_settings()
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
        user = await self._sign_up(campaign, REFERRING, REFERRER_NAME, plan.referrer_email, {})
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
        user = await self._sign_up(
            campaign, INVITED, INVITED_NAME, plan.invited_email, self._form_targets(), self.created.referrer_code
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

    async def _sign_up(
        self,
        campaign: Mapping[str, Any],
        user_type: str,
        name: str,
        email: str,
        targets: Mapping[str, FieldDef | None],
        referrer_code: str | None = None,
    ) -> dict[str, Any]:
        """A Referral Factory user of `user_type` with every form field filled (through the referrer's
        code for a person invited)."""
        form = (campaign.get("fields") or {}).get(user_type) or []
        meta = sample_form_values(form, targets, self._now().date().isoformat())
        referrer = ("code", referrer_code) if referrer_code is not None else None
        return await self._call(
            self._rf_client().create_user(int(campaign["id"]), name, email, referrer=referrer, meta=meta)
        )

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
        created = await self._how_person_was_found(rf_user_id, min(deadline, time.monotonic() + LOG_GRACE_SECONDS))
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

    def check_fields(
        self,
        referral: Referral,
        person: Mapping[str, Any],
        item: Mapping[str, Any] | None,
        person_created: bool | None,
    ) -> list[FieldCheck]:
        """Each value the mapping sends, compared with what Pipedrive holds now (see `fields`)."""
        return check_fields(self.settings, self.schema, referral, person, item, person_created)

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
            self._engine_state = event
            if event.state == ERROR:
                self._last_problem = event
        self._wake.set()

    async def _how_person_was_found(self, rf_user_id: int, until: float) -> bool | None:
        """`person_created`, given a moment: the sync writes the person's id, then the log row that says how
        it found the person."""
        while (created := self.person_created(rf_user_id)) is None and time.monotonic() < until:
            await self._nap(min(self.poll, until - time.monotonic()))
        return created

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
        nudge_pending_only: bool = True,
        timed_out: Callable[[str], StepFailed] | None = None,
    ) -> Referral:
        """Wait for the referral's row to reach a state, waking on engine events and looking at the store
        every `poll` seconds besides, asking the sync to look again every `nudge` seconds (only while the
        referral is pending, unless told otherwise). Fails at once when the sync cannot go on, and says
        what it waits for."""
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
                raise (timed_out or self._timed_out)(waiting)
            wanted = not nudge_pending_only or row.status == PENDING
            if nudge is not None and now - last_nudge >= nudge and wanted and self.engine is not None:
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
            page = CONNECTIONS if row.reason_kind in _TOKEN_REASONS else MAPPING
            raise StepFailed(f"The sync could not send the test referral: {reason}", "", page)
        state = self._engine_state or StateChanged("", "", None)
        if state.state == AUTH_ERROR:
            raise StepFailed(
                state.message, "Fix the token on the Connections page, then run the test again.", CONNECTIONS
            )
        if state.state == NOT_CONFIGURED:
            page = CONNECTIONS if state.reason in _TOKEN_REASONS else self._first_problem_page()
            raise StepFailed(state.message, "Fix it, then run the test again.", page)
        if state.state == BUDGET_EXHAUSTED:
            raise StepFailed(state.message, "The test referral stays queued and is sent when the budget is back.")
        if state.state == STOPPED:
            raise StepFailed(
                "The sync stopped before the test referral reached Pipedrive.",
                "Restart rf-desktop; the test referral is sent when the sync runs again.",
            )
        if state.state != SYNCING:
            # while a cycle runs, what held the referral up in the last one still stands
            self._waiting = self._waiting_reason(row, state)
        elif not self._waiting and self._last_problem is not None:
            self._waiting = self._waiting_reason(row, self._last_problem)
        return self._waiting

    def _waiting_reason(self, row: Referral, state: StateChanged) -> str:
        if state.state == PAUSED:
            return "The sync is paused: resume it and the test continues."
        retry = row.status_reason if row.status in (PENDING, FAILED) else None
        kinds = (row.reason_kind if retry else None, state.reason if state.state == ERROR else None)
        self._rate_limited = Reason.RATE_LIMITED in kinds
        if self._rate_limited:
            return (
                "Waiting for Pipedrive's rate limit: Pipedrive asked rf-desktop to slow down, and the "
                "sync tries again on its own."
            )
        if retry:
            return f"Waiting: {retry}"
        if state.state == ERROR:
            return f"Waiting: the sync had a problem ({state.message})"
        return ""

    def _first_problem_page(self) -> str:
        errors = self.account.errors(self.settings)
        return errors[0].page if errors else CONNECTIONS

    def _timed_out(self, waiting: str) -> StepFailed:
        where = f" {waiting}" if waiting else ""
        if waiting and self._rate_limited:
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
        self._last_problem = None
        unsubscribe = self.engine.subscribe(self._heard) if self.engine is not None else None
        try:
            if self.engine is not None:
                self.engine.sync_now()
            row = await self._wait_until(
                rf_user_id,
                lambda r: r.status == QUALIFIED,
                time.monotonic() + timeout,
                # look at Pipedrive now and then rather than at the next budgeted poll
                nudge=self.nudge_every,
                nudge_pending_only=False,
                timed_out=lambda _waiting: StepFailed(
                    f"Not qualified within {timeout:.0f} s.",
                    f"The sync keeps watching: the test referral qualifies as soon as the rule matches. "
                    f"{self.what_to_do()}",
                ),
            )
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

    def test_referral(self) -> Referral | None:
        """The test referral's row as the sync left it (None before it was signed up)."""
        rf_user_id = self.created.invited_id
        return self.store.get(rf_user_id) if rf_user_id is not None else None

    def someone_acted(self, text: str) -> None:
        """Someone did in Pipedrive what the rule waits for (the demo's simulated salesperson): say so in
        the sync log, and have the sync look now."""
        self._log("info", text, self.created.invited_id)
        if self.engine is not None:
            self.engine.sync_now()

    # --- what exists, and removing it ------------------------------------------------------------------

    def web_url(self, kind: str, ident: int | str) -> str:
        """Where a person, lead or deal opens in Pipedrive's web app."""
        return self.account.web_url(kind, ident)

    def cleanup_items(self) -> list[CleanupItem]:
        """Exactly what `cleanup()` removes: the Pipedrive deal or lead and the person (only when this run
        created it), then the two Referral Factory users."""
        return cleaning.cleanup_items(self.store, self.created, self.person_created)

    def kept_items(self) -> list[str]:
        """What the test touched but does not remove: people who were in Pipedrive before."""
        return cleaning.kept_items(self.store, self.created, self.person_created)

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
                self.store.update(
                    rf_user_id,
                    status=SKIPPED,
                    status_reason=TEST_REMOVED,
                    reason_kind=Reason.TEST_REMOVED,
                    permanent=True,
                )
                self._announce(ReferralChanged(rf_user_id))
        removed: list[str] = []
        failed: list[str] = []
        items = self.cleanup_items()
        try:
            try:
                items = await cleaning.with_discovered_items(
                    items, self.store, self.created, self.settings, self._pd_client(), self._call
                )
            except StepFailed as lookup:
                failed.append(f"Could not look for other test leads or deals in Pipedrive: {lookup.message}")
            for item in items:
                self._progress(f"Removing {item.label}…")
                problem = await cleaning.remove(item, self._rf_client(), self._pd_client())
                if problem in (None, ALREADY_GONE):
                    removed.append(item.label + (f" ({problem})" if problem else ""))
                    self._log("info", f"Test cleanup: removed {removed[-1]}.", self.created.invited_id)
                else:
                    failed.append(f"{item.label}: {problem}")
                    self._log("warning", f"Test cleanup: could not remove {failed[-1]}", self.created.invited_id)
        finally:
            await self._close_clients()
        result = CleanupReport(tuple(removed), tuple(self.kept_items()), tuple(failed))
        self.cleanup_report = result
        data = {"removed": list(result.removed), "kept": list(result.kept), "failed": list(result.failed)}
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
        return result

    def summary(self) -> str:
        """Everything the run did, as text the owner can copy into an email to support."""
        records = report.records(self.cleanup_report, self.cleanup_items(), self.kept_items())
        return report.summary(
            self._plan or self.plan(), self.created, self.steps, self.fields, self.started_at, self.seconds, records
        )

    # --- small parts -----------------------------------------------------------------------------------

    def _rf_client(self) -> ReferralFactoryClient:
        if self._rf is None:
            self._rf = self.account.new_rf_client()
        return self._rf

    def _pd_client(self) -> PipedriveClient:
        if self._pd is None:
            self._pd = self.account.new_pd_client()
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
        except (AuthError, ConnectionFailedError) as error:
            raise StepFailed(error.message, error.hint, CONNECTIONS) from error
        except BudgetExhaustedError as error:
            raise StepFailed(error.message, error.hint) from error
        except ValidationError as error:
            page = CONNECTIONS if error.service == REFERRAL_FACTORY else MAPPING
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
