"""The command line says honestly what happened: each problem once, in commands rather than app pages,
with the exit code README's "Headless use" documents; settings files with mistakes never replace good
settings; `--db` counts wherever it is written; and the disk's own problems are named as such."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from rf_desktop.cli import build_parser
from rf_desktop.core.store import Store
from rf_desktop.sandbox.server import SandboxServer
from tests.e2e.helpers import admin, field_code, leads, sandbox_settings, sign_up


def _cli(
    *args: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "rf_desktop", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _tokens(sandbox: SandboxServer) -> dict[str, str]:
    return {
        "RF_DESKTOP_REFERRAL_FACTORY_TOKEN": sandbox.state.rf.token,
        "RF_DESKTOP_PIPEDRIVE_TOKEN": sandbox.state.pd.token,
    }


def _settings_file(path: Path, data: dict[str, object]) -> str:
    path.write_text(json.dumps(data))
    return str(path)


def _set_up(sandbox: SandboxServer, db: Path, **changes: object) -> None:
    with Store(db) as store:
        store.save_settings(sandbox_settings(sandbox, **changes))


def _unprivileged() -> tuple[str, ...]:
    """File permissions do not stop root: drop the capabilities that let it ignore them."""
    if os.geteuid() != 0:
        return ()
    assert shutil.which("setpriv"), "root needs setpriv (util-linux) to test a read-only folder"
    return ("setpriv", "--bounding-set=-dac_override,-dac_read_search", "--")


# --- exit codes of sync --once ---


def test_an_unreachable_referral_factory_exits_3_naming_the_setting(sandbox: SandboxServer, tmp_path: Path) -> None:
    db = tmp_path / "rf.sqlite3"
    settings = sandbox_settings(sandbox)
    settings.referral_factory.base_url = "http://127.0.0.1:9/rf/api/v2"  # the discard port: nothing listens
    with Store(db) as store:
        store.save_settings(settings)

    result = _cli("sync", "--once", "--db", str(db), env=_tokens(sandbox))

    assert result.returncode == 3, result.stderr
    output = result.stdout + result.stderr
    assert output.count("Could not connect to Referral Factory at 127.0.0.1:9") == 1, output
    assert "`referral_factory.base_url`" in result.stderr and "rf-desktop config import FILE" in result.stderr
    assert "Trying again" not in output, "--once ends: it must not promise another try"
    assert "Retrying in" not in output, "the clients' retries are not printed as more errors"
    assert "Connections" not in output, "a headless message names commands, not the app's pages"


def test_a_base_url_that_is_not_the_api_exits_3(sandbox: SandboxServer, tmp_path: Path) -> None:
    db = tmp_path / "rf.sqlite3"
    settings = sandbox_settings(sandbox)
    settings.referral_factory.base_url = sandbox.pd_base_url + "/nothing-here"
    with Store(db) as store:
        store.save_settings(settings)
    result = _cli("sync", "--once", "--db", str(db), env=_tokens(sandbox))
    assert result.returncode == 3, result.stdout + result.stderr
    assert "not like the Referral Factory API" in result.stderr


def test_the_budget_used_up_exits_1(sandbox: SandboxServer, tmp_path: Path) -> None:
    db = tmp_path / "rf.sqlite3"
    _set_up(sandbox, db)
    sign_up(sandbox, "Budget", "budget@example.com")
    admin(sandbox, "PUT", "/pd/budget", {"remaining": 0})
    result = _cli("sync", "--once", "--db", str(db), env=_tokens(sandbox))
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.count("daily API budget") == 1


def test_a_qualification_left_waiting_on_a_passing_error_exits_3(sandbox: SandboxServer, tmp_path: Path) -> None:
    db = tmp_path / "rf.sqlite3"
    _set_up(sandbox, db)
    sign_up(sandbox, "Waits", "waits@example.com")
    assert _cli("sync", "--once", "--db", str(db), env=_tokens(sandbox)).returncode == 0
    admin(sandbox, "POST", f"/pd/leads/{leads(sandbox)[0]['id']}/convert", {})
    admin(sandbox, "PUT", "/faults/rf", {"rate_5xx": 1.0, "after_commit_share": 0, "only_paths": ["/qualification"]})

    result = _cli("sync", "--once", "--db", str(db), env=_tokens(sandbox))

    assert result.returncode == 3, result.stdout + result.stderr
    assert "0 qualified, 0 qualifications failed, 1 qualifications to retry" in result.stdout
    assert "1 referral is still waiting on a passing error" in result.stderr
    assert "rf-desktop sync --once` again later" in result.stderr


def test_the_summary_counts_a_refused_qualification_and_this_runs_budget(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    db = tmp_path / "rf.sqlite3"
    _set_up(sandbox, db)
    user = sign_up(sandbox, "Gone", "gone@example.com")
    first = _cli("sync", "--once", "--db", str(db), env=_tokens(sandbox))
    assert first.returncode == 0, first.stderr
    used = int(first.stdout.split("API budget used this run: ")[1].split(" ")[0])
    assert f"API budget used this run: {used} (today {used} of " in first.stdout
    # the user is deleted in Referral Factory, then the lead converts: the qualification is refused
    httpx.delete(
        f"{sandbox.rf_base_url}/users/{user['id']}", headers={"Authorization": f"Bearer {sandbox.state.rf.token}"}
    ).raise_for_status()
    admin(sandbox, "POST", f"/pd/leads/{leads(sandbox)[0]['id']}/convert", {})

    second = _cli("sync", "--once", "--db", str(db), env=_tokens(sandbox))

    assert second.returncode == 0, second.stderr
    assert "0 qualified, 1 qualifications failed" in second.stdout
    spent = int(second.stdout.split("API budget used this run: ")[1].split(" ")[0])
    assert spent > 0 and f"(today {used + spent} of " in second.stdout, second.stdout
    assert "tokens used" not in second.stdout


def test_a_wrong_token_is_printed_once_with_the_command_that_fixes_it(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    db = tmp_path / "rf.sqlite3"
    _set_up(sandbox, db)
    result = _cli("sync", "--once", "--db", str(db), env={**_tokens(sandbox), "RF_DESKTOP_PIPEDRIVE_TOKEN": "nope"})
    assert result.returncode == 2
    output = result.stdout + result.stderr
    assert output.count("Pipedrive did not accept the API token") == 1, output
    assert "rf-desktop config set-token pipedrive" in result.stderr and "Connections" not in output


def test_set_token_without_a_keychain_says_its_sentence_once(tmp_path: Path) -> None:
    env = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}  # keyring's "no keychain here"
    result = subprocess.run(
        [sys.executable, "-m", "rf_desktop", "config", "set-token", "pipedrive"],
        input="a-token\n", env={**os.environ, **env}, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.count("No system keychain was found.") == 1
    assert result.stderr.count("Install and unlock") == 1, result.stderr
    assert "RF_DESKTOP_REFERRAL_FACTORY_TOKEN and RF_DESKTOP_PIPEDRIVE_TOKEN" in result.stderr


# --- config import and check ---


def test_import_refuses_misspelled_and_misplaced_keys_and_keeps_the_settings(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    db = tmp_path / "rf.sqlite3"
    _set_up(sandbox, db)
    before = _cli("config", "--db", str(db), "show").stdout
    data = sandbox_settings(sandbox).to_json()
    data["referral_factory"]["base_urll"] = "https://example.com"
    data["pipedrive"]["pipeline_id"] = 1

    result = _cli("config", "--db", str(db), "import", _settings_file(tmp_path / "typo.json", data))

    assert result.returncode == 2
    assert "referral_factory.base_urll (did you mean referral_factory.base_url?)" in result.stderr
    assert "pipedrive.pipeline_id (did you mean pipeline_id?" in result.stderr
    assert "settings are unchanged" in result.stderr and "Settings imported" not in result.stdout
    assert _cli("config", "--db", str(db), "show").stdout == before


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"sync": {"poll_seconds": 1}}, "sync.poll_seconds"),
        ({"sync": {"poll_seconds": "10"}}, "settings.sync.poll_seconds must be a whole number"),
        ({"mode": "opportunity"}, "settings.mode must be one of 'lead', 'deal'"),
        ({"defaults": {"currency": "euro"}}, "defaults.currency"),
    ],
)
def test_import_refuses_wrong_types_and_values_out_of_range(
    sandbox: SandboxServer, tmp_path: Path, change: dict[str, object], named: str
) -> None:
    db = tmp_path / "rf.sqlite3"
    _set_up(sandbox, db)
    data = sandbox_settings(sandbox).to_json()
    for key, value in change.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    result = _cli("config", "--db", str(db), "import", _settings_file(tmp_path / "bad.json", data), "--partial")
    assert result.returncode == 2
    assert named in result.stderr
    with Store(db) as store:
        assert store.get_settings() == sandbox_settings(sandbox), "the working settings were kept"


def test_incomplete_settings_need_partial(tmp_path: Path) -> None:
    db = str(tmp_path / "rf.sqlite3")
    source = _settings_file(tmp_path / "start.json", {"mode": "lead", "sync": {"poll_seconds": 30}})

    refused = _cli("config", "--db", db, "import", source)
    assert refused.returncode == 2
    assert "Choose at least one Referral Factory campaign" in refused.stderr and "--partial" in refused.stderr
    assert "not set up yet" in _cli("config", "--db", db, "show").stderr

    accepted = _cli("config", "--db", db, "import", source, "--partial")
    assert accepted.returncode == 0, accepted.stderr
    assert json.loads(_cli("config", "--db", db, "show").stdout)["sync"]["poll_seconds"] == 30


def test_sync_with_a_bad_settings_file_keeps_the_stored_settings(sandbox: SandboxServer, tmp_path: Path) -> None:
    db = tmp_path / "rf.sqlite3"
    _set_up(sandbox, db)
    bad = _settings_file(tmp_path / "bad.json", {**sandbox_settings(sandbox).to_json(), "titel": "x"})
    result = _cli("sync", "--once", "--db", str(db), "--config", bad, env=_tokens(sandbox))
    assert result.returncode == 2 and "titel (did you mean title?)" in result.stderr
    with Store(db) as store:
        assert store.get_settings() == sandbox_settings(sandbox)


def test_check_online_finds_a_campaign_and_a_field_that_do_not_exist(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    db = tmp_path / "rf.sqlite3"
    settings = sandbox_settings(sandbox)
    settings.referral_factory.campaign_ids = [99]
    with Store(db) as store:
        store.save_settings(settings)
    admin(sandbox, "DELETE", f"/pd/fields/deal/{field_code(sandbox, 'deal', 'Referral Link')}")

    offline = _cli("config", "--db", str(db), "check")
    online = _cli("config", "--db", str(db), "check", "--online", env=_tokens(sandbox))

    assert offline.returncode == 0 and "config check --online" in offline.stdout
    assert online.returncode == 2, online.stdout + online.stderr
    assert "Referral Factory has no campaign 99" in online.stdout and "1 (Spring Referral Campaign)" in online.stdout
    assert "'Referral Link' was deleted" in online.stdout


def test_check_online_confirms_what_exists(sandbox: SandboxServer, tmp_path: Path) -> None:
    db = tmp_path / "rf.sqlite3"
    _set_up(sandbox, db)
    result = _cli("config", "--db", str(db), "check", "--online", env=_tokens(sandbox))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "campaigns, pipelines, stages and fields they name exist" in result.stdout


# --- one --db ---


@pytest.mark.parametrize(
    "argv",
    [
        ["--db", "X", "config", "import", "f.json"],
        ["config", "--db", "X", "import", "f.json"],
        ["config", "import", "--db", "X", "f.json"],
        ["--db", "X", "sync", "--once"],
        ["sync", "--db", "X"],
        ["--db", "X", "export-log", "-o", "out.csv"],
        ["--db", "X", "doctor"],
    ],
)
def test_db_counts_wherever_it_is_written(argv: list[str]) -> None:
    assert build_parser().parse_args(argv).db == Path("X")


def test_config_import_after_a_leading_db_writes_that_database(sandbox: SandboxServer, tmp_path: Path) -> None:
    db = tmp_path / "chosen.sqlite3"
    source = _settings_file(tmp_path / "s.json", sandbox_settings(sandbox).to_json())
    data_dir = tmp_path / "default-data"
    result = _cli("--db", str(db), "config", "import", source, env={"RF_DESKTOP_DATA_DIR": str(data_dir)})
    assert result.returncode == 0, result.stderr
    with Store(db) as store:
        assert store.get_settings() == sandbox_settings(sandbox)
    assert not (data_dir / "rf-desktop.sqlite3").exists()


# --- the disk and the database ---


def test_a_read_only_data_folder_is_not_called_damaged(sandbox: SandboxServer, tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    _set_up(sandbox, folder / "rf.sqlite3")
    folder.chmod(0o555)
    try:
        db = str(folder / "rf.sqlite3")
        result = _cli("--db", db, "sync", "--once", env=_tokens(sandbox), prefix=_unprivileged())
    finally:
        folder.chmod(0o755)
    assert result.returncode == 4, result.stderr
    assert f"may not write to the folder {folder}" in result.stderr and "chmod u+w" in result.stderr
    assert "damaged" not in result.stderr and "Traceback" not in result.stderr


def test_a_data_folder_that_cannot_be_created_exits_5(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    result = _cli("config", "show", env={"RF_DESKTOP_DATA_DIR": str(tmp_path / "a-file" / "rf-desktop")})
    assert result.returncode == 5
    assert "Could not create the folder" in result.stderr and "Traceback" not in result.stderr


def test_a_full_disk_exits_6_and_leaves_the_device_alone(sandbox: SandboxServer, tmp_path: Path) -> None:
    db = tmp_path / "rf.sqlite3"
    _set_up(sandbox, db)
    with Store(db) as store:
        store.log("info", "note", "a row to export")
    result = _cli("export-log", "--db", str(db), "-o", "/dev/full")
    assert result.returncode == 6, result.stdout + result.stderr
    assert "No space is left" in result.stderr and "Traceback" not in result.stderr
    assert Path("/dev/full").is_char_device(), "a device given as the output is written to, never replaced"


@pytest.mark.parametrize(
    ("command", "what"),
    [
        (("export-log", "-o"), "write the CSV file"),
        (("config", "export"), "write"),
        (("doctor", "-o"), "save the report to"),
    ],
    ids=["export-log", "config-export", "doctor"],
)
def test_a_file_that_cannot_be_written_is_one_message_and_exit_2(
    sandbox: SandboxServer, tmp_path: Path, command: tuple[str, ...], what: str
) -> None:
    db = tmp_path / "rf.sqlite3"
    _set_up(sandbox, db)
    target = tmp_path / "no-such-folder" / "out.txt"
    keychainless = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}

    result = _cli("--db", str(db), *command, str(target), env=keychainless)

    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr == f"rf-desktop: Could not {what} {target}: No such file or directory.\n"


def test_a_damaged_database_exits_7_and_names_the_copy(sandbox: SandboxServer, tmp_path: Path) -> None:
    db = tmp_path / "rf.sqlite3"
    _set_up(sandbox, db)
    with Store(db) as store:
        for i in range(400):
            store.log("info", "note", f"row {i} " + "x" * 200)
    Store(db).close()  # the daily copy
    last_page = db.stat().st_size // 4096 - 1
    with db.open("r+b") as file:
        file.seek(last_page * 4096 + 8)
        file.write(b"\xff\xf0" * 12)

    result = _cli("config", "--db", str(db), "show")

    assert result.returncode == 7, result.stderr
    assert "is damaged" in result.stderr and f"{db}.bak" in result.stderr


# --- doctor ---


def test_doctor_prints_and_saves_a_redacted_report(sandbox: SandboxServer, tmp_path: Path) -> None:
    db = tmp_path / "rf.sqlite3"
    _set_up(sandbox, db)
    saved = tmp_path / "report.txt"

    result = _cli("--db", str(db), "doctor", "-o", str(saved), env=_tokens(sandbox))

    assert result.returncode == 0, result.stdout + result.stderr
    report = saved.read_text(encoding="utf-8")
    assert result.stdout.startswith(report) and "Report saved to" in result.stdout
    assert "Referral Code field on deals" in report and "0 problems found." in report
    assert sandbox.state.rf.token not in report and sandbox.state.pd.token not in report


def test_doctor_exits_2_when_it_finds_a_problem(sandbox: SandboxServer, tmp_path: Path) -> None:
    db = tmp_path / "rf.sqlite3"
    _set_up(sandbox, db)
    result = _cli("--db", str(db), "doctor", env={**_tokens(sandbox), "RF_DESKTOP_PIPEDRIVE_TOKEN": "wrong"})
    assert result.returncode == 2
    assert "problem  connection: Pipedrive did not accept the API token" in result.stdout
    assert "rf-desktop config set-token pipedrive" in result.stdout and "Connections" not in result.stdout


def test_doctor_creates_no_database(tmp_path: Path) -> None:
    db = tmp_path / "none-yet.sqlite3"
    keychainless = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    result = _cli("--db", str(db), "doctor", env=keychainless)
    assert result.returncode == 2 and "none stored yet" in result.stdout
    assert not db.exists()
