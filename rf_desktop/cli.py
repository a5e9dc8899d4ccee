"""The `rf-desktop` command.

`rf-desktop` opens the desktop app (the demo when no accounts are configured); the subcommands run
headless and never load Qt, so they work on servers and in CI.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rf_desktop import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rf-desktop",
        description="Send people invited through Referral Factory to Pipedrive, and qualify them when they convert.",
    )
    parser.add_argument("--version", action="version", version=f"rf-desktop {__version__}")
    parser.add_argument("--demo", action="store_true", help="open the app against the built-in sandbox")
    parser.add_argument("--db", type=Path, help="SQLite store to use (default: in the user data directory)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    sync = sub.add_parser("sync", help="run the sync headless (no window)")
    sync.add_argument("--once", action="store_true", help="process everything available, then exit")
    sync.add_argument("--db", type=Path, help="SQLite store (default: in the user data directory)")
    sync.add_argument("--config", type=Path, help="settings JSON to use instead of the stored settings")

    sandbox = sub.add_parser("sandbox", help="serve the simulated Referral Factory and Pipedrive on loopback")
    sandbox.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    sandbox.add_argument("--state-dir", type=Path, help="keep the sandbox state in this directory")
    sandbox.add_argument("--demo", action="store_true", help="simulate sign-ups and a sales team working them")
    sandbox.add_argument(
        "--plan", choices=["lite", "growth", "premium", "ultimate"], default="growth", help="Pipedrive plan"
    )
    sandbox.add_argument("--seats", type=int, default=1, help="Pipedrive seats (scales the daily token budget)")
    sandbox.add_argument("--latency-ms", type=int, default=0, help="added latency on every API call")

    export = sub.add_parser("export-log", help="write the sync log to a CSV file")
    export.add_argument("--db", type=Path, help="SQLite store (default: in the user data directory)")
    export.add_argument("-o", "--output", type=Path, required=True, help="CSV file to write ('-' for stdout)")
    export.add_argument("--level", choices=["info", "warning", "error"], help="only rows at this level or above")

    config = sub.add_parser("config", help="show, check, import or export the settings, or store a token")
    config.add_argument("--db", type=Path, help="SQLite store (default: in the user data directory)")
    config_sub = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    config_sub.add_parser("show", help="print the settings as JSON (tokens are never included)")
    config_sub.add_parser("check", help="validate the settings and say what is missing")
    cexport = config_sub.add_parser("export", help="write the settings to a JSON file")
    cexport.add_argument("file", type=Path)
    cimport = config_sub.add_parser("import", help="read the settings from a JSON file")
    cimport.add_argument("file", type=Path)
    token = config_sub.add_parser(
        "set-token", help="store a token in the keychain, read from standard input (never from the command line)"
    )
    token.add_argument("service", choices=["referral-factory", "pipedrive"])
    forget = config_sub.add_parser("forget-token", help="remove a token from the keychain")
    forget.add_argument("service", choices=["referral-factory", "pipedrive"])
    sub.add_parser(
        "diagnose", help="print what this installation runs on (CA bundle, keychain backend, data folder) as JSON"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "sandbox":
        from rf_desktop.sandbox.server import run_cli as run_sandbox

        return run_sandbox(args)
    if args.command == "sync":
        from rf_desktop.core.headless import run_sync

        return run_sync(args)
    if args.command == "export-log":
        from rf_desktop.core.headless import run_export_log

        return run_export_log(args)
    if args.command == "diagnose":
        from rf_desktop.diagnose import run_diagnose

        return run_diagnose()
    if args.command == "config":
        from rf_desktop.core.headless import run_config

        return run_config(args)
    from rf_desktop.gui.app import run_gui

    return run_gui(demo=args.demo, db_path=args.db)


if __name__ == "__main__":
    sys.exit(main())
