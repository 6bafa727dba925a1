"""`licsync explain USER`: why a user gets (or does not get) each licence."""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson

from licsync.commands.common import add_config_argument, load_config, read_and_plan
from licsync.config import resolve_rules
from licsync.exitcodes import ExitCode
from licsync.reports.explain import explain, find_sku, find_user, render_explain
from licsync.reports.names import Names
from licsync.reports.output import emit, show


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="explain why a user gets (or does not get) each licence",
        description="For every SKU the user holds or any source would give: each source (rule "
        "group, Entra group, direct assignment) with its disabled plans, the licence that "
        "results, the seat decision and what blocks it. Read through Graph (a dry run: "
        "nothing is written) or from --snapshot. Exit 0: no problem for the user; 10: "
        "problems; 3: bad input or unknown user or SKU; 5: Graph unreachable.",
    )
    parser.add_argument("user", metavar="USER", help="userPrincipalName or object id")
    parser.add_argument("--sku", metavar="SKU", help="only this SKU (part number or id)")
    parser.add_argument(
        "--snapshot", type=Path, metavar="FILE", help="explain offline on this tenant snapshot"
    )
    add_config_argument(parser, "the licence rules and policy (and [graph], [state])")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument("--output", type=Path, metavar="PATH", help="write to PATH")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    tenant, plan, _ = read_and_plan(config, args.snapshot)
    names = Names(tenant)
    user = find_user(names, args.user)
    rules = resolve_rules(tenant, config)
    doc = explain(plan, names, user, find_sku(names, args.sku) if args.sku else None, rules)
    if args.format == "json":
        emit(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n", args.output)
    else:
        show(lambda console: render_explain(doc, console), args.output)
    blocked = any(entry["blockedBy"] for entry in doc["skus"])
    return ExitCode.PROBLEMS if blocked else ExitCode.OK
