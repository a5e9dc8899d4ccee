"""The headless commands: `rf-desktop sync`, `export-log` and `config`. No Qt is loaded here."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from rf_desktop.core.account import Account
from rf_desktop.core.config import ConfigError, Settings, validate
from rf_desktop.core.engine import SyncEngine
from rf_desktop.core.events import Event, LogAdded, StateChanged
from rf_desktop.core.export import export_log_csv
from rf_desktop.core.instance_lock import AlreadySyncingError, InstanceLock
from rf_desktop.core.secrets import SecretsError, TokenStore
from rf_desktop.core.store import Store, StoreError
from rf_desktop.paths import default_db_path

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_CONFIG = 2


def _err(message: str) -> None:
    print(f"rf-desktop: {message}", file=sys.stderr)


def _open_store(db: Path | None) -> Store:
    return Store(db or default_db_path())


def _read_settings_file(path: Path) -> Settings:
    try:
        return Settings.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as error:
        raise ConfigError(f"Cannot read the settings file {path}: {error}") from None


def _token_source() -> TokenStore:
    return TokenStore()


def _print_event(event: Event) -> None:
    if isinstance(event, LogAdded):
        row = event.row
        who = f" [{row.rf_user_id}]" if row.rf_user_id else ""
        print(f"{row.time} {row.level.upper():7} {row.action}{who}: {row.message}", flush=True)
    elif isinstance(event, StateChanged) and event.state in (
        "auth_error",
        "not_configured",
        "budget_exhausted",
    ):
        print(f"{event.state}: {event.message}", file=sys.stderr, flush=True)


async def _sync(store: Store, once: bool) -> int:
    # the account reads each token once per process: a keychain may prompt, and the engine asks every cycle
    engine = SyncEngine(Account(store, _token_source()))
    engine.subscribe(_print_event)
    if once:
        summary = await engine.run_once()
        print(f"Summary: {summary.line()}", flush=True)
        if engine.state in ("auth_error", "not_configured"):
            return EXIT_CONFIG
        return EXIT_PROBLEM if engine.state == "budget_exhausted" else EXIT_OK
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Windows has no signal handlers here: Ctrl+C still raises KeyboardInterrupt
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, engine.stop)
    await engine.run()
    print("Stopped.", flush=True)
    return EXIT_OK


def _with_store(db: Path | None, command: Callable[[Store], int]) -> int:
    """Open the store, run `command` on it, close it; a store that cannot be opened is a clear message."""
    try:
        store = _open_store(db)
    except StoreError as error:
        _err(str(error))
        return EXIT_CONFIG
    try:
        return command(store)
    finally:
        store.close()


NOT_SET_UP = "rf-desktop is not set up yet. Open the app, or import settings with `rf-desktop config import FILE`."


def run_sync(args: argparse.Namespace) -> int:
    def sync(store: Store) -> int:
        try:
            if args.config:
                store.save_settings(_read_settings_file(args.config))
            settings = store.get_settings()
            if settings is None:
                _err(NOT_SET_UP)
                return EXIT_CONFIG
            problems = [i for i in validate(settings) if i.severity == "error"]
            for issue in problems:
                _err(f"{issue.path}: {issue.message}")
            if problems:
                return EXIT_CONFIG
            with InstanceLock(store.path):
                return asyncio.run(_sync(store, args.once))
        except (ConfigError, SecretsError, AlreadySyncingError) as error:
            _err(str(error))
            return EXIT_CONFIG
        except KeyboardInterrupt:
            return EXIT_OK

    return _with_store(args.db, sync)


def run_export_log(args: argparse.Namespace) -> int:
    def export(store: Store) -> int:
        try:
            if str(args.output) == "-":
                export_log_csv(store, sys.stdout, level=args.level)
            else:
                count = export_log_csv(store, args.output, level=args.level)
                print(f"Wrote {count} log rows to {args.output}")
            return EXIT_OK
        except OSError as error:
            _err(f"Could not write the CSV file: {error}")
            return EXIT_PROBLEM

    return _with_store(args.db, export)


def run_config(args: argparse.Namespace) -> int:
    command = args.config_command
    if command in ("set-token", "forget-token"):
        return _token_command(command, args.service)

    def configure(store: Store) -> int:
        try:
            if command == "import":
                store.save_settings(_read_settings_file(args.file))
                print(f"Settings imported from {args.file}.")
                return EXIT_OK
            settings = store.get_settings()
            if settings is None:
                _err(NOT_SET_UP)
                return EXIT_CONFIG
            return _show_or_check(command, settings, args)
        except (ConfigError, OSError) as error:
            _err(str(error))
            return EXIT_CONFIG

    return _with_store(args.db, configure)


def _show_or_check(command: str, settings: Settings, args: argparse.Namespace) -> int:
    text = json.dumps(settings.to_json(), indent=2, sort_keys=True)
    if command == "show":
        print(text)
    elif command == "export":
        args.file.write_text(text + "\n", encoding="utf-8")
        print(f"Settings written to {args.file} (tokens are never included).")
    elif command == "check":
        issues = validate(settings)
        for issue in issues:
            print(f"{issue.severity}: {issue.path}: {issue.message}")
        if any(i.severity == "error" for i in issues):
            return EXIT_CONFIG
        print("The settings are complete.")
    return EXIT_OK


def _token_command(command: str, service: str) -> int:
    tokens = _token_source()
    try:
        if command == "forget-token":
            tokens.delete(service)
            print(f"The {service} token was removed from the keychain.")
            return EXIT_OK
        token = getpass.getpass(f"{service} token: ") if sys.stdin.isatty() else sys.stdin.readline()
        token = token.strip()
        if not token:
            _err("No token given.")
            return EXIT_CONFIG
        tokens.set(service, token)
        print(f"The {service} token is stored in the keychain ({tokens.backend_description()}).")
        return EXIT_OK
    except SecretsError as error:
        _err(f"{error} {error.hint}".strip())
        return EXIT_CONFIG
