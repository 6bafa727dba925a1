"""`licsync sync`, the connector's main job: read → plan → guardrail → write → record.

    result = await run_sync(config, dry_run=False, allow_removals=None, full=False)

1. open the state store (`[state] url`) and, unless this is a dry run, take the write lease
   (renewed every third of its TTL until the run records, reads included); a dry run opens the
   store read-only, and plans with an empty ledger when the SQLite file does not exist (it
   creates nothing, and takes no delta links it could not keep);
2. read the tenant through Graph (`connector.read_full`, `connector.read_delta`):
   incrementally, by patching the cached tenant view with `users/delta` and `groups/delta`
   from the stored delta links, or in full
   (`full=True`, no cache yet, or Graph refused a link), taking new links first; load the ledger;
3. `make_plan`; then the guardrail: too many removals, or a rule group that reads empty while
   the ledger says licsync licensed members through it, stops the run before any write
   (`GuardrailError`, exit 6) unless `--allow-removals N` covers the count;
4. send the writes (`licsync.connector.licence_writes`);
5. in ONE store transaction: the run, every change with its outcome and request id, the ledger
   for users whose writes succeeded (the others keep their old entries), the problems (predicted
   and failed writes), the problems resolved by successful writes and, unless a write was
   fatal, the new delta links and the cached tenant view;
6. release the lease.

Nothing is written to the store on a path that fails before the writes (the lease aside).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import structlog

from licsync.config import Config, resolve_rules
from licsync.connector.guardrail import (
    Guardrail,
    check_guardrail,
    emptied_rule_groups,
    licensed_users,
)
from licsync.connector.licence_writes import UserWrites, apply_plan
from licsync.connector.planning import make_plan
from licsync.connector.read_delta import DeltaRefused, read_incremental, start_delta
from licsync.connector.read_full import DELTA_RESOURCES, read_tenant
from licsync.connector.record import RunRecord, build_record, commit_run
from licsync.connector.view import TenantView, TrackedRead
from licsync.exitcodes import ExitCode
from licsync.graph import GraphClient, WriteBudget, WriteOutcome
from licsync.model import Ledger, Plan, Problem, Tenant
from licsync.runtime import read_only_session, session
from licsync.store import (
    StateStore,
)

log = structlog.get_logger("licsync.sync")


@dataclass
class SyncResult:
    run_id: str
    dry_run: bool
    tenant: Tenant
    plan: Plan
    guardrail: Guardrail
    incremental: bool = False
    outcomes: list[WriteOutcome] = field(default_factory=list)
    succeeded_users: tuple[str, ...] = ()
    failed_users: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = ()
    resolved: int = 0
    fatal: bool = False

    @property
    def exit_code(self) -> ExitCode:
        if self.fatal:
            return ExitCode.GRAPH
        return ExitCode.PROBLEMS if self.problems else ExitCode.OK

    def settle(self, record: RunRecord, writes: Mapping[str, UserWrites]) -> None:
        """Take the outcome of the writes."""
        self.outcomes = [o for w in writes.values() for o in w.outcomes]
        self.succeeded_users = record.succeeded_users
        self.failed_users = record.failed_users
        self.problems = record.problems
        self.fatal = record.fatal

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "read": "incremental" if self.incremental else "full",
            "users": len(self.tenant.users),
            "changes": len(self.plan.changes),
            "removals": self.guardrail.removals,
            "writes": len(self.outcomes),
            "writes_succeeded": sum(1 for o in self.outcomes if o.ok),
            "writes_failed": sum(1 for o in self.outcomes if not o.ok),
            "users_succeeded": len(self.succeeded_users),
            "users_failed": len(self.failed_users),
            "problems": len(self.problems),
            "problems_resolved": self.resolved,
        }


def _stored_links(store: StateStore | None) -> dict[str, str] | None:
    """The committed delta link of each resource; None unless the store has all of them and
    the cached view (schema version 3)."""
    if store is None or store.schema_version < 3:
        return None
    links = {r: store.delta_link(r) or "" for r in DELTA_RESOURCES}
    return links if all(links.values()) else None


async def read_for_sync(
    client: GraphClient,
    config: Config,
    store: StateStore | None,
    *,
    full: bool = False,
    track: bool = True,
    progress: bool | None = None,
) -> TrackedRead:
    """Read incrementally when the store holds a tenant view and delta links (and `full` is not
    asked); otherwise, or when Graph refuses a link, in full. `track` takes fresh delta links
    before a full read (a dry run has nowhere to keep them)."""
    links = _stored_links(store) if not full else None
    if links is not None:
        assert store is not None
        stored = store.load_tenant_cache()
        cached = TenantView.from_cache(stored)
        if cached is not None:
            try:
                read = await read_incremental(client, config, cached, links)
            except DeltaRefused as exc:
                log.warning("graph.delta_refused", reason=str(exc), fallback="full read")
            else:
                read.stored_rows = {
                    (k, i): d for k, objs in stored.items() for i, d in objs.items()
                }
                return read
    new_links = await start_delta(client) if track else {}
    tenant = await read_tenant(client, config, progress=progress)
    return TrackedRead(tenant, TenantView.from_tenant(tenant, config), new_links, incremental=False)


async def _plan_run(
    client: GraphClient,
    config: Config,
    store: StateStore | None,
    run_id: str,
    *,
    dry_run: bool,
    allow_removals: int | None,
    full: bool,
    progress: bool | None,
) -> tuple[SyncResult, TrackedRead, Ledger]:
    """Read, plan and judge the plan (steps 2-3); writes nothing."""
    read = await read_for_sync(
        client, config, store, full=full, track=not dry_run, progress=progress
    )
    tenant = read.tenant
    ledger = store.load_ledger() if store is not None else {}
    rules = resolve_rules(tenant, config)
    plan = make_plan(tenant, config, ledger, rules)
    guard = check_guardrail(
        config.settings.guardrail,
        removals=sum(len(u.remove_licenses) for u in plan.changes),
        licensed=licensed_users(tenant),
        emptied_groups=emptied_rule_groups(tenant, rules, ledger),
        allow_removals=allow_removals,
    )
    log.info(
        "sync.plan",
        run_id=run_id,
        read="incremental" if read.incremental else "full",
        users=len(tenant.users),
        changes=len(plan.changes),
        removals=guard.removals,
        problems=len(plan.problems),
        dry_run=dry_run,
    )
    result = SyncResult(
        run_id, dry_run, tenant, plan, guard, read.incremental, problems=plan.problems
    )
    return result, read, ledger


async def run_sync(
    config: Config,
    *,
    dry_run: bool = False,
    allow_removals: int | None = None,
    full: bool = False,
    client: GraphClient | None = None,
    budget: WriteBudget | None = None,
    progress: bool | None = None,
) -> SyncResult:
    """Run one sync (see the module docstring). Raises GuardrailError, GraphError, StateError,
    ConfigError; the store is left untouched by all of them (they happen before any write).
    `full` re-reads the whole tenant instead of following the stored delta links."""
    plan_run = partial(
        _plan_run, config=config, allow_removals=allow_removals, full=full, progress=progress
    )
    if dry_run:
        async with read_only_session(config, client=client) as (store, graph):
            result, _, _ = await plan_run(graph, store=store, run_id=uuid.uuid4().hex, dry_run=True)
            return result
    async with session(config, "sync", client=client, budget=budget) as s:
        async with s.keeping_lease():  # from the lease's acquisition until the record
            result, read, ledger = await plan_run(
                s.client, store=s.store, run_id=s.run_id, dry_run=False
            )
            if result.guardrail.tripped:
                raise result.guardrail.error(
                    "Review the plan with `licsync sync --dry-run`, then approve with "
                    f"`--allow-removals {result.guardrail.removals}` (or raise [guardrail] in "
                    "the config)."
                )
            writes = await apply_plan(s.client, result.plan, s.budget)
        record = build_record(s.run_id, result.tenant, result.plan, ledger, writes)
        result.settle(record, writes)
        result.resolved = commit_run(
            s.store,
            s.holder,
            s.run_id,
            record,
            read,
            lambda n: {**result.summary(), "problems_resolved": n},
        )
    log.info("sync.done", **result.summary())
    return result
