"""Sign-up to lead: how long a person invited through a referral link waits before their lead exists in
Pipedrive, with 100 ms of latency on every API call and the default settings (a look for new sign-ups
every 2 s), and what the sync asks of both APIs meanwhile.

The sync runs as it does in the app (`SyncEngine.run()`). First it is left alone for a minute, to count
what a quiet sync costs: Referral Factory calls per minute, and Pipedrive calls (which should only be the
budget-paced looks for conversions). Then people sign up at random moments (exponential gaps, 4 s on
average) and each lead's arrival is noticed within 50 ms.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from typing import Any

from bench.common import configured_store, engine, machine, percentile, recording_clients, sandbox, usage
from rf_desktop.core.config import Settings
from rf_desktop.core.http import REFERRAL_FACTORY, CallInfo
from rf_desktop.sandbox.server import SandboxServer

TARGET_P95 = 3.0


async def measure(count: int, mean_gap: float, quiet_seconds: float) -> dict[str, Any]:
    calls: list[tuple[float, CallInfo]] = []
    with sandbox(latency_ms=100) as server, configured_store(server) as store:
        eng = engine(store, server, **recording_clients(calls))
        task = asyncio.create_task(eng.run())
        while eng.state != "idle":  # the first look (schema, campaigns, the seeded referrals) is done
            await asyncio.sleep(0.05)
        await asyncio.sleep(3)

        began, tokens_before = time.monotonic(), usage(server)["tokens_used_today"]
        await asyncio.sleep(quiet_seconds)
        quiet = [call for moment, call in calls if moment >= began]
        quiet_tokens = usage(server)["tokens_used_today"] - tokens_before

        signed: dict[str, float] = {}
        arrived: dict[str, float] = {}
        chance = random.Random(42)
        for n in range(count):
            with server.state.lock:
                user = server.state.rf.sign_up(1, f"Person {n}", f"latency{n}@example.com")
            signed[user["code"]] = time.monotonic()
            deadline = time.monotonic() + chance.expovariate(1 / mean_gap)
            while time.monotonic() < deadline:
                _collect(server, signed, arrived)
                await asyncio.sleep(0.05)
        while len(arrived) < count:
            _collect(server, signed, arrived)
            await asyncio.sleep(0.05)
        eng.stop()
        await task
    rf_quiet = [c for c in quiet if c.service == REFERRAL_FACTORY]
    pd_quiet = [c for c in quiet if c.service != REFERRAL_FACTORY]
    return {
        "latencies": [arrived[code] - signed[code] for code in signed],
        "rf_per_minute": len(rf_quiet) * 60 / quiet_seconds,
        "pd_quiet": sorted({f"{c.method} {c.path}" for c in pd_quiet}),
        "pd_quiet_calls": len(pd_quiet),
        "pd_quiet_tokens": quiet_tokens,
    }


def _collect(server: SandboxServer, signed: dict[str, float], arrived: dict[str, float]) -> None:
    now = time.monotonic()
    with server.state.lock:
        for lead in server.state.pd.leads.values():
            for value in lead["custom_fields"].values():
                if value in signed and value not in arrived:
                    arrived[value] = now


def main(argv: list[str]) -> None:
    count = int(argv[0]) if argv else 30
    quiet_seconds = float(argv[1]) if len(argv) > 1 else 60.0
    poll = Settings().sync.poll_seconds
    print(f"machine: {machine()}")
    r = asyncio.run(measure(count, mean_gap=4.0, quiet_seconds=quiet_seconds))
    latencies = r["latencies"]
    p95 = percentile(latencies, 0.95)
    print(
        f"sign-up to lead ({count} sign-ups at random moments, 100 ms API latency, a look for new sign-ups "
        f"every {poll} s): p50 {percentile(latencies, 0.5):.2f} s, p95 {p95:.2f} s, max {max(latencies):.2f} s "
        f"(target: p95 at most {TARGET_P95:.0f} s; {p95 / TARGET_P95:.0%} of it)",
        flush=True,
    )
    pd = ", ".join(r["pd_quiet"]) or "none"
    print(
        f"a quiet sync for {quiet_seconds:.0f} s: {r['rf_per_minute']:.0f} Referral Factory calls a minute "
        f"({r['rf_per_minute'] / 600:.1%} of its 600-a-minute limit; at most 10%); {r['pd_quiet_calls']} "
        f"Pipedrive calls ({pd}) for {r['pd_quiet_tokens']} tokens: only the budget-paced looks for conversions",
        flush=True,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
