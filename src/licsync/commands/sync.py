"""`licsync sync`: apply the rules to the tenant through Graph (or, with --dry-run, report)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from licsync.commands.common import (
    add_allow_removals,
    add_config_argument,
    add_report_arguments,
    configure_logging,
    load_config,
    write_sync_report,
)
from licsync.connector.sync import run_sync
from licsync.reports.output import check_output


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


def run(args: argparse.Namespace) -> int:
    check_output(args.format, args.output)
    configure_logging()
    config = load_config(args.config)
    result = asyncio.run(
        run_sync(config, dry_run=args.dry_run, allow_removals=args.allow_removals, full=args.full)
    )
    write_sync_report(result, config, args.format, args.output)
    stop = result.fatal_outcome
    if stop is not None:
        print(f"licsync: error: the writes stopped: {stop.failure}", file=sys.stderr)
    return int(result.exit_code)
