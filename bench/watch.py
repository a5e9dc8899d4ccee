"""Watching open leads for conversions: what it costs, and how soon a conversion is noticed, per plan.

The watch reads one `updated_since` page of deals per poll. This measures the tokens each poll really
costs while a sales team converts 500 open leads between polls on the smallest budget (Lite plan, one
seat: 30,000 tokens a day), takes the poll interval the engine fits to 10% of the daily budget, and
reports the tokens per day as a share of the budget and the worst-case time to notice a conversion (one
interval). Then, for Lite, Growth and Premium with one seat and with five, it reads the interval the
engine itself plans once Pipedrive has told it the company's budget.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime

from bench.common import admin, configured_store, engine, machine, sandbox, sign_up_many, usage
from rf_desktop.core.watch import SCHEMA_TOKENS_PER_DAY, watch_interval

SMALLEST_BUDGET = 30_000
PLANS = ("lite", "growth", "premium")
SEATS = (1, 5)


def planned_interval(plan: str, seats: int) -> tuple[int, float]:
    """(the company's daily budget, seconds until the engine's next look for conversions) on that plan."""
    with sandbox(latency_ms=0, plan=plan, seats=seats) as server, configured_store(server) as store:
        eng = engine(store, server)
        sign_up_many(server, 3)
        asyncio.run(eng.run_once(max_seconds=60))
        looked = datetime.now(UTC)
        planned = eng.next_conversions_at
        assert planned is not None and store.counts()["waiting"] == 3, store.counts()
        return eng.account.budget.snapshot().daily_budget or 0, (planned - looked).total_seconds()


def main(argv: list[str]) -> None:
    open_items = int(argv[0]) if argv else 500
    polls = 20
    print(f"machine: {machine()}")
    with sandbox(latency_ms=0, plan="lite") as server, configured_store(server) as store:
        eng = engine(store, server, min_watch_interval=0.0)
        sign_up_many(server, open_items)
        asyncio.run(eng.run_once(max_seconds=3600))
        assert store.counts()["waiting"] == open_items, store.counts()
        leads = [lead["id"] for lead in server.state.pd.snapshot()["leads"]]
        spent = []
        for poll in range(polls):
            for lead_id in leads[poll * 3 : poll * 3 + 3]:  # three conversions between polls
                admin(server, "POST", f"/pd/leads/{lead_id}/convert", {})
            before = usage(server)["tokens_used_today"]
            asyncio.run(eng.run_once(max_seconds=60))
            spent.append(usage(server)["tokens_used_today"] - before)
        qualified = store.counts()["qualified"]
        budget = eng.account.budget.snapshot().daily_budget or SMALLEST_BUDGET
    per_poll = sum(spent) / len(spent)
    interval = watch_interval(budget, 0.10)
    per_day = 86_400 / interval * per_poll + SCHEMA_TOKENS_PER_DAY
    print(
        f"watch {open_items} open leads on Lite (daily budget {budget:,} tokens): {per_poll:.1f} tokens per poll "
        f"(measured over {polls} polls, {qualified} conversions noticed and qualified), one poll every "
        f"{interval:.0f} s -> {per_day:,.0f} tokens a day = {per_day / budget:.1%} of the budget "
        f"(target at most 10%); a conversion is noticed within {interval / 60:.1f} min (target 5 min)",
        flush=True,
    )
    for plan in PLANS:
        for seats in SEATS:
            budget, interval = planned_interval(plan, seats)
            polls = 86_400 / interval
            share = (polls * per_poll + SCHEMA_TOKENS_PER_DAY) / budget
            print(
                f"{plan.capitalize()}, {seats} seat{'s' if seats > 1 else ''} ({budget:,} tokens a day): a conversion "
                f"is noticed within {interval:.0f} s ({interval / 60:.1f} min), {share:.1%} of the budget",
                flush=True,
            )


if __name__ == "__main__":
    main(sys.argv[1:])
