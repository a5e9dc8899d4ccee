"""The `rf-desktop` command.

`rf-desktop` opens the desktop app (the demo when no accounts are configured); the subcommands run
headless and never load Qt, so they work on servers and in CI.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from rf_desktop import __version__


def _db_option() -> argparse.ArgumentParser:
    """`--db` for every command that opens the store. SUPPRESS keeps a subcommand that was not given
    `--db` from overwriting one given before it (`rf-desktop --db X sync`), so it counts wherever written."""
    option = argparse.ArgumentParser(add_help=False)
    option.add_argument(
        "--db", type=Path, default=argparse.SUPPRESS, help="SQLite store (default: in the user data directory)"
    )
    return option


def build_parser() -> argparse.ArgumentParser:
    db = _db_option()
    parser = argparse.ArgumentParser(
        prog="rf-desktop",
        description="Send people invited through Referral Factory to Pipedrive, and qualify them when they convert.",
        epilog="Exit codes: 0 done; 1 the Pipedrive budget is used up; 2 settings, token or keychain; 3 a service "
        "could not be reached, or referrals still wait on passing errors; 4 the database or its folder is "
        "read-only; 5 the data folder cannot be created; 6 the disk is full; 7 the database is damaged.",
    )
    parser.add_argument("--version", action="version", version=f"rf-desktop {__version__}")
    parser.add_argument("--demo", action="store_true", help="open the app against the built-in sandbox")
    parser.add_argument("--db", type=Path, help="SQLite store to use (default: in the user data directory)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    sync = sub.add_parser("sync", parents=[db], help="run the sync headless (no window)")
    sync.add_argument("--once", action="store_true", help="process everything available, then exit")
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

    export = sub.add_parser("export-log", parents=[db], help="write the sync log to a CSV file")
    export.add_argument("-o", "--output", type=Path, required=True, help="CSV file to write ('-' for stdout)")
    export.add_argument("--level", choices=["info", "warning", "error"], help="only rows at this level or above")

    config = sub.add_parser(
        "config", parents=[db], help="show, check, import or export the settings, or store a token"
    )
    config_sub = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    config_sub.add_parser("show", parents=[db], help="print the settings as JSON (tokens are never included)")
    check = config_sub.add_parser("check", parents=[db], help="validate the settings and say what is missing")
    check.add_argument(
        "--online", action="store_true", help="also check that the campaigns, pipelines, stages and fields exist"
    )
    cexport = config_sub.add_parser("export", parents=[db], help="write the settings to a JSON file")
    cexport.add_argument("file", type=Path)
    cimport = config_sub.add_parser(
        "import", parents=[db], help="read the settings from a JSON file (refused unless complete and valid)"
    )
    cimport.add_argument("file", type=Path)
    cimport.add_argument(
        "--partial", action="store_true", help="accept settings that are valid but not complete yet"
    )
    token = config_sub.add_parser(
        "set-token", help="store a token in the keychain, read from standard input (never from the command line)"
    )
    token.add_argument("service", choices=["referral-factory", "pipedrive"])
    forget = config_sub.add_parser("forget-token", help="remove a token from the keychain")
    forget.add_argument("service", choices=["referral-factory", "pipedrive"])

    doctor = sub.add_parser(
        "doctor", parents=[db], help="check both accounts read-only and print a redacted report for support"
    )
    doctor.add_argument("-o", "--output", type=Path, help="also save the report to this file")
    sub.add_parser(
        "diagnose", help="print what this installation runs on (CA bundle, keychain backend, data folder) as JSON"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in ("sync", "export-log", "config", "doctor"):
        # the sync log already says what happened; the clients' own "retrying" warnings would say it twice
        logging.basicConfig(level=logging.ERROR, format="rf-desktop: %(message)s")
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
    if args.command == "doctor":
        from rf_desktop.core.headless import run_doctor

        return run_doctor(args)
    from rf_desktop.gui.app import run_gui

    return run_gui(demo=args.demo, db_path=args.db)


if __name__ == "__main__":
    sys.exit(main())
