"""`licsync problems`: the problem records the state store remembers, read-only (and the
`open_records` helper `licsync runs` shares)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from licsync.commands.common import add_config_argument, add_report_arguments, load_config
from licsync.errors import StateError
from licsync.exitcodes import ExitCode
from licsync.reports.output import check_output, default_format, emit, show
from licsync.reports.records import (
    PROBLEM_COLUMNS,
    problem_rows,
    rows_data,
    rows_table,
)
from licsync.runtime import open_state
from licsync.store import StateStore, redact_url

ROW_FORMATS = ("table", "json", "csv", "xlsx")


def register(subparsers: argparse._SubParsersAction) -> None:
    problems = subparsers.add_parser(
        "problems",
        help="list the users licsync could not license (its open problem records)",
        description="List the problem records of the state store: user, SKU, Graph's error "
        "type and message, first and last seen, attempts. Read-only. Exit 0: none open; "
        "10: some open (for monitoring); 3: bad config; 4: state store missing or unusable.",
    )
    add_config_argument(problems, "its [state]")
    problems.add_argument("--all", action="store_true", help="include resolved records")
    add_report_arguments(problems, ROW_FORMATS)
    problems.set_defaults(handler=run_problems)


def open_records(path: Path) -> StateStore:
    """The state store of the config at `path`, read-only. A store that does not exist is an
    error (exit 4): monitoring pointed at a wrong path must not read "no problems"."""
    store, settings = open_state(load_config(path), read_only=True)
    if store is None:
        raise StateError(
            f"no state store at {redact_url(settings.url)} ([state] url in {path}): "
            "check the path, or run `licsync sync` first"
        )
    return store


def show_rows(
    args: argparse.Namespace,
    read: Callable[[StateStore], list[dict[str, Any]]],
    columns: Sequence[str],
    title: str,
) -> list[dict[str, Any]]:
    """Read rows from the store and write them."""
    check_output(args.format, args.output)
    with open_records(args.config) as store:
        rows = read(store)
    fmt = args.format or default_format(args.output)
    if fmt == "table":
        show(lambda console: console.print(rows_table(rows, columns, title)), args.output)
    else:
        emit(rows_data(rows, columns, fmt), args.output)
    return rows


def run_problems(args: argparse.Namespace) -> int:
    rows = show_rows(
        args,
        lambda store: problem_rows(store.list_problems(include_resolved=args.all)),
        PROBLEM_COLUMNS,
        "Problem records" + (" (open and resolved)" if args.all else " (open)"),
    )
    return ExitCode.PROBLEMS if any(r["resolvedAt"] is None for r in rows) else ExitCode.OK
