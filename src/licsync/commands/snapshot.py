"""`licsync snapshot`: save the tenant as licsync reads it through Graph, as a snapshot file.

The file replays offline (`licsync plan --snapshot`) or in the emulator (`licsync emulator
--snapshot`), to rehearse a sync on a copy of production.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import orjson

from licsync.commands.common import add_config_argument, configure_logging, load_config
from licsync.connector.read_full import read_tenant
from licsync.exitcodes import ExitCode
from licsync.model import Tenant
from licsync.reports.output import emit
from licsync.runtime import graph_client
from licsync.snapshot import tenant_json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "snapshot",
        help="save the tenant as licsync reads it through Graph (a snapshot file)",
        description="Read organization, subscribed SKUs, users and the members of the groups "
        "the rules and Entra name (of every group with --all-groups) through Graph, and "
        "write them as a tenant snapshot (docs/snapshot.md). Nothing is written to the tenant "
        "or the state store. The file holds user principal names: keep it as you would an "
        "export of the directory.",
    )
    add_config_argument(parser, "rules (which groups to read) and [graph]")
    parser.add_argument(
        "--output", type=Path, required=True, metavar="FILE", help="the snapshot file to write"
    )
    parser.add_argument(
        "--all-groups",
        action="store_true",
        help="read the members of every group, not only of those licsync needs (slower; for "
        "replaying the whole tenant in the emulator)",
    )
    parser.set_defaults(handler=run)


async def _read(args: argparse.Namespace) -> Tenant:
    config = load_config(args.config)
    async with graph_client(config) as client:
        return await read_tenant(client, config, all_groups=args.all_groups)


def run(args: argparse.Namespace) -> int:
    configure_logging()
    tenant = asyncio.run(_read(args))
    emit(orjson.dumps(tenant_json(tenant), option=orjson.OPT_INDENT_2) + b"\n", args.output)
    return ExitCode.OK
