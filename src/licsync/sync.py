"""`licsync sync`, the connector's main job: read → plan → guardrail → write → record.

    result = await run_sync(config, dry_run=False, allow_removals=None, full=False)

1. open the state store (`[state] url`) and, unless this is a dry run, take the write lease
   (renewed every third of its TTL until the run records, reads included); a dry run opens the
   store read-only, and plans with an empty ledger when the SQLite file does not exist (it
   creates nothing, and takes no delta links it could not keep);
2. read the tenant through Graph (`licsync.reader`): incrementally, by patching the cached
   tenant view with `users/delta` and `groups/delta` from the stored delta links, or in full
   (`full=True`, no cache yet, or Graph refused a link), taking new links first; load the ledger;
3. `make_plan`; then the guardrail: too many removals, or a rule group that reads empty while
   the ledger says licsync licensed members through it, stops the run before any write
   (`GuardrailError`, exit 6) unless `--allow-removals N` covers the count;
4. send the writes (`licsync.writer`);
5. in ONE store transaction: the run, every change with its outcome and request id, the ledger
   for users whose writes succeeded (the others keep their old entries), the problems (predicted
   and failed writes), the problems resolved by successful writes and, unless a write was
   fatal, the new delta links and the cached tenant view;
6. release the lease.

Nothing is written to the store on a path that fails before the writes (the lease aside).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from licsync.config import Config
from licsync.engine.inputs import Rule
from licsync.engine.membership import members_of
from licsync.errors import GuardrailError, StateError
from licsync.exitcodes import ExitCode
from licsync.graph import Action, GraphClient, WriteBudget, WriteOutcome, load_graph_settings
from licsync.graph.writes import assign_key, location_key
from licsync.model import Ledger, LicenseError, Plan, Problem, Tenant, UserPlan
from licsync.planning import make_plan
from licsync.reader import (
    DELTA_RESOURCES,
    DeltaRefused,
    TenantView,
    TrackedRead,
    diff_rows,
    read_incremental,
    read_tenant,
    stale_rows,
    start_delta,
)
from licsync.resolve import resolve_rules
from licsync.store import (
    AppliedChange,
    ChangeAction,
    RunStatus,
    StateSettings,
    StateStore,
    StateTransaction,
    diff_ledger,
    open_store,
    settle_ledger,
    state_exists,
)
from licsync.writer import apply_plan

log = structlog.get_logger("licsync.sync")


__all__ = ["GuardrailError", "SyncResult", "graph_client", "make_plan", "open_state", "run_sync"]


@dataclass(frozen=True, slots=True)
class Guardrail:
    removals: int
    tripped: bool
    reasons: tuple[str, ...]

    def error(self, advice: str) -> GuardrailError:
        """The error that stops the run, with `advice` on how to proceed."""
        return GuardrailError(
            "guardrail: nothing was written.\n  - " + "\n  - ".join(self.reasons) + f"\n{advice}"
        )


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


def check_guardrail(
    tenant: Tenant,
    config: Config,
    plan: Plan,
    ledger: Ledger,
    allow_removals: int | None,
    rules: Sequence[Rule],
) -> Guardrail:
    """Count the plan's removals against `[guardrail]`; find rule groups (of the resolved `rules`)
    that read empty although the ledger says licsync licensed members through them."""
    settings = config.settings.guardrail
    removals = sum(len(u.remove_licenses) for u in plan.changes)
    licensed = sum(1 for u in tenant.users.values() if u.assigned_licenses)
    limit = min(settings.max_removals, int(licensed * settings.max_removal_percent / 100))
    owned_groups = {g for entry in ledger.values() for g in entry.groups}
    suspicious = []
    for rule in rules:
        if rule.group_id in owned_groups and not members_of(tenant, rule.group_id, rule.nested):
            suspicious.append(rule.group_id)
    reasons = []
    if removals > limit:
        reasons.append(
            f"the plan removes {removals} licence(s); the guardrail allows {limit} "
            f"(max_removals = {settings.max_removals}, max_removal_percent = "
            f"{settings.max_removal_percent:g}% of {licensed} licensed users)"
        )
    for group_id in suspicious:
        name = tenant.groups[group_id].display_name
        reasons.append(
            f"rule group {name!r} ({group_id}) reads empty, but licsync licensed members "
            "through it before"
        )
    approved = allow_removals is not None and allow_removals >= removals
    return Guardrail(removals, bool(reasons) and not approved, tuple(reasons))


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


def open_state(
    config: Config, *, read_only: bool = False
) -> tuple[StateStore | None, StateSettings]:
    """The state store `[state] url` names (a relative SQLite path is relative to the config
    file's directory). `read_only`: never create, migrate or write it; None when the SQLite file
    does not exist."""
    settings = StateSettings.from_config(config.settings.state, base_dir=config.path.parent)
    if read_only:
        if not state_exists(settings.url):
            return None, settings
        return open_store(settings.url, read_only=True), settings
    return open_store(settings.url), settings


def graph_client(config: Config) -> GraphClient:
    settings = load_graph_settings(config.settings.graph, path=str(config.path))
    return GraphClient.from_settings(settings)


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
    graph_settings = load_graph_settings(config.settings.graph, path=str(config.path))
    store, state_settings = open_state(config, read_only=dry_run)
    run_id = uuid.uuid4().hex
    holder = f"sync-{run_id}"
    renewer: asyncio.Future[None] | None = None
    own_client = client is None
    ttl = state_settings.lease_ttl_seconds
    try:
        if not dry_run:
            assert store is not None
            store.acquire_lease(holder, ttl)
            renewer = asyncio.ensure_future(keep_lease(store, holder, ttl))
        if client is None:
            client = GraphClient.from_settings(graph_settings)
        read = await read_for_sync(
            client, config, store, full=full, track=not dry_run, progress=progress
        )
        tenant = read.tenant
        ledger = store.load_ledger() if store is not None else {}
        rules = resolve_rules(tenant, config)
        plan = make_plan(tenant, config, ledger, rules)
        guard = check_guardrail(tenant, config, plan, ledger, allow_removals, rules)
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
        if guard.tripped and not dry_run:
            raise guard.error(
                "Review the plan with `licsync sync --dry-run`, then approve with "
                f"`--allow-removals {guard.removals}` (or raise [guardrail] in the config)."
            )
        if dry_run:
            return result

        assert store is not None and renewer is not None
        if budget is None:
            budget = WriteBudget(graph_settings.write_rate)
        outcomes = await apply_plan(client, plan, budget)
        renewer.cancel()
        # re-take the lease if it lapsed meanwhile (fails only if another run holds it now)
        store.acquire_lease(holder, ttl)
        _record(store, holder, result, outcomes, ledger, read)
        log.info("sync.done", **result.summary())
        return result
    finally:
        if renewer is not None:
            renewer.cancel()
        if own_client and client is not None:
            await client.aclose()
        if store is not None:
            if renewer is not None:
                store.release_lease(holder)
            store.close()


async def keep_lease(store: StateStore, holder: str, ttl: float) -> None:
    """Renew the write lease every third of its lifetime from its acquisition until the run
    records (a full read of a large tenant, or 100,000 writes at Graph's write limit, outlasts
    the default 900 s)."""
    while True:
        await asyncio.sleep(ttl / 3)
        try:
            store.renew_lease(holder, ttl)
        except StateError as exc:  # lost: the run's final transaction will refuse to commit
            log.warning("sync.lease_lost", holder=holder, reason=str(exc))
            return
        log.info("sync.lease_renewed", holder=holder)


def _record(
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
