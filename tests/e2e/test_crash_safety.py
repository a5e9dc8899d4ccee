"""Kill the headless sync (SIGKILL) at many different moments and restart it: every referral still ends up
in Pipedrive exactly once (one person, one lead) and is qualified exactly once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from rf_desktop.core.store import Store
from rf_desktop.sandbox.server import SandboxServer
from tests.e2e.helpers import admin, field_code, leads, persons, sandbox_settings, sign_up

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
