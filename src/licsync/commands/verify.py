"""`licsync verify [--reprocess]`: compare what Entra's own group licensing did with its rules,
and ask Entra to process again the users it left behind."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from licsync.commands.common import (
    add_config_argument,
    add_report_arguments,
    configure_logging,
    counted,
    load_config,
    report_context,
)
from licsync.config import Config
from licsync.connector.reprocess import WAIT_SECONDS, run_reprocess
from licsync.connector.verify import verify_tenant
from licsync.exitcodes import ExitCode
from licsync.reports.names import Names
from licsync.reports.output import check_output, default_format
from licsync.reports.verify import document, write
from licsync.runtime import read_only_session
from licsync.verification import Verification


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="compare Entra's own group licensing with its rules; reprocess users left behind",
        description="For every group Entra licenses, read each member's licenseAssignmentStates "
        "and compare them with what Entra's rules give (licsync's engine): per user, SKU and "
        "group ok, missing, unexpected, plansDiffer, error or stale; groups whose processing "
        "has not completed. Read-only unless --reprocess. Exit 0: everything ok; 10: "
        "anything else; 5: Graph unreachable or refused (a missing permission is named); "
        "4: state store unusable or leased (--reprocess); 3: bad input.",
    )
    add_config_argument(parser, "[graph], [state] (for --reprocess) and [policy]")
    parser.add_argument(
        "--group",
        action="append",
        default=[],
        metavar="NAME",
        help="only this Entra-licensed group (display name or id); repeat for several",
    )
    parser.add_argument(
        "--reprocess",
        action="store_true",
        help="call reprocessLicenseAssignment for the users found stale or missing (no "
        "others), as a run of kind reprocess under the write lease and budget, then re-read "
        "them and report which now match",
    )
    parser.add_argument(
        "--limit",
        type=counted(1),
        metavar="N",
        help="with --reprocess: reprocess at most N users (in object-id order)",
    )
    parser.add_argument(
        "--wait",
        type=counted(0),
        default=int(WAIT_SECONDS),
        metavar="SECONDS",
        help="with --reprocess: how long to re-read the reprocessed users until they match "
        f"(default {int(WAIT_SECONDS)})",
    )
    add_report_arguments(parser)
    parser.set_defaults(handler=run)


async def _verify(config: Config, groups: Sequence[str]) -> Verification:
    """The read-only comparison (a store bound to another tenant is refused)."""
    async with read_only_session(config) as (_store, graph):
        return await verify_tenant(graph, config.policy(), groups)


def run(args: argparse.Namespace) -> int:
    if args.limit is not None and not args.reprocess:
        print("licsync: error: --limit goes with --reprocess", file=sys.stderr)
        return int(ExitCode.USAGE)
    check_output(args.format, args.output)
    configure_logging()
    config = load_config(args.config)
    reprocess = None
    if args.reprocess:
        reprocess = asyncio.run(
            run_reprocess(config, limit=args.limit, groups=args.group, wait=args.wait)
        )
        verification = reprocess.after
    else:
        verification = asyncio.run(_verify(config, args.group))
    doc = document(
        verification, Names(verification.tenant), reprocess.report() if reprocess else None
    )
    context = report_context("verify", config)
    write(doc, args.format or default_format(args.output), args.output, context)
    if reprocess is not None and (stop := reprocess.stop_message()) is not None:
        print(f"licsync: error: reprocessing stopped: {stop}", file=sys.stderr)
        return int(ExitCode.GRAPH)
    return int(ExitCode.OK if verification.ok else ExitCode.PROBLEMS)
