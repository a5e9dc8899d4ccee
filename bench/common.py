"""What the benchmarks share: a sandbox with realistic latency, a store set up for it, a machine line."""

from __future__ import annotations

import os
import platform
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil

from rf_desktop.core.account import Account, PdFactory, RfFactory
from rf_desktop.core.config import Settings
from rf_desktop.core.connections import pipedrive_api_base, pipedrive_client, referral_factory_client
from rf_desktop.core.engine import SyncEngine
from rf_desktop.core.http import CallInfo
from rf_desktop.core.pipedrive import PipedriveClient
from rf_desktop.core.referral_factory import ReferralFactoryClient
from rf_desktop.core.store import Store
from rf_desktop.sandbox import presets
from rf_desktop.sandbox.server import SandboxServer


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    memory = psutil.virtual_memory().total / 2**30
    cpu = _cpu_name()
    return f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB, Python {platform.python_version()}"


@contextmanager
def sandbox(latency_ms: int = 100, plan: str = "growth", seats: int = 1) -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        admin(server, "PUT", "/pd/plan", {"plan": plan, "seats": seats})
        for api in ("rf", "pd"):
            admin(server, "PUT", f"/faults/{api}", {"latency_ms": latency_ms})
        yield server


def admin(server: SandboxServer, method: str, path: str, body: Any = None) -> Any:
    response = httpx.request(method, f"{server.admin_url}{path}", json=body, timeout=30)
    response.raise_for_status()
    return response.json() if response.content else None


@contextmanager
def configured_store(server: SandboxServer, **changes: Any) -> Iterator[Store]:
    with tempfile.TemporaryDirectory() as folder, Store(Path(folder) / "bench.sqlite3") as store:
        store.save_settings(presets.demo_settings(server.rf_base_url, server.pd_base_url, server.state, **changes))
        yield store


def engine(
    store: Store,
    server: SandboxServer,
    *,
    rf_factory: RfFactory = referral_factory_client,
    pd_factory: PdFactory = pipedrive_client,
    **kwargs: Any,
) -> SyncEngine:
    """An engine with the product's default clients: only the tokens differ from a real install."""
    tokens = {"referral-factory": server.state.rf.token, "pipedrive": server.state.pd.token}
    return SyncEngine(Account(store, tokens, rf_factory=rf_factory, pd_factory=pd_factory), **kwargs)


def recording_clients(calls: list[tuple[float, CallInfo]]) -> dict[str, Any]:
    """`engine()` keyword arguments for the product's default clients that also note every answer (with its
    monotonic time) in `calls`."""

    def note(call: CallInfo) -> None:
        calls.append((time.monotonic(), call))

    def rf(settings: Settings, token: str) -> ReferralFactoryClient:
        return ReferralFactoryClient(settings.referral_factory.base_url, token, on_response=note)

    def pd(settings: Settings, token: str, **limits: Any) -> PipedriveClient:
        base = pipedrive_api_base(settings.pipedrive.base_url, settings.pipedrive.company_domain)
        return PipedriveClient(base, token, on_response=note, **limits)

    return {"rf_factory": rf, "pd_factory": pd}


def sign_up_many(server: SandboxServer, count: int) -> list[dict[str, Any]]:
    with server.state.lock:
        return [server.state.rf.sign_up(1, f"Person {n}", f"bench{n}@example.com") for n in range(count)]


def usage(server: SandboxServer) -> dict[str, Any]:
    with server.state.lock:
        return dict(server.state.pd.limiter.usage())


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]
