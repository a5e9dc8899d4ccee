"""The "send test referral" wizard, start to finish, in the demo: 100 ms of latency on every API call,
the product's own clients and engine (the sync looks for sign-ups every 10 s, as in the demo), and the
demo's "Act as the salesperson" for each qualification rule.

It times what the wizard shows: the run (both sign-ups, the sync's push, the fields read back), the
qualification after the salesperson acts, and the cleanup. The wizard's window adds nothing measurable
on top of this: it only draws the step updates.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from bench.common import configured_store, engine, machine, sandbox
from rf_desktop.core.config import QualificationRule
from rf_desktop.core.trial.run import TrialRun
from rf_desktop.sandbox import presets
from rf_desktop.sandbox.admin_client import SandboxAdmin
from rf_desktop.sandbox.server import SandboxServer


def _settings(server: SandboxServer, kind: str) -> dict[str, Any]:
    if kind.startswith("lead"):
        stage = presets.stage_id(server.state, "Demo Scheduled") if kind == "lead_converted_stage" else None
        return {"qualification": QualificationRule(kind, 1 if stage else None, stage)}  # type: ignore[arg-type]
    first = presets.stage_id(server.state, "Qualified")
    stage = presets.stage_id(server.state, "Contact Made") if kind == "deal_stage" else None
    return {
        "mode": "deal",
        "pipeline_id": 1,
        "stage_id": first,
        "qualification": QualificationRule(kind, 1 if stage else None, stage),  # type: ignore[arg-type]
    }


async def one_run(kind: str) -> tuple[float, float, float, bool]:
    with sandbox(latency_ms=100) as server, configured_store(server, **_settings(server, kind)) as store:
        eng = engine(store, server)
        task = asyncio.create_task(eng.run())
        await asyncio.sleep(0)
        trial = TrialRun(eng.account, eng)
        started = time.monotonic()
        ok = await trial.run()
        ran = time.monotonic() - started
        started = time.monotonic()
        referral = trial.test_referral()
        assert referral is not None
        salesperson = SandboxAdmin(server.admin_url)
        trial.someone_acted(await salesperson.act_as_salesperson(referral, trial.settings.qualification))
        ok = await trial.wait_for_qualification(120) and ok
        qualified = time.monotonic() - started
        started = time.monotonic()
        ok = (await trial.cleanup()).ok and ok
        cleaned = time.monotonic() - started
        eng.stop()
        await task
    return ran, qualified, cleaned, ok


def main(argv: list[str]) -> None:
    kinds = argv or ["lead_converted", "lead_converted_stage", "deal_stage", "deal_won"]
    print(f"machine: {machine()}")
    for kind in kinds:
        ran, qualified, cleaned, ok = asyncio.run(one_run(kind))
        print(
            f"test referral, rule {kind}, 100 ms API latency: run {ran:.1f} s (sign-ups, push, fields read "
            f"back), qualified {qualified:.1f} s after the salesperson acted, cleanup {cleaned:.1f} s; "
            f"total {ran + qualified + cleaned:.1f} s{'' if ok else ' (A STEP FAILED)'}",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
