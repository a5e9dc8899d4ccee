"""Building blocks for end-to-end sync tests: settings pointing at the sandbox, sign-ups, fast clients."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx

from rf_desktop.core.account import Account, RfFactory
from rf_desktop.core.config import Settings
from rf_desktop.core.engine import RunSummary, SyncEngine
from rf_desktop.core.http import RetryPolicy
from rf_desktop.core.pipedrive import PipedriveClient
from rf_desktop.core.referral_factory import ReferralFactoryClient
from rf_desktop.core.store import Store
from rf_desktop.sandbox import presets
from rf_desktop.sandbox.server import SandboxServer

FAST_RETRY = RetryPolicy(max_attempts=6, base_delay=0.01, max_backoff=0.1, max_wait=3.0)


def field_code(sandbox: SandboxServer, entity: str, name: str) -> str:
    return presets.field_code(sandbox.state, entity, name)


def stage_id(sandbox: SandboxServer, name: str, pipeline_id: int = 1) -> int:
    return presets.stage_id(sandbox.state, name, pipeline_id)


def sandbox_settings(sandbox: SandboxServer, **changes: Any) -> Settings:
    """Lead mode, campaign 1, every person invited so far, the referral fields mapped."""
    return presets.demo_settings(sandbox.rf_base_url, sandbox.pd_base_url, sandbox.state, **changes)


def sign_up(sandbox: SandboxServer, first_name: str, email: str, **extra: Any) -> dict[str, Any]:
    """A person invited through the seeded referrer's link, as the sandbox's admin surface creates one."""
    body = {"campaign_id": 1, "first_name": first_name, "email": email, **extra}
    response = httpx.post(f"{sandbox.admin_url}/rf/signup", json=body, timeout=10)
    response.raise_for_status()
    return dict(response.json())


def admin(sandbox: SandboxServer, method: str, path: str, body: Any = None) -> Any:
    response = httpx.request(method, f"{sandbox.admin_url}{path}", json=body, timeout=10)
    response.raise_for_status()
    return response.json() if response.content else None


def make_engine(
    store: Store,
    sandbox: SandboxServer,
    *,
    timeout: float = 5.0,
    pd_transport: httpx.AsyncBaseTransport | None = None,
    rf_factory: RfFactory | None = None,
    **kwargs: Any,
) -> SyncEngine:
    """An engine on the sandbox's tokens with quick timeouts and retries, so faults cost milliseconds.
    `pd_transport` stands between the Pipedrive client and the sandbox (to lose or spoil an answer);
    `rf_factory` builds a Referral Factory client of the test's own instead of the quick default."""
    tokens = {"referral-factory": sandbox.state.rf.token, "pipedrive": sandbox.state.pd.token}

    def rf(settings: Settings, token: str) -> ReferralFactoryClient:
        return ReferralFactoryClient(
            settings.referral_factory.base_url, token, timeout=timeout, retry=FAST_RETRY
        )

    def pd(settings: Settings, token: str, **limits: Any) -> PipedriveClient:
        return PipedriveClient(
            settings.pipedrive.base_url,
            token,
            timeout=timeout,
            retry=FAST_RETRY,
            transport=pd_transport,
            **limits,
        )

    kwargs.setdefault("retry_base", 0.05)
    kwargs.setdefault("min_watch_interval", 0.0)
    return SyncEngine(Account(store, tokens, rf_factory=rf_factory or rf, pd_factory=pd), **kwargs)


class SpoilAnswers(httpx.AsyncBaseTransport):
    """Passes requests to the sandbox, but for the first `times` calls to `method path` lets the sandbox do
    the work, runs `meanwhile(body)` (what a salesperson does before the client tries again), and answers
    `answer` instead: the answer was lost (502) or malformed. With `reaches_server=False` the call stops at
    something in between (a proxy's page)."""

    def __init__(
        self,
        method: str,
        path: str,
        answer: httpx.Response,
        *,
        times: int = 1,
        meanwhile: Callable[[Any], None] | None = None,
        reaches_server: bool = True,
    ) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._reaches_server = reaches_server
        self._method, self._path, self._answer = method, path, answer
        self.left = times
        self._meanwhile = meanwhile
        self.seen = 0  # calls to `method path`, spoiled or not

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != self._method or not request.url.path.endswith(self._path):
            return await self._inner.handle_async_request(request)
        self.seen += 1
        if self.left <= 0:
            return await self._inner.handle_async_request(request)
        self.left -= 1
        if self._reaches_server:
            response = await self._inner.handle_async_request(request)
            body = json.loads(await response.aread())
            await response.aclose()
            if self._meanwhile is not None:
                self._meanwhile(body)
        return httpx.Response(
            self._answer.status_code, headers=self._answer.headers, content=self._answer.content
        )

    async def aclose(self) -> None:
        # the engine closes its clients between runs and makes new ones on this same transport
        await self._inner.aclose()
        self._inner = httpx.AsyncHTTPTransport()


def run_once(store: Store, sandbox: SandboxServer, **engine_kwargs: Any) -> RunSummary:
    """One headless `--once` pass; fails the test on any configuration, auth or budget stop."""
    summary = asyncio.run(make_engine(store, sandbox, **engine_kwargs).run_once(max_seconds=30))
    assert not summary.errors, summary.errors
    return summary


def persons(sandbox: SandboxServer) -> list[dict[str, Any]]:
    return list(sandbox.state.pd.snapshot()["persons"])


def leads(sandbox: SandboxServer, *, include_deleted: bool = True) -> list[dict[str, Any]]:
    found = list(sandbox.state.pd.snapshot()["leads"])
    return found if include_deleted else [lead for lead in found if not lead.get("is_deleted")]


def deals(sandbox: SandboxServer) -> list[dict[str, Any]]:
    return list(sandbox.state.pd.snapshot()["deals"])
