"""Crash recovery: the write-ahead intents of a run, and their reconciliation against Graph.

Before a sync sends its licence writes it records one `Intent` per user and SKU it writes:
the direct assignment the write leaves (`expect`: the disabled plans, or None when the SKU is
removed) and licsync's ledger entry before and after. The run clears a user's intents when it
records that user's outcome. Intents still there at the start of a later run belong to a run
that died (killed, out of memory, a node drain) with writes whose outcome it never recorded.

The next run reads the tenant, then settles each such intent by what Graph shows: a user
whose direct assignment of the SKU is exactly what the write would leave is taken as written
(the ledger takes the intent's `after` entry: the licence is licsync's, and the user's own
prior assignment is kept in it for restoring); anything else as not written (the ledger keeps
`before`). The dead run is marked `interrupted`, with what it applied.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import structlog

from licsync.model import Ledger, Plan, Tenant
from licsync.outcomes import RunStatus, WriteOutcome
from licsync.store import (
    AppliedChange,
    ChangeAction,
    Intent,
    LedgerDiff,
    Run,
    StateStore,
    normalise_ownership,
)

log = structlog.get_logger("licsync.recovery")


def intents_for(run_id: str, plan: Plan, ledger: Ledger) -> list[Intent]:
    """One intent per licence the plan's `assignLicense` calls add, update or remove."""
    intents = []
    for change in plan.changes:
        writes: list[tuple[str, frozenset[str] | None]]
        writes = [(a.sku_id, a.disabled_plans) for a in change.add_licenses]
        writes += [(sku_id, None) for sku_id in change.remove_licenses]
        for sku_id, expect in writes:
            key = (change.user_id, sku_id)
            intents.append(
                Intent(
                    run_id, change.user_id, sku_id, expect, ledger.get(key), plan.ledger.get(key)
                )
            )
    return intents


@dataclass(frozen=True, slots=True)
class Recovery:
    """What the intents of dead runs turn out to have done."""

    diff: LedgerDiff = field(default_factory=LedgerDiff)
    changes: tuple[AppliedChange, ...] = ()
    applied: dict[str, int] = field(default_factory=dict)  # run id → writes found applied
    not_applied: dict[str, int] = field(default_factory=dict)
    users: frozenset[str] = frozenset()


def reconcile(intents: Iterable[Intent], tenant: Tenant) -> Recovery:
    """Settle each intent by the user's direct assignment of its SKU as `tenant` shows it."""
    upserts, deletes, changes = [], [], []
    applied: dict[str, int] = {}
    not_applied: dict[str, int] = {}
    users = set()
    for intent in intents:
        users.add(intent.user_id)
        user = tenant.users.get(intent.user_id)
        held = user.direct_licenses().get(intent.sku_id) if user is not None else None
        if user is None or held != intent.expect:
            not_applied[intent.run_id] = not_applied.get(intent.run_id, 0) + 1
            continue
        applied[intent.run_id] = applied.get(intent.run_id, 0) + 1
        if intent.after is not None:
            upserts.append(normalise_ownership(intent.after))
        elif intent.before is not None:
            deletes.append((intent.user_id, intent.sku_id))
        action = (
            ChangeAction.REMOVE
            if intent.expect is None
            else ChangeAction.ADD
            if intent.before is None
            else ChangeAction.UPDATE
        )
        changes.append(
            AppliedChange(
                intent.run_id,
                intent.user_id,
                intent.sku_id,
                action,
                WriteOutcome.APPLIED,  # found applied by the read after the run died
                disabled_plans=intent.expect or frozenset(),
            )
        )
    return Recovery(
        LedgerDiff(tuple(upserts), tuple(deletes)),
        tuple(changes),
        applied,
        not_applied,
        frozenset(users),
    )


def apply_diff(ledger: Ledger, diff: LedgerDiff) -> Ledger:
    """`ledger` with `diff` applied (what a dry run plans with, writing nothing)."""
    deleted = set(diff.deletes)
    settled = {k: v for k, v in ledger.items() if k not in deleted}
    settled.update(((e.user_id, e.sku_id), e) for e in diff.upserts)
    return settled


def recover(
    store: StateStore, holder: str, run_id: str, recovery: Recovery, dead: Sequence[Run]
) -> None:
    """Persist `recovery` and mark the `dead` runs interrupted, in one transaction."""
    with store.transaction(holder=holder) as tx:
        tx.apply_ledger_diff(recovery.diff)
        tx.record_changes(recovery.changes)
        for dead_id in {*recovery.applied, *recovery.not_applied} - {r.id for r in dead}:
            tx.clear_intents(dead_id)  # a finished run's leftovers (never expected)
        for run in dead:
            tx.clear_intents(run.id)
            tx.finish_run(
                run.id,
                RunStatus.INTERRUPTED,
                {
                    **(run.summary or {}),
                    "interrupted": True,
                    "recovered_by": run_id,
                    "writes_found_applied": recovery.applied.get(run.id, 0),
                    "writes_found_not_applied": recovery.not_applied.get(run.id, 0),
                },
            )
    log.warning(
        "sync.recovered",
        runs=[r.id for r in dead],
        writes_found_applied=sum(recovery.applied.values()),
        writes_found_not_applied=sum(recovery.not_applied.values()),
    )
