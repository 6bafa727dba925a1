"""`licsync runs undo RUN_ID`: put back what one run changed.

    result = await run_undo(config, run_id, dry_run=False, users=None, force=False)

Every change the run applied was recorded with what it replaced (`store.Prior`: the user's
direct assignment of the SKU with its disabled plans, the usage location, licsync's ledger
entry). The undo reads the tenant, and for each user the run changed:

- a user whose licences or usage location no longer are what the run left (changed since, by
  anyone) is not touched and is reported `ChangedSinceRun`, unless `force`;
- otherwise the plan puts back each SKU as it was (assigned with its old disabled plans, or
  removed) and the usage location (a user who had none keeps the one the run set: a licensed
  user needs one), and the ledger entries as they were.

The plan then goes the way of a sync's (`connector.sync`): the guardrail on its removals, the
write-ahead intents, the writes under the lease, each user's outcome recorded as it arrives
(changes, ledger, problem records), one last transaction. The undo is itself a run (kind
`undo`) whose changes record what they replaced: it can be undone in turn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from licsync.config import Config
from licsync.connector.guardrail import Guardrail, check_guardrail, licensed_users
from licsync.connector.read_full import read_tenant
from licsync.connector.record import build_record, by_user
from licsync.connector.sync import write_plan
from licsync.errors import InputError
from licsync.exitcodes import ExitCode
from licsync.graph import WriteBudget
from licsync.model import Assignment, Ledger, Plan, Tenant, UserPlan
from licsync.outcomes import RunKind, RunStatus
from licsync.runtime import open_state, read_only_session, session
from licsync.store import (
    AppliedChange,
    ChangeAction,
    LedgerDiff,
    RunPhase,
    StateStore,
    diff_ledger,
)
from licsync.store.sqlstore import SUCCESSFUL_OUTCOMES

if TYPE_CHECKING:
    from licsync.graph.client import GraphClient

log = structlog.get_logger("licsync.undo")

CHANGED = "ChangedSinceRun"
NO_PRIOR = "NoPriorState"  # a change recorded before licsync kept what it replaced
GONE = "UserDeleted"


@dataclass
class UndoResult:
    """What the undo did (or, for a dry run, would do), user by user."""

    run_id: str  # the undo's own run (empty for a dry run)
    target: str  # the run undone
    dry_run: bool
    plan: Plan
    guardrail: Guardrail
    skipped: dict[str, str] = field(default_factory=dict)  # user → why not touched
    outcomes: dict[str, str] = field(default_factory=dict)  # user → what became of it
    names: dict[str, str] = field(default_factory=dict)  # user → principal name
    problems: int = 0
    stop_code: int | None = None

    @property
    def exit_code(self) -> int:
        if self.stop_code is not None:
            return self.stop_code
        return ExitCode.PROBLEMS if self.problems or self.skipped else ExitCode.OK

    def rows(self) -> list[dict[str, Any]]:
        """One row per user the run changed."""
        every = {**self.outcomes, **self.skipped}
        return [
            {"userPrincipalName": self.names.get(u, u), "userId": u, "outcome": every[u]}
            for u in sorted(every, key=lambda u: self.names.get(u, u))
        ]

    def summary(self) -> dict[str, Any]:
        values = list(self.outcomes.values())
        return {
            "undoes": self.target,
            "users": len(self.outcomes) + len(self.skipped),
            "restored": values.count("restored"),
            "already_as_before": values.count("already as before"),
            "failed": values.count("failed"),
            "changed_since_run": list(self.skipped.values()).count(CHANGED),
            "skipped": len(self.skipped),
            "removals": self.guardrail.removals,
        }


def undoable_changes(store: StateStore, run_id: str) -> list[AppliedChange]:
    """The applied changes of run `run_id`; InputError (exit 3) for an unknown run, one still
    running, or one that changed nothing."""
    run = store.get_run(run_id)
    if run is None:
        raise InputError(
            f"no run {run_id!r} in the state store (a dry run is never recorded): see "
            "`licsync runs`"
        )
    if run.kind in (RunKind.MIGRATE, RunKind.ROLLBACK):
        raise InputError(
            f"run {run_id} is a {run.kind}: undo it with `licsync migrate rollback FILE` (its "
            "rollback file knows each wave's state)"
        )
    if run.status is RunStatus.RUNNING:
        raise InputError(f"run {run_id} is still running: undo it once it has ended")
    changes = [c for c in store.list_changes(run_id=run_id) if c.outcome in SUCCESSFUL_OUTCOMES]
    if not changes:
        raise InputError(f"run {run_id} ({run.kind}, {run.status}) applied no change to undo")
    return changes


def _left(change: AppliedChange) -> frozenset[str] | str | None:
    """What the change left: the SKU's disabled plans (None: not assigned directly), or the
    usage location."""
    if change.action is ChangeAction.USAGE_LOCATION:
        return change.usage_location
    return None if change.action is ChangeAction.REMOVE else change.disabled_plans


def plan_undo(
    tenant: Tenant,
    ledger: Ledger,
    changes: Iterable[AppliedChange],
    *,
    users: frozenset[str] | None = None,
    force: bool = False,
) -> tuple[Plan, dict[str, str], Ledger]:
    """The plan that puts back what `changes` replaced (pure): the users to write, the users
    not touched (and why), and the ledger the undo ends with (for every user it restores)."""
    by_user_changes: dict[str, list[AppliedChange]] = {}
    for c in changes:
        if users is None or c.user_id in users:
            by_user_changes.setdefault(c.user_id, []).append(c)
    skipped: dict[str, str] = {}
    plans: list[UserPlan] = []
    target = dict(ledger)
    for user_id, done in by_user_changes.items():
        user = tenant.users.get(user_id)
        if user is None:
            skipped[user_id] = GONE
            continue
        if any(c.prior is None for c in done):
            skipped[user_id] = NO_PRIOR
            continue
        direct = user.direct_licenses()
        now = {c.sku_id: direct.get(c.sku_id) for c in done if c.sku_id is not None}
        changed = any(
            (user.usage_location if c.sku_id is None else now[c.sku_id]) != _left(c) for c in done
        )
        if changed and not force:
            skipped[user_id] = CHANGED
            continue
        add, remove, location = [], [], None
        for c in done:
            prior = c.prior
            assert prior is not None
            if c.sku_id is None:
                if prior.usage_location and prior.usage_location != user.usage_location:
                    location = prior.usage_location
                continue
            if prior.direct != now[c.sku_id]:
                if prior.direct is None:
                    remove.append(c.sku_id)
                else:
                    add.append(Assignment(c.sku_id, prior.direct))
            key = (user_id, c.sku_id)
            if prior.ledger is None:
                target.pop(key, None)
            else:
                target[key] = prior.ledger
        plans.append(
            UserPlan(
                user_id,
                user.user_principal_name,
                user.assigned_licenses,
                (),
                tuple(add),
                tuple(remove),
                location,
            )
        )
    restored = {p.user_id for p in plans}
    plan_ledger = {k: e for k, e in target.items() if k[0] in restored}
    return Plan(tuple(plans), (), (), plan_ledger), skipped, target


async def run_undo(
    config: Config,
    run_id: str,
    *,
    dry_run: bool = False,
    users: Callable[[Tenant], frozenset[str]] | None = None,
    force: bool = False,
    allow_removals: int | None = None,
    client: GraphClient | None = None,
    budget: WriteBudget | None = None,
    progress: bool | None = None,
) -> UndoResult:
    """Undo run `run_id` (see the module docstring); `users`: only the users it picks in the
    tenant as read."""
    if dry_run:
        async with read_only_session(config, client=client) as (store, graph):
            if store is None:
                raise InputError(f"no run {run_id!r}: the state store does not exist yet")
            changes = undoable_changes(store, run_id)
            tenant = await read_tenant(graph, config, progress=progress)
            ledger = store.load_ledger()
            args = (tenant, ledger, changes, users, force, allow_removals)
            return _judge(config, "", run_id, *args, dry_run=True)[0]
    store, _ = open_state(config, read_only=True)  # a refusal records no run
    if store is None:
        raise InputError(f"no run {run_id!r}: the state store does not exist yet")
    with store:
        undoable_changes(store, run_id)
    async with session(config, RunKind.UNDO, client=client, budget=budget) as s:
        async with s.keeping_lease():
            changes = undoable_changes(s.store, run_id)
            s.enter(RunPhase.READ)
            tenant = await read_tenant(s.client, config, progress=progress)
            s.enter(RunPhase.PLAN)
            ledger = s.store.load_ledger()
            args = (tenant, ledger, changes, users, force, allow_removals)
            result, target = _judge(config, s.run_id, run_id, *args)
            if result.guardrail.tripped:
                raise result.guardrail.error(
                    "Review it with `licsync runs undo --dry-run`, then approve with "
                    f"`--allow-removals {result.guardrail.removals}`."
                )
            plan = result.plan
            recorder, _ = await write_plan(s, tenant, plan, ledger, progress)
        s.enter(RunPhase.RECORD)
        record = build_record(plan, recorder.records)
        for user_id in record.succeeded_users:
            result.outcomes[user_id] = "restored"
        for user_id in record.failed_users:
            result.outcomes[user_id] = "failed"
        for user_id in record.unsent_users:
            result.outcomes[user_id] = "not sent"
        result.problems = len(record.problems)
        if record.unsent_users:
            result.stop_code = s.stop_code
        status = RunStatus.STOPPED if record.unsent_users else RunStatus.SUCCEEDED
        unwritten = _ledger_only(ledger, target, {c.user_id for c in plan.changes}, result)
        s.record(
            RunKind.UNDO,
            ledger=unwritten,
            finish=(status, result.summary()),
            exit_code=result.exit_code,
        )
    log.info("undo.done", **result.summary())
    return result


def _judge(
    config: Config,
    own_id: str,
    run_id: str,
    tenant: Tenant,
    ledger: Ledger,
    changes: list[AppliedChange],
    users: Callable[[Tenant], frozenset[str]] | None,
    force: bool,
    allow_removals: int | None,
    *,
    dry_run: bool = False,
) -> tuple[UndoResult, Ledger]:
    chosen = users(tenant) if users is not None else None
    plan, skipped, target = plan_undo(tenant, ledger, changes, users=chosen, force=force)
    guard = check_guardrail(
        config.settings.guardrail,
        removals=sum(len(u.remove_licenses) for u in plan.changes),
        licensed=licensed_users(tenant),
        allow_removals=allow_removals,
    )
    result = UndoResult(own_id, run_id, dry_run, plan, guard, skipped)
    result.names = {c.user_id: c.user_principal_name or c.user_id for c in changes}
    for u in plan.users:
        if not u.has_change:
            result.outcomes[u.user_id] = "already as before"
        elif dry_run:
            result.outcomes[u.user_id] = "would restore"
    return result, target


def _ledger_only(
    ledger: Ledger, target: Ledger, written: set[str], result: UndoResult
) -> LedgerDiff:
    """The ledger entries of users the undo restores without a write (Graph already shows
    what they had): theirs are put back in the last transaction."""
    quiet = {u for u, o in result.outcomes.items() if o == "already as before"} - written
    before, after = by_user(ledger), by_user(target)
    diffs = [diff_ledger(before.get(u, {}), after.get(u, {})) for u in quiet]
    return LedgerDiff(
        tuple(e for d in diffs for e in d.upserts), tuple(k for d in diffs for k in d.deletes)
    )
