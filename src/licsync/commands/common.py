"""What several commands share: logging set-up, report options, counted arguments, and the
dry-run report of a sync read through Graph."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import structlog

from licsync.config import Config
from licsync.config import load_config as load_config_file
from licsync.config.settings import TableCheck
from licsync.connector.planning import make_plan
from licsync.connector.sync import SyncResult, run_sync
from licsync.errors import InputError
from licsync.graph.settings import graph_table_issues
from licsync.model import Plan, Tenant
from licsync.redact import RedactingFilter, redact_event
from licsync.reports.html_page import ReportContext
from licsync.reports.names import Names
from licsync.reports.output import FORMATS, default_format, write_report
from licsync.snapshot import load_snapshot
from licsync.spend.costs import Spend
from licsync.store.settings import state_table_issues

# The tables of licsync.toml that the Graph layer and the store read, checked in the same pass.
TABLE_CHECKS: dict[str, TableCheck] = {"graph": graph_table_issues, "state": state_table_issues}


def load_config(path: Path) -> Config:
    """The configuration file, every table of it validated at once (ConfigError lists all)."""
    return load_config_file(path, TABLE_CHECKS)


def _stderr_logger(*_: object) -> structlog.PrintLogger:
    return structlog.PrintLogger(sys.stderr)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a record is emitted."""

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


LOG_LEVEL_ENV = "LICSYNC_LOG_LEVEL"
LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
_debug = False  # `licsync --debug`


def request_debug(enabled: bool) -> None:
    """`--debug`: every command logs at debug level (as `LICSYNC_LOG_LEVEL=debug`)."""
    global _debug
    _debug = enabled


def log_level(default: int = logging.INFO) -> int:
    """The level to log at: debug with `--debug`, else `LICSYNC_LOG_LEVEL`, else `default`."""
    if _debug:
        return logging.DEBUG
    name = os.environ.get(LOG_LEVEL_ENV, "").strip().lower()
    if not name:
        return default
    if name not in LOG_LEVELS:
        raise InputError(f"{LOG_LEVEL_ENV}: {name!r} is not one of {', '.join(LOG_LEVELS)}")
    return LOG_LEVELS[name]


def configure_logging(
    level: int = logging.INFO, extra: Sequence[structlog.typing.Processor] = ()
) -> None:
    """structlog to stderr: JSON lines for schedulers and files, a console renderer on a
    terminal; stdlib warnings (azure-identity's) to stderr too. Secrets are masked in both.
    Called once by a command's handler; `extra` processors see every event first. `level` is
    the command's default (`log_level`: `--debug` and `LICSYNC_LOG_LEVEL` override it)."""
    level = log_level(level)
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer()
        if sys.stderr.isatty()
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            *extra,
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_stderr_logger,  # looks sys.stderr up per logger, not once
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    if not any(isinstance(f, RedactingFilter) for h in root.handlers for f in h.filters):
        handler = _StderrHandler()
        handler.addFilter(RedactingFilter())
        handler.setLevel(logging.WARNING)
        root.addHandler(handler)


def add_config_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """The required `--config FILE`; `what` says which parts of it the command uses."""
    parser.add_argument(
        "--config", type=Path, required=True, metavar="FILE", help=f"licsync.toml: {what}"
    )


def add_report_arguments(
    parser: argparse.ArgumentParser, formats: tuple[str, ...] = FORMATS
) -> None:
    parser.add_argument(
        "--format",
        choices=formats,
        help="report format (default: table on a terminal, json otherwise)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        metavar="PATH",
        help="write the report to PATH instead of standard output",
    )


def counted(minimum: int):
    """An argparse type: a whole number of at least `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more")
        return value

    return parse


def add_allow_removals(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-removals",
        type=counted(0),
        metavar="N",
        help="approve up to N licence removals beyond the [guardrail] limits",
    )


def read_and_plan(config: Config, snapshot: Path | None) -> tuple[Tenant, Plan, SyncResult | None]:
    """The tenant and its plan: offline from `snapshot` (empty ledger), or read through Graph
    as a dry run (whose result also says what the guardrail would do)."""
    if snapshot is not None:
        tenant = load_snapshot(snapshot, config.filter_properties())
        return tenant, make_plan(tenant, config), None
    configure_logging()
    result = asyncio.run(run_sync(config, dry_run=True))
    return result.tenant, result.plan, result


def report_context(job: str, config: Config, snapshot: Path | None = None) -> ReportContext:
    """The HTML headline's facts: the job, the tenant (snapshot file, tenant id or Graph's
    address) and the rules file."""
    if snapshot is not None:
        tenant = f"snapshot {snapshot.name}"
    else:
        graph = config.settings.graph
        tenant = str(graph.get("tenant_id") or graph.get("url") or "Microsoft Graph")
    return ReportContext(job, tenant, str(config.path))


def write_sync_report(
    result: SyncResult,
    config: Config,
    fmt: str | None,
    output: Path | None,
    spend: Spend | None = None,
) -> None:
    """The report of a sync: the plan, and after a real run what each write did; for a dry
    run, on stderr, why the guardrail would stop the real one; `spend` adds cost."""
    job = "dry run" if result.dry_run else "sync"
    write_report(
        result.plan,
        Names(result.tenant),
        fmt or default_format(output),
        output,
        report_context(job, config),
        None if result.dry_run else result.outcomes,
        None if result.dry_run else result.summary(),
        spend,
    )
    for reason in result.guardrail.reasons if result.dry_run and result.guardrail.tripped else ():
        print(f"licsync: guardrail would stop this run: {reason}", file=sys.stderr)
