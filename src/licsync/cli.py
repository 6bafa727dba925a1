"""The `licsync` command line: parses arguments, configures logging once, runs one command.

Each subcommand lives in the module that owns it and registers itself through a
`register(subparsers)` function; this file only wires them together and maps errors to exit codes.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import sys
from collections.abc import Sequence

import structlog

from licsync import __version__
from licsync.commands.common import configure_logging, request_debug
from licsync.errors import LicsyncError
from licsync.exitcodes import ExitCode
from licsync.redact import redact

# Modules that each add one or more subcommands with `register(subparsers)`.
COMMAND_MODULES = (
    "licsync.commands.demo",
    "licsync.commands.plan",
    "licsync.commands.explain",
    "licsync.commands.sync",
    "licsync.commands.migrate",
    "licsync.commands.records",
    "licsync.commands.seats",
    "licsync.commands.inventory",
    "licsync.commands.reclaim",
    "licsync.commands.runs",
    "licsync.commands.unlock",
    "licsync.commands.snapshot",
    "licsync.commands.verify",
    "licsync.emulator.cli",
)


# A run builds hundreds of thousands of small acyclic objects; at CPython's default threshold
# (700 allocations) the cyclic collector rescans them thousands of times, a third of a plan's
# time at 100k users. Collections still happen, just less often.
GC_THRESHOLD = (200_000, 50, 1000)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="licsync",
        description="Entra ID group-based licensing for any Microsoft 365 tenant.",
    )
    parser.add_argument("--version", action="version", version=f"licsync {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="log at debug level (also LICSYNC_LOG_LEVEL=debug); an unexpected error's "
        "traceback is logged",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    gc.set_threshold(*GC_THRESHOLD)
    # azure-identity logs each failed token request as a warning; licsync reports it once.
    logging.getLogger("azure").setLevel(logging.ERROR)
    parser = build_parser()
    args = parser.parse_args(argv)
    request_debug(args.debug)
    try:
        return int(args.handler(args))
    except LicsyncError as exc:
        print(f"licsync: error: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("licsync: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: one line, the traceback in the debug log
        return _unexpected(exc)


def _unexpected(exc: Exception) -> int:
    if not structlog.is_configured():
        configure_logging()
    structlog.get_logger("licsync").debug("unexpected_error", exc_info=exc)
    print(
        f"licsync: error: unexpected {type(exc).__name__}: {redact(str(exc))} "
        "(a bug in licsync; --debug logs the traceback)",
        file=sys.stderr,
    )
    return ExitCode.FAILURE
