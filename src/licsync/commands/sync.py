"""`licsync sync`: apply the rules to the tenant through Graph (or, with --dry-run, report)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

import orjson
import structlog

from licsync.commands.output import default_format, emit, write_report
from licsync.commands.plan import add_report_arguments
from licsync.config import load_config
from licsync.exitcodes import ExitCode
from licsync.reports.names import Names
from licsync.sync import SyncResult, run_sync


def _stderr_logger(*_: object) -> structlog.PrintLogger:
    return structlog.PrintLogger(sys.stderr)


def configure_logging(level: int = logging.INFO) -> None:
    """structlog to stderr: JSON lines for schedulers and files, a console renderer on a
    terminal. Called once by the command's handler."""
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer()
        if sys.stderr.isatty()
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_stderr_logger,  # looks sys.stderr up per logger, not once
        cache_logger_on_first_use=False,
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sync",
        help="apply the licence rules to the tenant through Microsoft Graph",
        description="Read the tenant through Graph, compute every user's licences, and push "
        "the changes with assignLicense. Exit 0: everything applied; 10: some users have "
        "problem records; 6: the guardrail stopped the run before any write; 5: Graph "
        "unreachable or refused; 4: state store unusable or leased; 3: bad input.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        required=True,
        metavar="FILE",
        help="licsync.toml with the licence rules, policy, [graph] and [state]",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="read and plan only: print the same report as `licsync plan`; write nothing, "
        "not even the state store (planned with an empty ledger when it does not exist yet)",
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="re-read the whole tenant instead of only what changed since the last run "
        "(users/delta, groups/delta); licsync also does this by itself when it has no cached "
        "tenant yet or Graph refuses an expired delta link",
    )
    parser.add_argument(
        "--allow-removals",
        type=int,
        metavar="N",
        help="approve up to N licence removals beyond the [guardrail] limits",
    )
    add_report_arguments(parser)
    parser.set_defaults(handler=run)


def _write_summary(result: SyncResult, fmt: str, output: Path | None) -> None:
    summary = result.summary()
    if fmt == "json":
        data = orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n"
    elif fmt == "csv":
        data = (
            ",".join(summary) + "\n" + ",".join(str(v) for v in summary.values()) + "\n"
        ).encode()
    else:
        data = "".join(f"{k:>20}: {v}\n" for k, v in summary.items()).encode()
    emit(data, output)


def run(args: argparse.Namespace) -> int:
    configure_logging()
    if args.allow_removals is not None and args.allow_removals < 0:
        print("licsync: error: --allow-removals must be 0 or more", file=sys.stderr)
        return ExitCode.USAGE
    config = load_config(args.config)
    result = asyncio.run(
        run_sync(config, dry_run=args.dry_run, allow_removals=args.allow_removals, full=args.full)
    )
    fmt = args.format or default_format(args.output)
    if args.dry_run:
        write_report(result.plan, Names(result.tenant), fmt, args.output)
        if result.guardrail.tripped:
            for reason in result.guardrail.reasons:
                print(f"licsync: guardrail would stop this run: {reason}", file=sys.stderr)
    else:
        _write_summary(result, fmt, args.output)
    return int(result.exit_code)
