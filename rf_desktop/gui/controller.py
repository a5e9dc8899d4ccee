"""The window's hold on the core: the account (`core.account.Account`) and the sync engine, with their
callbacks turned into Qt signals, so pages depend on the controller and never on the engine.

The account owns the tokens, the settings, the Pipedrive schema, the campaigns and the links; the
controller only adds what a window needs: signals, background tasks, starting and stopping the engine,
and opening links. The engine runs on the same qasync loop as the window, so callbacks arrive on the GUI
thread. Keychain calls can block on an unlock prompt, so the account reads them in an executor; the engine
reads tokens from the account's cache. In the demo the sandbox's tokens live only in memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any, Protocol, TypeVar

from PySide6.QtCore import QObject, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices

from rf_desktop.core.account import Account, Change, NotConnectedError
from rf_desktop.core.config import Issue, PipedriveSettings, Settings
from rf_desktop.core.doctor import DoctorReport, examine
from rf_desktop.core.engine import SyncEngine
from rf_desktop.core.events import (
    NOT_CONFIGURED,
    BudgetChanged,
    Event,
    LogAdded,
    ReferralChanged,
    ReferralFailed,
    ReferralQualified,
    StateChanged,
)
from rf_desktop.core.instance_lock import InstanceLock
from rf_desktop.core.schema import PipedriveSchema
from rf_desktop.core.secrets import TokenStore
from rf_desktop.core.store import Store
from rf_desktop.gui.counts import StandingCounts
from rf_desktop.gui.tasks import Tasks

__all__ = ["AppController", "EngineFactory", "NotConnectedError", "Sandbox"]

log = logging.getLogger(__name__)

T = TypeVar("T")
EngineFactory = Callable[[Account], SyncEngine]

ENGINE_TASK = "engine"
# Whether the owner has started syncing (finished the set-up or pressed Start): until then, settings that
# become complete on a settings page do not start the sync by themselves.
SYNC_STARTED_KEY = "sync_started"
# How long Quit waits for the call in flight before abandoning it (every write is safe to resume).
STOP_TIMEOUT = 15.0


class Sandbox(Protocol):
    """What the window needs of the demo's sandbox server."""

    @property
    def admin_url(self) -> str: ...

    def stop(self) -> None: ...


class ChangeGatherer(QObject):
    """Gathers the ids it is given and hands them on together once `interval_ms` has passed."""

    gathered = Signal(object)

    def __init__(self, interval_ms: int = 50, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._ids: set[int] = set()
        self._stopped = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._hand_on)

    def note(self, rf_user_id: int) -> None:
        if self._stopped:
            return
        self._ids.add(rf_user_id)
        if not self._timer.isActive():
            self._timer.start()

    def stop(self) -> None:
        """Hand nothing on any more (the store is about to close)."""
        self._stopped = True
        self._timer.stop()
        self._ids.clear()

    def _hand_on(self) -> None:
        ids, self._ids = frozenset(self._ids), set()
        self.gathered.emit(ids)


class AppController(QObject):
    settingsChanged = Signal(object)
    schemaChanged = Signal(object)
    schemaLoading = Signal(bool)
    campaignsChanged = Signal()
    engineEvent = Signal(object)
    # one referral changed (the sync's news, the test referral's): at times a thousand a second
    referralChanged = Signal(int)
    # the referrals changed since the last of these (a frozenset of ids), at most every 50 ms: what the
    # pages listen to, so a burst of changes runs their handlers once, not once per referral
    referralsChanged = Signal(object)
    logAdded = Signal(object)
    stateChanged = Signal(str, str)
    budgetChanged = Signal(object)
    referralQualified = Signal(object)
    referralFailed = Signal(object)
    # a new count of referrals per state is in (`standing_counts`)
    countsChanged = Signal()
    # shutdown has begun: views stop refreshing from the store, which is about to close
    closing = Signal()
    # where tokens are kept changed (this session only, or a keychain found again): token views reload
    keychainChanged = Signal()

    def __init__(
        self,
        store: Store,
        tokens: TokenStore | None = None,
        *,
        demo: bool = False,
        sandbox: Sandbox | None = None,
        engine_factory: EngineFactory | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.store = store
        # the window's reads: a connection of their own, which never waits while the sync writes
        self.reader = store.reader()
        self._standing = StandingCounts(store, parent=self)
        self._standing.changed.connect(self.countsChanged)
        self._changes = ChangeGatherer(parent=self)
        self.referralChanged.connect(self._changes.note)
        self._changes.gathered.connect(self.referralsChanged)
        self.referralsChanged.connect(self._standing.soon)
        self.tokens = tokens if tokens is not None else TokenStore()
        # the window must never wait on the keychain: the account answers tokens from its cache
        self.account = Account(store, self.tokens, cache_only=True, demo=demo)
        self.engine: SyncEngine | None = None
        self.demo = demo
        self.sandbox = sandbox
        self._engine_factory: EngineFactory = engine_factory or SyncEngine
        self._tasks = Tasks()
        self._unsubscribe: list[Callable[[], None]] = [self.account.subscribe(self._on_account_change)]
        self._lock: InstanceLock | None = None
        self._closed = False
        # the engine's latest news, for widgets created after it arrived
        self.state = NOT_CONFIGURED
        self.state_message = ""
        self.next_poll_at: datetime | None = None
        # the service whose token or address stopped the sync ("" when none is at fault)
        self.problem_service = ""
        self.budget: BudgetChanged | None = None

    # --- tasks ----------------------------------------------------------------------------------------

    def spawn(self, key: str, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run `coro` in the background, keeping a reference; cancels the previous task with this key."""
        return self._tasks.spawn(key, coro)

    async def settle_tasks(self, timeout: float = 5.0) -> None:
        """Let background work other than the sync finish (or cancel it after `timeout` seconds), so a
        dialog can be destroyed without a task later updating its widgets."""
        await self._tasks.settle(timeout, keep=(ENGINE_TASK,))

    # --- the account, as signals ----------------------------------------------------------------------

    def _on_account_change(self, change: Change) -> None:
        if change is Change.SETTINGS:
            self.settingsChanged.emit(self.account.settings())
        elif change is Change.SCHEMA:
            self.schemaChanged.emit(self.account.schema())
        elif change is Change.CAMPAIGNS:
            self.campaignsChanged.emit()

    def settings(self) -> Settings:
        return self.account.settings()

    def has_settings(self) -> bool:
        return self.account.saved_settings() is not None

    def save_settings(self, settings: Settings) -> list[Issue]:
        """Validate; save when there is no error (the pages hear it through settingsChanged)."""
        return self.account.save(settings)

    def schema(self) -> PipedriveSchema | None:
        return self.account.schema()

    async def refresh_schema(self, pipedrive: PipedriveSettings | None = None) -> PipedriveSchema:
        """Fetch the fields, pipelines and stages again (the Refresh buttons); raises ApiError or
        NotConnectedError for the page to show."""
        self.schemaLoading.emit(True)
        try:
            return await self.account.refresh_schema(pipedrive)
        finally:
            self.schemaLoading.emit(False)

    async def check_accounts(self) -> DoctorReport:
        """The doctor's read-only report on both accounts (Help → Check my accounts)."""
        account = self.account
        return await examine(account.saved_settings(), self.tokens, session_tokens=account.session_tokens())

    # --- tokens ---------------------------------------------------------------------------------------

    def keep_tokens_for_session(self) -> None:
        """No usable keychain: tokens entered from now on are kept in memory until rf-desktop quits."""
        self.tokens.keep_for_session()
        self.keychainChanged.emit()

    async def recheck_keychain(self) -> None:
        """Look for the keychain again; tokens kept for this session move into it. Raises SecretsError."""
        await asyncio.get_running_loop().run_in_executor(None, self.tokens.recheck)
        self.keychainChanged.emit()

    def has_accounts(self) -> bool:
        """True once anything is set up (settings saved, or a token found by `load_tokens`); the first run
        offers the set-up otherwise. Reads no keychain, so it never prompts a second time."""
        return self.has_settings() or self.account.has_tokens()

    # --- the engine -----------------------------------------------------------------------------------

    def sync_started(self) -> bool:
        """True once the owner has started syncing this database (it then starts with the app). A store
        from before this was recorded counts as started when its settings are complete."""
        started = self.store.get_kv(SYNC_STARTED_KEY)
        if started is None:
            started = self.settings_complete()
            self.store.set_kv(SYNC_STARTED_KEY, started)
        return bool(started)

    def settings_complete(self) -> bool:
        """The saved settings are complete enough to sync on."""
        return self.has_settings() and not self.account.errors(self.settings())

    def start_engine(self) -> None:
        """Start syncing on the running loop. Raises AlreadySyncingError when another process syncs this
        database (two engines would race to create the same records)."""
        if self.engine is not None:
            return
        lock = InstanceLock(self.store.path)
        lock.acquire()
        self._lock = lock
        self.store.set_kv(SYNC_STARTED_KEY, True)
        self.engine = self._engine_factory(self.account)
        self._unsubscribe.append(self.engine.subscribe(self._on_engine_event))
        self.spawn(ENGINE_TASK, self.engine.run())

    def _on_engine_event(self, event: Event) -> None:
        if self._closed and not isinstance(event, StateChanged):
            return  # the window is closing: only the final "stopped" is still news
        if isinstance(event, ReferralChanged):
            self.referralChanged.emit(event.rf_user_id)
        elif isinstance(event, LogAdded):
            self.logAdded.emit(event.row)
        elif isinstance(event, StateChanged):
            self.state, self.state_message, self.next_poll_at = event.state, event.message, event.next_poll_at
            self.problem_service = event.service
            self.stateChanged.emit(event.state, event.message)
            self._standing.soon()
        elif isinstance(event, BudgetChanged):
            self.budget = event
            self.budgetChanged.emit(event)
        elif isinstance(event, ReferralQualified):
            self.referralQualified.emit(event)
        elif isinstance(event, ReferralFailed):
            self.referralFailed.emit(event)
        self.engineEvent.emit(event)

    @property
    def next_signups_at(self) -> datetime | None:
        """When the sync next looks for new sign-ups. Read from the engine as it is now: a look that finds
        nothing sends no event."""
        return self.engine.next_signups_at if self.engine is not None and not self._closed else None

    @property
    def next_conversions_at(self) -> datetime | None:
        """When the sync next looks for conversions; None while no referral waits for one."""
        return self.engine.next_conversions_at if self.engine is not None and not self._closed else None

    @property
    def closed(self) -> bool:
        """Shutdown has begun: views must not read the store any more (it is about to close)."""
        return self._closed

    @property
    def paused(self) -> bool:
        return self.engine is not None and self.engine.paused

    def pause(self) -> None:
        if self.engine is not None:
            self.engine.pause()

    def resume(self) -> None:
        if self.engine is not None:
            self.engine.resume()

    def sync_now(self) -> None:
        if self.engine is not None:
            self.engine.sync_now()

    def recheck(self) -> None:
        """A token or address was just tested and works: the sync tries again now, instead of waiting
        for its next look."""
        if self.engine is not None:
            self.engine.sync_now()

    def retry(self, rf_user_id: int) -> None:
        if self.engine is not None:
            self.engine.retry(rf_user_id)

    def counts(self) -> dict[str, int]:
        return self.store.counts()

    def standing_counts(self) -> dict[str, int]:
        """Referrals per state in the owner's words (`core.vocabulary`), as last counted: a new count
        follows changes within a moment, and `countsChanged` announces it."""
        return self._standing.latest()

    # --- Pipedrive links ------------------------------------------------------------------------------

    def open_in_pipedrive(self, kind: str, record_id: int | str) -> bool:
        return QDesktopServices.openUrl(QUrl(self.account.web_url(kind, record_id)))

    # --- the end --------------------------------------------------------------------------------------

    async def shutdown(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop cleanly: the engine finishes (or safely abandons) the call in flight and closes its
        clients; then the tasks, the instance lock, the demo sandbox and the store. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._changes.stop()
        self.closing.emit()
        engine_task = self._tasks.get(ENGINE_TASK)
        if self.engine is not None:
            self.engine.stop()
            if engine_task is not None:
                done, _pending = await asyncio.wait({engine_task}, timeout=timeout)
                if not done:
                    log.warning("the sync did not stop within %.0f s; abandoning the call in flight", timeout)
        await self._tasks.cancel_all()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        await self.account.close_clients()
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        if self.sandbox is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.sandbox.stop)
        self._standing.close()
        if self.reader is not self.store:
            self.reader.close()
        self.store.close()
