"""The account: everything rf-desktop holds about the two services around the sync: the tokens, the saved
settings, the Pipedrive schema, the campaigns, the two clients, the Pipedrive addresses, the connection
checks and creating the referral fields.

It is the one owner of these facts. The engine, the test referral, the headless commands and the window
all read them here, and subscribe to hear when they change (`Change`), instead of keeping copies of their
own. It never imports the engine, the test referral or the GUI (an import-linter contract).

Keychain calls can block on an unlock prompt. An account made with `cache_only=True` (the window's) never
reads the keychain from `token()`: `load_tokens()` and `read_token()` read it in an executor and fill the
cache `token()` answers from.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from rf_desktop.core import connections
from rf_desktop.core.config import Issue, PipedriveSettings, Settings, validate
from rf_desktop.core.connections import PDCheck, RFCheck, pipedrive_api_base
from rf_desktop.core.http import PIPEDRIVE, REFERRAL_FACTORY, ApiClient
from rf_desktop.core.pipedrive import PipedriveClient
from rf_desktop.core.ratelimit import BudgetTracker, BurstLimiter
from rf_desktop.core.referral_factory import ReferralFactoryClient
from rf_desktop.core.schema import FieldDef, PipedriveSchema
from rf_desktop.core.secrets import PD_TOKEN, RF_TOKEN, TOKEN_NAMES, SecretsError
from rf_desktop.core.secrets import TokenSource as KeySource
from rf_desktop.core.store import Store

log = logging.getLogger(__name__)

T = TypeVar("T")
C = TypeVar("C", bound=ApiClient)

BUDGET_KEY = "pipedrive_budget"
CAMPAIGNS_KEY = "referral_factory_campaigns"
SCHEMA_MAX_AGE = timedelta(hours=24)
CAMPAIGNS_MAX_AGE = timedelta(minutes=10)
# Where each kind of record opens in Pipedrive's web app, below its web base URL.
WEB_PATHS = {"person": "person/{id}", "lead": "leads/inbox/{id}", "deal": "deal/{id}"}
SERVICE_NAMES = {RF_TOKEN: REFERRAL_FACTORY, PD_TOKEN: PIPEDRIVE}

RfFactory = Callable[[Settings, str], ReferralFactoryClient]
PdFactory = Callable[..., PipedriveClient]


class Change(StrEnum):
    """What changed in the account, as its listeners hear it."""

    SETTINGS = "settings"
    TOKENS = "tokens"
    SCHEMA = "schema"
    CAMPAIGNS = "campaigns"


class TokenReader(Protocol):
    def get(self, name: str, /) -> str | None: ...


@runtime_checkable
class Keychain(TokenReader, Protocol):
    def set(self, name: str, token: str, /) -> None: ...

    def delete(self, name: str, /) -> None: ...

    def source(self, name: str, /) -> KeySource | None: ...


def refusals(issues: list[Issue], *, partial: bool = False) -> list[Issue]:
    """The problems that keep settings from being saved: every error, except with `partial` a choice
    still to be made."""
    return [i for i in issues if i.severity == "error" and not (partial and i.missing)]


class NotConnectedError(Exception):
    """An action needs a token that has not been added yet."""


class Account:
    def __init__(
        self,
        store: Store,
        keychain: TokenReader,
        *,
        cache_only: bool = False,
        demo: bool = False,
        rf_factory: RfFactory = connections.referral_factory_client,
        pd_factory: PdFactory = connections.pipedrive_client,
    ) -> None:
        self.store = store
        self.keychain = keychain
        # the demo's tokens live only in memory: they are never written to the keychain
        self.demo = demo
        self._cache_only = cache_only
        self._rf_factory, self._pd_factory = rf_factory, pd_factory
        self._listeners: list[Callable[[Change], None]] = []
        self._token_cache: dict[str, str | None] = {}
        self._session_tokens: dict[str, str] = {}
        self._schema = store.get_schema()
        # the schema's age is looked at once after each change of settings or tokens, not every cycle
        self._schema_age_checked = False
        self._validated: tuple[Settings, PipedriveSchema | None, list[Issue]] | None = None
        self._campaign_names: dict[int, str] = {}
        self._campaigns_at: datetime | None = None
        self._rf = _Kept[ReferralFactoryClient]()
        self._pd = _Kept[PipedriveClient]()
        self.burst = BurstLimiter()
        saved = store.get_kv(BUDGET_KEY)
        self.budget = BudgetTracker.from_dict(saved) if saved else BudgetTracker()

    # --- listeners -------------------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[Change], None]) -> Callable[[], None]:
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    def _changed(self, change: Change) -> None:
        if change in (Change.SETTINGS, Change.TOKENS):
            self._schema_age_checked = False
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:  # a broken listener must not stop the others
                log.exception("an account listener failed")

    # --- tokens ----------------------------------------------------------------------------------------

    def token(self, name: str) -> str | None:
        """The token without waiting: the session's, else the one read from the keychain (read now,
        once, unless this account is `cache_only`)."""
        if name in self._session_tokens:
            return self._session_tokens[name]
        if name not in self._token_cache:
            if self._cache_only:
                return None
            self._token_cache[name] = self.keychain.get(name)
        return self._token_cache[name]

    def missing_tokens(self) -> list[str]:
        """The names of the services whose token is missing, as the owner knows them."""
        return [SERVICE_NAMES[name] for name in TOKEN_NAMES if not self.token(name)]

    def has_tokens(self) -> bool:
        """True when either token is known (without reading the keychain)."""
        return any(self._session_tokens.get(n) or self._token_cache.get(n) for n in TOKEN_NAMES)

    def session_tokens(self) -> dict[str, str]:
        """A copy of the tokens kept for this session only (the demo's)."""
        return dict(self._session_tokens)

    def use_session_tokens(self, tokens: dict[str, str]) -> None:
        """Tokens for this session only (the demo's): kept in memory, never written to the keychain."""
        self._session_tokens.update(tokens)
        self._changed(Change.TOKENS)

    async def load_tokens(self) -> None:
        """Read both tokens from the keychain once. A keychain that is locked or missing is logged; the
        window still opens, and the Connections page says what to do."""
        for name in TOKEN_NAMES:
            try:
                await self.read_token(name)
            except SecretsError as error:
                log.warning("could not read the %s token: %s", name, error)
        self._changed(Change.TOKENS)

    async def read_token(self, name: str) -> str | None:
        """The token: the session's (the demo's), else the keychain's, read in an executor; None if unset."""
        if name in self._session_tokens:
            return self._session_tokens[name]
        token = await _in_executor(self.keychain.get, name)
        self._token_cache[name] = token
        return token

    async def set_token(self, name: str, token: str) -> None:
        token = token.strip()
        if self.demo:
            self._session_tokens[name] = token
        else:
            await _in_executor(self._keychain().set, name, token)
            self._token_cache[name] = token
        self._changed(Change.TOKENS)

    async def remove_token(self, name: str) -> None:
        if self.demo:
            self._session_tokens.pop(name, None)
        else:
            await _in_executor(self._keychain().delete, name)
            self._token_cache[name] = None
        self._changed(Change.TOKENS)

    async def token_source(self, name: str) -> str | None:
        """Where the token comes from ("keychain", "environment", "session") or None when there is none."""
        if self.demo:
            return "session" if await self.read_token(name) else None
        return await _in_executor(self._keychain().source, name)

    def _keychain(self) -> Keychain:
        if not isinstance(self.keychain, Keychain):
            raise TypeError("this account reads its tokens from a plain mapping: it cannot change them")
        return self.keychain

    # --- settings --------------------------------------------------------------------------------------

    def saved_settings(self) -> Settings | None:
        return self.store.get_settings()

    def settings(self) -> Settings:
        return self.saved_settings() or Settings()

    def issues(self, settings: Settings) -> list[Issue]:
        """The settings' problems against the current schema; asked again only when either changed."""
        cached = self._validated
        if cached is None or cached[1] is not self._schema or cached[0] != settings:
            # a copy: a caller may change its settings in place after asking
            cached = self._validated = (copy.deepcopy(settings), self._schema, validate(settings, self._schema))
        return cached[2]

    def errors(self, settings: Settings) -> list[Issue]:
        return [issue for issue in self.issues(settings) if issue.severity == "error"]

    def save(self, settings: Settings, *, partial: bool = False, from_file: bool = False) -> list[Issue]:
        """Validate; save when nothing refuses it (`refusals`), then tell the listeners. Returns the problems
        found. `partial` lets choices still to be made through, for settings finished later in the app.
        Settings `from_file` were written elsewhere, not against the Pipedrive schema held here (which may
        be older than the file), so they are checked on their own; `config check --online` checks them
        against the accounts."""
        issues = validate(settings) if from_file else self.issues(settings)
        if refusals(issues, partial=partial):
            return issues
        self.store.save_settings(settings)
        self._changed(Change.SETTINGS)
        return issues

    def settings_changed_elsewhere(self) -> None:
        """The store's settings changed behind the account's back (an import from the command line): look
        at the schema's age again."""
        self._schema_age_checked = False

    # --- the Pipedrive addresses -----------------------------------------------------------------------

    def pipedrive_api_base(self, pipedrive: PipedriveSettings | None = None) -> str:
        pipedrive = pipedrive or self.settings().pipedrive
        return pipedrive_api_base(pipedrive.base_url, pipedrive.company_domain)

    def web_base(self) -> str:
        """Where Pipedrive's web app is, as the schema last said, else as the settings say."""
        if self._schema is not None:
            return self._schema.web_base(self.settings().pipedrive.base_url)
        return self.pipedrive_api_base()

    def web_url(self, kind: str, record_id: int | str) -> str:
        """Where a person, lead or deal opens in Pipedrive's web app."""
        return f"{self.web_base().rstrip('/')}/{WEB_PATHS[kind].format(id=record_id)}"

    # --- the Pipedrive schema --------------------------------------------------------------------------

    def schema(self) -> PipedriveSchema | None:
        return self._schema

    def _use_schema(self, schema: PipedriveSchema | None) -> None:
        self._schema = schema
        self.store.save_schema(schema)
        self._changed(Change.SCHEMA)

    async def refresh_schema(self, pipedrive: PipedriveSettings | None = None) -> PipedriveSchema:
        """Fetch the fields, pipelines and stages again (the Refresh buttons) from the saved Pipedrive
        account, or the one `pipedrive` points at; raises ApiError or NotConnectedError."""
        token = await self._pipedrive_token()
        schema = await connections.fetch_schema(self.pipedrive_api_base(pipedrive), token)
        self._schema_age_checked = True
        self._use_schema(schema)
        return schema

    async def current_schema(self, now: datetime) -> PipedriveSchema:
        """The schema for a sync cycle: the one held, unless it is missing or (looked at once after each
        change) older than a day; then fetched with the sync's client, which counts the tokens."""
        schema = self._schema
        if schema is not None and not self._schema_age_checked:
            fetched = datetime.fromisoformat(schema.fetched_at) if schema.fetched_at else None
            if fetched is None or now - fetched >= SCHEMA_MAX_AGE:
                schema = None
        self._schema_age_checked = True
        if schema is None:
            _rf, pd = await self.clients()
            schema = await connections.load_schema(pd)
            self._use_schema(schema)
        return schema

    def forget_schema(self) -> None:
        """A mapped Pipedrive field may be gone: fetch the fields again before the next push."""
        self._use_schema(None)

    # --- campaigns -------------------------------------------------------------------------------------

    def cached_campaigns(self) -> list[dict[str, Any]]:
        """The campaigns last fetched for the window: id, name, status and the form field labels."""
        saved = self.store.get_kv(CAMPAIGNS_KEY)
        return saved if isinstance(saved, list) else []

    def remember_campaigns(self, campaigns: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Keep what the pages need of each campaign: id, name, status and its form field labels."""
        kept = [
            {
                "id": int(c["id"]),
                "name": str(c.get("name") or f"Campaign {c['id']}"),
                "status": str(c.get("status") or ""),
                "fields": connections.invited_form_labels(c),
            }
            for c in campaigns
            if c.get("id") is not None
        ]
        self._keep_campaigns(kept)
        return kept

    def _keep_campaigns(self, campaigns: list[dict[str, Any]]) -> None:
        self.store.set_kv(CAMPAIGNS_KEY, campaigns)
        self._changed(Change.CAMPAIGNS)

    async def load_campaign_fields(self, settings: Settings) -> bool:
        """Fetch the chosen campaigns' form field labels into the cache; False without a token."""
        token = await self.read_token(RF_TOKEN)
        ids = settings.referral_factory.campaign_ids
        if not token or not ids:
            return False
        by_id = {c["id"]: c for c in self.cached_campaigns()}
        for campaign_id in ids:
            labels = await connections.campaign_fields(settings.referral_factory.base_url, token, campaign_id)
            by_id.setdefault(campaign_id, {"id": campaign_id, "name": f"Campaign {campaign_id}", "status": ""})
            by_id[campaign_id]["fields"] = labels
        self._keep_campaigns(list(by_id.values()))
        return True

    async def campaign_names(self, now: datetime) -> dict[int, str]:
        """Campaign id -> name for the sync's log and rows, asked again at most every ten minutes."""
        if self._campaigns_at is None or now - self._campaigns_at > CAMPAIGNS_MAX_AGE:
            rf, _pd = await self.clients()
            self._campaign_names = {int(c["id"]): str(c.get("name") or "") for c in await rf.list_campaigns()}
            self._campaigns_at = now
        return self._campaign_names

    async def fetch_campaign_names(self) -> dict[int, str]:
        """Campaign id -> name, asked now with a client of its own (one call, no Pipedrive tokens)."""
        async with self.new_rf_client() as rf:
            campaigns = await rf.list_campaigns()
        return {int(c["id"]): str(c.get("name") or "") for c in campaigns if "id" in c}

    # --- clients ---------------------------------------------------------------------------------------

    async def clients(self) -> tuple[ReferralFactoryClient, PipedriveClient]:
        """The two shared clients, built again only when a token or an address changed. The Pipedrive
        client paces its calls and counts its tokens with the account's burst limiter and budget."""
        settings = self.settings()
        rf_key = (settings.referral_factory.base_url, self.token(RF_TOKEN) or "")
        pd_key = (self.pipedrive_api_base(settings.pipedrive), self.token(PD_TOKEN) or "")
        return await self._rf.get(rf_key, self.new_rf_client), await self._pd.get(pd_key, self.new_pd_client)

    def new_rf_client(self) -> ReferralFactoryClient:
        """A Referral Factory client of the caller's own (who closes it)."""
        client = self._rf_factory(self.settings(), self.token(RF_TOKEN) or "")
        client.remember_host_in(self.store)  # start with the documented host that answered last time
        return client

    def new_pd_client(self) -> PipedriveClient:
        """A Pipedrive client of the caller's own (who closes it); its calls count against the same
        budget and burst window as the sync's."""
        return self._pd_factory(self.settings(), self.token(PD_TOKEN) or "", burst=self.burst, budget=self.budget)

    async def close_clients(self) -> None:
        await self._rf.close()
        await self._pd.close()

    def save_budget(self) -> None:
        self.store.set_kv(BUDGET_KEY, self.budget.to_dict())

    # --- checks and changes outside the sync -----------------------------------------------------------

    async def check_referral_factory(self, base_url: str | None = None, token: str | None = None) -> RFCheck:
        """Test a Referral Factory address and token (by default the saved address and the stored token)."""
        if token is None:
            token = await self.read_token(RF_TOKEN) or ""
        base_url = base_url if base_url is not None else self.settings().referral_factory.base_url
        return await connections.check_referral_factory(base_url, token)

    async def check_pipedrive(self, base_url: str | None = None, token: str | None = None) -> PDCheck:
        """Test a Pipedrive address and token (by default the saved address and the stored token)."""
        if token is None:
            token = await self.read_token(PD_TOKEN) or ""
        base_url = base_url if base_url is not None else self.settings().pipedrive.base_url
        return await connections.check_pipedrive(base_url, token)

    async def create_referral_fields(self, names: list[str], pipedrive: PipedriveSettings) -> list[FieldDef]:
        """Create the referral fields in the Pipedrive account `pipedrive` points at."""
        token = await self._pipedrive_token()
        return await connections.create_referral_fields(self.pipedrive_api_base(pipedrive), token, names)

    async def _pipedrive_token(self) -> str:
        token = await self.read_token(PD_TOKEN)
        if not token:
            raise NotConnectedError("Add your Pipedrive token on the Connections page first.")
        return token


class _Kept(Generic[C]):
    """A client kept while the (address, token) it was built for stays the same."""

    def __init__(self) -> None:
        self._client: C | None = None
        self._key: tuple[str, str] | None = None

    async def get(self, key: tuple[str, str], build: Callable[[], C]) -> C:
        if self._client is None or key != self._key:
            await self.close()
            self._client, self._key = build(), key
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        self._client = self._key = None


async def _in_executor(function: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(None, function, *args)
