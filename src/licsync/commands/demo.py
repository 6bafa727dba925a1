"""`licsync demo`: the whole job on a built-in demo tenant, with nothing to set up.

Generates a realistic tenant from Microsoft's catalogue, writes it and a rules file into a
working folder (so they can be read and edited), and runs the dry-run report on it.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from licsync.commands.output import write_report
from licsync.config import load_config, rules_toml
from licsync.emulator.generate import generate_rules, generate_tenant
from licsync.exitcodes import ExitCode
from licsync.planning import make_plan
from licsync.reports.names import Names
from licsync.snapshot import load_snapshot


def demo_rules_toml(snapshot: dict[str, Any], count: int, seed: int) -> str:
    """Rules for the demo tenant, naming groups by display name where the name is unique."""
    names = Counter(g["displayName"] for g in snapshot["groups"])
    by_id = {g["id"]: g["displayName"] for g in snapshot["groups"]}
    rules = list({r["group"]: r for r in reversed(generate_rules(snapshot, count, seed))}.values())
    for rule in rules:
        name = by_id[rule["group"]]
        if names[name] == 1:
            rule["group"] = name
    header = (
        "# licsync rules for the generated demo tenant: edit them and run `licsync plan`.\n\n"
        '[policy]\nusage_location = "tenant"\n\n'
    )
    return header + rules_toml(rules)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run licsync on a generated demo tenant (nothing real is touched)",
        description="Generate a demo tenant from Microsoft's real licensing catalogue, write it "
        "and a rules file to --workdir, and report what a sync would do.",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path("licsync-demo"),
        help="folder for the demo tenant and rules (default: ./licsync-demo)",
    )
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--groups", type=int, default=30)
    parser.add_argument("--rules", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    args.workdir.mkdir(parents=True, exist_ok=True)
    snapshot = generate_tenant(users=args.users, groups=args.groups, seed=args.seed)
    tenant_path = args.workdir / "tenant.json"
    config_path = args.workdir / "licsync.toml"
    tenant_path.write_bytes(orjson.dumps(snapshot, option=orjson.OPT_INDENT_2))
    config_path.write_text(demo_rules_toml(snapshot, args.rules, args.seed), encoding="utf-8")
    print(f"Demo tenant: {args.users} users, {args.groups} groups -> {tenant_path}")
    print(f"Rules: {config_path}\n")
    tenant = load_snapshot(tenant_path)
    plan = make_plan(tenant, load_config(config_path))
    write_report(plan, Names(tenant), "table", None)
    print(
        f"\nNext: edit {config_path} and run "
        f"`licsync plan --snapshot {tenant_path} --config {config_path}`"
    )
    return ExitCode.OK
