"""Smoke-test a frozen rf-desktop, as a person who just installed it would run it.

    python3 scripts/smoke_frozen.py PATH/TO/rf-desktop        (Linux; the unpacked release)
    python scripts/smoke_frozen.py PATH\\TO\\rf-desktop-cli.exe  (Windows: the console executable)
    python3 scripts/smoke_frozen.py PATH/TO/rf-desktop.app/Contents/MacOS/rf-desktop   (macOS)
    python3 scripts/smoke_frozen.py --keychain PATH/TO/rf-desktop    (also store a token in the keychain)

Standard library only, so any Python runs it, outside the checkout's virtual environment. Every step runs
the executable with an empty home folder and none of the developer's environment (no virtual environment,
no PYTHONPATH, no tokens): --help, --version, `diagnose` (CA bundle found, the system keychain's backend
loads), `sync --once` against the built-in sandbox with tokens in the environment and a settings file
(referrals must arrive in the simulated Pipedrive), `export-log`, and the demo offscreen for 15 s with no
traceback and no missing resource. With --keychain (where an unlocked system keychain is at hand) the
Pipedrive token also goes into the keychain and a second sync reads it from there. Exits non-zero on the
first failure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DEMO_SECONDS = 15
# what a broken bundle prints: a Python exception, a file or Qt plugin left out of it
BROKEN = re.compile(r"Traceback|is missing|Could not (load|find)|cannot open shared object|No module named")
PEOPLE = (("Ada", "ada.smoke@example.com"), ("Linus", "linus.smoke@example.com"))
KEYCHAIN_PERSON = ("Grace", "grace.smoke@example.com")


class SmokeFailure(Exception):
    pass


def clean_environment(home: Path) -> dict[str, str]:
    """The machine's environment with an empty home and nothing of a Python development set-up."""
    dropped = {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "CONDA_PREFIX", "XDG_DATA_HOME", "XDG_CONFIG_HOME",
               "XDG_CACHE_HOME", "XDG_STATE_HOME"}
    env = {key: value for key, value in os.environ.items() if key not in dropped and not key.startswith("RF_DESKTOP_")}
    venv = os.environ.get("VIRTUAL_ENV")
    if venv:
        env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(venv))
    for key in ("HOME", "USERPROFILE"):
        env[key] = str(home)
    env["APPDATA"] = str(home / "AppData" / "Roaming")
    env["LOCALAPPDATA"] = str(home / "AppData" / "Local")
    env["QT_QPA_PLATFORM"] = "offscreen"
    return env


class Smoke:
    def __init__(self, app: Path, work: Path) -> None:
        self.app = app
        self.work = work
        self.home = work / "home"
        self.home.mkdir()
        self.env = clean_environment(self.home)
        self.settings = work / "settings.json"
        self.services: dict[str, str] = {}
        self.times: list[tuple[str, float]] = []

    def run(self, *args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> str:
        result = subprocess.run(
            [str(self.app), *args], env={**self.env, **(env or {})}, cwd=self.work, capture_output=True,
            text=True, input=stdin, timeout=120,
        )
        if result.returncode != 0 or BROKEN.search(result.stderr):
            raise SmokeFailure(f"`rf-desktop {' '.join(args)}` exited {result.returncode}:\n{result.stderr}")
        return result.stdout

    def step(self, name: str, check: Any) -> None:
        start = time.monotonic()
        check()
        self.times.append((name, time.monotonic() - start))
        print(f"ok    {name} ({self.times[-1][1]:.1f} s)", flush=True)

    def help(self) -> None:
        if "usage: rf-desktop" not in self.run("--help"):
            raise SmokeFailure("--help printed no usage")

    def version(self) -> None:
        if not re.fullmatch(r"rf-desktop \d+\.\d+\.\d+\S*\n", self.run("--version")):
            raise SmokeFailure("--version printed no version")

    def diagnose(self) -> None:
        report = json.loads(self.run("diagnose"))
        if not report["frozen"]:
            raise SmokeFailure(f"{self.app} is not a frozen build")
        if not (Path(report["ca_bundle"]["path"]).is_file() and report["ca_bundle"]["certificates"] > 0):
            raise SmokeFailure(f"no CA bundle: {report['ca_bundle']}")
        if not report["keychain"]["loadable"]:
            raise SmokeFailure(f"the keychain backend does not load: {report['keychain']}")
        # Windows finds AppData through the shell rather than the environment, so only elsewhere is the
        # empty home the data folder's parent
        if os.name != "nt" and not Path(report["data_dir"]).resolve().is_relative_to(self.home.resolve()):
            raise SmokeFailure(f"the data folder {report['data_dir']} is outside the home folder")

    @contextlib.contextmanager
    def sandbox(self) -> Iterator[None]:
        """`rf-desktop sandbox` running, its addresses and tokens in self.services."""
        process = subprocess.Popen(
            [str(self.app), "sandbox"], env=self.env, cwd=self.work, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )
        try:
            self.services = read_sandbox_banner(process)
            yield
        finally:
            process.terminate()
            process.wait(timeout=30)

    def sign_up(self, people: tuple[tuple[str, str], ...]) -> None:
        for first_name, email in people:
            body = {"campaign_id": 1, "first_name": first_name, "email": email}
            admin(f"{self.services['admin']}/rf/signup", body)

    def check_in_pipedrive(self, people: tuple[tuple[str, str], ...]) -> None:
        pipedrive = json.dumps(admin(f"{self.services['admin']}/state")["pd"])
        missing = [email for _, email in people if email not in pipedrive]
        if missing:
            raise SmokeFailure(f"{missing} did not reach Pipedrive")

    def sync_once(self) -> None:
        self.sign_up(PEOPLE)
        deal_fields = admin(f"{self.services['admin']}/state")["pd"]["deal_fields"]
        code_field = next(f["field_code"] for f in deal_fields if f["field_name"] == "Referral Code")
        settings = sync_settings(self.services["rf"], self.services["pd"], code_field)
        self.settings.write_text(json.dumps(settings), encoding="utf-8")
        tokens = {
            "RF_DESKTOP_REFERRAL_FACTORY_TOKEN": self.services["rf_token"],
            "RF_DESKTOP_PIPEDRIVE_TOKEN": self.services["pd_token"],
        }
        self.run("sync", "--once", "--config", str(self.settings), env=tokens)
        self.check_in_pipedrive(PEOPLE)

    def keychain_round_trip(self) -> None:
        """The Pipedrive token stored in the system keychain, then read from there by a sync."""
        self.run("config", "set-token", "pipedrive", stdin=self.services["pd_token"] + "\n")
        try:
            self.sign_up((KEYCHAIN_PERSON,))
            rf_token_only = {"RF_DESKTOP_REFERRAL_FACTORY_TOKEN": self.services["rf_token"]}
            self.run("sync", "--once", "--config", str(self.settings), env=rf_token_only)
            self.check_in_pipedrive((KEYCHAIN_PERSON,))
        finally:
            self.run("config", "forget-token", "pipedrive")

    def export_log(self) -> None:
        target = self.work / "sync-log.csv"
        self.run("export-log", "-o", str(target))
        rows = target.read_text(encoding="utf-8").splitlines()
        if len(rows) < 2:
            raise SmokeFailure(f"the exported log has no rows: {rows}")

    def demo(self) -> None:
        log = self.work / "demo-stderr.txt"
        with log.open("w", encoding="utf-8") as stderr:
            process = subprocess.Popen([str(self.app), "--demo"], env=self.env, cwd=self.work,
                                       stdout=subprocess.DEVNULL, stderr=stderr)
            try:
                process.wait(timeout=DEMO_SECONDS)
                raise SmokeFailure(f"the demo quit after less than {DEMO_SECONDS} s (exit {process.returncode})")
            except subprocess.TimeoutExpired:
                pass
            finally:
                process.terminate()
                process.wait(timeout=30)
        output = log.read_text(encoding="utf-8", errors="replace")
        if BROKEN.search(output):
            raise SmokeFailure(f"the demo reported a problem:\n{output}")


def read_sandbox_banner(sandbox: subprocess.Popen[str]) -> dict[str, str]:
    """The addresses and tokens `rf-desktop sandbox` prints when it starts."""
    assert sandbox.stdout is not None
    found: dict[str, str] = {}
    patterns = {
        "rf": r"Referral Factory API:\s+(\S+)\s+\(token: (\S+)\)",
        "pd": r"Pipedrive API:\s+(\S+)\s+\(token: (\S+)\)",
        "admin": r"Sandbox admin:\s+(\S+)",
    }
    for line in sandbox.stdout:
        for key, pattern in patterns.items():
            match = re.search(pattern, line)
            if match:
                found[key] = match.group(1)
                if match.lastindex == 2:
                    found[f"{key}_token"] = match.group(2)
        if "admin" in found:
            return found
    raise SmokeFailure(f"the sandbox did not start:\n{sandbox.stderr.read() if sandbox.stderr else ''}")


def sync_settings(rf_url: str, pd_url: str, code_field: str) -> dict[str, Any]:
    """Lead mode on campaign 1, everyone invited so far, name, email and referral code mapped: the least a
    real set-up has."""
    return {
        "referral_factory": {"base_url": rf_url, "campaign_ids": [1], "backfill": "all"},
        "pipedrive": {"base_url": pd_url},
        "mode": "lead",
        "title": "{campaign_name}: {first_name}",
        "mappings": [
            {"source": "first_name", "target": "person:name"},
            {"source": "email", "target": "person:email"},
            {"source": "code", "target": f"item:{code_field}"},
        ],
        "qualification": {"kind": "lead_converted"},
    }


def admin(url: str, body: dict[str, Any] | None = None) -> Any:
    """A call to the sandbox's admin surface (a POST when there is a body)."""
    if not url.startswith("http://127.0.0.1:"):
        raise SmokeFailure(f"the sandbox printed an address that is not on 127.0.0.1: {url}")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keychain", action="store_true", help="also store a token in the system keychain")
    parser.add_argument("app", type=Path, help="the frozen rf-desktop executable")
    args = parser.parse_args(argv[1:])
    app = args.app.resolve()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rf-desktop-smoke-") as work:
        smoke = Smoke(app, Path(work))
        try:
            smoke.step("--help", smoke.help)
            smoke.step("--version", smoke.version)
            smoke.step("diagnose: CA bundle and keychain backend", smoke.diagnose)
            with smoke.sandbox():
                smoke.step("sync --once against the sandbox, tokens from the environment", smoke.sync_once)
                if args.keychain:
                    smoke.step("sync --once with the Pipedrive token in the keychain", smoke.keychain_round_trip)
            smoke.step("export-log", smoke.export_log)
            smoke.step(f"demo offscreen for {DEMO_SECONDS} s", smoke.demo)
        except (SmokeFailure, subprocess.TimeoutExpired, OSError, KeyError, ValueError) as failure:
            print(f"FAIL  {failure}", file=sys.stderr)
            return 1
    print(f"smoke test of {app.name}: all {len(smoke.times)} steps ok in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
