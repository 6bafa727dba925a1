"""A run's report in Prometheus' text format, with the official client library: a file for
node-exporter's textfile collector (`--metrics-file`), and a push to a Pushgateway
(`[metrics] pushgateway_url`). Every series carries the `tenant` label."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Gauge, write_to_textfile
from prometheus_client.exposition import basic_auth_handler, default_handler, push_to_gateway

from licsync.errors import InputError
from licsync.monitoring.report import OTHER_OUTCOME, OUTCOMES, RunReport
from licsync.outcomes import RunStatus, WriteOutcome

log = structlog.get_logger("licsync.metrics")

ENV_PUSH_USER = "LICSYNC_PUSHGATEWAY_USERNAME"
ENV_PUSH_PASSWORD = "LICSYNC_PUSHGATEWAY_PASSWORD"
PREFIX = "licsync_sync_"


def registry_for(report: RunReport) -> CollectorRegistry:
    """The report as gauges in a fresh registry (a series is left out when it is unknown, as
    the problem counts of a run that could not open its store)."""
    registry = CollectorRegistry()
    tenant = {"tenant": report.tenant}
    existing: dict[str, Gauge] = {}

    def gauge(
        name: str, doc: str, value: float | None, prefix: str = PREFIX, **labels: str
    ) -> None:
        if value is None:
            return
        names = ["tenant", *labels]
        metric = existing.get(name) or Gauge(prefix + name, doc, names, registry=registry)
        existing[name] = metric
        metric.labels(**tenant, **labels).set(value)

    gauge(
        "last_run_timestamp_seconds", "When the last run finished (Unix time).", report.finished_at
    )
    gauge("duration_seconds", "How long the last run took.", report.duration_seconds)
    gauge("exit_code", "The last run's exit code (README: exit codes).", report.exit_code)
    gauge("success", "1 when the last run completed (exit 0 or 10), else 0.", not report.failed)
    gauge("dry_run", "1 when the last run was a dry run.", report.dry_run)
    for outcome in (*OUTCOMES.values(), OTHER_OUTCOME):
        gauge("outcome", "The last run's outcome (1 for the one it had).",
              outcome == report.outcome, outcome=outcome)  # fmt: skip
    incremental = None if report.incremental is None else float(report.incremental)
    gauge("read_incremental", "1 when the tenant was read through delta links.", incremental)
    gauge("read_users", "Users in the tenant as read.", report.users_read)
    gauge("read_groups", "Groups in the tenant as read.", report.groups_read)
    gauge("writes", "assignLicense writes by result.", report.writes_ok, result="ok")
    gauge(
        "writes",
        "assignLicense writes by result.",
        report.writes_failed,
        result=WriteOutcome.FAILED,
    )
    gauge("problems_open", "Open problem records after the run.", report.problems_open)
    gauge("problems_new", "Problem records the run opened.", report.problems_new)
    gauge("problems_resolved", "Problem records the run resolved.", report.problems_resolved)
    gauge("graph_retries", "Graph requests retried.", report.retries)
    gauge("throttled", "Graph 429 answers (reads and writes).", report.throttled)
    gauge("throttle_wait_seconds", "Seconds waited on Retry-After.", report.throttle_wait_seconds)
    for sku, short in sorted(report.seats_short.items()):
        gauge("seats_short", "Users refused for want of a seat (the report's short).", short,
              sku=sku)  # fmt: skip
    for sku, blocked in sorted(report.seats_blocked.items()):
        gauge("seats_blocked", "Users refused for another reason (the report's blocked).",
              blocked, sku=sku)  # fmt: skip
    for status in (s.value for s in RunStatus if s is not RunStatus.RUNNING):
        gauge("last_run_status", "The last run's status (1 for the one it had).",
              status == report.status, prefix="licsync_", status=status)  # fmt: skip
    gauge("last_success_timestamp_seconds", "When a run last succeeded (Unix time).",
          report.last_success, prefix="licsync_")  # fmt: skip
    return registry


def write_metrics_file(report: RunReport, path: Path) -> None:
    """Write the metrics atomically (a temporary file renamed over `path`)."""
    try:
        write_to_textfile(str(path), registry_for(report))
    except OSError as exc:
        raise InputError(f"{path}: cannot write the metrics file: {exc.strerror}") from None


def _handler(url: str, method: str, timeout: float | None, headers: Any, data: bytes) -> Any:
    user, password = os.environ.get(ENV_PUSH_USER), os.environ.get(ENV_PUSH_PASSWORD)
    if user and password:
        return basic_auth_handler(url, method, timeout, headers, data, user, password)
    return default_handler(url, method, timeout, headers, data)


def publish_metrics(report: RunReport, url: str, job: str, timeout: float) -> bool:
    """Push to the Pushgateway, grouped by job and tenant; a failure is logged, not raised (the
    run's outcome stands). Returns whether the push went through."""
    try:
        push_to_gateway(
            url,
            job=job,
            registry=registry_for(report),
            grouping_key={"tenant": report.tenant},
            timeout=timeout,
            handler=_handler,
        )
    except OSError as exc:  # URLError, HTTPError, timeouts
        log.warning("metrics.push_failed", pushgateway=url, reason=str(exc))
        return False
    log.info("metrics.pushed", pushgateway=url, job=job)
    return True
