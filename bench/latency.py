"""Sign-up to lead: how long a person invited through a referral link waits before their lead exists in
Pipedrive, with 100 ms of latency on every API call and the default settings (a look every 10 s).

The sync runs as it does in the app (`SyncEngine.run()`), while people sign up at random moments.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time

from bench.common import configured_store, engine, machine, percentile, sandbox


async def measure(count: int, mean_gap: float) -> list[float]:
    with sandbox(latency_ms=100) as server, configured_store(server) as store:
        eng = engine(store, server)
        task = asyncio.create_task(eng.run())
        await asyncio.sleep(3)  # the first look (schema, campaigns) is done before people arrive
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
    return [arrived[code] - signed[code] for code in signed]


def _collect(server, signed: dict[str, float], arrived: dict[str, float]) -> None:  # type: ignore[no-untyped-def]
    now = time.monotonic()
    with server.state.lock:
        for lead in server.state.pd.leads.values():
            for value in lead["custom_fields"].values():
                if value in signed and value not in arrived:
                    arrived[value] = now


def main(argv: list[str]) -> None:
    count = int(argv[0]) if argv else 30
    print(f"machine: {machine()}")
    latencies = asyncio.run(measure(count, mean_gap=4.0))
    print(
        f"sign-up to lead ({count} sign-ups, 100 ms API latency, look every 10 s): "
        f"p50 {percentile(latencies, 0.5):.1f} s, p95 {percentile(latencies, 0.95):.1f} s, "
        f"max {max(latencies):.1f} s (target: p95 under 20 s)",
        flush=True,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
