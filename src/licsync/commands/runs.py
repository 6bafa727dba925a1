"""`licsync runs`: the runs the state store remembers (`runs`), one run in full (`runs show`),
and putting back what one run changed (`runs undo`)."""

from __future__ import annotations

import argparse
import asyncio
from functools import partial
from pathlib import Path
from typing import Any

from licsync.commands.common import (
    add_allow_removals,
    add_report_arguments,
    configure_logging,
    counted,
    load_config,
)
from licsync.commands.records import ROW_FORMATS, open_records, show_rows
from licsync.connector.undo import run_undo
from licsync.errors import InputError, UsageError
from licsync.exitcodes import ExitCode
from licsync.migrate.select import read_users_file, resolve_users
from licsync.reports.output import FORMATS, check_output, default_format, emit, show
from licsync.reports.records import RUN_COLUMNS, rows_data, rows_table, run_rows
from licsync.reports.run_detail import detail_bytes, draw_detail, run_detail
from licsync.store import Run, StateStore


def register(subparsers: argparse._SubParsersAction) -> None:
    runs = subparsers.add_parser(
        "runs",
        help="list recent runs (syncs, migrations, undos) with their outcome; show or undo one",
        description="List the most recent runs recorded in the state store: kind, status "
        "(running, succeeded, failed, stopped, interrupted), exit code, the phase reached, "
        "counts and, for a run that did not succeed, its error. Read-only.",
    )
    _config_argument(runs)
    runs.add_argument("--limit", type=counted(1), default=20, metavar="N", help="default 20")
    add_report_arguments(runs, ROW_FORMATS)
    runs.set_defaults(handler=run_runs)
    actions = runs.add_subparsers(dest="runs_command", metavar="ACTION")

    show_parser = actions.add_parser(
        "show",
        help="one run in full: its fields, seconds per phase, every write, its problems",
        description="Show one run: its fields and seconds per phase, every write it made "
        "(user, SKUs added and removed with their disabled plans, outcome, HTTP status, Graph "
        "request id, error) and the problems it recorded and resolved. csv and xlsx hold the "
        "writes. Read-only. Exit 3: no such run.",
    )
    _config_argument(show_parser, argparse.SUPPRESS)
    show_parser.add_argument("run_id", metavar="RUN_ID", help="a run id from `licsync runs`")
    add_report_arguments(show_parser, FORMATS)
    show_parser.set_defaults(handler=run_show)

    undo = actions.add_parser(
        "undo",
        help="put back what one run changed (licences, disabled plans, usage location, ledger)",
        description="Undo one sync or undo run (a migration: `licsync migrate rollback "
        "FILE`): every user it changed gets back the licences (SKUs and disabled plans) and "
        "usage location they had before it, and licsync's ledger with them, through the same "
        "guardrail, journal, lease and problem records as a sync. A user changed since that "
        "run (by anyone) is not touched and is reported (ChangedSinceRun) unless --force. The "
        "undo is itself a run (kind undo) and can be undone. Exit 0: all restored; 10: some "
        "users failed or were left; 6: the guardrail stopped it; 3: unknown run, a run still "
        "running, a migration, or one that changed nothing.",
    )
    _config_argument(undo, argparse.SUPPRESS)
    undo.add_argument("run_id", metavar="RUN_ID", help="a run id from `licsync runs`")
    undo.add_argument(
        "--dry-run", action="store_true", help="say what the undo would do; write nothing"
    )
    undo.add_argument(
        "--users",
        type=Path,
        metavar="FILE",
        help="undo only for these users (one UPN or object id per line)",
    )
    undo.add_argument(
        "--force",
        action="store_true",
        help="also restore users changed since that run (what changed since is overwritten)",
    )
    add_allow_removals(undo)
    add_report_arguments(undo, ROW_FORMATS)
    undo.set_defaults(handler=run_undo_command)


UNDO_COLUMNS = ("userPrincipalName", "outcome", "userId")


def _config_argument(parser: argparse.ArgumentParser, default: Any = None) -> None:
    """`--config`, before or after the action (`runs --config X show ID` or `runs show ID
    --config X`); the handlers check it was given (`config_path`)."""
    parser.add_argument(
        "--config", type=Path, default=default, metavar="FILE", help="licsync.toml: its [state]"
    )


def config_path(args: argparse.Namespace) -> Path:
    if args.config is None:
        raise UsageError("the following arguments are required: --config")
    return Path(args.config)


def find_run(store: StateStore, run_id: str) -> Run:
    """The run `run_id` names (exit 3 when the store has none)."""
    run = store.get_run(run_id.strip())
    if run is None:
        raise InputError(f"no run {run_id!r} in the state store: see `licsync runs`")
    return run


def run_runs(args: argparse.Namespace) -> int:
    def read(store: StateStore) -> list[dict[str, Any]]:
        runs = store.list_runs(args.limit)
        return run_rows(runs, store.count_writes([r.id for r in runs]))

    args.config = config_path(args)
    show_rows(args, read, RUN_COLUMNS, "Runs")
    return ExitCode.OK


def run_show(args: argparse.Namespace) -> int:
    check_output(args.format, args.output)
    with open_records(config_path(args)) as store:
        detail = run_detail(store, find_run(store, args.run_id))
    fmt = args.format or default_format(args.output)
    if fmt == "table":
        show(lambda console: draw_detail(detail, console), args.output)
    else:
        emit(detail_bytes(detail, fmt), args.output)
    return ExitCode.OK


def run_undo_command(args: argparse.Namespace) -> int:
    check_output(args.format, args.output)
    configure_logging()
    config = load_config(config_path(args))
    listed = read_users_file(args.users) if args.users else None
    result = asyncio.run(
        run_undo(
            config,
            args.run_id.strip(),
            dry_run=args.dry_run,
            users=None if listed is None else partial(resolve_users, users=listed),
            force=args.force,
            allow_removals=args.allow_removals,
        )
    )
    rows = result.rows()
    fmt = args.format or default_format(args.output)
    title = ("Undo plan" if result.dry_run else "Undo") + f" of run {result.target}"
    if fmt == "table":
        show(lambda console: console.print(rows_table(rows, UNDO_COLUMNS, title)), args.output)
    else:
        emit(rows_data(rows, UNDO_COLUMNS, fmt), args.output)
    return int(result.exit_code)
