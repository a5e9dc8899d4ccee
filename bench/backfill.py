"""Backfill 2,000 referrals at 100 ms API latency on the Growth plan (40 requests per 2 s).

Prints the Pipedrive request rate as a share of the burst limit, how often a request was rejected for the
burst limit (and the longest run of rejections in a row), and the tokens spent per referral against the
lower bound: one person create plus one lead create (5 + 10) or deal create (5 + 5).

Then the same for people who were already in Pipedrive (a quarter as many, for time): each is read and
updated, and their leads and deals are looked through for the Referral Code before one is created.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from bench.common import configured_store, engine, machine, sandbox, sign_up_many, usage
from rf_desktop.core.config import QualificationRule, Settings
from rf_desktop.core.connections import pipedrive_api_base
from rf_desktop.core.pipedrive import PipedriveClient
from rf_desktop.sandbox import presets

LOWER_BOUND = {"lead": 15, "deal": 10}
BURST = {"lite": 20, "growth": 40, "premium": 100, "ultimate": 120}


def _existing_people(server: Any, count: int) -> None:
    """The owner's contacts: a Pipedrive person for each address `sign_up_many` will use, without leads."""
    with server.state.lock:
        for n in range(count):
            email = [{"value": f"bench{n}@example.com", "primary": True, "label": "work"}]
            server.state.pd.insert_person({"name": f"Contact {n}", "emails": email})


def run(mode: str, count: int, plan: str = "growth", *, existing: bool = False) -> dict[str, Any]:
    statuses: list[int] = []

    def recording_client(settings: Settings, token: str, **limits: Any) -> PipedriveClient:
        base = pipedrive_api_base(settings.pipedrive.base_url, settings.pipedrive.company_domain)
        return PipedriveClient(base, token, on_response=lambda call: statuses.append(call.status), **limits)

    with sandbox(latency_ms=100, plan=plan) as server:
        changes: dict[str, Any] = {"qualification": QualificationRule(kind="none")}
        if mode == "deal":
            changes.update(mode="deal", pipeline_id=1, stage_id=presets.stage_id(server.state, "Qualified"))
        with configured_store(server, **changes) as store:
            eng = engine(store, server, pd_factory=recording_client)
            asyncio.run(eng.run_once(max_seconds=60))  # schema, campaigns: not part of the backfill
            if existing:
                _existing_people(server, count)
            sign_up_many(server, count)
            before = usage(server)
            statuses.clear()
            started = time.monotonic()
            summary = asyncio.run(eng.run_once(max_seconds=3600))
            elapsed = time.monotonic() - started
            after = usage(server)
    requests = after["requests"] - before["requests"]
    tokens = after["tokens_used_today"] - before["tokens_used_today"]
    run_of_429, longest = 0, 0
    for status in statuses:
        run_of_429 = run_of_429 + 1 if status == 429 else 0
        longest = max(longest, run_of_429)
    rate = requests / elapsed
    limit_per_second = BURST[plan] / 2
    return {
        "mode": mode,
        "people": "people already in Pipedrive" if existing else "new people",
        "referrals": count,
        "sent": summary.sent,
        "seconds": elapsed,
        "referrals_per_second": summary.sent / elapsed,
        "requests": requests,
        "requests_per_second": rate,
        "share_of_burst_limit": rate / limit_per_second,
        "rejected_429": statuses.count(429),
        "longest_429_run": longest,
        "tokens_per_referral": tokens / max(summary.sent, 1),
        "lower_bound": LOWER_BOUND[mode],
    }


def main(argv: list[str]) -> None:
    count = int(argv[0]) if argv else 2000
    print(f"machine: {machine()}")
    runs = [(mode, count, False) for mode in ("lead", "deal")]
    runs += [(mode, max(1, count // 4), True) for mode in ("lead", "deal")]
    for mode, referrals, existing in runs:
        r = run(mode, referrals, existing=existing)
        print(
            f"backfill {mode} mode, {r['people']}: {r['sent']}/{r['referrals']} referrals in "
            f"{r['seconds']:.1f} s "
            f"({r['referrals_per_second']:.2f}/s); {r['requests']} Pipedrive requests at "
            f"{r['requests_per_second']:.2f}/s = {r['share_of_burst_limit']:.0%} of the Growth burst limit "
            f"(20/s); 429s: {r['rejected_429']}, longest run {r['longest_429_run']}; "
            f"tokens per referral {r['tokens_per_referral']:.2f} (lower bound for new people "
            f"{r['lower_bound']}: {r['tokens_per_referral'] / r['lower_bound']:.3f}x)",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
