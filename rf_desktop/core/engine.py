"""The sync engine: intake -> push -> watch -> qualify, in a loop that survives bad input, rate limits,
dropped connections, crashes and restarts without losing or duplicating a referral.

It runs on whatever asyncio loop it is given: the GUI's qasync loop or `rf-desktop sync`'s plain loop.
It never touches Qt; listeners subscribe to the events in `rf_desktop.core.events`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from rf_desktop.core import rules
from rf_desktop.core.cadence import Cadence
from rf_desktop.core.config import Settings, validate
from rf_desktop.core.connections import load_schema, pipedrive_client, referral_factory_client
from rf_desktop.core.context import SyncContext, iso, utcnow
from rf_desktop.core.events import (
    AUTH_ERROR,
    BUDGET_EXHAUSTED,
    ERROR,
    IDLE,
    NOT_CONFIGURED,
    PAUSED,
    RUNNING,
    STOPPED,
    BudgetChanged,
    Event,
    LogAdded,
    Progress,
    ReferralChanged,
    StateChanged,
)
from rf_desktop.core.http import (
    ApiError,
    AuthError,
    BlockedError,
    BudgetExhaustedError,
    ConnectionFailedError,
    ValidationError,
)
from rf_desktop.core.intake import ReferrerCache, collect_new_users
from rf_desktop.core.mapping import MappingError
from rf_desktop.core.person_index import PersonIndex
from rf_desktop.core.pipedrive import PipedriveClient
from rf_desktop.core.push import EmailLocks, push
from rf_desktop.core.qualify import QUALIFY, qualify
from rf_desktop.core.ratelimit import BudgetTracker, BurstLimiter
from rf_desktop.core.referral_factory import ReferralFactoryClient
from rf_desktop.core.schema import PipedriveSchema
from rf_desktop.core.store import FAILED, PENDING, WAITING, Referral, Store
from rf_desktop.core.watch import WATERMARK_KEY, Match, poll_deals, watch_interval

log = logging.getLogger(__name__)

# the names the tokens are kept under (in the keychain), not tokens
RF_TOKEN = "referral-factory"  # noqa: S105
PD_TOKEN = "pipedrive"  # noqa: S105
BUDGET_KEY = "pipedrive_budget"
SCHEMA_MAX_AGE = timedelta(hours=24)
CAMPAIGNS_MAX_AGE = timedelta(minutes=10)
# transient failures stay "pending" (with the reason) for this many attempts before they show as failed
QUIET_ATTEMPTS = 4
MAX_RETRY_DELAY = 3600.0

TokenSource = Callable[[str], str | None]


class GlobalStop(Exception):
    """A condition that stops the whole cycle, not one referral (wrong token, budget gone, bad settings)."""


@dataclass
class RunSummary:
    recorded: int = 0
    sent: int = 0
    qualified: int = 0
    failed: int = 0
    skipped: int = 0
    tokens_used: int = 0
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        text = (
            f"{self.recorded} new, {self.sent} sent to Pipedrive, {self.qualified} qualified, "
            f"{self.failed} failed, {self.skipped} skipped; {self.tokens_used} Pipedrive tokens used"
        )
        return text + (f"; {self.errors[-1]}" if self.errors else "")


class SyncEngine:
    def __init__(
        self,
        store: Store,
        tokens: TokenSource,
        *,
        now: Callable[[], datetime] = utcnow,
        retry_base: float = 5.0,
        workers: int = 4,
        min_watch_interval: float | None = None,
        rf_factory: Callable[[Settings, str], ReferralFactoryClient] = referral_factory_client,
        pd_factory: Callable[..., PipedriveClient] = pipedrive_client,
    ) -> None:
        self.store = store
        self._tokens = tokens
        self._now = now
        self._retry_base = retry_base
        self._workers = workers
        self._min_watch_interval = min_watch_interval
        self._rf_factory = rf_factory
        self._pd_factory = pd_factory
        self._listeners: list[Callable[[Event], None]] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self._paused = False
        self._reload = True
        self.state = IDLE
        self.message = ""
        self.next_poll_at: datetime | None = None
        self._cadence = Cadence()
        self._told_idle = False  # listeners know the sync is up to date: quiet looks need not repeat it
        self._budget_told: BudgetChanged | None = None
        self._rf: ReferralFactoryClient | None = None
        self._pd: PipedriveClient | None = None
        self._schema: PipedriveSchema | None = None
        self._settings: Settings | None = None
        self._campaign_names: dict[int, str] = {}
        self._campaigns_at: datetime | None = None
        self._referrers: ReferrerCache | None = None
        self._locks = EmailLocks()
        self._people = PersonIndex()
        self._error_streak = 0
        self._summary = RunSummary()
        self.burst = BurstLimiter()
        self.budget = BudgetTracker()
        saved = store.get_kv(BUDGET_KEY)
        if saved:
            self.budget = BudgetTracker.from_dict(saved)

    # -- listeners -------------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    def _emit(self, event: Event) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken listener must not stop the sync
                log.exception("an engine listener failed")

    def _set_state(self, state: str, message: str) -> None:
        self.state, self.message = state, message
        self._told_idle = state == IDLE
        self._emit(StateChanged(state, message, self.next_poll_at, self.next_signups_at, self.next_conversions_at))

    def _busy(self) -> None:
        """Real work begins (new sign-ups, pushes, a look at Pipedrive): say so. A look that finds nothing
        new says nothing, so a window is not redrawn every few seconds for no news."""
        if self._told_idle:
            self._set_state(RUNNING, "Syncing…")

    def _emit_budget(self) -> None:
        snap = self.budget.snapshot()
        event = BudgetChanged(snap.used_today, snap.daily_budget, snap.cap, snap.resets_at)
        if event == self._budget_told:
            return  # an idle look spends nothing: no write, no event
        self._budget_told = event
        self.store.set_kv(BUDGET_KEY, self.budget.to_dict())
        self._emit(event)

    # -- controls (safe to call from the GUI at any time) -----------------------------------------

    def pause(self) -> None:
        self._paused = True
        self._wake.set()

    def resume(self) -> None:
        self._paused = False
        self._wake.set()

    @property
    def paused(self) -> bool:
        return self._paused

    def sync_now(self) -> None:
        """Look for new sign-ups and for conversions now."""
        self._cadence.look_now()
        self._wake.set()

    @property
    def next_signups_at(self) -> datetime | None:
        """When the sync next looks for new sign-ups (None while it is paused, stopped or stuck)."""
        return self._cadence.signups_at if self.state in (IDLE, RUNNING) else None

    @property
    def next_conversions_at(self) -> datetime | None:
        """When the sync next looks for conversions (None also while no referral waits for one)."""
        return self._cadence.next_conversions_at if self.state in (IDLE, RUNNING) else None

    def reload_settings(self) -> None:
        """Settings or tokens changed: rebuild the clients and re-check the configuration."""
        self._reload = True
        self._wake.set()

    def retry(self, rf_user_id: int) -> None:
        """The owner asked to try a failed or skipped referral again."""
        referral = self.store.get(rf_user_id)
        if referral is None or referral.status not in (FAILED, "skipped"):
            return
        self.store.update(
            rf_user_id,
            status=PENDING,
            status_reason="Retry requested.",
            permanent=0,
            attempts=0,
            next_attempt_at=None,
        )
        self.store.log("info", "retry", "Retry requested by the owner.", rf_user_id=rf_user_id)
        self._emit(ReferralChanged(rf_user_id))
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    def counts(self) -> dict[str, int]:
        return self.store.counts()

    # -- the loop ---------------------------------------------------------------------------------

    async def run(self) -> None:
        """Sync until `stop()` (also when stop() came before the task started). Cancelling the task is safe
        too: every write is idempotent on resume."""
        try:
            while not self._stopping:
                # cleared before the work, not before the wait: a pause or "sync now" pressed during a
                # cycle must end the wait that follows it
                self._wake.clear()
                if self._paused:
                    self.next_poll_at = None
                    self._set_state(PAUSED, "Paused. Press Resume to continue syncing.")
                    await self._wait(None)
                    continue
                delay = await self._cycle_guarded()
                await self._wait(delay)
        finally:
            self._stopping = False  # the engine can run again
            await self._close_clients()
            self.next_poll_at = None
            self._set_state(STOPPED, "Stopped.")

    async def run_once(self, *, max_seconds: float = 600.0) -> RunSummary:
        """Process everything available now, retrying passing failures for up to `max_seconds`."""
        self._summary = RunSummary()
        deadline = self._now() + timedelta(seconds=max_seconds)
        try:
            while True:
                self._cadence.look_now()
                delay = await self._cycle_guarded()
                if self.state in (AUTH_ERROR, NOT_CONFIGURED, BUDGET_EXHAUSTED) or delay is None:
                    break
                wait = self._seconds_until_next_retry()
                if wait is None or self._now() + timedelta(seconds=wait) > deadline:
                    break
                await asyncio.sleep(wait)
        finally:
            await self._close_clients()
        self._summary.tokens_used = self.budget.snapshot().used_today
        return self._summary

    def _seconds_until_next_retry(self) -> float | None:
        if self.store.due_for_push(self._now(), limit=1):
            return 0.0
        due = self.store.next_retry_at()
        return None if due is None else max(0.0, (due - self._now()).total_seconds())

    async def _wait(self, delay: float | None) -> None:
        if self._stopping:
            return
        if delay is None:
            await self._wake.wait()
            return
        # asyncio.timeout rather than wait_for: on Python 3.11 wait_for can swallow a cancellation
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(delay, 0.0)):
                await self._wake.wait()

    async def _cycle_guarded(self) -> float | None:
        """One cycle; returns seconds until the next one (None: wait to be woken)."""
        try:
            ctx = await self._prepare()
            if ctx is None:
                return None
            if not self._told_idle:
                self._set_state(RUNNING, "Syncing…")
            await self._cycle(ctx)
        except AuthError as error:
            await self._close_clients()
            self._problem(AUTH_ERROR, f"{error.message} {error.hint}".strip())
            return None
        except BudgetExhaustedError as error:
            resets = error.resets_at or (self._now() + timedelta(hours=1))
            self.next_poll_at = resets
            self._problem(
                BUDGET_EXHAUSTED,
                f"{error.message} Syncing resumes at {resets:%H:%M} UTC; nothing is lost meanwhile.",
            )
            self._emit_budget()
            return max(1.0, (resets - self._now()).total_seconds())
        except BlockedError as error:
            self._problem(ERROR, f"{error.message} {error.hint}".strip())
            return 600.0
        except (ApiError, GlobalStop) as error:
            self._error_streak += 1
            delay = min(self._retry_base * 2.0 ** (self._error_streak - 1), 300.0)
            self.next_poll_at = self._now() + timedelta(seconds=delay)
            text = f"{error.message} {error.hint}".strip() if isinstance(error, ApiError) else str(error)
            self._problem(ERROR, f"{text} Trying again in {delay:.0f} s.")
            return delay
        self._error_streak = 0
        now = self._now()
        wake_at = self._cadence.next_look(now)
        retry_in = self._seconds_until_next_retry()
        if retry_in is not None:
            wake_at = min(wake_at, now + timedelta(seconds=max(1.0, retry_in)))
        self.next_poll_at = wake_at
        if not self._told_idle:  # work was done, or a problem has cleared: news for the listeners
            counts = self.store.counts()
            self._set_state(
                IDLE,
                f"Up to date. {counts.get(WAITING, 0)} waiting for conversion, "
                f"{counts.get('qualified', 0)} qualified.",
            )
        self._emit_budget()
        return max(0.0, (wake_at - now).total_seconds())

    def _problem(self, state: str, message: str) -> None:
        self._summary.errors.append(message)
        if (state, message) != (self.state, self.message):
            row = self.store.log("error", "sync stopped" if state != ERROR else "sync problem", message)
            self._emit(LogAdded(row))
        self._set_state(state, message)

    # -- preparing a cycle ------------------------------------------------------------------------

    async def _prepare(self) -> SyncContext | None:
        settings = self.store.get_settings()
        if settings is None:
            self._set_state(NOT_CONFIGURED, "Not set up yet: connect your accounts and map the fields.")
            return None
        if self._reload or settings != self._settings:
            await self._close_clients()
            self._settings = settings
            self._reload = False
            self._schema = None
        rf_token, pd_token = self._tokens(RF_TOKEN), self._tokens(PD_TOKEN)
        if not rf_token or not pd_token:
            missing = " and ".join(
                n for n, t in (("Referral Factory", rf_token), ("Pipedrive", pd_token)) if not t
            )
            self._problem(NOT_CONFIGURED, f"The {missing} token is missing. Add it on the Connections page.")
            return None
        self.budget.cap = settings.sync.daily_token_cap  # the tracker refuses calls past it
        if self._rf is None:
            self._rf = self._rf_factory(settings, rf_token)
            self._referrers = ReferrerCache(self._rf)
        if self._pd is None:
            self._pd = self._pd_factory(settings, pd_token, burst=self.burst, budget=self.budget)
        schema = await self._ensure_schema(self._pd)
        errors = [i for i in validate(settings, schema) if i.severity == "error"]
        if errors:
            self._problem(NOT_CONFIGURED, errors[0].message)
            return None
        return SyncContext(self.store, settings, schema, self._rf, self._pd, self._emit, self._now)

    async def _ensure_schema(self, pd: PipedriveClient) -> PipedriveSchema:
        if self._schema is None:
            cached = self.store.get_schema()
            fresh = (
                cached is not None
                and cached.fetched_at
                and (self._now() - datetime.fromisoformat(cached.fetched_at) < SCHEMA_MAX_AGE)
            )
            if fresh:
                self._schema = cached
        if self._schema is None:
            self._schema = await load_schema(pd)
            self.store.save_schema(self._schema)
        return self._schema

    def forget_schema(self) -> None:
        """A mapped Pipedrive field may be gone: fetch the fields again before the next push."""
        self._schema = None
        self.store.set_kv("pipedrive_schema", None)

    async def _close_clients(self) -> None:
        for client in (self._rf, self._pd):
            if client is not None:
                await client.aclose()
        self._rf = self._pd = None

    # -- one cycle --------------------------------------------------------------------------------

    async def _cycle(self, ctx: SyncContext) -> None:
        """Whatever is due: a look for sign-ups, the referrals waiting to be sent, a look for conversions."""
        started = self._now()
        look = self._cadence.signups_due(started)
        calls = ctx.rf.calls
        if look:
            await self._intake(ctx)
        await self._push_due(ctx)
        await self._watch_if_due(ctx)
        if look:
            # every Referral Factory call of the cycle counts (referrers, qualifications too), so all that
            # the sync asks of it in the background stays within its share of the rate limit
            self._cadence.looked_for_signups(started, ctx.settings.sync.poll_seconds, ctx.rf.calls - calls)
        self._prune(ctx)

    async def _intake(self, ctx: SyncContext) -> None:
        now = self._now()
        if self._campaigns_at is None or now - self._campaigns_at > CAMPAIGNS_MAX_AGE:
            self._campaign_names = {
                int(c["id"]): str(c.get("name") or "") for c in await ctx.rf.list_campaigns()
            }
            self._campaigns_at = now
        assert self._referrers is not None
        result = await collect_new_users(
            ctx.rf, ctx.store, ctx.settings, self._campaign_names, self._referrers, iso(now)
        )
        if result.recorded:
            self._busy()
        for rf_user_id in result.recorded:
            self._emit(ReferralChanged(rf_user_id))
        self._summary.recorded += len(result.recorded)
        if result.recorded:
            noun = "referral" if len(result.recorded) == 1 else "referrals"
            ctx.log("info", "intake", f"{len(result.recorded)} new {noun} from Referral Factory recorded.")
        elif result.first_run and ctx.settings.referral_factory.backfill == "none":
            ctx.log("info", "intake", "Watching for new sign-ups from now on.")

    async def _push_due(self, ctx: SyncContext) -> None:
        seen: set[int] = set()
        total = ctx.store.count_due(self._now())
        while True:
            due = [r for r in ctx.store.due_for_push(self._now(), limit=200) if r.rf_user_id not in seen]
            if not due:
                break
            self._busy()
            self._cadence.something_to_watch()  # a new lead or deal waits for its conversion
            seen.update(r.rf_user_id for r in due)
            await self._people.refresh(ctx.pd)
            queue: asyncio.Queue[Referral] = asyncio.Queue()
            for referral in due:
                queue.put_nowait(referral)
            try:
                async with asyncio.TaskGroup() as group:
                    for _ in range(min(self._workers, len(due))):
                        group.create_task(self._push_worker(ctx, queue, seen, total))
            except BaseExceptionGroup as failed:
                # a worker met a condition that stops the whole cycle (wrong token, budget gone): raise it
                # as itself, so the cycle's handlers see it
                raise failed.exceptions[0] from None
        if total > 1:
            self._emit(Progress("Sending to Pipedrive", total, total))

    async def _push_worker(self, ctx: SyncContext, queue: asyncio.Queue[Referral], seen: set[int], total: int) -> None:
        while not queue.empty() and not self._stopping and not self._paused:
            referral = queue.get_nowait()
            await self._push_one(ctx, referral)
            if total > 1:  # a progress bar for one referral is noise
                done = min(total, len(seen) - queue.qsize())
                self._emit(Progress("Sending to Pipedrive", done, total))

    async def _push_one(self, ctx: SyncContext, referral: Referral) -> None:
        if not referral.email:
            referral = await self._refresh_from_referral_factory(ctx, referral)
        if not referral.email:
            self._fail(
                ctx,
                referral,
                "This referral has no email address, so it cannot be matched to a Pipedrive person. "
                "Add the email in Referral Factory, then press Retry.",
                permanent=True,
            )
            return
        try:
            referral = await push(ctx, referral, self._locks, self._people)
        except MappingError as error:
            self._fail(
                ctx,
                referral,
                f"{error} Fix the value in Referral Factory or the mapping, then Retry.",
                permanent=True,
            )
        except ValidationError as error:
            self._pipedrive_refused(ctx, referral, error)
        except (AuthError, BudgetExhaustedError, BlockedError, ConnectionFailedError):
            self._back_to_queue(ctx, referral)
            raise
        except ApiError as error:
            # passing trouble for this referral (timeouts, 5xx, a 429 storm that outlasted the retries, an
            # account limit, a record deleted meanwhile): try it again later, with growing pauses
            self._retry_later(ctx, referral, error)
        else:
            self._summary.sent += 1

    async def _refresh_from_referral_factory(self, ctx: SyncContext, referral: Referral) -> Referral:
        """A retried referral may have been corrected in Referral Factory since it was recorded."""
        user = await ctx.rf.get_user(referral.rf_user_id)
        email = (user.get("email") or "").strip()
        if email and email != referral.email:
            referral = ctx.update(referral, email=email, first_name=(user.get("first_name") or "").strip())
        return referral

    def _pipedrive_refused(self, ctx: SyncContext, referral: Referral, error: ValidationError) -> None:
        text = error.message
        if "not allowed" in text or "field" in text.lower():
            # most often a mapped custom field was deleted in Pipedrive: re-read the fields, and the next
            # cycle's validation names the field and stops until the mapping is fixed
            self.forget_schema()
            self._retry_later(ctx, referral, error)
            return
        self._fail(ctx, referral, f"Pipedrive refused it: {text}", permanent=True)

    def _back_to_queue(self, ctx: SyncContext, referral: Referral) -> None:
        current = ctx.store.get(referral.rf_user_id)
        if current is not None and current.status == "sending":
            ctx.update(current, status=PENDING)

    def _fail(self, ctx: SyncContext, referral: Referral, reason: str, *, permanent: bool) -> None:
        referral = ctx.update(
            referral, status=FAILED, status_reason=reason, permanent=int(permanent), next_attempt_at=None
        )
        ctx.log("error", "failed", reason, referral)
        self._summary.failed += 1

    def _retry_later(self, ctx: SyncContext, referral: Referral, error: ApiError) -> None:
        current = ctx.store.get(referral.rf_user_id) or referral
        attempts = current.attempts + 1
        delay = min(self._retry_base * 2 ** (attempts - 1), MAX_RETRY_DELAY) * random.uniform(0.5, 1.0)
        when = self._now() + timedelta(seconds=delay)
        status = PENDING if attempts <= QUIET_ATTEMPTS else FAILED
        reason = f"{error.message} Trying again at {when:%H:%M:%S} UTC."
        ctx.update(
            current,
            status=status,
            status_reason=reason,
            attempts=attempts,
            next_attempt_at=iso(when),
            permanent=0,
        )
        ctx.log("warning", "retry scheduled", reason, current)

    # -- watching for conversions -------------------------------------------------------------------

    async def _watch_if_due(self, ctx: SyncContext) -> None:
        """Look for conversions when their own clock (paced by the Pipedrive budget) says so; between those
        looks neither Pipedrive nor the waiting referrals are read."""
        now = self._now()
        if not self._cadence.conversions_due(now):
            return
        interval = await self._watch(ctx, now)
        self._cadence.looked_for_conversions(now, interval or 0.0, anything_waiting=interval is not None)

    async def _watch(self, ctx: SyncContext, now: datetime) -> float | None:
        """One look for conversions; the seconds until the next one, None when nothing waits for one."""
        # not every waiting referral is read: with thousands of them that alone held the loop (and the window
        # sharing it) for half a second
        for referral in ctx.store.waiting_with_intent(QUALIFY):
            await self._qualify(ctx, referral)
        if not ctx.store.count(status=WAITING):
            return None
        self._busy()
        saved = ctx.store.get_kv(WATERMARK_KEY)
        oldest = [] if saved else ctx.store.query(status=WAITING, order_by="recorded_at", descending=False, limit=1)
        since = datetime.fromisoformat(saved or oldest[0].recorded_at or iso(now))
        matches, newest = await poll_deals(ctx, since)
        for match in matches:
            await self._apply(ctx, match)
        ctx.store.set_kv(WATERMARK_KEY, iso(newest))
        snap = self.budget.snapshot()
        interval = watch_interval(snap.daily_budget, ctx.settings.sync.watch_token_share, snap.cap)
        if self._min_watch_interval is not None:
            interval = self._min_watch_interval
        return interval

    async def _apply(self, ctx: SyncContext, match: Match) -> None:
        referral, deal = match.referral, match.deal
        changes: dict[str, object] = {}
        if referral.deal_id != deal.deal_id:
            changes["deal_id"] = deal.deal_id
        if referral.deal_stage_id != deal.stage_id:
            changes["deal_stage_id"] = deal.stage_id
        if referral.deal_pipeline_id != deal.pipeline_id:
            changes["deal_pipeline_id"] = deal.pipeline_id
        if referral.deal_status != deal.status:
            changes["deal_status"] = deal.status
        if changes:
            converted = ctx.settings.mode == "lead" and referral.deal_id is None
            referral = ctx.update(referral, **changes)
            ctx.log("info", "deal changed", self._describe_change(ctx.schema, deal, converted), referral)
        if referral.status == WAITING and rules.qualifies(ctx.settings.qualification, deal, ctx.schema):
            await self._qualify(ctx, referral)

    @staticmethod
    def _describe_change(schema: PipedriveSchema, deal: rules.DealState, converted: bool) -> str:
        stage = schema.stage(deal.stage_id) if deal.stage_id is not None else None
        where = f" in stage “{stage.name}”" if stage else ""
        if converted:
            return f"The lead became deal {deal.deal_id}{where}."
        if deal.status in ("won", "lost"):
            return f"Deal {deal.deal_id} was {deal.status}."
        return f"Deal {deal.deal_id} is now{where or ' updated'}."

    async def _qualify(self, ctx: SyncContext, referral: Referral) -> None:
        try:
            result = await qualify(ctx, referral)
        except (AuthError, BudgetExhaustedError, BlockedError, ConnectionFailedError):
            raise
        except ApiError as error:
            # the intent stays recorded: the next cycle reads the user back before asking again
            ctx.log(
                "warning", "qualify retry", f"{error.message} Will try the qualification again.", referral
            )
            return
        if result.status == "qualified":
            self._summary.qualified += 1

    def _prune(self, ctx: SyncContext) -> None:
        today = self._now().date().isoformat()
        if ctx.store.get_kv("log_pruned_on") != today:
            ctx.store.prune_log(ctx.settings.sync.log_retention_days)
            ctx.store.set_kv("log_pruned_on", today)


async def run_until_stopped(engine: SyncEngine, stop: Awaitable[object]) -> None:
    """Run the engine until `stop` completes, then let it finish the call in flight."""
    task = asyncio.create_task(engine.run())
    await stop
    engine.stop()
    await task
