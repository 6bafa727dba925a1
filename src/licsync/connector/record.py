"""What a sync commits when its writes are done, computed by a pure function (`build_record`)
and persisted by another (`commit_run`): the run, its changes, the ledger, problems and the
tenant view, in one state-store transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from licsync.connector.licence_writes import UserWrites, failure_problem
from licsync.connector.view import TrackedRead, diff_rows
from licsync.graph import Action, WriteOutcome
from licsync.model import Ledger, Plan, Problem, Tenant, UserPlan
from licsync.store import (
    AppliedChange,
    ChangeAction,
    LedgerDiff,
    RunStatus,
    StateStore,
    StateTransaction,
    diff_ledger,
    settle_ledger,
    stale_rows,
)


@dataclass(frozen=True, slots=True)
class RunRecord:
    """What a sync commits for its writes: computed by `build_record`, persisted by
    `commit_run`."""

    changes: tuple[AppliedChange, ...]
    succeeded_users: tuple[str, ...]
    failed_users: tuple[str, ...]
    problems: tuple[Problem, ...]
    resolved_keys: tuple[tuple[str, str], ...]
    ledger_diff: LedgerDiff
    fatal: bool


def _failure_problems(
    change: UserPlan, outcome: WriteOutcome, plan_ledger: Ledger
) -> list[Problem]:
    problems = []
    for sku_id in [a.sku_id for a in change.add_licenses] + list(change.remove_licenses):
        entry = plan_ledger.get((change.user_id, sku_id))
        group = entry.groups[0] if entry and entry.groups else None
        problems.append(
            failure_problem(outcome, change.user_id, change.user_principal_name, sku_id, group)
        )
    return problems


def _changes(
    run_id: str, tenant: Tenant, change: UserPlan, writes: UserWrites
) -> list[AppliedChange]:
    records = []
    user = tenant.users.get(change.user_id)
    held = user.held_skus() if user else frozenset()
    loc = writes.location
    if change.usage_location and loc is not None:
        records.append(
            AppliedChange(
                run_id,
                change.user_id,
                None,
                ChangeAction.USAGE_LOCATION,
                "succeeded" if loc.ok else str(loc.action),
                usage_location=change.usage_location,
                request_id=loc.request_id,
            )
        )
    assign = writes.assign
    if assign is not None:
        outcome = "succeeded" if assign.ok else str(assign.action)
        for a in change.add_licenses:
            action = ChangeAction.UPDATE if a.sku_id in held else ChangeAction.ADD
            records.append(
                AppliedChange(
                    run_id,
                    change.user_id,
                    a.sku_id,
                    action,
                    outcome,
                    disabled_plans=a.disabled_plans,
                    request_id=assign.request_id,
                )
            )
        records.extend(
            AppliedChange(
                run_id,
                change.user_id,
                sku_id,
                ChangeAction.REMOVE,
                outcome,
                request_id=assign.request_id,
            )
            for sku_id in change.remove_licenses
        )
    return records


def build_record(
    run_id: str, tenant: Tenant, plan: Plan, ledger: Ledger, writes: Mapping[str, UserWrites]
) -> RunRecord:
    """What the run commits, from the plan, the ledger it started from and the writes' outcomes
    by user: the ledger takes the plan's entries for users whose writes all succeeded (and users
    without a change) and keeps the old ones for the rest."""
    succeeded: list[str] = []
    failed: list[str] = []
    changes: list[AppliedChange] = []
    problems = list(plan.problems)
    resolved: list[tuple[str, str]] = []
    for change in plan.changes:
        mine = writes.get(change.user_id, UserWrites())
        changes.extend(_changes(run_id, tenant, change, mine))
        bad = mine.failure
        if bad is None:
            succeeded.append(change.user_id)
            resolved.extend((change.user_id, a.sku_id) for a in change.add_licenses)
            resolved.extend((change.user_id, s) for s in change.remove_licenses)
        else:
            failed.append(change.user_id)
            problems.extend(_failure_problems(change, bad, plan.ledger))
    unchanged = {u.user_id for u in plan.users if not u.has_change}
    settled = settle_ledger(ledger, plan.ledger, unchanged | set(succeeded))
    return RunRecord(
        changes=tuple(changes),
        succeeded_users=tuple(succeeded),
        failed_users=tuple(failed),
        problems=tuple(problems),
        resolved_keys=tuple(resolved),
        ledger_diff=diff_ledger(ledger, settled),
        fatal=any(o.action is Action.FATAL for w in writes.values() for o in w.outcomes),
    )


def commit_run(
    store: StateStore,
    holder: str,
    run_id: str,
    record: RunRecord,
    read: TrackedRead,
    summary: Callable[[int], Mapping[str, Any]],
) -> int:
    """Persist `record` in one transaction under the lease; returns the problems it resolved.
    `summary(resolved)` is the run's summary for its `runs` row."""
    with store.transaction(holder=holder) as tx:
        tx.start_run("sync", run_id)
        tx.record_changes(record.changes)
        tx.apply_ledger_diff(record.ledger_diff)
        tx.record_problems(run_id, record.problems)
        resolved = tx.resolve_problems(run_id, record.resolved_keys)
        written = {c.user_id for c in record.changes}
        _save_view(tx, run_id, read, written=written, advance=not record.fatal)
        status = RunStatus.FAILED if record.fatal else RunStatus.SUCCEEDED
        tx.finish_run(run_id, status, summary(resolved))
    return resolved


def _save_view(
    tx: StateTransaction, run_id: str, read: TrackedRead, written: set[str], advance: bool
) -> None:
    """Commit the run's delta links and tenant view (in the run's transaction). The users it
    wrote are marked stale: their next read must not trust the delta alone. A run whose writes
    hit a fatal error keeps the old links and view (the next run replays from them) and only
    adds the stale marks."""
    if not advance:
        tx.patch_tenant_cache(stale_rows(written))
        return
    for resource, link in read.links.items():
        tx.hold_delta_link(run_id, resource, link)
    tx.commit_delta_links(run_id)
    rows = read.view.rows(stale=written)
    if read.incremental:
        tx.patch_tenant_cache(*diff_rows(read.stored_rows, rows))
    else:
        tx.replace_tenant_cache((k, i, d) for (k, i), d in rows.items())
