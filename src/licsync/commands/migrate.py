"""`licsync migrate plan|apply|rollback`: the one-off move from direct to group licences."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterable
from pathlib import Path

from licsync.commands.common import (
    add_allow_removals,
    add_config_argument,
    add_report_arguments,
    configure_logging,
    counted,
    load_config,
    report_context,
)
from licsync.config import Config
from licsync.exitcodes import ExitCode
from licsync.migrate.classify import Target
from licsync.migrate.restore import run_rollback
from licsync.migrate.run import MigrationResult, apply_migration, plan_migration
from licsync.migrate.select import UserList, read_users_file
from licsync.model import Problem
from licsync.reports.migration import document, rollback_document, write
from licsync.reports.names import Names
from licsync.reports.output import check_output, default_format

EXITS = (
    "Exit 0: done; 10: problems recorded (a failed write, a wave that failed verification and "
    "stopped the run, a rollback conflict); 6: guardrail, nothing written; 5: Graph; "
    "4: state store; 3: bad input (config, snapshot, --users file, rollback file)."
)


def _common(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser, "rules, policy, [graph], [state], [guardrail]")
    parser.add_argument(
        "--target",
        choices=[t.value for t in Target],
        required=True,
        help="rules: adopt direct assignments into licsync's ledger; entra: "
        "remove direct assignments that Entra-licensed groups cover",
    )
    _options(
        parser,
        ("--users", "migrate only these users (one UPN or object id per line)"),
        ("--limit", "migrate at most N users (by UPN); the others are skipped"),
    )
    add_report_arguments(parser)


def _options(parser: argparse.ArgumentParser, *options: tuple[str, str]) -> None:
    """Optional flags taking a file (`--users`, `--rollback-file`) or a count (the others)."""
    for flag, text in options:
        if flag in ("--users", "--rollback-file"):
            parser.add_argument(flag, type=Path, metavar="FILE", help=text)
        else:
            parser.add_argument(flag, type=counted(1), metavar="N", help=text)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "migrate",
        help="move direct licence assignments to group licensing, in waves, with rollback",
        description="One-off migration from direct licences to group licences (docs/migration.md).",
    )
    sub = parser.add_subparsers(dest="migrate_command", metavar="ACTION")
    plan = sub.add_parser(
        "plan",
        help="dry run: what would move and why the rest cannot",
        description="Dry run (the default). " + EXITS,
    )
    _common(plan)
    plan.add_argument(
        "--snapshot",
        type=Path,
        metavar="FILE",
        help="plan offline on a tenant snapshot (the ledger is taken as empty)",
    )
    plan.set_defaults(handler=run_plan)
    apply = sub.add_parser(
        "apply",
        help="migrate: adopt into the ledger, or remove direct "
        "assignments Entra's groups cover; writes a rollback file",
        description="Migrate the selected users. " + EXITS,
    )
    _common(apply)
    _options(
        apply,
        (
            "--rollback-file",
            "where to write the rollback file, a new one (default: licsync-rollback-<run id>.json)",
        ),
        ("--wave-size", "entra: verify after every N users and stop at the first bad wave"),
    )
    add_allow_removals(apply)
    apply.set_defaults(handler=run_apply)
    back = sub.add_parser(
        "rollback",
        help="restore what a migration removed or adopted",
        description="Re-add removed direct assignments with their disabled "
        "plans and restore adopted ledger entries. " + EXITS,
    )
    back.add_argument("file", type=Path, metavar="FILE", help="the rollback file of a run")
    add_config_argument(back, "[graph] and [state]")
    add_report_arguments(back)
    back.set_defaults(handler=run_rollback_command)
    parser.set_defaults(handler=lambda args: run_plan_default(parser, args))


def run_plan_default(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    parser.print_usage(sys.stderr)
    print(
        "licsync migrate: error: choose an action: plan (dry run), apply or rollback",
        file=sys.stderr,
    )
    return ExitCode.USAGE


def _report(result: MigrationResult, config: Config, args: argparse.Namespace) -> int:
    fmt = args.format or default_format(args.output)
    names = Names(result.tenant)
    doc = document(
        result.target, result.mode, result.decisions, names, result.outcomes, result.summary()
    )
    snapshot = getattr(args, "snapshot", None)
    context = report_context(f"migration {result.mode} ({result.target.value})", config, snapshot)
    write(doc, fmt, args.output, context, names)
    if result.stopped:
        print(f"licsync: migration stopped: {result.stopped}", file=sys.stderr)
    _print_problems(result.problems)
    return int(result.exit_code)


def _inputs(args: argparse.Namespace) -> tuple[Config, UserList | None]:
    """Logging set up, then the config and the `--users` file (before any Graph read)."""
    check_output(args.format, args.output)
    configure_logging()
    config = load_config(args.config)
    return config, read_users_file(args.users) if args.users else None


def _print_problems(problems: Iterable[Problem]) -> None:
    for p in problems:
        print(f"licsync: problem: {p.user_principal_name}: {p.message}", file=sys.stderr)


def run_plan(args: argparse.Namespace) -> int:
    config, users = _inputs(args)
    result = asyncio.run(
        plan_migration(
            config, Target(args.target), snapshot=args.snapshot, users=users, limit=args.limit
        )
    )
    return _report(result, config, args)


def run_apply(args: argparse.Namespace) -> int:
    config, users = _inputs(args)
    result = asyncio.run(
        apply_migration(
            config,
            Target(args.target),
            rollback=args.rollback_file,
            users=users,
            limit=args.limit,
            wave_size=args.wave_size,
            allow_removals=args.allow_removals,
        )
    )
    if result.rollback_file is not None:
        print(f"licsync: rollback file: {result.rollback_file}", file=sys.stderr)
    return _report(result, config, args)


def run_rollback_command(args: argparse.Namespace) -> int:
    check_output(args.format, args.output)
    configure_logging()
    config = load_config(args.config)
    result = asyncio.run(run_rollback(config, args.file))
    fmt = args.format or default_format(args.output)
    doc = rollback_document(result.entries, result.outcomes, result.summary())
    write(doc, fmt, args.output, report_context("migration rollback", config))
    _print_problems(result.problems)
    return int(result.exit_code)
