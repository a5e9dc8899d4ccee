"""The sync finds the Referral Factory host that answers, and starts there next time."""

from __future__ import annotations

import asyncio
import socket

from rf_desktop.core.config import Settings
from rf_desktop.core.referral_factory import BASE_URL_KEY, ReferralFactoryClient
from rf_desktop.core.store import Store
from rf_desktop.sandbox.server import SandboxServer
from tests.e2e.helpers import FAST_RETRY, make_engine, sandbox_settings, sign_up


def test_the_host_that_answered_is_remembered_in_the_data_folder(sandbox: SandboxServer, store: Store) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/rf/api/v2"  # nothing listens there once closed
    alive = sandbox.rf_base_url.rstrip("/")
    store.save_settings(sandbox_settings(sandbox))
    user = sign_up(sandbox, "Hana", "hana@example.com")

    def rf(settings: Settings, token: str) -> ReferralFactoryClient:
        return ReferralFactoryClient(dead, token, timeout=5.0, retry=FAST_RETRY, fallback_base_urls=[alive])

    engine = make_engine(store, sandbox, rf_factory=rf)
    summary = asyncio.run(engine.run_once(max_seconds=30))

    assert not summary.errors, summary.errors
    assert store.get(user["id"]) is not None
    assert store.get_kv(BASE_URL_KEY) == alive
