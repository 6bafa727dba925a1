"""`licsync plan`: the dry-run report of what a sync would do."""

from __future__ import annotations

import argparse
from pathlib import Path

from licsync.commands.output import FORMATS, default_format, write_report
from licsync.config import load_config
from licsync.exitcodes import ExitCode
from licsync.planning import make_plan
from licsync.reports.names import Names
from licsync.snapshot import load_snapshot


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=FORMATS,
        help="report format (default: table on a terminal, json otherwise)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        metavar="PATH",
        help="write the report to PATH instead of standard output",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="report what a sync would change, without changing anything",
        description="Compute every user's licences from the rules and report the changes, the "
        "seat forecast and predicted problems. Exit 0: no problems; "
        "10: problems predicted; 3: bad input.",
    )
    parser.add_argument(
        "--snapshot",
        type=Path,
        required=True,
        metavar="FILE",
        help="tenant snapshot (JSON in Graph's shapes, see docs/snapshot.md)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        required=True,
        metavar="FILE",
        help="licsync.toml with the licence rules and policy",
    )
    add_report_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    tenant = load_snapshot(args.snapshot)
    plan = make_plan(tenant, config)
    fmt = args.format or default_format(args.output)
    write_report(plan, Names(tenant), fmt, args.output)
    return ExitCode.PROBLEMS if plan.problems else ExitCode.OK
