"""`licsync inventory`: every licensed user and SKU with the path it comes by."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from licsync.commands.common import (
    add_config_argument,
    add_report_arguments,
    load_config,
    read_and_plan,
    report_context,
)
from licsync.config import Config
from licsync.exitcodes import ExitCode
from licsync.graph.errors import GraphError
from licsync.reports.inventory import write_inventory
from licsync.reports.names import Names
from licsync.reports.output import check_output, default_format
from licsync.spend.activity import SIGN_IN_HOW, read_sign_ins, refused
from licsync.spend.inventory import inventory_rows
from licsync.spend.read import read_ledger, through_graph


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "inventory",
        help="every licensed user and product: the path it comes by, last sign-in, cost",
        description="One row per user and licence held: the path it comes by (a licsync rule "
        "and its group, an Entra group, direct by an admin, or several), the disabled plans, "
        "whether the account is enabled, the last sign-in (with AuditLog.Read.All) and, with "
        "[prices], the monthly cost. Nothing is written. Exit 0; 3: bad input; 4: state "
        "store; 5: Graph.",
    )
    parser.add_argument(
        "--snapshot",
        type=Path,
        metavar="FILE",
        help="offline, from a tenant snapshot (no sign-ins) instead of Graph",
    )
    add_config_argument(
        parser, "[graph], [state] (the ledger says which licences licsync assigned), [prices]"
    )
    add_report_arguments(parser)
    parser.set_defaults(handler=run)


def _sign_ins(config: Config) -> dict[str, datetime | None] | None:
    """Last sign-ins through Graph; None (with a note) when Graph refuses them."""
    try:
        return through_graph(config, read_sign_ins)
    except GraphError as exc:
        if not refused(exc):
            raise
        print(
            f"licsync: note: no last sign-ins: Graph refused them; {SIGN_IN_HOW}", file=sys.stderr
        )
        return None


def run(args: argparse.Namespace) -> int:
    check_output(args.format, args.output)
    config = load_config(args.config)
    tenant, _, _ = read_and_plan(config, args.snapshot)
    ledger = read_ledger(config)
    sign_ins = None if args.snapshot is not None else _sign_ins(config)
    prices = config.prices()
    rows = list(
        inventory_rows(tenant, ledger, prices.for_tenant(tenant) if prices else {}, sign_ins or {})
    )
    fmt = args.format or default_format(args.output)
    write_inventory(
        rows,
        Names(tenant),
        prices.currency if prices else None,
        sign_ins is not None,
        fmt,
        args.output,
        report_context("inventory", config, args.snapshot),
    )
    return ExitCode.OK
