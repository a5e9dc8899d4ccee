"""The sync against Pipedrive shapes the public material allows besides the usual one: no rate-limit
headers at all, and a daily budget that resets at midnight in a time zone rf-desktop cannot see."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from rf_desktop.core.store import Store
from rf_desktop.sandbox.server import SandboxServer
from tests.e2e.helpers import admin, leads, make_engine, persons, run_once, sandbox_settings, sign_up


def test_without_rate_limit_headers_the_sync_works_and_an_empty_budget_is_checked_hourly(
    sandbox: SandboxServer, store: Store
) -> None:
    admin(sandbox, "PUT", "/pd/shape", {"rate_limit_headers": False, "time_zone": "America/Los_Angeles"})
    store.save_settings(sandbox_settings(sandbox))
    sign_up(sandbox, "Quiet", "quiet@example.com")
    run_once(store, sandbox)
    assert (len(persons(sandbox)), len(leads(sandbox))) == (1, 1)

    sign_up(sandbox, "Late", "late@example.com")
    admin(sandbox, "PUT", "/pd/budget", {"remaining": 0})
    engine = make_engine(store, sandbox)
    asyncio.run(engine.run_once(max_seconds=5))

    assert engine.state == "budget_exhausted"
    assert "time zone" in engine.message and "one call every hour" in engine.message
    assert engine.next_poll_at is not None
    wait = (engine.next_poll_at - datetime.now(UTC)).total_seconds()
    assert timedelta(minutes=55).total_seconds() < wait <= timedelta(hours=1).total_seconds()
    assert sandbox.state.pd.limiter.usage()["rejected_by_reason"] == {"daily": 1}, "one call, not a loop"
