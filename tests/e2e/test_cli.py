"""`rf-desktop sync`, `export-log` and `config` as a person or a server would run them, in subprocesses."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keyring
import pytest

from rf_desktop.core.config import Settings
from rf_desktop.core.secrets import TokenStore
from rf_desktop.core.store import Store
from rf_desktop.sandbox.server import SandboxServer
from tests.conftest import no_keychain
from tests.e2e.helpers import admin, leads, sandbox_settings, sign_up

RF_SECRET = "rf-secret-7c1d5e0b9a"
PD_SECRET = "pd-secret-4f2a8b6c1e"


def _cli(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rf_desktop", *args],
        env={**os.environ, **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _with_secret_tokens(sandbox: SandboxServer) -> dict[str, str]:
    """Tokens that are easy to grep for, set in the sandbox and in the environment."""
    admin(sandbox, "PUT", "/tokens", {"rf": RF_SECRET, "pd": PD_SECRET})
    return {"RF_DESKTOP_REFERRAL_FACTORY_TOKEN": RF_SECRET, "RF_DESKTOP_PIPEDRIVE_TOKEN": PD_SECRET}


def test_help_runs_without_loading_qt() -> None:
    for command in ("sync", "sandbox", "export-log", "config"):
        code = (
            "import sys\n"
            "from rf_desktop.cli import main\n"
            f"try:\n    main([{command!r}, '--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'PySide6' not in sys.modules and 'qasync' not in sys.modules, 'Qt was loaded'\n"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert "usage: rf-desktop" in result.stdout


def test_sync_once_processes_everything_and_prints_a_summary(sandbox: SandboxServer, tmp_path: Path) -> None:
    db = tmp_path / "rf.sqlite3"
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(json.dumps(sandbox_settings(sandbox).to_json()))
    env = _with_secret_tokens(sandbox)
    sign_up(sandbox, "Cli", "cli@example.com")

    result = _cli("sync", "--once", "--db", str(db), "--config", str(settings_file), env=env)

    assert result.returncode == 0, result.stderr
    assert "Summary: 1 new, 1 sent to Pipedrive" in result.stdout
    assert len(leads(sandbox)) == 1


def test_sync_once_without_settings_says_what_to_do(tmp_path: Path) -> None:
    result = _cli("sync", "--once", "--db", str(tmp_path / "empty.sqlite3"))
    assert result.returncode == 2
    assert "not set up yet" in result.stderr and "config import" in result.stderr


def test_sync_once_with_a_wrong_token_exits_2_with_the_reason(sandbox: SandboxServer, tmp_path: Path) -> None:
    db = tmp_path / "rf.sqlite3"
    with Store(db) as store:
        store.save_settings(sandbox_settings(sandbox))
    env = {"RF_DESKTOP_REFERRAL_FACTORY_TOKEN": "wrong", "RF_DESKTOP_PIPEDRIVE_TOKEN": sandbox.state.pd.token}
    result = _cli("sync", "--once", "--db", str(db), env=env)
    assert result.returncode == 2
    assert "Referral Factory" in result.stdout + result.stderr
    assert "wrong" not in result.stdout + result.stderr


def test_sync_runs_until_sigterm_and_stops_cleanly(sandbox: SandboxServer, tmp_path: Path) -> None:
    db = tmp_path / "rf.sqlite3"
    with Store(db) as store:
        store.save_settings(sandbox_settings(sandbox))
    sign_up(sandbox, "Daemon", "daemon@example.com")
    process = subprocess.Popen(
        [sys.executable, "-m", "rf_desktop", "sync", "--db", str(db)],
        env={**os.environ, **_with_secret_tokens(sandbox)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not leads(sandbox) and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "lead created" in out and out.rstrip().endswith("Stopped.")
    second = _cli("sync", "--once", "--db", str(db), env=_with_secret_tokens(sandbox))
    assert second.returncode == 0, "the lock died with the first process"


def test_config_import_show_check_export(sandbox: SandboxServer, tmp_path: Path) -> None:
    db = str(tmp_path / "rf.sqlite3")
    source = tmp_path / "in.json"
    source.write_text(json.dumps(sandbox_settings(sandbox).to_json()))
    assert _cli("config", "--db", db, "import", str(source)).returncode == 0
    shown = _cli("config", "--db", db, "show")
    assert json.loads(shown.stdout)["mode"] == "lead"
    assert "The settings are complete." in _cli("config", "--db", db, "check").stdout
    target = tmp_path / "out.json"
    assert _cli("config", "--db", db, "export", str(target)).returncode == 0
    assert json.loads(target.read_text()) == json.loads(shown.stdout)


def test_config_check_names_what_is_missing(tmp_path: Path) -> None:
    db = str(tmp_path / "rf.sqlite3")
    with Store(db) as store:  # as the app saves a set-up left half-way
        store.save_settings(Settings.from_json({"mode": "deal", "qualification": {"kind": "lead_converted"}}))
    result = _cli("config", "--db", db, "check")
    assert result.returncode == 2
    assert "campaign" in result.stdout.lower() and "Referral Code" in result.stdout


@pytest.mark.allow_logged_errors
def test_tokens_never_reach_the_database_the_log_or_the_csv(sandbox: SandboxServer, tmp_path: Path) -> None:
    db = tmp_path / "rf.sqlite3"
    with Store(db) as store:
        store.save_settings(sandbox_settings(sandbox))
    env = _with_secret_tokens(sandbox)
    sign_up(sandbox, "=cmd|' /C calc'!A0", "formula@example.com")
    admin(sandbox, "PUT", "/faults/pd", {"rate_5xx": 0.3, "seed": 3})
    run = _cli("sync", "--once", "--db", str(db), env=env)
    admin(sandbox, "PUT", "/faults/pd", {})
    assert run.returncode == 0, run.stderr
    bad = _cli("sync", "--once", "--db", str(db), env={**env, "RF_DESKTOP_PIPEDRIVE_TOKEN": "pd-wrong-9d8e7f"})
    assert bad.returncode == 2
    exported = tmp_path / "log.csv"
    assert _cli("export-log", "--db", str(db), "-o", str(exported)).returncode == 0
    settings_out = tmp_path / "settings.json"
    _cli("config", "--db", str(db), "export", str(settings_out))

    for secret in (RF_SECRET, PD_SECRET, "pd-wrong-9d8e7f"):
        for path in (db, Path(f"{db}-wal"), exported, settings_out):
            if path.exists():
                assert secret.encode() not in path.read_bytes(), f"{secret} leaked into {path.name}"
        assert secret not in run.stdout + run.stderr + bad.stdout + bad.stderr
    rows = list(csv.reader(exported.read_text(encoding="utf-8-sig").splitlines()))
    assert rows[0][:2] == ["time", "level"]
    assert not any(cell.startswith("=") for row in rows for cell in row), "formula cells are neutralised"


@pytest.mark.keychain
def test_set_token_stores_in_the_real_keychain_and_sync_reads_it(sandbox: SandboxServer, tmp_path: Path) -> None:
    if not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        no_keychain("no D-Bus session (scripts/test starts one with gnome-keyring in it)")
    if TokenStore().backend_description() != "Secret Service (GNOME Keyring or KWallet)":
        no_keychain("no Secret Service keychain here (scripts/test starts gnome-keyring in a D-Bus session)")
    admin(sandbox, "PUT", "/tokens", {"rf": RF_SECRET, "pd": PD_SECRET})
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("RF_DESKTOP_") or k == "RF_DESKTOP_DATA_DIR"}
    for service, secret in (("referral-factory", RF_SECRET), ("pipedrive", PD_SECRET)):
        result = subprocess.run(
            [sys.executable, "-m", "rf_desktop", "config", "set-token", service],
            input=secret + "\n", capture_output=True, text=True, env=clean_env, timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert secret not in result.stdout + result.stderr
    try:
        assert keyring.get_password("rf-desktop", "pipedrive") == PD_SECRET
        db = tmp_path / "rf.sqlite3"
        with Store(db) as store:
            store.save_settings(sandbox_settings(sandbox))
        sign_up(sandbox, "Keychain", "keychain@example.com")
        run = subprocess.run(
            [sys.executable, "-m", "rf_desktop", "sync", "--once", "--db", str(db)],
            capture_output=True, text=True, env=clean_env, timeout=120,
        )
        assert run.returncode == 0, run.stderr
        assert len(leads(sandbox)) == 1
        assert PD_SECRET.encode() not in db.read_bytes()
    finally:
        for service in ("referral-factory", "pipedrive"):
            subprocess.run([sys.executable, "-m", "rf_desktop", "config", "forget-token", service],
                           env=clean_env, capture_output=True, timeout=60)
    assert keyring.get_password("rf-desktop", "pipedrive") is None


