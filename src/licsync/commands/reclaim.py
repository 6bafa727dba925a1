"""`licsync reclaim plan`: licences held by users who stopped using them."""

from __future__ import annotations

import argparse
from datetime import date
from typing import TYPE_CHECKING

from licsync.commands.common import (
    add_config_argument,
    add_report_arguments,
    counted,
    load_config,
    read_and_plan,
    report_context,
)
from licsync.errors import InputError
from licsync.exitcodes import ExitCode
from licsync.graph.errors import GraphError, GraphFatalError
from licsync.model import Tenant, guid
from licsync.reports.names import Names
from licsync.reports.output import check_output, default_format
from licsync.reports.reclaim import write_reclaim
from licsync.spend.activity import SIGN_IN_HOW, read_created, read_sign_ins, refused
from licsync.spend.read import read_ledger, through_graph
from licsync.spend.reclaim import plan_reclaim
from licsync.spend.usage import read_usage, today

if TYPE_CHECKING:
    from licsync.graph.client import GraphClient

SOURCES = ("signins", "usage")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reclaim",
        help="licences held by users who have not signed in (or been active) for N days",
        description="Reclaim licences from inactive users.",
    )
    sub = parser.add_subparsers(dest="reclaim_command", metavar="ACTION", required=True)
    plan = sub.add_parser(
        "plan",
        help="list inactive users, their licences, how to take each back and the saving",
        description="Users holding a licence whose last activity is older than "
        "--inactive-days: the last successful sign-in (--source signins: AuditLog.Read.All, "
        "Entra ID P1) or the Microsoft 365 usage report of the last 180 days (--source usage: "
        "Reports.Read.All). Accounts created within the period and accounts with no activity "
        "record are left out and listed. Nothing is written. Exit 0; 3: bad input, or "
        "concealed names in usage reports; 5: Graph (a refused permission is named).",
    )
    add_config_argument(plan, "[graph], [state] (its ledger), [prices]")
    plan.add_argument("--inactive-days", type=counted(1), required=True, metavar="N")
    plan.add_argument(
        "--sku", nargs="+", metavar="SKU", help="only these licences (part numbers or skuIds)"
    )
    plan.add_argument("--source", choices=SOURCES, default="signins")
    add_report_arguments(plan)
    plan.set_defaults(handler=run_plan)


def _skus(tenant: Tenant, wanted: list[str] | None) -> frozenset[str] | None:
    if not wanted:
        return None
    by_part = {s.part_number.upper(): s.id for s in tenant.skus.values()}
    found, unknown = set(), []
    for name in wanted:
        sku = guid(name) if guid(name) in tenant.skus else by_part.get(name.upper())
        if sku is None:
            unknown.append(name)
        else:
            found.add(sku)
    if unknown:
        raise InputError(
            f"--sku: the tenant has no SKU {', '.join(unknown)} "
            f"(it has {', '.join(sorted(by_part))})"
        )
    return frozenset(found)


async def _activity(
    client: GraphClient, tenant: Tenant, source: str
) -> tuple[dict[str, date | None], dict[str, date | None]]:
    """(last activity, creation date) by user id, from the chosen source."""
    created_at = await read_created(client)
    created = {u: (t.date() if t else None) for u, t in created_at.items()}
    if source == "signins":
        try:
            sign_ins = await read_sign_ins(client)
        except GraphError as exc:
            if not refused(exc):
                raise
            raise GraphFatalError(f"Graph refused the last sign-ins (403): {SIGN_IN_HOW}") from None
        return {u: (t.date() if t else None) for u, t in sign_ins.items()}, created
    report = await read_usage(client)
    ids = {u.user_principal_name.lower(): u.id for u in tenant.users.values()}
    activity = {ids[upn]: last for upn, last in report.last_activity.items() if upn in ids}
    return activity, created


def run_plan(args: argparse.Namespace) -> int:
    check_output(args.format, args.output)
    config = load_config(args.config)
    tenant, _, _ = read_and_plan(config, None)
    skus = _skus(tenant, args.sku)
    activity, created = through_graph(config, lambda client: _activity(client, tenant, args.source))
    prices = config.prices()
    plan = plan_reclaim(
        tenant,
        read_ledger(config),
        activity=activity,
        created=created,
        inactive_days=args.inactive_days,
        source=args.source,
        today=today(),
        skus=skus,
        prices=prices.for_tenant(tenant) if prices else None,
    )
    fmt = args.format or default_format(args.output)
    context = report_context("reclaim plan", config)
    write_reclaim(
        plan, Names(tenant), prices.currency if prices else None, fmt, args.output, context
    )
    return ExitCode.OK
