"""What a sync commits, and when.

Pure functions compute it (`user_record` for one user's writes, `build_record` for the run);
the commits only persist it, each in one state-store transaction under the lease:

1. `begin_run`, before the first write: the run (status `running`) and every write's intent
   (`licsync.connector.recovery.intents_for`); if they cannot be recorded nothing is sent;
2. `OutcomeRecorder`, as the writes end: every few hundred users (or every second), their
   changes, ledger entries, failure problems and resolved problems, and their intents cleared;
3. `commit_run`, after the writes: the predicted problems, the ledger entries of users without a
   change, the delta links and the cached view, and the run's status and summary.

A run killed between 1 and 3 leaves its unrecorded intents and a `running` run: the next run
reconciles them against Graph (`licsync.connector.recovery`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from licsync.connector.licence_writes import UserWrites, failure_problem
from licsync.connector.view import TrackedRead, diff_rows
from licsync.graph import Action, WriteResult
from licsync.model import Ledger, Plan, Problem, Tenant, UserPlan
from licsync.outcomes import RunStatus
from licsync.store import (
    AppliedChange,
    ChangeAction,
    Intent,
    LedgerDiff,
    StateStore,
    StateTransaction,
    diff_ledger,
    settle_ledger,
    stale_rows,
)

FLUSH_USERS = 200  # users per outcome transaction
FLUSH_SECONDS = 1.0  # at the latest, a second after the first unrecorded outcome


@dataclass(frozen=True, slots=True)
class UserRecord:
    """What one user's writes commit."""

    user_id: str
    changes: tuple[AppliedChange, ...]
    problems: tuple[Problem, ...]
    resolved: tuple[tuple[str, str], ...]
    ledger_diff: LedgerDiff
    ok: bool
    fatal: bool


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A whole run's writes, from its user records (for the result and its summary)."""

    succeeded_users: tuple[str, ...]
    failed_users: tuple[str, ...]
    problems: tuple[Problem, ...]
    fatal: bool


def by_user(ledger: Ledger) -> dict[str, Ledger]:
    """The ledger split by user."""
    split: dict[str, Ledger] = {}
    for key, entry in ledger.items():
        split.setdefault(key[0], {})[key] = entry
    return split


def _failure_problems(change: UserPlan, outcome: WriteResult, plan_ledger: Ledger) -> list[Problem]:
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
                loc.outcome,
                usage_location=change.usage_location,
                request_id=loc.request_id,
            )
        )
    assign = writes.assign
    if assign is not None:
        outcome = assign.outcome
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


def user_record(
    run_id: str,
    tenant: Tenant,
    change: UserPlan,
    writes: UserWrites,
    before: Ledger,
    planned: Ledger,
) -> UserRecord:
    """What `change`'s writes commit: the plan's ledger entries for the user (`planned`) if they
    all succeeded, the old ones (`before`) and a problem per licence otherwise."""
    bad = writes.failure
    if bad is None:
        resolved = [(change.user_id, a.sku_id) for a in change.add_licenses]
        resolved += [(change.user_id, s) for s in change.remove_licenses]
        diff, problems = diff_ledger(before, planned), []
    else:
        resolved, diff = [], LedgerDiff()
        problems = _failure_problems(change, bad, planned)
    return UserRecord(
        change.user_id,
        tuple(_changes(run_id, tenant, change, writes)),
        tuple(problems),
        tuple(resolved),
        diff,
        ok=bad is None,
        fatal=any(o.action is Action.FATAL for o in writes.outcomes),
    )


def build_record(plan: Plan, records: Iterable[UserRecord]) -> RunRecord:
    """The run's record: predicted problems first, then those of failed writes (in the plan's
    order of users, whatever order the writes ended in)."""
    order = {c.user_id: i for i, c in enumerate(plan.changes)}
    records = sorted(records, key=lambda r: order.get(r.user_id, len(order)))
    return RunRecord(
        succeeded_users=tuple(r.user_id for r in records if r.ok),
        failed_users=tuple(r.user_id for r in records if not r.ok),
        problems=(*plan.problems, *(p for r in records for p in r.problems)),
        fatal=any(r.fatal for r in records),
    )


def begin_run(store: StateStore, holder: str, run_id: str, intents: Iterable[Intent]) -> None:
    """Record the run and its write intents before the first write (raises StateError: then
    nothing may be sent)."""
    with store.transaction(holder=holder) as tx:
        tx.start_run("sync", run_id)
        tx.record_intents(intents)


class OutcomeRecorder:
    """Commits each user's outcome soon after it arrives, in small transactions."""

    def __init__(
        self,
        store: StateStore,
        holder: str,
        run_id: str,
        tenant: Tenant,
        plan: Plan,
        ledger: Ledger,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store, self._holder, self._run_id = store, holder, run_id
        self._tenant = tenant
        self._changes = {c.user_id: c for c in plan.changes}
        self._before, self._planned = by_user(ledger), by_user(plan.ledger)
        self._clock = clock
        self._buffer: list[UserRecord] = []
        self._since: float | None = None
        self.records: list[UserRecord] = []
        self.resolved = 0

    def add(self, user_id: str, writes: UserWrites) -> None:
        """Take one user's finished writes; commit when enough have gathered."""
        record = user_record(
            self._run_id,
            self._tenant,
            self._changes[user_id],
            writes,
            self._before.get(user_id, {}),
            self._planned.get(user_id, {}),
        )
        self.records.append(record)
        self._buffer.append(record)
        if self._since is None:
            self._since = self._clock()
        if len(self._buffer) >= FLUSH_USERS or self._clock() - self._since >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Commit what is buffered (raises StateError if the store fails or the lease is lost)."""
        if not self._buffer:
            return
        users = [r.user_id for r in self._buffer]
        with self._store.transaction(holder=self._holder) as tx:
            tx.record_changes(c for r in self._buffer for c in r.changes)
            tx.apply_ledger_diff(
                LedgerDiff(
                    tuple(e for r in self._buffer for e in r.ledger_diff.upserts),
                    tuple(k for r in self._buffer for k in r.ledger_diff.deletes),
                )
            )
            tx.record_problems(self._run_id, (p for r in self._buffer for p in r.problems))
            self.resolved += tx.resolve_problems(
                self._run_id, (k for r in self._buffer for k in r.resolved)
            )
            tx.clear_intents(self._run_id, users)
            tx.patch_tenant_cache(stale_rows(users))  # re-read next run whatever happens
        self._buffer.clear()
        self._since = None


def commit_run(
    store: StateStore,
    holder: str,
    run_id: str,
    plan: Plan,
    ledger: Ledger,
    read: TrackedRead,
    *,
    written: Sequence[str],
    fatal: bool,
    summary: Callable[[], Mapping[str, Any]],
    resolved: Callable[[int], object] = lambda _: None,
) -> None:
    """The run's last transaction (after every user's outcome is recorded): predicted problems
    (and every open one the run no longer sees resolved, counted through `resolved` before the
    summary), the ledger of users without a change, the view and delta links, the run's status."""
    unchanged = {u.user_id for u in plan.users if not u.has_change}
    with store.transaction(holder=holder) as tx:
        tx.record_problems(run_id, plan.problems)
        resolved(tx.resolve_unseen_problems(run_id))  # causes this run no longer sees
        tx.apply_ledger_diff(diff_ledger(ledger, settle_ledger(ledger, plan.ledger, unchanged)))
        tx.clear_intents(run_id)
        _save_view(tx, run_id, read, written=set(written), advance=not fatal)
        status = RunStatus.FAILED if fatal else RunStatus.SUCCEEDED
        tx.finish_run(run_id, status, summary())


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
