"""`licsync sync`, the connector's main job: read → reconcile → plan → guardrail → write →
record.

    result = await run_sync(config, dry_run=False, allow_removals=None, full=False)

1. `runtime.session`: open the state store (`[state] url`) and take the write lease, renewed
   by a heartbeat every third of its TTL until the run has recorded (reads included); a dry
   run opens the store read-only (`runtime.read_only_session`) and creates nothing; both
   refuse a store bound to another tenant than Graph's (`licsync.tenancy`, exit 4), and a
   writing session binds an unbound store to it;
2. read the tenant through Graph (`connector.read_full`, `connector.read_delta`):
   incrementally, by patching the cached tenant view with `users/delta` and `groups/delta`
   from the stored delta links, or in full (`full=True`, no cache yet, or Graph refused a
   link), taking new links first; a full read far smaller than the last view stops here;
3. reconcile the intents a dead run left (`connector.recovery`), then `make_plan` and the
   guardrail: too many removals, or a rule group that reads empty while the ledger says
   licsync licensed members through it, stops the run before any write (`GuardrailError`,
   exit 6) unless `--allow-removals N` covers the count;
4. record the run and every write's intent, then send the writes
   (`connector.licence_writes`), recording each user's outcome as it arrives
   (`connector.record`); before every `$batch` the lease guard is asked: a lease that could
   not be renewed, or went unrenewed for most of its TTL, or the run's deadline, stops the
   sending;
5. one last transaction: predicted problems, the ledger of users without a change and, unless
   a write was fatal, the new delta links and the cached tenant view; the run's status;
6. release the lease.

Nothing is written to the store on a path that fails before step 4 (the lease and a
reconciliation aside).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

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
from licsync.connector.read_delta import DeltaRefused, latest_delta_link, read_incremental
from licsync.connector.read_full import DELTA_RESOURCES, read_tenant
from licsync.connector.record import (
    OutcomeRecorder,
    RunRecord,
    begin_run,
    build_record,
    commit_run,
)
from licsync.connector.recovery import apply_diff, intents_for, reconcile, recover
from licsync.connector.view import TenantView, TrackedRead
from licsync.errors import GuardrailError, StateError
from licsync.exitcodes import ExitCode
from licsync.graph import Action, WriteBudget, WriteResult
from licsync.model import Ledger, Plan, Problem, Tenant
from licsync.outcomes import RunKind, RunStatus
from licsync.runtime import Session, read_only_session, session
from licsync.store import RunPhase, StateStore
from licsync.tenancy import links_for_address

if TYPE_CHECKING:
    from licsync.graph.client import GraphClient

log = structlog.get_logger("licsync.sync")


@dataclass
class SyncResult:
    run_id: str
    dry_run: bool
    tenant: Tenant
    plan: Plan
    guardrail: Guardrail
    incremental: bool = False
    outcomes: list[WriteResult] = field(default_factory=list)
    succeeded_users: tuple[str, ...] = ()
    failed_users: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = ()
    resolved: int = 0
    fatal: bool = False
    unsent_users: tuple[str, ...] = ()
    stopped: str | None = None  # why the run stopped before all its writes were sent
    stop_code: int | None = None  # 128 + the signal that stopped it

    @property
    def fatal_outcome(self) -> WriteResult | None:
        """The write whose answer stopped the writes, if one did."""
        return next((o for o in self.outcomes if o.action is Action.FATAL), None)

    @property
    def exit_code(self) -> int:
        if self.stop_code is not None:
            return self.stop_code
        if self.fatal:
            return ExitCode.GRAPH
        return ExitCode.PROBLEMS if self.problems else ExitCode.OK

    @property
    def status(self) -> RunStatus:
        if self.fatal:
            return RunStatus.FAILED
        return RunStatus.STOPPED if self.stopped else RunStatus.SUCCEEDED

    @property
    def error(self) -> str | None:
        """The run's one line of cause, if it did not simply succeed."""
        fatal = self.fatal_outcome
        if fatal is not None:
            return f"the writes stopped: {fatal.failure}"
        if self.stopped:
            unsent = len(self.unsent_users)
            return f"{self.stopped}: {unsent} users' writes not sent (the next run sends them)"
        return None

    def add_resolved(self, count: int) -> None:
        """Count problems the run resolved beyond those its writes fixed."""
        self.resolved += count

    def settle(self, record: RunRecord, writes: Mapping[str, UserWrites], resolved: int) -> None:
        """Take the outcome of the writes."""
        self.resolved = resolved
        self.outcomes = [o for w in writes.values() for o in w.outcomes]
        self.succeeded_users = record.succeeded_users
        self.failed_users = record.failed_users
        self.unsent_users = record.unsent_users
        self.problems = record.problems
        self.fatal = record.fatal

    def summary(self) -> dict[str, Any]:
        sent = [o for o in self.outcomes if o.action is not Action.SKIPPED]
        return {
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "read": "incremental" if self.incremental else "full",
            "users": len(self.tenant.users),
            "changes": len(self.plan.changes),
            "removals": self.guardrail.removals,
            "writes": len(sent),
            "writes_succeeded": sum(1 for o in sent if o.ok),
            "writes_failed": sum(1 for o in sent if not o.ok),
            "writes_unsent": len(self.outcomes) - len(sent),
            "users_succeeded": len(self.succeeded_users),
            "users_failed": len(self.failed_users),
            "users_unsent": len(self.unsent_users),
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
    reread: Iterable[str] = (),
) -> TrackedRead:
    """Read incrementally when the store holds a tenant view and delta links (and `full` is not
    asked); otherwise, or when Graph refuses a link, in full. `track` takes fresh delta links
    before a full read (a dry run has nowhere to keep them). `reread`: users an incremental
    read must read again whatever the delta says (a dead run's intents). Links another Graph
    address issued are dropped (`tenancy.links_for_address`): the run reads in full."""
    links = links_for_address(_stored_links(store) if not full else None, client.base_url)
    if links is not None:
        assert store is not None
        stored = store.load_tenant_cache()
        cached = TenantView.from_cache(stored)
        missing = set(config.filter_properties()) - set(cached.user_properties if cached else ())
        if cached is not None and missing:
            log.info(
                "reader.full_read", reason="filters read new user properties", new=sorted(missing)
            )
        elif cached is not None:
            cached.stale.update(u for u in reread if u in cached.users)
            try:
                read = await read_incremental(client, config, cached, links)
            except DeltaRefused as exc:
                log.warning("graph.delta_refused", reason=str(exc), fallback="full read")
            else:
                read.stored_rows = {
                    (k, i): d for k, objs in stored.items() for i, d in objs.items()
                }
                return read
    new_links: dict[str, str] = {}

    async def take_link(resource: str) -> None:  # just before that resource's chain
        new_links[resource] = await latest_delta_link(client, resource, config.filter_properties())

    tenant = await read_tenant(
        client, config, progress=progress, before_read=take_link if track else None
    )
    return TrackedRead(tenant, TenantView.from_tenant(tenant, config), new_links, incremental=False)


def check_shrink(config: Config, store: StateStore | None, read: TrackedRead) -> None:
    """Stop (GuardrailError) when a full read returns far fewer users, or members of the groups
    licsync reads, than the view the last run kept (`[guardrail] max_shrink_percent`)."""
    share = config.settings.guardrail.max_shrink_percent / 100
    if read.incremental or store is None or share >= 1 or store.schema_version < 3:
        return
    before = TenantView.from_cache(store.load_tenant_cache())
    if before is None:
        return
    counts = [
        ("users", len(before.users), len(read.view.users)),
        (
            "members of the groups licsync reads",
            sum(map(len, before.members.values())),
            sum(map(len, read.view.members.values())),
        ),
    ]
    for what, was, now in counts:
        if was and now < was * (1 - share):
            raise GuardrailError(
                f"guardrail: nothing was written. The full read returned {now} {what}; the last "
                f"run saw {was} (more than {share:.0%} fewer). If the tenant really shrank, raise "
                "[guardrail] max_shrink_percent (100 turns this check off) and run again."
            )


async def _plan_run(
    client: GraphClient,
    config: Config,
    store: StateStore | None,
    run_id: str,
    *,
    holder: str | None,
    allow_removals: int | None,
    full: bool,
    progress: bool | None,
    enter: Callable[[RunPhase], None] = lambda _: None,
) -> tuple[SyncResult, TrackedRead, Ledger]:
    """Read, reconcile a dead run's intents, plan and judge the plan (steps 2-3). A dry run
    (`holder` None) reconciles in memory; a leased run records the reconciliation. `enter`
    is told when the run moves on to each phase."""
    pending = store.pending_intents() if store is not None else []
    dead = (
        [r for r in store.unfinished_runs() if r.id != run_id]
        if store is not None and holder is not None
        else []
    )
    enter(RunPhase.READ)
    read = await read_for_sync(
        client,
        config,
        store,
        full=full,
        track=holder is not None,
        progress=progress,
        reread={i.user_id for i in pending},
    )
    check_shrink(config, store, read)
    enter(RunPhase.PLAN)
    tenant = read.tenant
    ledger = store.load_ledger() if store is not None else {}
    if pending or dead:
        recovery = reconcile(pending, tenant)
        if store is not None and holder is not None:
            recover(store, holder, run_id, recovery, dead)
        ledger = apply_diff(ledger, recovery.diff)
    rules = resolve_rules(tenant, config)
    plan = make_plan(tenant, config, ledger, rules)
    guard = check_guardrail(
        config.settings.guardrail,
        removals=sum(len(u.remove_licenses) for u in plan.changes),
        licensed=licensed_users(tenant),
        emptied_groups=emptied_rule_groups(tenant, rules, ledger),
        allow_removals=allow_removals,
    )
    dry_run = holder is None
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


async def write_plan(
    s: Session, tenant: Tenant, plan: Plan, ledger: Ledger, progress: bool | None
) -> tuple[OutcomeRecorder, dict[str, UserWrites]]:
    """Step 4 of every run that writes a plan (sync, undo): the intents, then the writes under
    the lease guard, each user's outcome recorded as it arrives. Raises StateError when the
    lease was lost (the next run reconciles what was sent)."""
    s.enter(RunPhase.WRITE)
    begin_run(s.store, s.holder, intents_for(s.run_id, plan, ledger))
    recorder = OutcomeRecorder(s.store, s.holder, s.run_id, tenant, plan, ledger)
    writes = await apply_plan(
        s.client, plan, s.budget, halt=s.guard.lapsed, on_user_done=recorder.add, progress=progress
    )
    recorder.flush()
    if s.guard.lost is not None:
        raise StateError(f"{s.guard.lost}; writes stopped (the next run reconciles what was sent)")
    return recorder, writes


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
    """Run one sync (see the module docstring). Raises GuardrailError, GraphError and
    ConfigError before any write, leaving the store untouched; StateError whenever the store
    fails or the lease is lost (writes stop; what was sent is in the intent journal).
    `full` re-reads the whole tenant instead of following the stored delta links."""
    plan_run = partial(
        _plan_run, config=config, allow_removals=allow_removals, full=full, progress=progress
    )
    if dry_run:
        async with read_only_session(config, client=client) as (store, graph):
            result, _, _ = await plan_run(graph, store=store, run_id=uuid.uuid4().hex, holder=None)
            return result
    async with session(config, RunKind.SYNC, client=client, budget=budget) as s:
        async with s.keeping_lease():  # from the lease's acquisition until the record
            result, read, ledger = await plan_run(
                s.client, store=s.store, run_id=s.run_id, holder=s.holder, enter=s.enter
            )
            if result.guardrail.tripped:
                raise result.guardrail.error(
                    "Review the plan with `licsync sync --dry-run`, then approve with "
                    f"`--allow-removals {result.guardrail.removals}` (or raise [guardrail] in "
                    "the config)."
                )
            plan = result.plan
            recorder, writes = await write_plan(s, result.tenant, plan, ledger, progress)
        s.enter(RunPhase.RECORD)
        result.settle(build_record(plan, recorder.records), writes, recorder.resolved)
        if result.unsent_users:  # a signal, the deadline, or the lease's fence
            result.stopped = s.guard.lapsed() or "the writes stopped"
            result.stop_code = s.stop_code
        commit_run(
            s.store,
            s.holder,
            s.run_id,
            plan,
            ledger,
            read,
            written=[c.user_id for c in plan.changes],
            fatal=result.fatal,
            stopped=bool(result.unsent_users),
            end=lambda: s.runlog.end(
                result.status,
                result.summary(),
                exit_code=result.exit_code,
                error=result.error,
            ),
            resolved=result.add_resolved,
        )
    log.info("sync.done", **result.summary())
    return result
