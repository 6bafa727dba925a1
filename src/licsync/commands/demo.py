"""`licsync demo`: the main job end to end on the built-in emulator, with nothing to set up.

1. generate a realistic tenant from Microsoft's catalogue and serve it with the Graph emulator
   on a loopback port;
2. write `licsync.toml` (rules, policy, example [prices], [graph] pointing at the emulator,
   [state] beside it);
3. `sync --dry-run`: the report of what the sync will do, also as an HTML page;
4. `sync`: the writes, through Graph's API, into the emulator;
5. `sync` again: no changes left; the problems that remain (exit 10 while any does, as
   `sync`);
6. save the tenant as it now is, and print commands to look further (each works as printed).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import shlex
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from licsync.commands.common import configure_logging
from licsync.config import load_config, rules_toml
from licsync.connector.sync import SyncResult, run_sync
from licsync.emulator.generate import generate_rules
from licsync.reports.html_page import ReportContext
from licsync.reports.html_report import plan_html
from licsync.reports.names import Names
from licsync.reports.output import emit, show
from licsync.reports.table import render_plan
from licsync.spend.read import config_spend, gather_spend

DEMO_WRITE_RATE = 100  # writes/s, the most [graph] allows: the emulator is local (real Graph: 20)


def demo_rules_toml(snapshot: dict[str, Any], count: int, seed: int) -> str:
    """Rules for the demo tenant, naming groups by display name where the name is unique."""
    names = Counter(g["displayName"] for g in snapshot["groups"])
    by_id = {g["id"]: g["displayName"] for g in snapshot["groups"]}
    rules = generate_rules(snapshot, count, seed)
    for rule in rules:
        name = by_id[rule["group"]]
        if names[name] == 1:
            rule["group"] = name
    header = (
        "# licsync rules for the generated demo tenant: edit them and run the demo again, or\n"
        "# `licsync plan --snapshot tenant.json --config licsync.toml` offline.\n\n"
        '[policy]\nusage_location = "tenant"\n\n'
    )
    return header + rules_toml(rules)


def demo_prices_csv(snapshot: dict[str, Any]) -> str:
    """Example prices (a month, in EUR) for the demo tenant's SKUs, made up from their part
    numbers: the demo shows cost in its reports; real ones come from your own price list."""
    rows = ["sku,price,currency,per"]
    for sku in sorted(snapshot["subscribedSkus"], key=lambda s: s["skuPartNumber"]):
        part = sku["skuPartNumber"]
        price = 2 + hashlib.sha256(part.encode()).digest()[0] % 38
        rows.append(f"{part},{price}.00,EUR,month")
    return "\n".join(rows) + "\n"


PRICES_TOML = (
    "# Example prices, made up for the demo: give your own in prices.csv (docs/spend.md).\n"
    '[prices]\nfile = "prices.csv"\ngroup_by = "department"\n\n'
)


def connection_toml(url: str) -> str:
    return (
        "# The built-in Graph emulator of this demo run (loopback, no credentials).\n"
        f'[graph]\nurl = "{url}"\nauth = "none"\nwrite_rate = {DEMO_WRITE_RATE}\n\n'
        '[state]\nurl = "state.db"\n\n'
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole job on a generated demo tenant (nothing real is touched)",
        description="Generate a demo tenant from Microsoft's real licensing catalogue, serve it "
        "with the built-in Graph emulator, and run the main job against it: a dry-run report, "
        "the sync, and a second sync that finds nothing left to do. Files go to --workdir.",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path("licsync-demo"),
        help="folder for the rules, state store and tenant snapshots (default: ./licsync-demo)",
    )
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--groups", type=int, default=30)
    parser.add_argument("--rules", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.set_defaults(handler=run)


def _summary_line(result: SyncResult) -> str:
    s = result.summary()
    return (
        f"{s['users']} users read ({s['read']}), {s['changes']} with changes, "
        f"{s['writes_succeeded']} writes succeeded, {s['writes_failed']} failed, "
        f"{s['problems']} open problem records"
    )


def _closing(result: SyncResult) -> str:
    """The last word: what is left, in the terms of the exit code."""
    if result.plan.changes:
        return f"[yellow]{len(result.plan.changes)} users still have changes to make.[/yellow]"
    if not result.problems:
        return "[green]Nothing left to do: the tenant matches the rules.[/green]"
    users = len({p.user_id for p in result.problems})
    return (
        f"[yellow]No changes left, but {len(result.problems)} problems remain for {users} "
        "users (seats, conflicts, usage locations): licsync cannot do more until they are "
        "fixed, so the demo exits 10 as `licsync sync` would.[/yellow]"
    )


def suggestions(workdir: Path, config: Path, after: Path, result: SyncResult) -> list[str]:
    """Commands to run next; each works as printed, from the folder the demo ran in."""
    q = shlex.quote
    commands = [f"licsync problems --config {q(str(config))}"]
    if result.problems:
        user = min(result.problems, key=lambda p: p.user_principal_name).user_principal_name
        commands.append(
            f"licsync explain {q(user)} --config {q(str(config))} --snapshot {q(str(after))}"
        )
    html = workdir / "plan-after.html"
    commands.append(
        f"licsync plan --config {q(str(config))} --snapshot {q(str(after))} "
        f"--format html --output {q(str(html))}"
    )
    return commands


def run(args: argparse.Namespace) -> int:
    configure_logging(logging.WARNING)  # the demo shows reports, not the per-write log
    console = Console()
    workdir: Path = args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in ("state.db", "state.db-wal", "state.db-shm"):
        (workdir / stale).unlink(missing_ok=True)  # each demo starts from a fresh ledger
    from licsync.emulator.server import Emulator  # uvicorn: only when the demo runs

    before, after = workdir / "tenant-before.json", workdir / "tenant-after.json"
    config_path = workdir / "licsync.toml"
    page = workdir / "report.html"
    with Emulator(users=args.users, groups=args.groups, seed=args.seed) as graph:
        graph.save(before)
        snapshot = graph.snapshot()
        (workdir / "prices.csv").write_text(demo_prices_csv(snapshot), encoding="utf-8")
        config_path.write_text(
            connection_toml(graph.url)
            + PRICES_TOML
            + demo_rules_toml(snapshot, args.rules, args.seed),
            encoding="utf-8",
        )
        config = load_config(config_path)
        console.rule("[bold]1. The built-in Graph emulator")
        console.print(
            f"{args.users} users, {args.groups} groups from Microsoft's real catalogue, served "
            f"at {graph.url}\nrules: {config_path}   tenant: {before}"
        )
        console.rule("[bold]2. Dry run: what the sync will do")
        preview = asyncio.run(run_sync(config, dry_run=True))
        spend = config_spend(config, preview.tenant, gather_spend(config, None))
        names = Names(preview.tenant)
        context = ReportContext("dry run (demo)", "the demo tenant", str(config_path))
        emit(plan_html(preview.plan, names, context, spend=spend), page)
        more = f"every row is in {page}"
        show(lambda out: render_plan(preview.plan, names, out, more=more, spend=spend), None)
        console.print(Text(f"The same report as a page: {page}", style="bold"))
        console.rule("[bold]3. Sync")
        first = asyncio.run(run_sync(config))
        console.print(_summary_line(first))
        console.rule("[bold]4. Sync again")
        second = asyncio.run(run_sync(config))
        console.print(_summary_line(second))
        console.print(_closing(second))
        graph.save(after)
    console.print(Text(f"\nThe tenant after the sync: {after}. Next, try:"))
    for command in suggestions(workdir, config_path, after, second):
        console.print(Text(f"  {command}"), soft_wrap=True)
    return int(second.exit_code)
