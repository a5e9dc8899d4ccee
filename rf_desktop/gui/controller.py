"""The one place the window touches the core: settings, tokens, the Pipedrive schema and the sync engine.

The engine runs on the same qasync loop as the window, so its events arrive on the GUI thread; they are
still re-emitted as Qt signals, so pages depend on the controller and never on the engine. Keychain calls
can block on an unlock prompt, so they run in an executor; the engine reads tokens from a cache filled that
way. In the demo the sandbox's tokens live only in memory: they are never written to the keychain.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any, TypeVar

from PySide6.QtCore import QObject, QUrl, Signal
from PySide6.QtGui import QDesktopServices

from rf_desktop.core import config, connections
from rf_desktop.core.config import Issue, Settings
from rf_desktop.core.engine import PD_TOKEN, RF_TOKEN, SyncEngine
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
from rf_desktop.core.secrets import SecretsError, TokenStore
from rf_desktop.core.store import Store
from rf_desktop.gui.tasks import Tasks

log = logging.getLogger(__name__)

T = TypeVar("T")
TokenSource = Callable[[str], str | None]
EngineFactory = Callable[[Store, TokenSource], SyncEngine]

TOKEN_NAMES = (RF_TOKEN, PD_TOKEN)
ENGINE_TASK = "engine"
# How long Quit waits for the call in flight before abandoning it (every write is safe to resume).
STOP_TIMEOUT = 15.0
# Where each kind of record opens in Pipedrive's web app, below its web base URL.
WEB_PATHS = {"person": "person/{id}", "lead": "leads/inbox/{id}", "deal": "deal/{id}"}


class NotConnectedError(Exception):
    """An action needs a token that has not been added yet."""


class AppController(QObject):
    settingsChanged = Signal(object)
    schemaChanged = Signal(object)
    schemaLoading = Signal(bool)
    engineEvent = Signal(object)
    referralChanged = Signal(int)
    logAdded = Signal(object)
    stateChanged = Signal(str, str)
    budgetChanged = Signal(object)
    referralQualified = Signal(object)
    referralFailed = Signal(object)
    # shutdown has begun: views stop refreshing from the store, which is about to close
    closing = Signal()

    def __init__(
        self,
        store: Store,
        tokens: TokenStore | None = None,
        *,
        demo: bool = False,
        sandbox: Any = None,
        engine_factory: EngineFactory | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.store = store
        self.tokens = tokens if tokens is not None else TokenStore()
        self.engine: SyncEngine | None = None
        self.demo = demo
        self.sandbox = sandbox
        self._engine_factory: EngineFactory = engine_factory or (lambda s, t: SyncEngine(s, t))
        self._tasks = Tasks()
        self._token_cache: dict[str, str | None] = {}
        self._session_tokens: dict[str, str] = {}
        self._unsubscribe: Callable[[], None] | None = None
        self._lock: InstanceLock | None = None
        self._schema: PipedriveSchema | None = None
        self._schema_stamp: str | None = None
        self._closed = False
        # the engine's latest news, for widgets created after it arrived
        self.state = NOT_CONFIGURED
        self.state_message = ""
        self.next_poll_at: datetime | None = None
        self.budget: BudgetChanged | None = None
        self._load_cached_schema()

    # --- tasks ----------------------------------------------------------------------------------------

    def spawn(self, key: str, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run `coro` in the background, keeping a reference; cancels the previous task with this key."""
        return self._tasks.spawn(key, coro)

    async def settle_tasks(self, timeout: float = 5.0) -> None:
        """Let background work other than the sync finish (or cancel it after `timeout` seconds), so a
        dialog can be destroyed without a task later updating its widgets."""
        await self._tasks.settle(timeout, keep=(ENGINE_TASK,))

    # --- settings -------------------------------------------------------------------------------------

    def settings(self) -> Settings:
        return self.store.get_settings() or Settings()

    def has_settings(self) -> bool:
        return self.store.get_settings() is not None

    def save_settings(self, settings: Settings) -> list[Issue]:
        """Validate; save when there is no error, then let the engine and the pages know."""
        issues = config.validate(settings, self.schema())
        if any(issue.severity == "error" for issue in issues):
            return issues
        self.store.save_settings(settings)
        if self.engine is not None:
            self.engine.reload_settings()
        self.settingsChanged.emit(settings)
        return issues

    # --- the Pipedrive schema -------------------------------------------------------------------------

    def schema(self) -> PipedriveSchema | None:
        return self._schema

    def _load_cached_schema(self) -> bool:
        """Take the schema the store holds (the engine refreshes it too); True when it changed."""
        schema = self.store.get_schema()
        stamp = schema.fetched_at if schema is not None else None
        if stamp == self._schema_stamp:
            return False
        self._schema, self._schema_stamp = schema, stamp
        return True

    async def refresh_schema(self) -> PipedriveSchema:
        """Fetch the fields, pipelines and stages again (the Refresh buttons); raises ApiError or
        NotConnectedError for the page to show."""
        self.schemaLoading.emit(True)
        try:
            token = await self.read_token(PD_TOKEN)
            if not token:
                raise NotConnectedError("Add your Pipedrive token on the Connections page first.")
            pipedrive = self.settings().pipedrive
            base = connections.pipedrive_api_base(pipedrive.base_url, pipedrive.company_domain)
            schema = await connections.fetch_schema(base, token)
            self.store.save_schema(schema)
            self._schema, self._schema_stamp = schema, schema.fetched_at
            if self.engine is not None:
                self.engine.reload_settings()
            self.schemaChanged.emit(schema)
            return schema
        finally:
            self.schemaLoading.emit(False)

    # --- connections ----------------------------------------------------------------------------------

    async def check_referral_factory(self) -> connections.RFCheck:
        token = await self.read_token(RF_TOKEN) or ""
        return await connections.check_referral_factory(self.settings().referral_factory.base_url, token)

    async def check_pipedrive(self) -> connections.PDCheck:
        token = await self.read_token(PD_TOKEN) or ""
        return await connections.check_pipedrive(self.settings().pipedrive.base_url, token)

    # --- tokens ---------------------------------------------------------------------------------------

    def use_session_tokens(self, tokens: dict[str, str]) -> None:
        """Tokens for this session only (the demo's): kept in memory, never written to the keychain."""
        self._session_tokens.update(tokens)
        self._tokens_changed()

    async def load_tokens(self) -> None:
        """Read both tokens from the keychain once, for the engine. A keychain that is locked or missing
        is logged; the window still opens, and the Connections page says what to do."""
        for name in TOKEN_NAMES:
            try:
                await self.read_token(name)
            except SecretsError as error:
                log.warning("could not read the %s token: %s", name, error)
        self._tokens_changed()

    async def token_present(self, name: str) -> bool:
        return bool(await self.read_token(name))

    async def set_token(self, name: str, token: str) -> None:
        token = token.strip()
        if self.demo:
            self._session_tokens[name] = token
        else:
            await self._in_executor(self.tokens.set, name, token)
            self._token_cache[name] = token
        self._tokens_changed()

    async def remove_token(self, name: str) -> None:
        if self.demo:
            self._session_tokens.pop(name, None)
        else:
            await self._in_executor(self.tokens.delete, name)
            self._token_cache[name] = None
        self._tokens_changed()

    def has_accounts(self) -> bool:
        """True once anything is set up (settings saved, or a token found by `load_tokens`); the first run
        offers the set-up otherwise. Reads no keychain, so it never prompts a second time."""
        return self.has_settings() or any(self._engine_token(name) for name in TOKEN_NAMES)

    async def read_token(self, name: str) -> str | None:
        """The token: the session's (the demo's), else the keychain's, read in an executor; None if unset."""
        if name in self._session_tokens:
            return self._session_tokens[name]
        token: str | None = await self._in_executor(self.tokens.get, name)
        self._token_cache[name] = token
        return token

    def _engine_token(self, name: str) -> str | None:
        return self._session_tokens.get(name) or self._token_cache.get(name)

    def _tokens_changed(self) -> None:
        if self.engine is not None:
            self.engine.reload_settings()

    @staticmethod
    async def _in_executor(function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(None, function, *args)

    # --- the engine -----------------------------------------------------------------------------------

    def start_engine(self) -> None:
        """Start syncing on the running loop. Raises AlreadySyncingError when another process syncs this
        database (two engines would race to create the same records)."""
        if self.engine is not None:
            return
        lock = InstanceLock(self.store.path)
        lock.acquire()
        self._lock = lock
        self.engine = self._engine_factory(self.store, self._engine_token)
        self._unsubscribe = self.engine.subscribe(self._on_engine_event)
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
            if self._load_cached_schema():
                self.schemaChanged.emit(self._schema)
            self.stateChanged.emit(event.state, event.message)
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

    def retry(self, rf_user_id: int) -> None:
        if self.engine is not None:
            self.engine.retry(rf_user_id)

    def counts(self) -> dict[str, int]:
        return self.store.counts()

    # --- Pipedrive links ------------------------------------------------------------------------------

    def web_url(self, kind: str, record_id: int | str) -> str:
        """Where a person, lead or deal opens in Pipedrive's web app."""
        pipedrive = self.settings().pipedrive
        schema = self.schema()
        if schema is not None:
            base = schema.web_base(pipedrive.base_url)
        else:
            base = connections.pipedrive_api_base(pipedrive.base_url, pipedrive.company_domain)
        return f"{base.rstrip('/')}/{WEB_PATHS[kind].format(id=record_id)}"

    def open_in_pipedrive(self, kind: str, record_id: int | str) -> bool:
        return QDesktopServices.openUrl(QUrl(self.web_url(kind, record_id)))

    # --- the end --------------------------------------------------------------------------------------

    async def shutdown(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop cleanly: the engine finishes (or safely abandons) the call in flight and closes its
        clients; then the tasks, the instance lock, the demo sandbox and the store. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self.closing.emit()
        engine_task = self._tasks.get(ENGINE_TASK)
        if self.engine is not None:
            self.engine.stop()
            if engine_task is not None:
                done, _pending = await asyncio.wait({engine_task}, timeout=timeout)
                if not done:
                    log.warning("the sync did not stop within %.0f s; abandoning the call in flight", timeout)
        await self._tasks.cancel_all()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        if self.sandbox is not None:
            await self._in_executor(self.sandbox.stop)
        self.store.close()
