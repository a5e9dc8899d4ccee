"""Memory of the headless sync with 100,000 referrals in the store (90% done, 10% waiting for conversion).

Builds the store, then runs sync cycles against the sandbox in this process and reports its resident
memory (RSS) before and after, and how long a cycle takes with that much history.
"""

from __future__ import annotations

import asyncio
import sys
import time

import psutil

from bench.common import configured_store, engine, machine, sandbox
from rf_desktop.core.store import QUALIFIED, WAITING, Referral

HISTORY_FIRST_ID = 10_000_000  # above the sandbox's own users


def _history(start: int, count: int) -> list[Referral]:
    rows = []
    for n in range(start, start + count):
        waiting = n % 10 == 0
        rows.append(
            Referral(
                rf_user_id=HISTORY_FIRST_ID + n, campaign_id=1, campaign_name="Spring Referral Campaign",
                first_name=f"Person {n}", email=f"history{n}@example.com", code=f"H{n:07d}",
                url=f"https://example.referral-factory.com/H{n:07d}", source="Referred",
                signed_up_at="2026-01-01", status=WAITING if waiting else QUALIFIED,
                person_id=n + 1, lead_id=f"00000000-0000-4000-8000-{n:012d}",
                recorded_at="2026-01-01T00:00:00Z", updated_at="2026-01-01T00:00:00Z",
            )
        )
    return rows


def main(argv: list[str]) -> None:
    count = int(argv[0]) if argv else 100_000
    process = psutil.Process()
    print(f"machine: {machine()}")
    with sandbox(latency_ms=0) as server, configured_store(server) as store:
        baseline = process.memory_info().rss
        started = time.monotonic()
        for start in range(0, count, 5_000):  # in chunks, so building the history does not inflate the figure
            store.record_referrals(_history(start, min(5_000, count - start)))
        built = time.monotonic() - started
        eng = engine(store, server)
        asyncio.run(eng.run_once(max_seconds=60))  # first cycle: schema, campaigns
        cycles = []
        for _ in range(5):
            started = time.monotonic()
            asyncio.run(eng.run_once(max_seconds=60))
            cycles.append(time.monotonic() - started)
        rss = process.memory_info().rss
        counts = store.counts()
    print(
        f"headless sync with {count:,} referrals in the store ({counts[WAITING]:,} waiting): RSS "
        f"{rss / 2**20:.0f} MiB (process with the sandbox in it; {baseline / 2**20:.0f} MiB before the "
        f"store was filled), a sync cycle takes {min(cycles):.2f}-{max(cycles):.2f} s; "
        f"writing the history took {built:.1f} s",
        flush=True,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
