"""What a sync commits, and when.

Pure functions compute it (`user_record` for one user's writes, `build_record` for the run);
the commits only persist it, each in one state-store transaction under the lease:

1. `begin_run`, before the first write: every write's intent
   (`licsync.connector.recovery.intents_for`); if they cannot be recorded nothing is sent;
2. `OutcomeRecorder`, as the writes end: every few hundred users (or every second), their
   changes, ledger entries, failure problems and resolved problems, and their intents cleared;
3. `commit_run`, after the writes: the predicted problems, the ledger entries of users without a
   change, the delta links and the cached view, and how the run ended.

A write never sent (the run stopped: a signal, `[state] max_run_seconds`, a fatal answer) is
neither a change nor a problem: the user's intent is cleared and the next run plans it again.

A run killed between 1 and 3 leaves its unrecorded intents and a `running` run: the next run
reconciles them against Graph (`licsync.connector.recovery`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from licsync.connector.licence_writes import UserWrites, failure_problem
from licsync.connector.view import TrackedRead, diff_rows
from licsync.graph import Action, WriteResult
from licsync.model import Ledger, Plan, Problem, Tenant, UserPlan
from licsync.store import (
    AppliedChange,
    ChangeAction,
    Intent,
    LedgerDiff,
    Prior,
    RunEnd,
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
    unsent: bool = False  # the run stopped before this user's write: the next run does it


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A whole run's writes, from its user records (for the result and its summary)."""

    succeeded_users: tuple[str, ...]
    failed_users: tuple[str, ...]
    problems: tuple[Problem, ...]
    fatal: bool
    unsent_users: tuple[str, ...] = ()


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


def _change(
    run_id: str,
    change: UserPlan,
    outcome: WriteResult,
    action: ChangeAction,
    sku_id: str | None,
    prior: Prior,
    **fields: Any,
) -> AppliedChange:
    return AppliedChange(
        run_id,
        change.user_id,
        sku_id,
        action,
        outcome.outcome,
        request_id=outcome.request_id,
        user_principal_name=change.user_principal_name,
        http_status=outcome.status,
        error=None if outcome.ok else outcome.failure,
        prior=prior,
        **fields,
    )


def _changes(
    run_id: str, tenant: Tenant, change: UserPlan, writes: UserWrites, before: Ledger
) -> list[AppliedChange]:
    """The change records of a user's writes (never-sent writes are none), each with what it
    replaced (`Prior`: the user's direct assignment, usage location and ledger entry)."""
    records = []
    user = tenant.users.get(change.user_id)
    held = user.held_skus() if user else frozenset()
    direct = user.direct_licenses() if user else {}
    location = user.usage_location if user else None

    def prior(sku_id: str | None) -> Prior:
        if sku_id is None:
            return Prior(usage_location=location)
        return Prior(direct.get(sku_id), location, before.get((change.user_id, sku_id)))

    loc = writes.location
    if change.usage_location and loc is not None and loc.action is not Action.SKIPPED:
        records.append(
            _change(
                run_id,
                change,
                loc,
                ChangeAction.USAGE_LOCATION,
                None,
                prior(None),
                usage_location=change.usage_location,
            )
        )
    assign = writes.assign
    if assign is not None and assign.action is not Action.SKIPPED:
        for a in change.add_licenses:
            action = ChangeAction.UPDATE if a.sku_id in held else ChangeAction.ADD
            records.append(
                _change(
                    run_id,
                    change,
                    assign,
                    action,
                    a.sku_id,
                    prior(a.sku_id),
                    disabled_plans=a.disabled_plans,
                )
            )
        records.extend(
            _change(run_id, change, assign, ChangeAction.REMOVE, sku_id, prior(sku_id))
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
    unsent = bad is not None and bad.action is Action.SKIPPED
    if bad is None:
        resolved = [(change.user_id, a.sku_id) for a in change.add_licenses]
        resolved += [(change.user_id, s) for s in change.remove_licenses]
        diff, problems = diff_ledger(before, planned), []
    else:  # a write never sent (the run stopped) is no problem of the user's
        resolved, diff = [], LedgerDiff()
        problems = [] if unsent else _failure_problems(change, bad, planned)
    return UserRecord(
        change.user_id,
        tuple(_changes(run_id, tenant, change, writes, before)),
        tuple(problems),
        tuple(resolved),
        diff,
        ok=bad is None,
        fatal=any(o.action is Action.FATAL for o in writes.outcomes),
        unsent=unsent,
    )


def build_record(plan: Plan, records: Iterable[UserRecord]) -> RunRecord:
    """The run's record: predicted problems first, then those of failed writes (in the plan's
    order of users, whatever order the writes ended in)."""
    order = {c.user_id: i for i, c in enumerate(plan.changes)}
    records = sorted(records, key=lambda r: order.get(r.user_id, len(order)))
    return RunRecord(
        succeeded_users=tuple(r.user_id for r in records if r.ok),
        failed_users=tuple(r.user_id for r in records if not r.ok and not r.unsent),
        problems=(*plan.problems, *(p for r in records for p in r.problems)),
        fatal=any(r.fatal for r in records),
        unsent_users=tuple(r.user_id for r in records if r.unsent),
    )


def begin_run(store: StateStore, holder: str, intents: Iterable[Intent]) -> None:
    """Record the run's write intents before the first write (raises StateError: then nothing
    may be sent)."""
    with store.transaction(holder=holder) as tx:
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
    stopped: bool,
    end: Callable[[], RunEnd],
    resolved: Callable[[int], object] = lambda _: None,
) -> None:
    """The run's last transaction (after every user's outcome is recorded): predicted problems
    (and, unless the run `stopped` before all its writes, every open one it no longer sees
    resolved, counted through `resolved` before `end`), the ledger of users without a change,
    the view and delta links, how the run ended (`end`)."""
    unchanged = {u.user_id for u in plan.users if not u.has_change}
    with store.transaction(holder=holder) as tx:
        tx.record_problems(run_id, plan.problems)
        if not stopped:
            resolved(tx.resolve_unseen_problems(run_id))  # causes this run no longer sees
        tx.apply_ledger_diff(diff_ledger(ledger, settle_ledger(ledger, plan.ledger, unchanged)))
        tx.clear_intents(run_id)
        _save_view(tx, run_id, read, written=set(written), advance=not fatal)
        tx.end_run(run_id, end())


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
