"""Bad input never crashes the sync and never loses a referral: each case ends in a clear message."""

from __future__ import annotations

import asyncio
import socket

from rf_desktop.core.config import FieldMap, PipedriveSettings
from rf_desktop.core.store import Store
from rf_desktop.sandbox.server import SandboxServer
from tests.e2e.helpers import admin, field_code, leads, make_engine, run_once, sandbox_settings, sign_up


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _once(store: Store, sandbox: SandboxServer) -> tuple[str, str]:
    engine = make_engine(store, sandbox)
    asyncio.run(engine.run_once(max_seconds=10))
    return engine.state, engine.message


def test_a_wrong_referral_factory_token_stops_with_what_to_do(sandbox: SandboxServer, store: Store) -> None:
    store.save_settings(sandbox_settings(sandbox))
    user = sign_up(sandbox, "Ana", "ana@example.com")
    engine = make_engine(store, sandbox)
    sandbox.state.rf.token = "a-regenerated-token"
    asyncio.run(engine.run_once(max_seconds=10))
    assert engine.state == "auth_error"
    assert "Referral Factory" in engine.message and "token" in engine.message.lower()
    assert "a-regenerated-token" not in engine.message and "rf-sandbox-token" not in engine.message
    assert store.log_rows(level="error")[0].message.startswith(engine.message[:20])
    # fixed token: the referral is picked up, nothing was lost
    sandbox.state.rf.token = "rf-sandbox-token"
    run_once(store, sandbox)
    assert store.get(user["id"]).status == "waiting"  # type: ignore[union-attr]


def test_a_wrong_pipedrive_token_stops_with_what_to_do(sandbox: SandboxServer, store: Store) -> None:
    store.save_settings(sandbox_settings(sandbox))
    engine = make_engine(store, sandbox)
    sandbox.state.pd.token = "revoked"
    asyncio.run(engine.run_once(max_seconds=10))
    assert engine.state == "auth_error"
    assert "Pipedrive" in engine.message and "API" in engine.message
    assert "pd-sandbox-token" not in engine.message


def test_an_unreachable_base_url_is_a_connection_problem_not_a_crash(
    sandbox: SandboxServer, store: Store
) -> None:
    settings = sandbox_settings(sandbox)
    settings.pipedrive = PipedriveSettings(base_url=f"http://127.0.0.1:{_closed_port()}/pd")
    store.save_settings(settings)
    user = sign_up(sandbox, "Bo", "bo@example.com")
    state, message = _once(store, sandbox)
    assert state == "error"
    assert "127.0.0.1" in message
    referral = store.get(user["id"])
    assert referral is None or referral.status in ("pending", "sending"), "recorded or not, never lost"


def test_a_mapped_field_deleted_in_pipedrive_pauses_with_its_name(
    sandbox: SandboxServer, store: Store
) -> None:
    store.save_settings(sandbox_settings(sandbox))
    sign_up(sandbox, "First", "first@example.com")
    run_once(store, sandbox)
    admin(sandbox, "DELETE", f"/pd/fields/deal/{field_code(sandbox, 'deal', 'Referral Link')}")
    later = sign_up(sandbox, "Later", "later@example.com")

    state, message = _once(store, sandbox)

    assert state == "not_configured"
    assert "Referral Link" in message or "deleted" in message
    referral = store.get(later["id"])
    assert referral is not None and referral.status in ("pending", "failed") and not referral.permanent
    assert len(leads(sandbox)) == 1


def test_a_referral_without_email_fails_with_a_reason_and_the_rest_go_through(
    sandbox: SandboxServer, store: Store
) -> None:
    store.save_settings(sandbox_settings(sandbox))
    nameless = sign_up(sandbox, "No Mail", "nomail@example.com")
    with sandbox.state.lock:
        sandbox.state.rf.users[nameless["id"]]["email"] = ""
    fine = sign_up(sandbox, "Fine", "fine@example.com")
    run_once(store, sandbox)
    broken = store.get(nameless["id"])
    assert broken is not None and broken.status == "failed" and broken.permanent
    assert "no email" in (broken.status_reason or "")
    assert store.get(fine["id"]).status == "waiting"  # type: ignore[union-attr]

    # fixed in Referral Factory, then retried by the owner: it goes through
    with sandbox.state.lock:
        sandbox.state.rf.users[nameless["id"]]["email"] = "found@example.com"
    engine = make_engine(store, sandbox)
    engine.retry(nameless["id"])
    asyncio.run(engine.run_once(max_seconds=10))
    assert store.get(nameless["id"]).status == "waiting"  # type: ignore[union-attr]


def test_an_enum_label_that_does_not_exist_is_a_clear_per_referral_error(
    sandbox: SandboxServer, store: Store
) -> None:
    settings = sandbox_settings(sandbox)
    settings.mappings.append(FieldMap("meta:Plan", f"item:{field_code(sandbox, 'deal', 'Plan Interest')}"))
    store.save_settings(settings)
    odd = sign_up(sandbox, "Odd", "odd@example.com", meta=[{"field": "Plan", "value": "Platinum"}])
    run_once(store, sandbox)
    referral = store.get(odd["id"])
    assert referral is not None and referral.status == "failed" and referral.permanent
    assert "Platinum" in (referral.status_reason or "") and "Plan Interest" in (referral.status_reason or "")


def test_very_long_and_unicode_names(sandbox: SandboxServer, store: Store) -> None:
    store.save_settings(sandbox_settings(sandbox))
    long_name = ("Ñandú " + "Wolfeschlegelsteinhausenbergerdorff" * 7)[:250]
    user = sign_up(sandbox, long_name, "long@example.com")
    run_once(store, sandbox)
    [lead] = leads(sandbox)
    assert len(lead["title"]) <= 255 and lead["title"].endswith("…")
    assert store.get(user["id"]).status == "waiting"  # type: ignore[union-attr]
