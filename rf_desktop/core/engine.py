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
from rf_desktop.core.account import Account, Change
from rf_desktop.core.cadence import Cadence
from rf_desktop.core.config import Settings
from rf_desktop.core.context import SyncContext, iso, off_the_loop, utcnow
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
    RateLimitedError,
    ValidationError,
)
from rf_desktop.core.intake import ReferrerCache, collect_new_users
from rf_desktop.core.mapping import MappingError
from rf_desktop.core.person_index import PersonIndex
from rf_desktop.core.push import EmailLocks, push
from rf_desktop.core.qualify import qualify
from rf_desktop.core.referral_factory import ReferralFactoryClient
from rf_desktop.core.schema import PipedriveSchema
from rf_desktop.core.store import FAILED, PENDING, QUALIFIED, SENDING, SKIPPED, WAITING, Reason, Referral
from rf_desktop.core.watch import WATERMARK_KEY, Match, poll_deals, watch_interval

log = logging.getLogger(__name__)

# transient failures stay "pending" (with the reason) for this many attempts before they show as failed
QUIET_ATTEMPTS = 4
MAX_RETRY_DELAY = 3600.0
# `sync --once` gives up after this many cycles in a row fail as a whole (5 s and 10 s apart)
ONCE_FAILED_CYCLES = 3


# The kind of trouble each API error is, most specific first.
_REASONS: tuple[tuple[type[ApiError], Reason], ...] = (
    (RateLimitedError, Reason.RATE_LIMITED),
    (AuthError, Reason.AUTH),
    (ConnectionFailedError, Reason.UNREACHABLE),
    (ValidationError, Reason.MAPPING),
)


def reason_of(error: ApiError) -> Reason:
    return next((reason for kind, reason in _REASONS if isinstance(error, kind)), Reason.TRANSIENT)


class GlobalStop(Exception):
    """A condition that stops the whole cycle, not one referral (wrong token, budget gone, bad settings)."""


SENT_OUT, SKIPPED_OUT, FAILED_OUT, RETRYING_OUT, QUALIFIED_OUT = "sent", "skipped", "failed", "retrying", "qualified"


@dataclass
class RunSummary:
    """What one `run_once` did. Each referral counts once per step, by how that step ended in this run."""

    recorded: int = 0
    sends: dict[int, str] = field(default_factory=dict)  # rf_user_id -> sent, skipped, failed or retrying
    qualifications: dict[int, str] = field(default_factory=dict)  # rf_user_id -> qualified, failed or retrying
    tokens_this_run: int = 0
    tokens_today: int = 0
    token_limit: int | None = None  # the daily budget, or the owner's cap when it is lower; None until known
    errors: list[str] = field(default_factory=list)
    # referrals that passing trouble (a timeout, a 5xx, an unreachable service) left to be tried again
    still_waiting: int = 0
    # the last cycle ended in an error (the service could not be reached, or answered like something else)
    ended_in_error: bool = False

    @staticmethod
    def _count(outcomes: dict[int, str], outcome: str) -> int:
        return sum(1 for value in outcomes.values() if value == outcome)

    @property
    def sent(self) -> int:
        return self._count(self.sends, SENT_OUT)

    @property
    def skipped(self) -> int:
        return self._count(self.sends, SKIPPED_OUT)

    @property
    def failed(self) -> int:
        return self._count(self.sends, FAILED_OUT)

    @property
    def qualified(self) -> int:
        return self._count(self.qualifications, QUALIFIED_OUT)

    def line(self) -> str:
        today = f"today {self.tokens_today} of {self.token_limit}" if self.token_limit else f"today {self.tokens_today}"
        return (
            f"{self.recorded} new, {self.sent} sent to Pipedrive, {self.skipped} skipped, {self.failed} failed, "
            f"{self._count(self.sends, RETRYING_OUT)} to retry; {self.qualified} qualified, "
            f"{self._count(self.qualifications, FAILED_OUT)} qualifications failed, "
            f"{self._count(self.qualifications, RETRYING_OUT)} qualifications to retry; "
            f"API budget used this run: {self.tokens_this_run} ({today})"
        )


class SyncEngine:
    def __init__(
        self,
        account: Account,
        *,
        now: Callable[[], datetime] = utcnow,
        retry_base: float = 5.0,
        workers: int = 4,
        min_watch_interval: float | None = None,
        hint: Callable[[ApiError], str] | None = None,
    ) -> None:
        """`hint` words what the owner can do about an error that stops the sync (default: the error's own
        hint, which names the app's pages; the command line names its commands instead)."""
        self.account = account
        self.store = account.store
        self._now = now
        self._retry_base = retry_base
        self._workers = workers
        self._min_watch_interval = min_watch_interval
        self._hint = hint or (lambda error: error.hint)
        self._listeners: list[Callable[[Event], None]] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self._paused = False
        self.state = IDLE
        self.message = ""
        self.next_poll_at: datetime | None = None
        self._cadence = Cadence()
        self._told_idle = False  # listeners know the sync is up to date: quiet looks need not repeat it
        self._budget_told: BudgetChanged | None = None
        self._settings: Settings | None = None
        self._referrers: ReferrerCache | None = None
        self._referrers_of: ReferralFactoryClient | None = None
        self._locks = EmailLocks()
        self._people = PersonIndex()
        self._error_streak = 0
        self._logged_problem: tuple[str, str] | None = None
        self._summary = RunSummary()
        self._once = False  # in run_once: nothing is tried again after the run, so no message promises it
        # settings, tokens or the schema changed: look again now rather than at the next poll
        self._cycling = False
        account.subscribe(self._account_changed)

    def _account_changed(self, change: Change) -> None:
        if change is Change.CAMPAIGNS or (change is Change.SCHEMA and self._cycling):
            return  # the cycle's own schema fetch (or forgetting it) needs no second look
        self._wake.set()

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

    def _set_state(self, state: str, message: str, service: str = "", reason: Reason | None = None) -> None:
        self.state, self.message = state, message
        self._told_idle = state == IDLE
        self._emit(
            StateChanged(
                state, message, self.next_poll_at, self.next_signups_at, self.next_conversions_at, service, reason
            )
        )

    def _busy(self) -> None:
        """Real work begins (new sign-ups, pushes, a look at Pipedrive): say so. A look that finds nothing
        new says nothing, so a window is not redrawn every few seconds for no news."""
        if self._told_idle:
            self._set_state(RUNNING, "Syncing…")

    async def _emit_budget(self) -> None:
        snap = self.account.budget.snapshot()
        event = BudgetChanged(snap.used_today, snap.daily_budget, snap.cap, snap.resets_at)
        if event == self._budget_told:
            return  # an idle look spends nothing: no write, no event
        self._budget_told = event
        await off_the_loop(self.account.save_budget)
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

    def retry(self, rf_user_id: int) -> None:
        """The owner asked to try a failed or skipped referral again."""
        referral = self.store.get(rf_user_id)
        if referral is None or referral.status not in (FAILED, SKIPPED):
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
        self._once = True
        used_before = self.account.budget.snapshot().used_today
        deadline = self._now() + timedelta(seconds=max_seconds)
        try:
            while True:
                self._cadence.look_now()
                delay = await self._cycle_guarded()
                if self.state in (AUTH_ERROR, NOT_CONFIGURED, BUDGET_EXHAUSTED) or delay is None:
                    break
                if self.state == ERROR and self._error_streak >= ONCE_FAILED_CYCLES:
                    break  # a service that keeps failing ends the run: the exit code says to try again later
                # a failed cycle waits out its own backoff: what it could not send is due again at once,
                # and going round without the pause would resend it as fast as the service answers
                wait = delay if self.state == ERROR else await self._seconds_until_next_retry()
                if wait is None or self._now() + timedelta(seconds=wait) > deadline:
                    break
                await asyncio.sleep(wait)
        finally:
            self._once = False
            await self._close_clients()
        snap = self.account.budget.snapshot()
        limits = [v for v in (snap.daily_budget, snap.cap) if v is not None]
        self._summary.tokens_today = snap.used_today
        # a count that went down started a new day during the run: all of today's use is this run's
        rolled_over = snap.used_today < used_before
        self._summary.tokens_this_run = snap.used_today if rolled_over else snap.used_today - used_before
        self._summary.token_limit = min(limits) if limits else None
        self._summary.ended_in_error = self.state == ERROR
        self._summary.still_waiting = await off_the_loop(self.store.count_due, self._now() + timedelta(days=36_500))
        return self._summary

    async def _seconds_until_next_retry(self) -> float | None:
        if await off_the_loop(self.store.due_for_push, self._now(), limit=1):
            return 0.0
        due = await off_the_loop(self.store.next_retry_at)
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
        self._cycling = True
        try:
            return await self._one_cycle()
        finally:
            self._cycling = False

    async def _one_cycle(self) -> float | None:
        try:
            ctx = await self._prepare()
            if ctx is None:
                return None
            if not self._told_idle:
                self._set_state(RUNNING, "Syncing…")
            await self._cycle(ctx)
        except AuthError as error:
            await self._close_clients()
            self._problem(AUTH_ERROR, f"{error.message} {self._hint(error)}".strip(), error.service, Reason.AUTH)
            return None
        except BudgetExhaustedError as error:
            resets = error.resets_at or (self._now() + timedelta(hours=1))
            self.next_poll_at = resets
            self._problem(BUDGET_EXHAUSTED, f"{error.message} {self._hint(error)} Nothing is lost meanwhile.")
            await self._emit_budget()
            return max(1.0, (resets - self._now()).total_seconds())
        except BlockedError as error:
            self._problem(ERROR, f"{error.message} {self._hint(error)}".strip())
            return 600.0
        except (ApiError, GlobalStop) as error:
            self._error_streak += 1
            delay = min(self._retry_base * 2.0 ** (self._error_streak - 1), 300.0)
            self.next_poll_at = self._now() + timedelta(seconds=delay)
            if isinstance(error, ApiError):
                text, reason = f"{error.message} {self._hint(error)}".strip(), reason_of(error)
            else:
                text, reason = str(error), None
            at_fault = error.service if isinstance(error, ConnectionFailedError) else ""
            self._problem(
                ERROR, text if self._once else f"{text} Trying again in {delay:.0f} s.", at_fault, reason
            )
            return delay
        except Exception as error:  # a bug or an answer nobody foresaw must not end a continuous sync
            log.exception("a sync cycle failed unexpectedly")
            return self._unexpected_cycle_error(error)
        self._error_streak = 0
        self._logged_problem = None
        now = self._now()
        wake_at = self._cadence.next_look(now)
        retry_in = await self._seconds_until_next_retry()
        if retry_in is not None:
            wake_at = min(wake_at, now + timedelta(seconds=max(1.0, retry_in)))
        self.next_poll_at = wake_at
        if not self._told_idle:  # work was done, or a problem has cleared: news for the listeners
            counts = await off_the_loop(self.store.counts)
            self._set_state(
                IDLE,
                f"Up to date. {counts.get(WAITING, 0)} waiting for conversion, "
                f"{counts.get(QUALIFIED, 0)} qualified.",
            )
        await self._emit_budget()
        return max(0.0, (wake_at - now).total_seconds())

    def _unexpected_cycle_error(self, error: Exception) -> float:
        self._error_streak += 1
        delay = min(self._retry_base * 2.0 ** (self._error_streak - 1), 300.0)
        self.next_poll_at = self._now() + timedelta(seconds=delay)
        self._problem(
            ERROR,
            f"rf-desktop met an unexpected problem ({type(error).__name__}); details are in the application "
            f"log. Trying again in {delay:.0f} s.",
        )
        return delay

    def _problem(self, state: str, message: str, service: str = "", reason: Reason | None = None) -> None:
        self._summary.errors.append(message)
        # the same problem met again by the next cycle (the state went through "Syncing…" in between) is
        # logged once, until a cycle succeeds
        if (state, message) != self._logged_problem:
            row = self.store.log("error", "sync stopped" if state != ERROR else "sync problem", message)
            self._emit(LogAdded(row))
            self._logged_problem = (state, message)
        self._set_state(state, message, service, reason)

    # -- preparing a cycle ------------------------------------------------------------------------

    async def _prepare(self) -> SyncContext | None:
        account = self.account
        settings = account.saved_settings()
        if settings is None:
            self._set_state(NOT_CONFIGURED, "Not set up yet: connect your accounts and map the fields.")
            return None
        if self._settings is not None and settings != self._settings:
            account.settings_changed_elsewhere()
        self._settings = settings
        missing = account.missing_tokens()
        if missing:
            self._problem(
                NOT_CONFIGURED,
                f"The {' and '.join(missing)} token is missing. Add it on the Connections page.",
                reason=Reason.MISSING_TOKEN,
            )
            return None
        self.account.budget.cap = settings.sync.daily_token_cap  # the tracker refuses calls past it
        rf, pd = await account.clients()
        if self._referrers is None or self._referrers_of is not rf:
            self._referrers, self._referrers_of = ReferrerCache(rf), rf
        schema = await account.current_schema(self._now())
        errors = account.errors(settings)
        if errors:
            self._problem(NOT_CONFIGURED, errors[0].message)
            return None
        return SyncContext(self.store, settings, schema, rf, pd, self._emit, self._now)

    async def _close_clients(self) -> None:
        await self.account.close_clients()

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
        await off_the_loop(self._prune, ctx)

    async def _intake(self, ctx: SyncContext) -> None:
        now = self._now()
        names = await self.account.campaign_names(now)
        assert self._referrers is not None
        result = await collect_new_users(ctx.rf, ctx.store, ctx.settings, names, self._referrers, iso(now))
        if result.recorded:
            self._busy()
        for rf_user_id in result.recorded:
            self._emit(ReferralChanged(rf_user_id))
        self._summary.recorded += len(result.recorded)
        if result.recorded:
            noun = "referral" if len(result.recorded) == 1 else "referrals"
            await ctx.log("info", "intake", f"{len(result.recorded)} new {noun} from Referral Factory recorded.")
        elif result.first_run and ctx.settings.referral_factory.backfill == "none":
            await ctx.log("info", "intake", "Watching for new sign-ups from now on.")

    async def _push_due(self, ctx: SyncContext) -> None:
        seen: set[int] = set()
        total = await off_the_loop(ctx.store.count_due, self._now())
        while True:
            batch = await off_the_loop(ctx.store.due_for_push, self._now(), limit=200)
            due = [r for r in batch if r.rf_user_id not in seen]
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
            await self._fail(
                ctx,
                referral,
                "This referral has no email address, so it cannot be matched to a Pipedrive person. "
                "Add the email in Referral Factory, then press Retry.",
                Reason.NO_EMAIL,
            )
            return
        try:
            referral = await push(ctx, referral, self._locks, self._people)
        except MappingError as error:
            await self._fail(
                ctx,
                referral,
                f"{error} Fix the value in Referral Factory or the mapping, then Retry.",
                Reason.MAPPING,
            )
        except ValidationError as error:
            await self._pipedrive_refused(ctx, referral, error)
        except (AuthError, BudgetExhaustedError, BlockedError, ConnectionFailedError):
            await self._back_to_queue(ctx, referral)
            raise
        except ApiError as error:
            # passing trouble for this referral (timeouts, 5xx, a 429 storm that outlasted the retries, an
            # account limit, a record deleted meanwhile): try it again later, with growing pauses
            await self._retry_later(ctx, referral, error)
        except Exception as error:  # one referral's surprise must not stop the others
            log.exception("sending referral %s failed unexpectedly", referral.rf_user_id)
            await self._retry_later(
                ctx,
                referral,
                f"rf-desktop met an unexpected problem with this referral ({type(error).__name__}); details "
                "are in the application log.",
                failed=True,
            )
        else:
            self._summary.sends[referral.rf_user_id] = SKIPPED_OUT if referral.status == SKIPPED else SENT_OUT

    async def _refresh_from_referral_factory(self, ctx: SyncContext, referral: Referral) -> Referral:
        """A retried referral may have been corrected in Referral Factory since it was recorded."""
        user = await ctx.rf.get_user(referral.rf_user_id)
        email = (user.get("email") or "").strip()
        if email and email != referral.email:
            referral = await ctx.update(referral, email=email, first_name=(user.get("first_name") or "").strip())
        return referral

    async def _pipedrive_refused(self, ctx: SyncContext, referral: Referral, error: ValidationError) -> None:
        if error.field is not None:
            # most often a mapped custom field was deleted in Pipedrive: re-read the fields, and the next
            # cycle's validation names the field and stops until the mapping is fixed
            self.account.forget_schema()
            await self._retry_later(ctx, referral, error)
            return
        await self._fail(ctx, referral, f"Pipedrive refused it: {error.message}", Reason.REFUSED)

    async def _back_to_queue(self, ctx: SyncContext, referral: Referral) -> None:
        current = await off_the_loop(ctx.store.get, referral.rf_user_id)
        if current is not None and current.status == SENDING:
            await ctx.update(current, status=PENDING)
        self._summary.sends[referral.rf_user_id] = RETRYING_OUT

    async def _fail(self, ctx: SyncContext, referral: Referral, reason: str, kind: Reason) -> None:
        """A failure that trying again unchanged cannot fix."""
        referral = await ctx.update(
            referral, status=FAILED, status_reason=reason, reason_kind=kind, permanent=1, next_attempt_at=None
        )
        await ctx.log("error", "failed", reason, referral)
        self._summary.sends[referral.rf_user_id] = FAILED_OUT

    async def _retry_later(
        self, ctx: SyncContext, referral: Referral, error: ApiError | str, *, failed: bool = False
    ) -> None:
        """Schedule another attempt with a growing pause; `failed` shows it as failed from the first time."""
        current = await off_the_loop(ctx.store.get, referral.rf_user_id) or referral
        attempts = current.attempts + 1
        delay = min(self._retry_base * 2 ** (attempts - 1), MAX_RETRY_DELAY) * random.uniform(0.5, 1.0)
        when = self._now() + timedelta(seconds=delay)
        status = FAILED if failed or attempts > QUIET_ATTEMPTS else PENDING
        text = error.message if isinstance(error, ApiError) else error
        reason = f"{text} Trying again at {when:%H:%M:%S} UTC."
        await ctx.update(
            current,
            status=status,
            status_reason=reason,
            reason_kind=reason_of(error) if isinstance(error, ApiError) else Reason.TRANSIENT,
            attempts=attempts,
            next_attempt_at=iso(when),
            permanent=0,
        )
        await ctx.log("error" if failed else "warning", "failed" if failed else "retry scheduled", reason, current)
        self._summary.sends[referral.rf_user_id] = FAILED_OUT if failed else RETRYING_OUT

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
        # an interrupted qualification, or a referral that arrived qualified: settle it without a rule
        for referral in await off_the_loop(ctx.store.waiting_to_settle):
            await self._qualify(ctx, referral)
        if not await off_the_loop(ctx.store.count, status=WAITING):
            return None
        self._busy()
        saved = await off_the_loop(ctx.store.get_kv, WATERMARK_KEY)
        oldest = (
            []
            if saved
            else await off_the_loop(ctx.store.query, status=WAITING, order_by="recorded_at", descending=False, limit=1)
        )
        since = datetime.fromisoformat(saved or oldest[0].recorded_at or iso(now))
        matches, newest = await poll_deals(ctx, since)
        for match in matches:
            await self._apply(ctx, match)
        await off_the_loop(ctx.store.set_kv, WATERMARK_KEY, iso(newest))
        snap = self.account.budget.snapshot()
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
            referral = await ctx.update(referral, **changes)
            await ctx.log("info", "deal changed", self._describe_change(ctx.schema, deal, converted), referral)
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
            await ctx.log(
                "warning", "qualify retry", f"{error.message} Will try the qualification again.", referral
            )
            self._summary.qualifications[referral.rf_user_id] = RETRYING_OUT
            return
        except Exception as error:  # one referral's surprise must not stop the others
            log.exception("qualifying referral %s failed unexpectedly", referral.rf_user_id)
            await ctx.log(
                "error",
                "qualify retry",
                f"rf-desktop met an unexpected problem qualifying this referral ({type(error).__name__}); "
                "details are in the application log. Will try the qualification again.",
                referral,
            )
            self._summary.qualifications[referral.rf_user_id] = RETRYING_OUT
            return
        if result.status == QUALIFIED:
            self._summary.qualifications[referral.rf_user_id] = QUALIFIED_OUT
        elif result.status == FAILED:
            self._summary.qualifications[referral.rf_user_id] = FAILED_OUT

    def _prune(self, ctx: SyncContext) -> None:
        """Once a day, drop the sync log's rows older than the owner keeps (run off the loop)."""
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
