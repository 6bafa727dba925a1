"""`licsync plan`: the dry-run report of what a sync would do, against Graph or a snapshot."""

from __future__ import annotations

import argparse
from pathlib import Path

from licsync.commands.common import (
    add_config_argument,
    add_report_arguments,
    load_config,
    read_and_plan,
    report_context,
    write_sync_report,
)
from licsync.commands.whatif import add_compare_argument, run_compare
from licsync.exitcodes import ExitCode
from licsync.reports.names import Names
from licsync.reports.output import check_output, default_format, write_report
from licsync.spend.read import config_spend, gather_spend


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="report what a sync would change, without changing anything",
        description="Compute every user's licences from the rules and report the changes, the "
        "seat forecast and predicted problems: read through Graph ([graph] in the config, "
        "with the ledger of [state] when it exists), or offline from --snapshot. Nothing is "
        "written anywhere. Exit 0: no problems; 10: problems predicted; 3: bad input; "
        "5: Graph unreachable.",
    )
    parser.add_argument(
        "--snapshot",
        type=Path,
        metavar="FILE",
        help="plan offline on this tenant snapshot (JSON in Graph's shapes, see "
        "docs/snapshot.md) with an empty ledger, instead of reading Graph",
    )
    add_config_argument(
        parser, "the licence rules and policy (and [graph], [state] without --snapshot)"
    )
    add_report_arguments(parser)
    add_compare_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    check_output(args.format, args.output)
    config = load_config(args.config)
    if args.compare is not None:
        return run_compare(args, config)
    tenant, plan, result = read_and_plan(config, args.snapshot)
    spend = config_spend(config, tenant, gather_spend(config, args.snapshot))
    if result is not None:
        write_sync_report(result, config, args.format, args.output, spend)
    else:
        fmt = args.format or default_format(args.output)
        context = report_context("plan", config, args.snapshot)
        write_report(plan, Names(tenant), fmt, args.output, context, spend=spend)
    return ExitCode.PROBLEMS if plan.problems else ExitCode.OK
