"""Kill the headless sync (SIGKILL) at many different moments and restart it: every referral still ends up
in Pipedrive exactly once (one person, one lead or deal) and is qualified exactly once, also with a fifth of
the calls failing and a sales team converting leads and winning deals meanwhile."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rf_desktop.core.config import QualificationRule, Settings
from rf_desktop.core.store import Store
from rf_desktop.sandbox.server import SandboxServer
from tests.e2e.helpers import (
    admin,
    deals,
    field_code,
    leads,
    make_engine,
    persons,
    sandbox_settings,
    sign_up,
    stage_id,
)

REFERRALS = 30
KILLS = 14


def _sync_process(sandbox: SandboxServer, db: Path, *, keep_errors: bool = False) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "RF_DESKTOP_REFERRAL_FACTORY_TOKEN": sandbox.state.rf.token,
        "RF_DESKTOP_PIPEDRIVE_TOKEN": sandbox.state.pd.token,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "rf_desktop", "sync", "--once", "--db", str(db)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE if keep_errors else subprocess.DEVNULL,
    )


def _run_to_end(sandbox: SandboxServer, db: Path) -> None:
    process = _sync_process(sandbox, db, keep_errors=True)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err.decode()


@pytest.mark.slow
def test_sigkill_at_any_moment_never_duplicates_or_loses_a_referral(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    db = tmp_path / "rf.sqlite3"
    with Store(db) as store:
        store.save_settings(sandbox_settings(sandbox))
    users = [sign_up(sandbox, f"Person {n}", f"person{n}@example.com") for n in range(REFERRALS)]
    # slow answers widen the windows between "sent" and "recorded", where a kill hurts most
    admin(
        sandbox,
        "PUT",
        "/faults/pd",
        {"latency_ms": 25, "rate_drop": 0.05, "after_commit_share": 1.0, "seed": 7},
    )
    chance = random.Random(1234)
    for _ in range(KILLS):
        process = _sync_process(sandbox, db)
        time.sleep(chance.uniform(0.3, 2.5))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    admin(sandbox, "PUT", "/faults/pd", {})
    _run_to_end(sandbox, db)

    code_key = field_code(sandbox, "deal", "Referral Code")
    emails = Counter(e["value"] for p in persons(sandbox) for e in p["emails"])
    assert sorted(emails) == sorted(u["email"] for u in users)
    assert set(emails.values()) == {1}, "a person was created twice"
    codes = Counter(lead["custom_fields"][code_key] for lead in leads(sandbox))
    assert sorted(codes) == sorted(u["code"] for u in users)
    assert set(codes.values()) == {1}, "a lead was created twice"

    # convert every lead, then kill the qualifying runs too
    for lead in leads(sandbox):
        admin(sandbox, "POST", f"/pd/leads/{lead['id']}/convert", {})
    for _ in range(4):
        process = _sync_process(sandbox, db)
        time.sleep(chance.uniform(0.5, 2.0))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    _run_to_end(sandbox, db)

    with Store(db) as store:
        statuses = Counter(store.get(u["id"]).status for u in users)  # type: ignore[union-attr]
    assert statuses == {"qualified": REFERRALS}
    assert all(sandbox.state.rf.qualification_count(u["id"]) == 1 for u in users)


MANY = 200
MANY_KILLS = 20
# a fifth of all calls fail, half of those after the server did the work
FIFTH_FAILING = {
    "rate_429": 0.05,
    "rate_5xx": 0.05,
    "rate_timeout": 0.05,
    "rate_drop": 0.05,
    "timeout_seconds": 0.6,
    "after_commit_share": 0.5,
}


class SalesTeam(threading.Thread):
    """Converts leads (lead mode) or wins deals (deal mode) carrying a Referral Code while the sync runs,
    so conversions race the sync's own retries."""

    def __init__(self, sandbox: SandboxServer, mode: str, code_key: str, seed: int) -> None:
        super().__init__(daemon=True)
        self.sandbox, self.mode, self.code_key = sandbox, mode, code_key
        self.chance = random.Random(seed)
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.1):
            self.work_one()

    def work_one(self) -> None:
        state = self.sandbox.state
        with state.lock:
            pd = state.pd
            if self.mode == "lead":
                live = [lead for lead in pd.leads.values() if not lead["is_deleted"]]
                if live:
                    pd.convert_lead(self.chance.choice(live)["id"])
            else:
                open_deals = [
                    d for d in pd.deals.values() if d["status"] == "open" and d["custom_fields"].get(self.code_key)
                ]
                if open_deals:
                    pd.set_deal_status(self.chance.choice(open_deals)["id"], "won")


def _settings_for(sandbox: SandboxServer, mode: str) -> Settings:
    if mode == "lead":
        return sandbox_settings(sandbox)
    return sandbox_settings(
        sandbox,
        mode="deal",
        pipeline_id=1,
        stage_id=stage_id(sandbox, "Qualified"),
        qualification=QualificationRule(kind="deal_won"),
    )


@pytest.mark.slow
@pytest.mark.allow_logged_errors
@pytest.mark.parametrize("mode", ["lead", "deal"])
def test_sigkill_with_faults_and_a_busy_sales_team_never_loses_or_duplicates(
    sandbox: SandboxServer, tmp_path: Path, mode: str
) -> None:
    admin(sandbox, "PUT", "/pd/plan", {"plan": "ultimate", "seats": 10})
    db = tmp_path / "rf.sqlite3"
    with Store(db) as store:
        store.save_settings(_settings_for(sandbox, mode))
    with sandbox.state.lock:
        users = [sandbox.state.rf.sign_up(1, f"Person {n}", f"many{n}@example.com") for n in range(MANY)]
    code_key = field_code(sandbox, "deal", "Referral Code")
    chance = random.Random(f"kills-{mode}")
    admin(sandbox, "PUT", "/faults/pd", {**FIFTH_FAILING, "seed": 11})
    admin(sandbox, "PUT", "/faults/rf", {**FIFTH_FAILING, "seed": 12})
    sales = SalesTeam(sandbox, mode, code_key, seed=13)
    sales.start()
    try:
        for _ in range(MANY_KILLS):
            process = _sync_process(sandbox, db)
            time.sleep(chance.uniform(0.5, 3.0))
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
    finally:
        sales.done.set()
        sales.join()
    admin(sandbox, "PUT", "/faults/pd", {})
    admin(sandbox, "PUT", "/faults/rf", {})

    # two hours later every scheduled retry is due: finish in-process, as quickly as the sandbox answers
    later = lambda: datetime.now(UTC) + timedelta(hours=2)  # noqa: E731
    with Store(db) as store:
        for _ in range(3):
            asyncio.run(make_engine(store, sandbox, now=later).run_once(max_seconds=60))

        emails = Counter(e["value"] for p in persons(sandbox) for e in p["emails"])
        assert sorted(emails) == sorted(u["email"] for u in users), "a referral was lost"
        assert set(emails.values()) == {1}, "a person was created twice"
        lead_codes = Counter(lead["custom_fields"].get(code_key) for lead in leads(sandbox))
        deal_codes = Counter(deal["custom_fields"].get(code_key) for deal in deals(sandbox))
        assert set(lead_codes.values()) | set(deal_codes.values()) <= {1}, "a lead or deal was created twice"
        sent = lead_codes if mode == "lead" else deal_codes
        assert sorted(sent) == sorted(u["code"] for u in users)

        if mode == "lead":
            succeeded = {d["custom_fields"][code_key] for d in deals(sandbox)}
        else:
            succeeded = {d["custom_fields"][code_key] for d in deals(sandbox) if d["status"] == "won"}
        assert succeeded, "the sales team had work to do"
        statuses = Counter(store.get(u["id"]).status for u in users)  # type: ignore[union-attr]
        assert statuses == {"qualified": len(succeeded), "waiting": MANY - len(succeeded)}
    qualified = {u["code"]: sandbox.state.rf.qualification_count(u["id"]) for u in users}
    assert qualified == {u["code"]: int(u["code"] in succeeded) for u in users}
