"""`migrate plan` and `migrate apply`: read, classify, select the wave, then adopt or remove.

    result = await plan_migration(config, Target.ENTRA, snapshot=path)       # dry run
    result = await apply_migration(config, Target.ENTRA, rollback=path, limit=10)

apply, in order: lease; read the tenant and the ledger; classify and select; the guardrail
(removals count against `[guardrail]` unless `--allow-removals` covers them); the rollback file
(all entries pending); then
- RULES: one store transaction adopts every selected assignment into the ledger; no Graph write.
- ENTRA: per wave, one `assignLicense` per user removing the direct SKUs (batched, retried),
  the wave's changes and problems recorded, the users re-read: a user who lost an enabled plan
  or whose licence is in error stops the run after that wave (exit 10, problems recorded).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from licsync.config import Config
from licsync.config.rules import resolve_rules
from licsync.connector.guardrail import check_guardrail, emptied_rule_groups, licensed_users
from licsync.connector.licence_writes import AssignLicense, failure_problem, send_by_user
from licsync.connector.read_full import read_tenant
from licsync.engine.inputs import Rule
from licsync.engine.service_plans import ServicePlanIndex
from licsync.exitcodes import ExitCode
from licsync.graph import Action, WriteResult
from licsync.migrate.classify import Decision, MigrateAction, Target, classify
from licsync.migrate.reread import DELETED, effective_plans, plan_index, read_users
from licsync.migrate.rollbackfile import RollbackEntry, write_rollback
from licsync.migrate.select import UserList, select, waves
from licsync.model import (
    AssignmentState,
    Ledger,
    LicenseError,
    Ownership,
    Problem,
    Tenant,
    User,
)
from licsync.outcomes import EntryOutcome, RunStatus, WriteOutcome
from licsync.reports.names import Names
from licsync.runtime import Session, read_only_session, session
from licsync.snapshot import load_snapshot
from licsync.store import AppliedChange, ChangeAction, diff_ledger

log = structlog.get_logger("licsync.migrate")
KIND = "migrate"
NOT_STARTED = "not started"  # a later wave, after the run stopped


@dataclass
class MigrationResult:
    target: Target
    mode: str  # "plan" or "apply"
    tenant: Tenant
    decisions: tuple[Decision, ...]
    run_id: str | None = None
    outcomes: dict[tuple[str, str], EntryOutcome] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    waves_total: int = 0
    waves_done: int = 0
    stopped: str | None = None
    rollback_file: Path | None = None

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.PROBLEMS if self.stopped or self.problems else ExitCode.OK

    def summary(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.mode == "apply":
            extra = {
                "runId": self.run_id,
                "waves": self.waves_total,
                "wavesDone": self.waves_done,
                "problems": len(self.problems),
                "stopped": self.stopped,
                "rollbackFile": str(self.rollback_file) if self.rollback_file else None,
            }
        return extra


def target_rules(tenant: Tenant, config: Config, target: Target) -> Sequence[Rule]:
    """The config's rules, resolved only for the RULES target (ENTRA needs none)."""
    return resolve_rules(tenant, config) if target is Target.RULES else ()


def decide(
    tenant: Tenant,
    config: Config,
    rules: Sequence[Rule],
    target: Target,
    ledger: Ledger,
    users: UserList | None,
    limit: int | None,
) -> tuple[Decision, ...]:
    """Classify, then select the wave."""
    found = classify(tenant, target, rules=rules, policy=config.policy(), ledger=ledger)
    return select(found, tenant, users=users, limit=limit)


async def plan_migration(
    config: Config,
    target: Target,
    *,
    snapshot: Path | None = None,
    users: UserList | None = None,
    limit: int | None = None,
) -> MigrationResult:
    """The dry run: from a snapshot (ledger taken as empty), or from Graph and the store."""
    if snapshot is not None:
        tenant = load_snapshot(snapshot, config.filter_properties())
        ledger: Ledger = {}
    else:
        async with read_only_session(config) as (store, client):
            tenant = await read_tenant(client, config)
            ledger = store.load_ledger() if store is not None else {}
    rules = target_rules(tenant, config, target)
    decisions = decide(tenant, config, rules, target, ledger, users, limit)
    return MigrationResult(target, "plan", tenant, decisions)


def _guardrail(
    tenant: Tenant,
    config: Config,
    rules: Sequence[Rule],
    ledger: Ledger,
    chosen: list[Decision],
    allow: int | None,
) -> None:
    guard = check_guardrail(
        config.settings.guardrail,
        removals=sum(1 for d in chosen if d.action is MigrateAction.REMOVE_DIRECT),
        licensed=licensed_users(tenant),
        emptied_groups=emptied_rule_groups(tenant, rules, ledger),
        allow_removals=allow,
    )
    if guard.tripped:
        raise guard.error(
            "Migrate in smaller waves (--limit, --users), or approve with "
            f"`--allow-removals {guard.removals}`."
        )


def _rollback_entries(chosen: list[Decision], ledger: Ledger) -> list[RollbackEntry]:
    entries = []
    for d in chosen:
        before = after = None
        if d.action is MigrateAction.ADOPT:
            before = ledger.get((d.user_id, d.sku_id))
            after = Ownership(d.user_id, d.sku_id, d.groups, None)
        disabled = d.disabled_plans or frozenset()
        entries.append(
            RollbackEntry(
                d.user_id,
                d.user_principal_name,
                d.sku_id,
                d.action,
                disabled,
                WriteOutcome.PENDING,
                before,
                after,
            )
        )
    return entries


async def apply_migration(
    config: Config,
    target: Target,
    *,
    rollback: Path | None = None,
    users: UserList | None = None,
    limit: int | None = None,
    wave_size: int | None = None,
    allow_removals: int | None = None,
    tenant: Tenant | None = None,
    **session_kw: Any,
) -> MigrationResult:
    """Migrate (see the module docstring). `tenant` replaces the Graph read (tests use it to
    apply a stale view); `session_kw` passes `client` and `budget` to the session."""
    async with session(config, KIND, **session_kw) as s:
        if tenant is None:
            tenant = await read_tenant(s.client, config)
        ledger = s.store.load_ledger()
        rules = target_rules(tenant, config, target)
        decisions = decide(tenant, config, rules, target, ledger, users, limit)
        result = MigrationResult(target, "apply", tenant, decisions, s.run_id)
        batches = waves(decisions, wave_size)
        chosen = [d for wave in batches for d in wave]
        result.waves_total = len(batches)
        if not chosen:
            return result
        _guardrail(tenant, config, rules, ledger, chosen, allow_removals)
        entries = _rollback_entries(chosen, ledger)
        rollback = rollback or Path(f"licsync-rollback-{s.run_id}.json")
        result.rollback_file = rollback
        write_rollback(rollback, s.run_id, target.value, entries, new=True)
        if target is Target.RULES:
            await _adopt(s, result, ledger, entries, rollback)
        else:
            await _remove_direct(s, result, batches, entries, rollback)
        log.info("migrate.done", **result.summary())
        return result


async def _adopt(
    s: Session, result: MigrationResult, ledger: Ledger, entries: list[RollbackEntry], path: Path
) -> None:
    new = dict(ledger)
    for e in entries:
        assert e.ledger_after is not None
        new[(e.user_id, e.sku_id)] = e.ledger_after
    s.renew()
    s.record(
        KIND,
        ledger=diff_ledger(ledger, new),
        finish=(RunStatus.SUCCEEDED, {"target": "rules", "adopted": len(entries)}),
    )
    for e in entries:
        result.outcomes[(e.user_id, e.sku_id)] = EntryOutcome(WriteOutcome.APPLIED)
    result.waves_done = 1
    write_rollback(path, s.run_id, "rules", [e.with_status(WriteOutcome.APPLIED) for e in entries])


def _bad(state: AssignmentState) -> bool:
    return state.error is not None or state.state.casefold() != "active"


def _lost_plans(index: ServicePlanIndex, before: User, now: User) -> list[Problem]:
    """A problem per SKU in which `now` has fewer enabled plans than `before`."""
    later = effective_plans(index, now)
    problems = []
    for sku_id, plans in sorted(effective_plans(index, before).items()):
        lost = plans - later.get(sku_id, frozenset())
        if lost:
            names = ", ".join(sorted(index.name(p) for p in lost))
            message = f"lost {names} in {index.part_number(sku_id)} after the migration"
            problems.append(
                Problem(
                    before.id, now.user_principal_name, sku_id, None, LicenseError.OTHER, message
                )
            )
    return problems


def _new_errors(names: Names, before: User, now: User) -> list[Problem]:
    """A problem per licence source in error (or not Active) now that was fine before."""
    was_bad = {
        (st.sku_id, st.assigned_by_group)
        for st in before.license_assignment_states or ()
        if _bad(st)
    }
    problems = []
    for st in now.license_assignment_states or ():
        if _bad(st) and (st.sku_id, st.assigned_by_group) not in was_bad:
            error = st.error or LicenseError.OTHER
            source = (
                f"group {names.group(st.assigned_by_group)}" if st.assigned_by_group else "direct"
            )
            message = (
                f"{names.part_number(st.sku_id)} ({source}) is in state {st.state} "
                f"({error.value}) after the migration"
            )
            problems.append(
                Problem(
                    before.id,
                    now.user_principal_name,
                    st.sku_id,
                    st.assigned_by_group,
                    error,
                    message,
                )
            )
    return problems


def _verify(
    result: MigrationResult, s: Session, wave: list[Decision], after: dict[str, User]
) -> list[Problem]:
    """Problems of users who lost an enabled plan or whose licence entered an error state."""
    index = plan_index(result.tenant, s.config)
    names = Names(result.tenant)
    problems = []
    for user_id in sorted({d.user_id for d in wave}):
        before, now = result.tenant.users[user_id], after[user_id]
        problems += _lost_plans(index, before, now) + _new_errors(names, before, now)
    return problems


def _write_failures(wave: list[Decision], by_user: dict[str, WriteResult]) -> list[Problem]:
    return [
        failure_problem(by_user[d.user_id], d.user_id, d.user_principal_name, d.sku_id)
        for d in wave
        if not by_user[d.user_id].ok
    ]


def _wave_jobs(wave: list[Decision]) -> dict[str, AssignLicense]:
    """One `assignLicense` per user removing the wave's SKUs, by user id."""
    skus: dict[str, list[str]] = {}
    for d in wave:
        skus.setdefault(d.user_id, []).append(d.sku_id)
    return {u: AssignLicense(u, remove=tuple(sk)) for u, sk in skus.items()}


async def _send_wave(s: Session, wave: list[Decision]) -> dict[str, WriteResult]:
    """Send the wave's jobs; the outcomes by user id."""
    jobs = list(_wave_jobs(wave).values())
    async with s.keeping_lease():
        return await send_by_user(s.client, jobs, s.budget)


def _gone(d: Decision, outcome: WriteResult, after: User) -> bool:
    """Whether the direct assignment may be gone. A success or a refusal (or a job never sent)
    says; an exhausted retry or a fatal answer leaves it open, and then the re-read decides (a
    write that landed must be restorable from the rollback file)."""
    if outcome.ok or outcome.action in (Action.PROBLEM, Action.SKIPPED):
        return outcome.ok
    return after.license_assignment_states is not None and d.sku_id not in after.direct_licenses()


def _stop_reason(
    number: int, total: int, broken: list[Problem], by_user: dict[str, WriteResult], path: Path
) -> str | None:
    """Why the run stops after wave `number` (a lost plan, an error state, a fatal Graph
    answer), or None to go on."""
    fatal = next((o for o in by_user.values() if o.action is Action.FATAL), None)
    if broken:
        users = ", ".join(sorted({p.user_principal_name for p in broken}))
        why = f"wave {number} of {total} failed verification ({users})"
    elif fatal is not None:
        why = f"wave {number} of {total}: Graph refused the writes ({fatal.message})"
    else:
        return None
    return f"{why}; later waves not started. Roll back with `licsync migrate rollback {path}`"


async def _remove_direct(
    s: Session,
    result: MigrationResult,
    batches: list[list[Decision]],
    entries: list[RollbackEntry],
    path: Path,
) -> None:
    """The waves of target entra: write, re-read every user of the wave, verify, record; the
    rollback file is rewritten after each wave with what Graph now shows."""
    status = {(e.user_id, e.sku_id): e for e in entries}
    for number, wave in enumerate(batches, start=1):
        by_user = await _send_wave(s, wave)
        written = {u: job for u, job in _wave_jobs(wave).items() if by_user[u].ok}
        reread = await read_users(s.client, {d.user_id for d in wave}, written)
        after = reread.users
        changes = []
        for d in wave:
            o, key = by_user[d.user_id], (d.user_id, d.sku_id)
            if d.user_id in reread.deleted:  # nothing left to migrate, nor to roll back
                result.outcomes[key] = EntryOutcome(WriteOutcome.SKIPPED, DELETED)
                status[key] = status[key].with_status(WriteOutcome.SKIPPED)
                log.warning("migrate.user_deleted", user=d.user_id, upn=d.user_principal_name)
                continue
            gone = _gone(d, o, after[d.user_id])
            result.outcomes[key] = (
                EntryOutcome(WriteOutcome.APPLIED)
                if gone
                else EntryOutcome(WriteOutcome.FAILED, o.message or o.action)
            )
            status[key] = status[key].with_status(result.outcomes[key].outcome)
            changes.append(
                AppliedChange(
                    s.run_id,
                    d.user_id,
                    d.sku_id,
                    ChangeAction.REMOVE,
                    o.outcome,
                    disabled_plans=d.disabled_plans or frozenset(),
                    request_id=o.request_id,
                )
            )
        done = [d for d in wave if status[(d.user_id, d.sku_id)].status is WriteOutcome.APPLIED]
        broken = _verify(result, s, done, after)
        present = [d for d in wave if d.user_id not in reread.deleted]
        problems = _write_failures(present, by_user) + broken
        result.problems.extend(problems)
        result.waves_done = number
        result.stopped = _stop_reason(number, len(batches), broken, by_user, path)
        last = number == len(batches) or result.stopped is not None
        for d in (d for w in batches[number:] for d in w) if last else ():
            key = (d.user_id, d.sku_id)
            status[key] = status[key].with_status(WriteOutcome.SKIPPED)
            result.outcomes[key] = EntryOutcome(WriteOutcome.SKIPPED, NOT_STARTED)
        write_rollback(path, s.run_id, "entra", list(status.values()))
        finish = None
        if last:
            run_status = RunStatus.STOPPED if result.stopped else RunStatus.SUCCEEDED
            finish = (run_status, {"target": "entra", **result.summary()})
        s.record(
            KIND, changes=changes, problems=problems, finish=finish, exit_code=result.exit_code
        )
        log.info("migrate.wave", wave=number, users=len(by_user), failed=len(problems))
        if last:
            return
