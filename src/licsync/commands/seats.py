"""`licsync seats`: seats, subscriptions and renewals alone, for a monthly review."""

from __future__ import annotations

import argparse
from pathlib import Path

from licsync.commands.common import (
    add_config_argument,
    add_report_arguments,
    load_config,
    read_and_plan,
    report_context,
)
from licsync.exitcodes import ExitCode
from licsync.reports.names import Names
from licsync.reports.output import check_output, default_format
from licsync.reports.seats import write_seats
from licsync.spend.read import config_spend, gather_spend


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "seats",
        help="seats per product: subscriptions, renewals, seats to drop or about to stop",
        description="Per product: the seats bought, in use and needed once the plan is applied, "
        "the subscriptions behind them (GET /directory/subscriptions: status, trial, seats, "
        "next lifecycle date), seats you could drop at the next renewal, and users who lose a "
        "licence when a subscription in warning, suspended or trial ends; with [prices], the "
        "monthly cost. Nothing is written. Exit 0; 3: bad input; 5: Graph.",
    )
    parser.add_argument(
        "--snapshot",
        type=Path,
        metavar="FILE",
        help="offline, from a tenant snapshot (its `subscriptions` list) instead of Graph",
    )
    add_config_argument(parser, "the rules, [prices], and [graph] without --snapshot")
    add_report_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    check_output(args.format, args.output)
    config = load_config(args.config)
    reads = gather_spend(config, args.snapshot, always=True)
    tenant, plan, _ = read_and_plan(config, args.snapshot)
    spend = config_spend(config, tenant, reads)
    assert spend is not None  # always read
    fmt = args.format or default_format(args.output)
    context = report_context("seats", config, args.snapshot)
    write_seats(plan, Names(tenant), spend, fmt, args.output, context)
    return ExitCode.OK
