"""`licsync sync`: apply the rules to the tenant through Graph (or, with --dry-run, report)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import orjson

from licsync.commands.common import (
    add_allow_removals,
    add_config_argument,
    add_report_arguments,
    configure_logging,
    load_config,
    write_dry_run,
)
from licsync.connector.sync import SyncResult, run_sync
from licsync.reports.output import default_format, emit


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sync",
        help="apply the licence rules to the tenant through Microsoft Graph",
        description="Read the tenant through Graph, compute every user's licences, and push "
        "the changes with assignLicense. Exit 0: everything applied; 10: some users have "
        "problem records; 6: the guardrail stopped the run before any write; 5: Graph "
        "unreachable or refused; 4: state store unusable or leased; 3: bad input.",
    )
    add_config_argument(parser, "the licence rules, policy, [graph], [state] and [guardrail]")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="read and plan only: print the same report as `licsync plan`; write nothing, "
        "not even the state store (planned with an empty ledger when it does not exist yet)",
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="re-read the whole tenant instead of only what changed since the last run "
        "(users/delta, groups/delta); licsync also does this by itself when it has no cached "
        "tenant yet or Graph refuses an expired delta link",
    )
    add_allow_removals(parser)
    add_report_arguments(parser)
    parser.set_defaults(handler=run)


def _write_summary(result: SyncResult, fmt: str, output: Path | None) -> None:
    summary = result.summary()
    if fmt == "json":
        data = orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n"
    elif fmt == "csv":
        data = (
            ",".join(summary) + "\n" + ",".join(str(v) for v in summary.values()) + "\n"
        ).encode()
    else:
        data = "".join(f"{k:>20}: {v}\n" for k, v in summary.items()).encode()
    emit(data, output)


def run(args: argparse.Namespace) -> int:
    configure_logging()
    config = load_config(args.config)
    result = asyncio.run(
        run_sync(config, dry_run=args.dry_run, allow_removals=args.allow_removals, full=args.full)
    )
    if args.dry_run:
        write_dry_run(result, args.format, args.output)
    else:
        _write_summary(result, args.format or default_format(args.output), args.output)
    stop = result.fatal_outcome
    if stop is not None:
        print(f"licsync: error: the writes stopped: {stop.failure}", file=sys.stderr)
    return int(result.exit_code)
