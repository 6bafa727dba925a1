"""What a sync commits when its writes are done: the run, its changes, the ledger, problems and
the tenant view, in one state-store transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from licsync.connector.view import TrackedRead, diff_rows
from licsync.graph import Action, WriteOutcome
from licsync.graph.writes import assign_key, location_key
from licsync.model import Ledger, LicenseError, Problem, Tenant, UserPlan
from licsync.store import (
    AppliedChange,
    ChangeAction,
    RunStatus,
    StateStore,
    StateTransaction,
    diff_ledger,
    settle_ledger,
    stale_rows,
)

if TYPE_CHECKING:
    from licsync.connector.sync import SyncResult

log = structlog.get_logger("licsync.sync")


def _failure_problems(
    change: UserPlan, outcome: WriteOutcome, plan_ledger: Ledger
) -> list[Problem]:
    error = outcome.license_error or LicenseError.OTHER
    message = outcome.failure
    skus = [a.sku_id for a in change.add_licenses] + list(change.remove_licenses)
    problems = []
    for sku_id in skus:
        entry = plan_ledger.get((change.user_id, sku_id))
        group = entry.groups[0] if entry and entry.groups else None
        problems.append(
            Problem(change.user_id, change.user_principal_name, sku_id, group, error, message)
        )
    return problems


def _changes(
    run_id: str, tenant: Tenant, change: UserPlan, outcomes: dict[str, WriteOutcome]
) -> list[AppliedChange]:
    records = []
    user = tenant.users.get(change.user_id)
    held = user.held_skus() if user else frozenset()
    loc = outcomes.get(location_key(change.user_id))
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
    assign = outcomes.get(assign_key(change.user_id))
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
        for sku_id in change.remove_licenses:
            records.append(
                AppliedChange(
                    run_id,
                    change.user_id,
                    sku_id,
                    ChangeAction.REMOVE,
                    outcome,
                    request_id=assign.request_id,
                )
            )
    return records


def record_run(
    store: StateStore,
    holder: str,
    result: SyncResult,
    outcomes: list[WriteOutcome],
    ledger: Ledger,
    read: TrackedRead,
) -> None:
    plan, tenant, run_id = result.plan, result.tenant, result.run_id
    by_key: dict[str, WriteOutcome] = {o.key: o for o in outcomes}
    succeeded: list[str] = []
    failed: list[str] = []
    changes: list[AppliedChange] = []
    problems = list(plan.problems)
    resolved_keys: list[tuple[str, str]] = []
    for change in plan.changes:
        mine = [
            by_key[k]
            for k in (location_key(change.user_id), assign_key(change.user_id))
            if k in by_key
        ]
        changes.extend(_changes(run_id, tenant, change, by_key))
        bad = next((o for o in mine if not o.ok), None)
        if bad is None:
            succeeded.append(change.user_id)
            resolved_keys.extend((change.user_id, a.sku_id) for a in change.add_licenses)
            resolved_keys.extend((change.user_id, s) for s in change.remove_licenses)
        else:
            failed.append(change.user_id)
            problems.extend(_failure_problems(change, bad, plan.ledger))
    unchanged = {u.user_id for u in plan.users if not u.has_change}
    settled = settle_ledger(ledger, plan.ledger, unchanged | set(succeeded))
    result.outcomes = outcomes
    result.succeeded_users = tuple(succeeded)
    result.failed_users = tuple(failed)
    result.problems = tuple(problems)
    result.fatal = any(o.action is Action.FATAL for o in outcomes)
    with store.transaction(holder=holder) as tx:
        tx.start_run("sync", run_id)
        tx.record_changes(changes)
        tx.apply_ledger_diff(diff_ledger(ledger, settled))
        tx.record_problems(run_id, problems)
        result.resolved = tx.resolve_problems(run_id, resolved_keys)
        _save_view(tx, run_id, read, written={c.user_id for c in changes}, advance=not result.fatal)
        status = RunStatus.FAILED if result.fatal else RunStatus.SUCCEEDED
        tx.finish_run(run_id, status, result.summary())


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
