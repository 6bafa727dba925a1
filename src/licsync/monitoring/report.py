"""One run's summary for monitoring, built from the sync's result (or its error) and the store."""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

from licsync.connector.sync import SyncResult
from licsync.exitcodes import ExitCode
from licsync.outcomes import RunStatus
from licsync.reports.forecast import seat_forecast
from licsync.store import StateStore

OUTCOMES: dict[int, str] = {
    ExitCode.OK: "ok",
    ExitCode.PROBLEMS: "problems",
    ExitCode.BAD_INPUT: "bad_input",
    ExitCode.STATE: "state_error",
    ExitCode.GRAPH: "graph_error",
    ExitCode.GUARDRAIL: "guardrail",
}
OTHER_OUTCOME = RunStatus.FAILED.value  # any other exit code


@dataclass
class RunEvents:
    """A structlog processor counting what the run logged: Graph retries (of requests and of
    `$batch` items), and the 429s among them with the seconds waited (install it with
    `configure_logging(extra=[events])`)."""

    retries: int = 0
    throttled: int = 0
    throttle_wait_seconds: float = 0.0

    def __call__(
        self, _logger: object, _method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if event.get("event") == "graph.retry":
            self.retries += 1
            if event.get("status") == 429:
                self.throttled += 1
                self.throttle_wait_seconds += float(event.get("wait_seconds") or 0.0)
        return event


@dataclass
class RunReport:
    """What one `licsync sync` did, as monitoring sees it."""

    outcome: str
    exit_code: int
    duration_seconds: float
    tenant: str
    dry_run: bool = False
    finished_at: float = field(default_factory=time.time)
    error: str | None = None
    incremental: bool | None = None
    users_read: int | None = None
    groups_read: int | None = None
    writes_ok: int = 0
    writes_failed: int = 0
    problems_open: int | None = None
    problems_new: int | None = None
    problems_resolved: int = 0
    retries: int = 0
    throttled: int = 0
    throttle_wait_seconds: float = 0.0
    seats_short: dict[str, int] = field(default_factory=dict)  # the report's `short` per SKU
    seats_blocked: dict[str, int] = field(default_factory=dict)  # the report's `blocked`
    status: str = RunStatus.FAILED.value  # the run's status (`licsync runs`)
    last_success: float | None = None  # when the last run that succeeded ended (Unix time)

    @property
    def failed(self) -> bool:
        return self.exit_code not in (ExitCode.OK, ExitCode.PROBLEMS)


def _problem_counts(store: StateStore | None, run_id: str) -> tuple[int | None, int | None]:
    """(open problems, problems this run opened) as the store holds them after the run."""
    if store is None:
        return None, None
    records = store.list_problems()
    new = sum(1 for r in records if r.last_run_id == run_id and r.attempts == 1)
    return len(records), new


def report_for(
    *,
    exit_code: int,
    duration: float,
    tenant: str,
    events: RunEvents,
    result: SyncResult | None = None,
    store: StateStore | None = None,
    error: str | None = None,
    status: RunStatus = RunStatus.FAILED,
) -> RunReport:
    """The report of a finished run: `result` when it completed, `error` (and the run's
    `status`) when it did not; `store` (read after the run) gives the open and new problem
    records and when a run last succeeded."""
    report = RunReport(
        outcome=OUTCOMES.get(exit_code, OTHER_OUTCOME),
        exit_code=int(exit_code),
        duration_seconds=duration,
        tenant=tenant,
        error=error,
        retries=events.retries,
        throttled=events.throttled,
        throttle_wait_seconds=events.throttle_wait_seconds,
        status=status.value,
    )
    succeeded = store.latest_run(RunStatus.SUCCEEDED) if store is not None else None
    if succeeded is not None and succeeded.finished_at is not None:
        report.last_success = succeeded.finished_at.timestamp()
    if result is None:
        return report
    report.status = RunStatus.SUCCEEDED.value if result.dry_run else result.status.value
    if result.dry_run:
        report.last_success = report.finished_at
    report.tenant = result.tenant.tenant_id or tenant
    report.dry_run = result.dry_run
    report.incremental = result.incremental
    report.users_read, report.groups_read = len(result.tenant.users), len(result.tenant.groups)
    summary = result.summary()
    report.writes_ok, report.writes_failed = summary["writes_succeeded"], summary["writes_failed"]
    report.problems_resolved = result.resolved
    if result.dry_run:
        report.problems_open = len(result.problems)
    else:
        report.problems_open, report.problems_new = _problem_counts(store, result.run_id)
    seats = seat_forecast(result.plan, result.tenant)
    report.seats_short = {f.part_number or f.sku_id: f.short for f in seats}
    report.seats_blocked = {f.part_number or f.sku_id: f.blocked for f in seats}
    return report
