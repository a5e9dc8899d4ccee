"""Serving the sandbox: state kept in --state-dir, and `rf-desktop sandbox` as a real process."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rf_desktop.sandbox import admin
from rf_desktop.sandbox.server import SandboxServer
from rf_desktop.sandbox.state import SandboxState

RF_AUTH = {"Authorization": "Bearer rf-sandbox-token"}
PD_AUTH = {"x-api-token": "pd-sandbox-token"}


def loopback_client(**settings: Any) -> httpx.Client:
    """A client for the sandbox. Plain HTTP on loopback, so no CA bundle is loaded (~60 ms per client)."""
    return httpx.Client(verify=False, timeout=5, **settings)


def rf_desktop_command() -> list[str]:
    """The installed `rf-desktop` script beside this Python, else the module."""
    script = Path(sys.executable).with_name("rf-desktop")
    return [str(script)] if script.exists() else [sys.executable, "-m", "rf_desktop"]


# --- state persistence ----------------------------------------------------------------------------------


def test_the_state_survives_a_restart_through_the_state_dir(tmp_path: Path) -> None:
    with SandboxServer(SandboxState(state_dir=tmp_path)) as server, loopback_client() as client:
        user = client.post(f"{server.admin_url}/rf/signup", json={"email": "zoe@example.com"}).json()
        client.put(
            f"{server.rf_base_url}/users/qualification",
            json={"id": user["id"], "qualified": True},
            headers=RF_AUTH,
        )
        deal = client.post(f"{server.pd_base_url}/api/v2/deals", json={"title": "Zoë"}, headers=PD_AUTH)
        client.put(f"{server.admin_url}/tokens", json={"pd": "pd-regenerated"})
    assert (tmp_path / "sandbox-state.json").exists()

    restored = SandboxState(state_dir=tmp_path)
    with restored.lock:
        again = restored.rf.user(user["id"])
        assert again["email"] == "zoe@example.com" and again["qualified_at"] is not None
        assert restored.rf.qualification_count(user["id"]) == 1
        assert restored.pd.deals[deal.json()["data"]["id"]]["title"] == "Zoë"
        assert restored.pd.token == "pd-regenerated"
    # new users continue after the restored ones
    with restored.lock:
        newer = restored.rf.sign_up(1, "Ana", "ana@example.com")
    assert newer["id"] > user["id"]


def test_the_state_is_saved_periodically_while_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(admin, "SAVE_INTERVAL_SECONDS", 0.1)
    state_file = tmp_path / "sandbox-state.json"
    with SandboxServer(SandboxState(state_dir=tmp_path)) as server:
        with loopback_client() as client:
            client.post(f"{server.admin_url}/rf/signup", json={"email": "zoe@example.com"})
        deadline = time.monotonic() + 5
        while not (state_file.exists() and "zoe@example.com" in state_file.read_text(encoding="utf-8")):
            assert time.monotonic() < deadline, "the state was not saved while the sandbox ran"
            time.sleep(0.05)


def test_a_sandbox_without_a_state_dir_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with SandboxServer() as server, loopback_client() as client:
        assert client.get(f"{server.admin_url}/state").status_code == 200
    assert list(tmp_path.iterdir()) == []


# --- rf-desktop sandbox ---------------------------------------------------------------------------------


def test_sandbox_help_lists_its_options() -> None:
    result = subprocess.run(
        [*rf_desktop_command(), "sandbox", "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    for option in ("--port", "--state-dir", "--demo", "--plan", "--seats", "--latency-ms"):
        assert option in result.stdout


def test_the_sandbox_never_loads_qt() -> None:
    code = (
        "import sys\n"
        "from rf_desktop import cli\n"
        "try:\n"
        "    cli.main(['sandbox', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "import rf_desktop.sandbox.server, rf_desktop.sandbox.demo, rf_desktop.sandbox.admin\n"
        "rf_desktop.sandbox.server.SandboxServer().start().stop()\n"
        "assert 'PySide6' not in sys.modules and 'qasync' not in sys.modules, 'Qt was loaded'\n"
        "print('no Qt')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("no Qt")


class SandboxProcess:
    """`rf-desktop sandbox ...` running in the background, with what it printed so far."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [*rf_desktop_command(), "sandbox", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self.output = b""

    def read_until(self, marker: str, timeout: float = 30) -> str:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while marker.encode() not in self.output:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {marker!r} in {self.output!r}"
            if select.select([fd], [], [], remaining)[0]:
                chunk = os.read(fd, 65536)
                assert chunk, f"the sandbox exited early: {self.output!r}"
                self.output += chunk
        return self.output.decode()

    def url(self, label: str) -> str:
        match = re.search(rf"{label}:\s+(\S+)", self.output.decode())
        assert match, self.output
        return match.group(1)

    def stop(self, sig: int) -> tuple[int, str]:
        self.proc.send_signal(sig)
        _, stderr = self.proc.communicate(timeout=30)
        return self.proc.returncode, stderr.decode()


@pytest.fixture
def processes() -> Iterator[list[SandboxProcess]]:
    started: list[SandboxProcess] = []
    yield started
    for process in started:
        if process.proc.poll() is None:
            process.proc.kill()
        process.proc.communicate()  # also closes the pipes


@pytest.mark.parametrize("stop_with", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_rf_desktop_sandbox_serves_until_stopped_and_keeps_its_state(
    tmp_path: Path, processes: list[SandboxProcess], stop_with: int
) -> None:
    process = SandboxProcess("--port", "0", "--state-dir", str(tmp_path), "--plan", "premium", "--seats", "2")
    processes.append(process)
    printed = process.read_until("Ctrl+C")
    assert "rf-sandbox-token" in printed and "pd-sandbox-token" in printed
    rf_url, pd_url, admin_url = (process.url(x) for x in ("Referral Factory API", "Pipedrive API", "admin"))
    assert rf_url.startswith("http://127.0.0.1:") and rf_url.endswith("/rf/api/v2")

    with loopback_client() as client:
        assert client.get(f"{rf_url}/campaigns", headers=RF_AUTH).json()["meta"]["total"] == 3
        assert client.get(f"{pd_url}/api/v2/pipelines", headers=PD_AUTH).status_code == 200
        assert client.post(f"{admin_url}/rf/signup", json={"email": "zoe@example.com"}).status_code == 201
        usage = client.get(f"{admin_url}/stats").json()["pd"]["usage"]
        assert (usage["plan"], usage["seats"]) == ("premium", 2)

    returncode, stderr = process.stop(stop_with)
    assert returncode == 0, stderr
    assert "Traceback" not in stderr and "ERROR" not in stderr
    saved = json.loads((tmp_path / "sandbox-state.json").read_text(encoding="utf-8"))
    assert "zoe@example.com" in {u["email"] for u in saved["rf"]["users"]}


def test_rf_desktop_sandbox_restarts_where_it_stopped(
    tmp_path: Path, processes: list[SandboxProcess]
) -> None:
    first = SandboxProcess("--port", "0", "--state-dir", str(tmp_path))
    processes.append(first)
    first.read_until("Ctrl+C")
    with loopback_client() as client:
        user = client.post(f"{first.url('admin')}/rf/signup", json={"email": "zoe@example.com"}).json()
        client.put(f"{first.url('admin')}/tokens", json={"rf": "rf-regenerated"})
    assert first.stop(signal.SIGTERM)[0] == 0

    second = SandboxProcess("--port", "0", "--state-dir", str(tmp_path))
    processes.append(second)
    assert "token: rf-regenerated" in second.read_until("Ctrl+C")
    headers = {"Authorization": "Bearer rf-regenerated"}
    with loopback_client() as client:
        again = client.get(f"{second.url('Referral Factory API')}/users/{user['id']}", headers=headers)
    assert again.json()["data"] == user
    assert second.stop(signal.SIGTERM)[0] == 0


def test_rf_desktop_sandbox_applies_latency_and_runs_the_demo(processes: list[SandboxProcess]) -> None:
    process = SandboxProcess("--port", "0", "--latency-ms", "150", "--demo")
    processes.append(process)
    process.read_until("Ctrl+C")
    with loopback_client() as client:
        started = time.monotonic()
        client.get(f"{process.url('Referral Factory API')}/campaigns", headers=RF_AUTH)
        assert time.monotonic() - started >= 0.15
        state = client.get(f"{process.url('admin')}/state").json()
        assert state["demo"]["enabled"] is True
    assert process.stop(signal.SIGTERM)[0] == 0


def test_rf_desktop_sandbox_says_when_the_port_is_taken() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*rf_desktop_command(), "sandbox", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
