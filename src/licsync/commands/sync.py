"""`licsync sync`: apply the rules to the tenant through Graph (or, with --dry-run, report)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from contextlib import suppress
from pathlib import Path

from licsync.commands.common import (
    add_allow_removals,
    add_config_argument,
    add_report_arguments,
    configure_logging,
    load_config,
    write_sync_report,
)
from licsync.commands.whatif import add_compare_argument, run_compare
from licsync.config import Config
from licsync.connector.sync import SyncResult, run_sync
from licsync.errors import LicsyncError
from licsync.exitcodes import ExitCode
from licsync.monitoring import (
    RunEvents,
    RunReport,
    check_notify,
    notify,
    publish_metrics,
    report_for,
    write_metrics_file,
)
from licsync.outcomes import RunStatus
from licsync.reports.output import check_output
from licsync.runlog import ending, error_line
from licsync.runtime import open_state
from licsync.spend.read import config_spend, gather_spend


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sync",
        help="apply the licence rules to the tenant through Microsoft Graph",
        description="Read the tenant through Graph, compute every user's licences, and push "
        "the changes with assignLicense. Exit 0: everything applied; 10: some users have "
        "problem records; 6: the guardrail stopped the run before any write; 5: Graph "
        "unreachable or refused; 4: state store unusable or leased; 3: bad input.",
    )
    add_config_argument(parser, "the licence rules, policy, [graph], [state] and [guardrail]")
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
    add_allow_removals(parser)
    add_report_arguments(parser)
    add_compare_argument(parser)
    parser.add_argument(
        "--metrics-file",
        type=Path,
        metavar="PATH",
        help="write the run's metrics in Prometheus text format to PATH (replaced atomically; "
        "for node-exporter's textfile collector), whatever the outcome; [metrics] "
        "pushgateway_url also pushes them",
    )
    parser.set_defaults(handler=run)


def _tenant_label(config: Config, result: SyncResult | None) -> str:
    """The `tenant` label: the configured tenant, else the id Graph answered with."""
    configured = config.settings.graph.get("tenant_id")
    if isinstance(configured, str) and configured:
        return configured
    return (result.tenant.tenant_id if result else None) or "unknown"


def _monitor(
    args: argparse.Namespace,
    config: Config,
    report: RunReport,
) -> None:
    """Publish the report: metrics file, Pushgateway, notification (each only if asked)."""
    if args.metrics_file is not None:
        write_metrics_file(report, args.metrics_file)
    metrics = config.settings.metrics
    if metrics.pushgateway_url:
        publish_metrics(report, metrics.pushgateway_url, metrics.job, metrics.timeout_seconds)
    notify(report, config.settings.notify.on)


def run(args: argparse.Namespace) -> int:
    check_output(args.format, args.output)
    events = RunEvents()
    configure_logging(extra=[events])
    config = load_config(args.config)
    if args.compare is not None:
        if not args.dry_run:
            print(
                "licsync: --compare reports a rule change: use it with --dry-run", file=sys.stderr
            )
            return ExitCode.USAGE
        args.snapshot = None
        return run_compare(args, config)
    check_notify()
    started = time.monotonic()

    def report(
        exit_code: int,
        result: SyncResult | None = None,
        error: BaseException | None = None,
    ) -> None:
        store = None
        with suppress(LicsyncError):
            store = open_state(config, read_only=True)[0]
        try:
            _monitor(
                args,
                config,
                report_for(
                    exit_code=exit_code,
                    duration=time.monotonic() - started,
                    tenant=_tenant_label(config, result),
                    events=events,
                    result=result,
                    store=store,
                    error=None if error is None else error_line(error),
                    status=RunStatus.FAILED if error is None else ending(error)[0],
                ),
            )
        finally:
            if store is not None:
                store.close()

    try:
        reads = gather_spend(config, None)  # before any write: a refusal changes nothing
        result = asyncio.run(
            run_sync(
                config,
                dry_run=args.dry_run,
                allow_removals=args.allow_removals,
                full=args.full,
            )
        )
    except LicsyncError as exc:
        report(exc.exit_code, error=exc)
        raise
    except Exception as exc:
        report(ExitCode.FAILURE, error=exc)
        raise
    spend = config_spend(config, result.tenant, reads)
    write_sync_report(result, config, args.format, args.output, spend)
    if result.error is not None:
        print(f"licsync: error: {result.error}", file=sys.stderr)
    report(result.exit_code, result)
    return int(result.exit_code)
