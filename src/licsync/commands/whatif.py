"""`plan --compare OLD` (and `sync --dry-run --compare OLD`): what a rule change would do."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from licsync.commands.common import configure_logging, load_config, report_context
from licsync.config import Config, resolve_rules
from licsync.connector.read_full import read_tenant
from licsync.engine.whatif import compare_grants, rule_grants
from licsync.exitcodes import ExitCode
from licsync.model import Tenant
from licsync.reports.names import Names
from licsync.reports.output import default_format
from licsync.reports.whatif import document, write_whatif
from licsync.runtime import read_only_session
from licsync.snapshot import load_snapshot


def add_compare_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--compare",
        type=Path,
        metavar="OLD",
        help="instead of the plan, report who gains, loses or changes what between the rules "
        "of OLD (a licsync.toml) and those of --config, on the same tenant read (exit 10 when "
        "anyone loses a licence)",
    )


async def _read(config: Config, both: Config) -> Tenant:
    async with read_only_session(config) as (_, client):
        return await read_tenant(client, both)


def run_compare(args: argparse.Namespace, config: Config) -> int:
    """Read the tenant once (from --snapshot or Graph, nothing written), grant it under both
    rule sets, and report the difference."""
    old = load_config(args.compare)
    rules = config.settings.group_licenses + old.settings.group_licenses
    both = Config(config.path, config.settings.model_copy(update={"group_licenses": rules}))
    if args.snapshot is not None:
        tenant = load_snapshot(args.snapshot, both.filter_properties())
    else:
        configure_logging()
        tenant = asyncio.run(_read(config, both))  # the members and attributes both need
    before = rule_grants(tenant, resolve_rules(tenant, old), old.policy())
    after = rule_grants(tenant, resolve_rules(tenant, config), config.policy())
    doc = document(compare_grants(before, after), Names(tenant), config.prices())
    context = report_context("what-if", config, args.snapshot)
    context = type(context)(context.job, context.tenant, f"{old.path} → {config.path}")
    write_whatif(doc, args.format or default_format(args.output), args.output, context)
    return ExitCode.PROBLEMS if doc["summary"]["losses"] else ExitCode.OK
