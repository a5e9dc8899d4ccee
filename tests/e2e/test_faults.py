"""With a fifth of all calls failing (429, 5xx, timeouts, dropped connections, before and after the server
did the work), every one of 500 referrals reaches Pipedrive exactly once and qualifies exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from rf_desktop.core.store import Store
from rf_desktop.sandbox.server import SandboxServer
from tests.e2e.helpers import admin, field_code, leads, make_engine, persons, sandbox_settings

REFERRALS = 500
FAULTS = {
    "rate_429": 0.05,
    "rate_5xx": 0.05,
    "rate_timeout": 0.05,
    "rate_drop": 0.05,
    "timeout_seconds": 0.6,
    "after_commit_share": 0.5,
    "seed": 20,
}


def _sign_up_many(sandbox: SandboxServer, count: int) -> list[dict]:
    with sandbox.state.lock:
        return [sandbox.state.rf.sign_up(1, f"Person {n}", f"bulk{n}@example.com") for n in range(count)]


async def _sync_until(
    store: Store, sandbox: SandboxServer, done: Callable[[], bool], rounds: int = 40
) -> None:
    engine = make_engine(store, sandbox, timeout=0.4, workers=8)
    for _ in range(rounds):
        await engine.run_once(max_seconds=20)
        if done():
            return


@pytest.mark.slow
@pytest.mark.allow_logged_errors
def test_a_fifth_of_calls_failing_never_loses_or_duplicates(sandbox: SandboxServer, tmp_path: Path) -> None:
    admin(sandbox, "PUT", "/pd/plan", {"plan": "ultimate", "seats": 10})
    users = _sign_up_many(sandbox, REFERRALS)
    with Store(tmp_path / "rf.sqlite3") as store:
        store.save_settings(sandbox_settings(sandbox))
        admin(sandbox, "PUT", "/faults/pd", FAULTS)
        admin(sandbox, "PUT", "/faults/rf", FAULTS)
        asyncio.run(_sync_until(store, sandbox, lambda: store.counts()["waiting"] == REFERRALS))

        code_key = field_code(sandbox, "deal", "Referral Code")
        emails = Counter(e["value"] for p in persons(sandbox) for e in p["emails"])
        assert len(emails) == REFERRALS and set(emails.values()) == {1}
        codes = Counter(lead["custom_fields"][code_key] for lead in leads(sandbox))
        assert len(codes) == REFERRALS and set(codes.values()) == {1}

        # the sales team converts every other lead; only those qualify
        admin(sandbox, "PUT", "/faults/pd", {})
        converted = leads(sandbox)[::2]
        for lead in converted:
            admin(sandbox, "POST", f"/pd/leads/{lead['id']}/convert", {})
        admin(sandbox, "PUT", "/faults/pd", FAULTS)
        asyncio.run(_sync_until(store, sandbox, lambda: store.counts()["qualified"] == len(converted)))

        assert store.counts()["qualified"] == len(converted)
        qualified = [u for u in users if sandbox.state.rf.qualification_count(u["id"]) > 0]
        assert len(qualified) == len(converted)
        assert all(sandbox.state.rf.qualification_count(u["id"]) == 1 for u in qualified)
