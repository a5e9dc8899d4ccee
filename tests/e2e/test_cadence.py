"""The sync looks for new sign-ups every couple of seconds, on a clock of its own, and for conversions at
the budget's pace: a quiet look costs no Pipedrive tokens, a sliver of Referral Factory's rate limit, and
no events; "Sync now" looks for both."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from rf_desktop.core.account import Account
from rf_desktop.core.config import Settings
from rf_desktop.core.engine import SyncEngine
from rf_desktop.core.events import Event, StateChanged
from rf_desktop.core.http import CallInfo
from rf_desktop.core.pipedrive import PipedriveClient
from rf_desktop.core.referral_factory import ReferralFactoryClient
from rf_desktop.core.store import Store
from rf_desktop.sandbox.server import SandboxServer
from tests.e2e.helpers import FAST_RETRY, admin, leads, sandbox_settings, sign_up

HOUR = 3600.0


def counting_engine(store: Store, sandbox: SandboxServer, rf_calls: list[CallInfo]) -> SyncEngine:
    tokens = {"referral-factory": sandbox.state.rf.token, "pipedrive": sandbox.state.pd.token}

    def rf(settings: Settings, token: str) -> ReferralFactoryClient:
        return ReferralFactoryClient(
            settings.referral_factory.base_url, token, timeout=5, retry=FAST_RETRY, on_response=rf_calls.append
        )

    def pd(settings: Settings, token: str, **limits: Any) -> PipedriveClient:
        return PipedriveClient(settings.pipedrive.base_url, token, timeout=5, retry=FAST_RETRY, **limits)

    # conversions are looked for once an hour here, so the quiet looks below are looks for sign-ups only
    account = Account(store, tokens, rf_factory=rf, pd_factory=pd)
    return SyncEngine(account, retry_base=0.05, min_watch_interval=HOUR)


def tokens_used(sandbox: SandboxServer) -> int:
    with sandbox.state.lock:
        return int(sandbox.state.pd.limiter.usage()["tokens_used_today"])


def status(store: Store, rf_user_id: int) -> str | None:
    referral = store.get(rf_user_id)
    return None if referral is None else str(referral.status)


async def until(condition: Any, seconds: float) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, f"not within {seconds} s"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


def test_sign_ups_arrive_within_seconds_and_quiet_looks_cost_no_pipedrive_tokens(
    sandbox: SandboxServer, store: Store
) -> None:
    settings = sandbox_settings(sandbox)
    assert settings.sync.poll_seconds == 2, "the default"
    store.save_settings(settings)
    first = sign_up(sandbox, "Ada", "ada@example.com")
    rf_calls: list[CallInfo] = []
    events: list[Event] = []

    async def scenario() -> None:
        engine = counting_engine(store, sandbox, rf_calls)
        task = asyncio.create_task(engine.run())
        await until(lambda: status(store, first["id"]) == "waiting", 20)
        await until(lambda: engine.state == "idle", 10)
        now = datetime.now(UTC)
        # the first look made a few more calls (campaigns, the referrer), so the next one may be a bit later
        assert engine.next_signups_at is not None and 0 <= (engine.next_signups_at - now).total_seconds() <= 10
        assert engine.next_conversions_at is not None
        assert HOUR - 60 < (engine.next_conversions_at - now).total_seconds() <= HOUR

        engine.subscribe(events.append)
        calls_before, tokens_before = len(rf_calls), tokens_used(sandbox)
        await asyncio.sleep(6.0)
        quiet_calls = len(rf_calls) - calls_before
        assert tokens_used(sandbox) == tokens_before, "a look that finds nothing spends no Pipedrive tokens"
        assert 2 <= quiet_calls <= 6, f"{quiet_calls} Referral Factory calls in 6 s: at most one a second"
        assert not [e for e in events if isinstance(e, StateChanged)], "quiet looks are not news"

        second = sign_up(sandbox, "Grace", "grace@example.com")
        waited = await until(
            lambda: any(lead["title"].endswith("Grace") for lead in leads(sandbox)), 6.0
        )
        assert store.get(second["id"]) is not None, f"lead after {waited:.1f} s"
        engine.stop()
        await task

    asyncio.run(scenario())


def test_sync_now_looks_for_conversions_too(sandbox: SandboxServer, store: Store) -> None:
    store.save_settings(sandbox_settings(sandbox))
    user = sign_up(sandbox, "Ada", "ada@example.com")

    async def scenario() -> None:
        engine = counting_engine(store, sandbox, [])
        task = asyncio.create_task(engine.run())
        await until(lambda: status(store, user["id"]) == "waiting", 20)
        await until(lambda: engine.state == "idle" and engine.next_conversions_at is not None, 10)
        referral = store.get(user["id"])
        assert referral is not None
        admin(sandbox, "POST", f"/pd/leads/{referral.lead_id}/convert", {})
        await asyncio.sleep(3)
        assert status(store, user["id"]) == "waiting", "the next look for conversions is an hour away"
        engine.sync_now()
        await until(lambda: status(store, user["id"]) == "qualified", 10)
        engine.stop()
        await task

    asyncio.run(scenario())
