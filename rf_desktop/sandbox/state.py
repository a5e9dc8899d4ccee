"""Everything the sandbox knows, in one object shared by its routes, its admin surface and the demo."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from rf_desktop.sandbox.clock import Clock
from rf_desktop.sandbox.faults import FaultConfig, TrafficStats
from rf_desktop.sandbox.pipedrive import PipedriveState
from rf_desktop.sandbox.referral_factory import ReferralFactoryState


class SandboxState:
    """Both simulated services. Route handlers hold `lock` while they read or change state (never across
    an await), because tests and the demo touch the same objects from other threads."""

    def __init__(
        self, *, plan: str = "growth", seats: int = 1, state_dir: Path | None = None, seed: bool = True
    ) -> None:
        self.lock = threading.RLock()
        self._save_lock = threading.Lock()
        self.clock = Clock()
        self.rf = ReferralFactoryState(self.clock)
        self.pd = PipedriveState(self.clock, plan=plan, seats=seats)
        self.faults: dict[str, FaultConfig] = {"rf": FaultConfig(), "pd": FaultConfig()}
        self.stats = TrafficStats()
        # the demo (simulated sign-ups and sales team) runs while enabled; speed scales its pace
        self.demo_enabled = False
        self.demo_speed = 1.0
        self.demo_seed: int | None = None
        self.state_file = state_dir / "sandbox-state.json" if state_dir else None
        if self.state_file and self.state_file.exists():
            self.load(self.state_file)
        elif seed:
            self.reset()

    def reset(self) -> None:
        """Forget everything and seed the default account: campaigns, a referrer, pipelines, fields.
        The demo stops too, so nothing it does lands in the fresh state."""
        with self.lock:
            self.demo_enabled = False
            self.demo_speed = 1.0
            self.clock.reset()
            self.rf.reset()
            self.rf.seed()
            self.pd.reset()
            self.pd.seed()
            self.faults = {"rf": FaultConfig(), "pd": FaultConfig()}
            self.stats.reset()

    def to_json(self) -> dict[str, Any]:
        with self.lock:
            return {"rf": self.rf.to_json(), "pd": self.pd.to_json()}

    def save(self) -> None:
        if self.state_file is None:
            return
        with self._save_lock:  # the periodic save and the one on exit may overlap
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.to_json()), encoding="utf-8")
            tmp.replace(self.state_file)

    def load(self, path: Path) -> None:
        data = json.loads(path.read_text(encoding="utf-8"))
        with self.lock:
            self.rf.from_json(data["rf"])
            self.pd.from_json(data["pd"])
