"""Fault injection: each kind of fault, before and after the request is processed, through real HTTP."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from rf_desktop.sandbox.faults import FaultConfig
from rf_desktop.sandbox.pipedrive_http import BURST_BODY
from rf_desktop.sandbox.referral_factory import SEED_REFERRER_CODE
from rf_desktop.sandbox.server import SandboxServer

RF_HEADERS = {"Authorization": "Bearer rf-sandbox-token"}


def loopback_client(**settings: Any) -> httpx.Client:
    """A client for the sandbox. Plain HTTP on loopback, so no CA bundle is loaded (~60 ms per client)."""
    return httpx.Client(verify=False, timeout=5, **settings)


@pytest.fixture
def rf(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    with loopback_client(base_url=sandbox.rf_base_url, headers=RF_HEADERS) as client:
        yield client


@pytest.fixture
def admin(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    with loopback_client(base_url=sandbox.admin_url) as client:
        yield client


@pytest.fixture
def server_errors() -> Iterator[list[logging.LogRecord]]:
    """ERROR records of the HTTP server itself, looked at where they are emitted."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = records.append  # type: ignore[method-assign]
    server_log = logging.getLogger("uvicorn.error")
    server_log.addHandler(handler)
    yield records
    server_log.removeHandler(handler)


def set_faults(sandbox: SandboxServer, api: str = "rf", **settings: Any) -> None:
    with sandbox.state.lock:
        sandbox.state.faults[api] = FaultConfig(**settings)


def create_referrer(rf: httpx.Client, email: str) -> httpx.Response:
    return rf.post("/users", json={"campaign_id": 1, "first_name": "Ana", "email": email})


def stored_emails(sandbox: SandboxServer) -> set[str]:
    with sandbox.state.lock:
        return {u["email"] for u in sandbox.state.rf.users.values()}


# --- the configuration ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"rate_429": 1.5}, "rate_429 must be a number between 0 and 1"),
        ({"rate_5xx": 0.6, "rate_drop": 0.6}, "add up to more than 1"),
        ({"after_commit_share": -0.1}, "after_commit_share"),
        ({"latency_ms": -5}, "latency_ms"),
        ({"seed": "abc"}, "seed"),
        ({"only_paths": "/users"}, "only_paths"),
        ({"rate_dropped": 0.1}, "unknown fault settings: rate_dropped"),
    ],
)
def test_a_bad_fault_config_says_what_is_wrong(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FaultConfig.from_json(settings)


def test_a_fault_config_round_trips_through_json() -> None:
    config = FaultConfig(rate_5xx=0.2, seed=3, only_paths=["/users"], timeout_seconds=0.5)
    assert FaultConfig.from_json(config.to_json()) == config
    assert "_rng" not in config.to_json()


# --- each fault -----------------------------------------------------------------------------------------


def test_latency_delays_every_call_of_that_api_only(
    sandbox: SandboxServer, rf: httpx.Client, admin: httpx.Client
) -> None:
    set_faults(sandbox, latency_ms=200)
    started = time.monotonic()
    assert rf.get("/campaigns").status_code == 200
    assert time.monotonic() - started >= 0.2
    started = time.monotonic()
    assert admin.get("/faults").status_code == 200
    assert time.monotonic() - started < 0.2
    assert admin.get("/stats").json()["rf"]["faults"]["latency"] == 1


def test_an_injected_429_on_referral_factory_looks_like_rfs_own(
    sandbox: SandboxServer, rf: httpx.Client
) -> None:
    set_faults(sandbox, rate_429=1.0)
    response = create_referrer(rf, "ana@example.com")
    assert response.status_code == 429
    assert response.json() == {"code": 429, "message": "Too Many Attempts."}
    assert "retry-after" not in response.headers
    assert "ana@example.com" not in stored_emails(sandbox)


def test_an_injected_429_on_pipedrive_is_a_burst_429(sandbox: SandboxServer) -> None:
    set_faults(sandbox, "pd", rate_429=1.0, seed=1)
    waits = set()
    pd = loopback_client(base_url=sandbox.pd_base_url, headers={"x-api-token": "pd-sandbox-token"})
    for _ in range(10):
        response = pd.get("/api/v2/persons")
        assert response.status_code == 429
        assert response.json() == BURST_BODY
        assert response.headers["x-ratelimit-remaining"] == "0"
        waits.add(response.headers["retry-after"])
    pd.close()
    assert waits == {"1", "2"}


def test_injected_5xx_before_the_request_is_processed(sandbox: SandboxServer, rf: httpx.Client) -> None:
    set_faults(sandbox, rate_5xx=1.0, after_commit_share=0.0, seed=5)
    statuses = {create_referrer(rf, f"ana{n}@example.com").status_code for n in range(15)}
    assert statuses == {500, 502, 503}
    assert not any(e.startswith("ana") for e in stored_emails(sandbox))


def test_a_502_comes_from_a_gateway_in_html(sandbox: SandboxServer, rf: httpx.Client) -> None:
    set_faults(sandbox, rate_5xx=1.0, seed=5)
    responses = [rf.get("/campaigns") for _ in range(15)]
    gateway = next(r for r in responses if r.status_code == 502)
    assert gateway.headers["content-type"].startswith("text/html")
    server = next(r for r in responses if r.status_code == 500)
    assert server.json() == {"code": 500, "message": "Internal Server Error"}


def test_injected_5xx_after_the_request_was_processed(sandbox: SandboxServer, rf: httpx.Client) -> None:
    set_faults(sandbox, rate_5xx=1.0, after_commit_share=1.0)
    assert create_referrer(rf, "ana@example.com").status_code >= 500
    assert "ana@example.com" in stored_emails(sandbox)


@pytest.mark.parametrize(("share", "stored"), [(0.0, False), (1.0, True)])
def test_a_timeout_stalls_until_the_client_gives_up(
    sandbox: SandboxServer, rf: httpx.Client, share: float, stored: bool
) -> None:
    set_faults(sandbox, rate_timeout=1.0, timeout_seconds=5, after_commit_share=share)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        rf.post("/users", json={"campaign_id": 1, "first_name": "A", "email": "ana@example.com"}, timeout=0.3)
    assert 0.3 <= time.monotonic() - started < 2
    assert ("ana@example.com" in stored_emails(sandbox)) is stored


def test_a_timeout_ends_in_a_504_for_a_patient_client(sandbox: SandboxServer, rf: httpx.Client) -> None:
    set_faults(sandbox, rate_timeout=1.0, timeout_seconds=0.2)
    started = time.monotonic()
    response = rf.get("/campaigns")
    assert response.status_code == 504
    assert time.monotonic() - started >= 0.2


@pytest.mark.parametrize(("share", "stored"), [(0.0, False), (1.0, True)])
def test_a_dropped_connection_breaks_without_a_server_error(
    sandbox: SandboxServer,
    rf: httpx.Client,
    server_errors: list[logging.LogRecord],
    share: float,
    stored: bool,
) -> None:
    set_faults(sandbox, rate_drop=1.0, after_commit_share=share)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        create_referrer(rf, "ana@example.com")
    assert ("ana@example.com" in stored_emails(sandbox)) is stored
    assert server_errors == []
    set_faults(sandbox)
    assert rf.get("/campaigns").status_code == 200  # the client recovers on a new connection


def test_a_drop_after_processing_a_qualification_still_qualifies_once(
    sandbox: SandboxServer, rf: httpx.Client
) -> None:
    with sandbox.state.lock:
        user = sandbox.state.rf.sign_up(1, "Zoë", "zoe@example.com", SEED_REFERRER_CODE)
    set_faults(sandbox, rate_drop=1.0, after_commit_share=1.0, only_paths=["/users/qualification"])
    with pytest.raises(httpx.RemoteProtocolError):
        rf.put("/users/qualification", json={"id": user["id"], "qualified": True})
    # what a careful client does next: read the user back before asking again
    assert rf.get(f"/users/{user['id']}").json()["data"]["qualified_at"] is not None
    assert sandbox.state.rf.qualification_count(user["id"]) == 1


def test_only_paths_limits_faults_to_matching_paths(sandbox: SandboxServer, rf: httpx.Client) -> None:
    set_faults(sandbox, rate_5xx=1.0, only_paths=["/users/search"])
    assert rf.get("/campaigns").status_code == 200
    assert rf.get("/users").status_code == 200
    assert rf.post("/users/search", json={}).status_code >= 500


def test_faults_never_touch_the_admin_surface(sandbox: SandboxServer, admin: httpx.Client) -> None:
    set_faults(sandbox, "rf", rate_drop=1.0)
    set_faults(sandbox, "pd", rate_drop=1.0)
    assert admin.get("/faults").json()["rf"]["rate_drop"] == 1.0


def test_a_seed_makes_the_faults_reproducible(sandbox: SandboxServer, rf: httpx.Client) -> None:
    def run(seed: int) -> list[int]:
        set_faults(sandbox, rate_429=0.2, rate_5xx=0.3, seed=seed)
        return [rf.get("/campaigns").status_code for _ in range(30)]

    first = run(11)
    assert run(11) == first
    assert run(12) != first
    assert {200, 429} <= set(first) and set(first) - {200, 429}


def test_injected_faults_are_counted_per_kind(
    sandbox: SandboxServer, rf: httpx.Client, admin: httpx.Client
) -> None:
    set_faults(sandbox, rate_429=1.0)
    for _ in range(3):
        rf.get("/campaigns")
    set_faults(sandbox, rate_5xx=1.0, after_commit_share=1.0)
    rf.get("/campaigns")
    stats = admin.get("/stats").json()["rf"]
    assert stats["faults"] == {"429": 3, "5xx": 1, "after_commit": 1}
    assert stats["requests"] == 4
    assert stats["rejects"] == {"429": 3}
