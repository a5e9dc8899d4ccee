"""The headless commands: `rf-desktop sync`, `export-log`, `config` and `doctor`. No Qt is loaded here.

Each problem is printed once, on standard error, in words that name the command to run (not a page of the
app), and the exit code says what kind of problem it was (README, "Headless use"):

0 everything due was done; 1 the Pipedrive budget is used up; 2 settings, token or keychain; 3 a service
could not be reached, or referrals are still waiting on passing errors; 4 the database or its folder is
read-only; 5 the data folder cannot be created; 6 the disk is full; 7 the database is damaged.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import getpass
import json
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from rf_desktop.core import http
from rf_desktop.core.account import Account, refusals
from rf_desktop.core.config import ConfigError, Issue, Settings, check_campaigns, validate
from rf_desktop.core.connections import load_schema, pipedrive_client, referral_factory_client
from rf_desktop.core.doctor import examine
from rf_desktop.core.engine import SyncEngine
from rf_desktop.core.events import AUTH_ERROR, BUDGET_EXHAUSTED, ERROR, NOT_CONFIGURED, Event, LogAdded
from rf_desktop.core.export import export_log_csv
from rf_desktop.core.http import ApiError, AuthError, BudgetExhaustedError, ConnectionFailedError, TransientError
from rf_desktop.core.instance_lock import AlreadySyncingError, InstanceLock
from rf_desktop.core.secrets import ENV_VARS, PD_TOKEN, RF_TOKEN, TOKEN_NAMES, SecretsError, TokenStore
from rf_desktop.core.store import Store
from rf_desktop.core.store_errors import (
    DamagedDatabaseError,
    DiskFullError,
    FolderNotCreatedError,
    ReadOnlyDatabaseError,
    StoreError,
)
from rf_desktop.paths import default_db_path

EXIT_OK = 0
EXIT_BUDGET = 1
EXIT_CONFIG = 2
EXIT_UNREACHABLE = 3
EXIT_READ_ONLY = 4
EXIT_NO_FOLDER = 5
EXIT_DISK_FULL = 6
EXIT_DAMAGED = 7

_STORE_EXITS: tuple[tuple[type[StoreError], int], ...] = (
    (ReadOnlyDatabaseError, EXIT_READ_ONLY),
    (FolderNotCreatedError, EXIT_NO_FOLDER),
    (DiskFullError, EXIT_DISK_FULL),
    (DamagedDatabaseError, EXIT_DAMAGED),
)
# the keychain names and settings that belong to each service, for messages that say what to run
_TOKEN_NAMES = {http.REFERRAL_FACTORY: RF_TOKEN, http.PIPEDRIVE: PD_TOKEN}
_ADDRESS_SETTINGS = {http.REFERRAL_FACTORY: "referral_factory.base_url", http.PIPEDRIVE: "pipedrive.base_url"}

NOT_SET_UP = "rf-desktop is not set up yet. Open the app, or import settings with `rf-desktop config import FILE`."


def _err(message: str) -> None:
    print(f"rf-desktop: {message}", file=sys.stderr, flush=True)


def set_token_hint(name: str) -> str:
    return (
        f"Store it with `rf-desktop config set-token {name}` (it reads the token from standard input), "
        f"or set {ENV_VARS[name]}."
    )


def cli_hint(error: ApiError, *, once: bool = False) -> str:
    """What to do about an error that stops the sync, in commands rather than the app's pages."""
    if isinstance(error, AuthError):
        name = _TOKEN_NAMES.get(error.service, PD_TOKEN)
        admin = " It must be an API key of an administrator of the account." if error.status == 403 else ""
        return f"{admin} {set_token_hint(name)}".strip()
    if isinstance(error, ConnectionFailedError):
        setting = _ADDRESS_SETTINGS.get(error.service, "the base_url")
        return (
            f"Check the internet connection, and the address in `{setting}` (`rf-desktop config show`; "
            "change it with `rf-desktop config import FILE`)."
        )
    if isinstance(error, TransientError) and once:
        return "Run `rf-desktop sync --once` again later."
    return error.hint


def _exit_for_api_error(error: ApiError) -> int:
    if isinstance(error, BudgetExhaustedError):
        return EXIT_BUDGET
    return EXIT_CONFIG if isinstance(error, AuthError) else EXIT_UNREACHABLE


class _NotWrittenError(Exception):
    """A file the owner named could not be written, for another reason than a full disk."""


@contextlib.contextmanager
def _writing(what: str) -> Iterator[None]:
    """Around writing a file the owner named: a full disk goes on to `_guarded`, as everywhere else; any
    other failure becomes one message, "Could not {what}: why.", and the settings exit code."""
    try:
        yield
    except OSError as error:
        if error.errno == errno.ENOSPC:
            raise
        raise _NotWrittenError(f"Could not {what}: {error.strerror or error}.") from None


def _guarded(command: Callable[[], int]) -> int:
    """Run a command; a settings, keychain, database or disk problem is one clear message and its code."""
    try:
        return command()
    except (ConfigError, SecretsError, AlreadySyncingError, _NotWrittenError) as error:
        _err(str(error))
        return EXIT_CONFIG
    except StoreError as error:
        _err(str(error))
        return next((code for kind, code in _STORE_EXITS if isinstance(error, kind)), EXIT_CONFIG)
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
        where = f" for {error.filename}" if error.filename else ""
        _err(f"No space is left on the disk{where}. Free some space, then run the command again.")
        return EXIT_DISK_FULL


def _with_store(db: Path | None, command: Callable[[Store], int]) -> int:
    """Open the store, run `command` on it, close it."""

    def run() -> int:
        with Store(db or default_db_path()) as store:
            return command(store)

    return _guarded(run)


def _token_source() -> TokenStore:
    return TokenStore()


# --- settings files ---


def _read_settings_file(path: Path) -> Settings:
    """The settings in a JSON file the owner wrote or exported; unknown keys and wrong types are refused."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"Cannot read the settings file {path}: {error}") from None
    return Settings.from_json(data, strict=True)


def _print_issues(issues: list[Issue]) -> None:
    for issue in issues:
        _err(f"{issue.path}: {issue.message}")


def _load_file_into(account: Account, path: Path, *, partial: bool) -> bool:
    """Save the settings in `path`, or print why not; a file with problems never replaces the settings."""
    try:
        settings = _read_settings_file(path)
    except ConfigError as error:
        _err(f"{error} Nothing was imported; the settings are unchanged.")
        return False
    refused = refusals(account.save(settings, partial=partial, from_file=True), partial=partial)
    if refused:
        _print_issues(refused)
        if not partial and all(i.missing for i in refused):
            advice = "Complete the file, or import it with `--partial` and finish the settings in the app."
        else:
            advice = "Correct the file."
        _err(f"Nothing was imported from {path}; the settings are unchanged. {advice}")
        return False
    return True


# --- sync ---


def _print_event(event: Event) -> None:
    if isinstance(event, LogAdded):
        row = event.row
        who = f" [{row.rf_user_id}]" if row.rf_user_id else ""
        stream = sys.stderr if row.level == "error" else sys.stdout
        print(f"{row.time} {row.level.upper():7} {row.action}{who}: {row.message}", file=stream, flush=True)


def _missing_tokens(tokens: TokenStore) -> list[str]:
    return [name for name in TOKEN_NAMES if not tokens.get(name)]


async def _sync(account: Account, once: bool) -> int:
    engine = SyncEngine(account, hint=lambda error: cli_hint(error, once=once))
    engine.subscribe(_print_event)
    if once:
        summary = await engine.run_once()
        print(f"Summary: {summary.line()}", flush=True)
        return _exit_after_once(engine.state, account.store)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Windows has no signal handlers here: Ctrl+C still raises KeyboardInterrupt
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, engine.stop)
    await engine.run()
    print("Stopped.", flush=True)
    return EXIT_OK


def _exit_after_once(state: str, store: Store) -> int:
    """The engine has already printed why it stopped; the code says what kind of stop it was."""
    if state == BUDGET_EXHAUSTED:
        return EXIT_BUDGET
    if state in (AUTH_ERROR, NOT_CONFIGURED):
        return EXIT_CONFIG
    if state == ERROR:
        return EXIT_UNREACHABLE
    unfinished = store.count_unfinished()
    if unfinished:
        retry = store.next_retry_at()
        when = f" (the next try is due at {retry:%H:%M:%S} UTC)" if retry else ""
        noun = "referral is" if unfinished == 1 else "referrals are"
        _err(
            f"{unfinished} {noun} still waiting on a passing error{when}. Run `rf-desktop sync --once` again "
            "later, or keep `rf-desktop sync` running."
        )
        return EXIT_UNREACHABLE
    return EXIT_OK


def run_sync(args: argparse.Namespace) -> int:
    def sync(store: Store) -> int:
        tokens = _token_source()
        # the account reads each token once per process: a keychain may prompt, and the engine asks every cycle
        account = Account(store, tokens)
        try:
            if args.config and not _load_file_into(account, args.config, partial=False):
                return EXIT_CONFIG
            settings = account.saved_settings()
            if settings is None:
                _err(NOT_SET_UP)
                return EXIT_CONFIG
            problems = refusals(validate(settings))
            if problems:
                _print_issues(problems)
                _err("Fix the settings in the app, or with `rf-desktop config import FILE`.")
                return EXIT_CONFIG
            missing = _missing_tokens(tokens)
            for name in missing:
                _err(f"The {name} token is missing. {set_token_hint(name)}")
            if missing:
                return EXIT_CONFIG
            with InstanceLock(store.path):
                return asyncio.run(_sync(account, args.once))
        except KeyboardInterrupt:
            return EXIT_OK

    return _with_store(args.db, sync)


# --- export-log ---


def run_export_log(args: argparse.Namespace) -> int:
    def export(store: Store) -> int:
        if str(args.output) == "-":
            export_log_csv(store, sys.stdout, level=args.level)
            return EXIT_OK
        if args.output.exists() and not args.output.is_file():
            # a pipe or a device: write into it, never replace it with a file
            with args.output.open("w", encoding="utf-8", newline="") as stream:
                count = export_log_csv(store, stream, level=args.level)
            print(f"Wrote {count} log rows to {args.output}")
            return EXIT_OK
        with _writing(f"write the CSV file {args.output}"):
            count = export_log_csv(store, args.output, level=args.level)
        print(f"Wrote {count} log rows to {args.output}")
        return EXIT_OK

    return _with_store(args.db, export)


# --- config ---


def run_config(args: argparse.Namespace) -> int:
    command = args.config_command
    if command in ("set-token", "forget-token"):
        return _token_command(command, args.service)

    def configure(store: Store) -> int:
        if command == "import":
            if not _load_file_into(Account(store, _token_source()), args.file, partial=args.partial):
                return EXIT_CONFIG
            print(f"Settings imported from {args.file}.")
            return EXIT_OK
        settings = store.get_settings()
        if settings is None:
            _err(NOT_SET_UP)
            return EXIT_CONFIG
        if command == "check":
            return _check(settings, online=args.online)
        text = json.dumps(settings.to_json(), indent=2, sort_keys=True)
        if command == "show":
            print(text)
            return EXIT_OK
        with _writing(f"write {args.file}"):
            args.file.write_text(text + "\n", encoding="utf-8")
        print(f"Settings written to {args.file} (tokens are never included).")
        return EXIT_OK

    return _with_store(args.db, configure)


def _check(settings: Settings, *, online: bool) -> int:
    if online:
        try:
            issues = asyncio.run(_online_issues(settings, _token_source()))
        except ApiError as error:
            _err(f"{error.message} {cli_hint(error)}".strip())
            return _exit_for_api_error(error)
    else:
        issues = validate(settings)
    for issue in issues:
        print(f"{issue.severity}: {issue.path}: {issue.message}")
    if any(i.severity == "error" for i in issues):
        return EXIT_CONFIG
    if online:
        print("The settings are complete, and the campaigns, pipelines, stages and fields they name exist.")
    else:
        print(
            "The settings are complete. `rf-desktop config check --online` also checks that the campaigns, "
            "pipelines, stages and fields they name exist."
        )
    return EXIT_OK


async def _online_issues(settings: Settings, tokens: TokenStore) -> list[Issue]:
    """The settings checked against both accounts: campaigns, pipelines, stages, fields, owner, labels."""
    missing = _missing_tokens(tokens)
    if missing:
        return [Issue(f"{name} token", f"The token is missing. {set_token_hint(name)}") for name in missing]
    rf_token, pd_token = tokens.get(RF_TOKEN) or "", tokens.get(PD_TOKEN) or ""
    async with referral_factory_client(settings, rf_token) as rf:
        campaigns = await rf.list_campaigns()
    async with pipedrive_client(settings, pd_token) as pd:
        schema = await load_schema(pd)
    return check_campaigns(settings, campaigns) + validate(settings, schema)


def _token_command(command: str, service: str) -> int:
    return _guarded(lambda: _token_action(command, service))


def _token_action(command: str, service: str) -> int:
    tokens = _token_source()
    if command == "forget-token":
        tokens.delete(service)
        print(f"The {service} token was removed from the keychain.")
        return EXIT_OK
    token = getpass.getpass(f"{service} token: ") if sys.stdin.isatty() else sys.stdin.readline()
    token = token.strip()
    if not token:
        _err(f"No token given. Pipe it in, for example: printf '%s' \"$TOKEN\" | rf-desktop config set-token {service}")
        return EXIT_CONFIG
    tokens.set(service, token)
    print(f"The {service} token is stored in the keychain ({tokens.backend_description()}).")
    return EXIT_OK


# --- doctor ---


def run_doctor(args: argparse.Namespace) -> int:
    """Print the doctor's report (and save it with `-o`); exit 0 when it found no problem, 2 otherwise."""

    def doctor() -> int:
        path = args.db or default_db_path()
        settings = None
        if Path(path).exists():  # a look at the accounts must not create a database as a side effect
            with Store(path) as store:
                settings = store.get_settings()
        report = asyncio.run(examine(settings, _token_source(), hint=cli_hint))
        text = report.text()
        print(text, end="")
        if args.output:
            with _writing(f"save the report to {args.output}"):
                args.output.write_text(text, encoding="utf-8")
            print(f"Report saved to {args.output}; it holds no tokens or personal data.")
        return EXIT_CONFIG if report.problems else EXIT_OK

    return _guarded(doctor)
