"""`migrate rollback FILE`: put back what a migration removed or adopted, exactly.

- remove-direct entries: the users are read first; one `assignLicense` per user re-adds the
  direct assignments not back yet, with their disabled plans (the inherited licence keeps the
  seat, so none is needed); the users are re-read and each restored assignment checked.
- adopt entries: the ledger entry goes back to what it was (deleted when there was none). An entry
  a later sync changed or removed is left alone and reported as a conflict. When there was none,
  a direct assignment a sync changed meanwhile (widened to the rule groups' plans) is set back
  to the file's disabled plans.

Running it twice is safe: what is already as the file says is reported `already restored`.

Entries whose status is `failed` or `not-applied` changed nothing and are skipped. Changes and
problems are recorded like a migration's, under the lease, in run kind `migrate-rollback`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from licsync.config import Config
from licsync.connector.licence_writes import AssignLicense, failure_problem, send_by_user
from licsync.exitcodes import ExitCode
from licsync.migrate.classify import MigrateAction
from licsync.migrate.reread import Reread, read_users
from licsync.migrate.rollbackfile import RESTORABLE, RollbackEntry, read_rollback
from licsync.model import Assignment, Ledger, LicenseError, Ownership, Problem, User
from licsync.outcomes import EntryOutcome, RunStatus, WriteOutcome
from licsync.runtime import Session, session
from licsync.store import AppliedChange, ChangeAction, diff_ledger, normalise_ownership

log = structlog.get_logger("licsync.migrate")
KIND = "migrate-rollback"
GONE = "user deleted since the migration"
_RESTORED = EntryOutcome(WriteOutcome.APPLIED)
_ALREADY = EntryOutcome(WriteOutcome.SKIPPED, "already restored")
_GONE = EntryOutcome(WriteOutcome.SKIPPED, GONE)


def _conflict(message: str) -> EntryOutcome:
    """Not restored: something changed since the migration (a problem is recorded)."""
    return EntryOutcome(WriteOutcome.FAILED, f"conflict: {message}")


def _skipped_status(e: RollbackEntry) -> EntryOutcome:
    """An entry whose removal or adoption never happened: nothing to restore."""
    return EntryOutcome(WriteOutcome.SKIPPED, f"status {e.status}")


@dataclass
class RollbackResult:
    path: Path
    entries: list[RollbackEntry]
    outcomes: dict[tuple[str, str], EntryOutcome] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.PROBLEMS if self.problems else ExitCode.OK

    def summary(self) -> dict[str, Any]:
        values = list(self.outcomes.values())
        already = values.count(_ALREADY)
        return {
            "entries": len(self.entries),
            "restored": sum(v.outcome is WriteOutcome.APPLIED for v in values),
            "alreadyRestored": already,
            "skipped": sum(v.outcome is WriteOutcome.SKIPPED for v in values) - already,
            "problems": len(self.problems),
        }


def _problem(e: RollbackEntry, message: str) -> Problem:
    return Problem(e.user_id, e.user_principal_name, e.sku_id, None, LicenseError.OTHER, message)


def _same(a: Ownership | None, b: Ownership | None) -> bool:
    if a is None or b is None:
        return a is b
    return normalise_ownership(a) == normalise_ownership(b)


def _unadopt(
    result: RollbackResult, ledger: Ledger, todo: list[RollbackEntry]
) -> tuple[Ledger, list[RollbackEntry]]:
    """The ledger with every adoption undone that no later sync touched, and the entries this
    drops from it (there was none before); one already back as it was (a second rollback) is
    left alone."""
    new = dict(ledger)
    dropped = []
    for e in todo:
        key = (e.user_id, e.sku_id)
        current = ledger.get(key)
        if _same(current, e.ledger_before):
            result.outcomes[key] = _ALREADY
            continue
        if not _same(current, e.ledger_after):
            message = (
                "the ledger entry changed since the migration (a later sync); not restored"
                if current is not None
                else "licsync no longer holds this licence; not restored"
            )
            result.problems.append(_problem(e, message))
            result.outcomes[key] = _conflict(message)
            continue
        if e.ledger_before is None:
            del new[key]
            dropped.append(e)
        else:
            new[key] = e.ledger_before
        result.outcomes[key] = _RESTORED
    return new, dropped


def _still_to_add(
    result: RollbackResult, todo: list[RollbackEntry], now: dict[str, User]
) -> list[RollbackEntry]:
    """The entries whose direct assignment is not back yet. One already there as the file says
    (a second rollback, or a removal that never happened) is done; one there with other
    disabled plans was changed since, and is left as it is and reported."""
    left = []
    for e in todo:
        user = now[e.user_id]
        held = user.direct_licenses().get(e.sku_id)
        if user.license_assignment_states is None or held is None:
            left.append(e)
        elif held == e.disabled_plans:
            result.outcomes[(e.user_id, e.sku_id)] = _ALREADY
        else:
            message = (
                "the user holds a direct assignment of this SKU again, with other disabled "
                "plans than the file's; left as it is"
            )
            result.problems.append(_problem(e, message))
            result.outcomes[(e.user_id, e.sku_id)] = _conflict(message)
    return left


def _widened(todo: list[RollbackEntry], now: dict[str, User]) -> list[RollbackEntry]:
    """Adoptions licsync has let go of again whose direct assignment a sync changed meanwhile
    (to what their rule groups grant): it goes back to the file's disabled plans."""
    left = []
    for e in todo:
        user = now[e.user_id]
        held = user.direct_licenses().get(e.sku_id)
        if user.license_assignment_states is not None and held not in (None, e.disabled_plans):
            left.append(e)
    return left


async def _restore_graph(
    s: Session, result: RollbackResult, removed: list[RollbackEntry], unadopted: list[RollbackEntry]
) -> list[AppliedChange]:
    """Put the direct assignments back as the file says; the changes to record."""
    if not removed and not unadopted:
        return []
    now = await read_users(s.client, {e.user_id for e in removed + unadopted})
    removed, unadopted = _present(result, removed, now), _present(result, unadopted, now)
    todo = _still_to_add(result, removed, now.users) + _widened(unadopted, now.users)
    return await _assign(s, result, todo) if todo else []


def _present(
    result: RollbackResult, entries: list[RollbackEntry], now: Reread
) -> list[RollbackEntry]:
    """The entries whose user Graph still has; the others are reported skipped."""
    for e in entries:
        if e.user_id in now.deleted:
            result.outcomes[(e.user_id, e.sku_id)] = _GONE
            log.warning("migrate.user_deleted", user=e.user_id, upn=e.user_principal_name)
    return [e for e in entries if e.user_id not in now.deleted]


async def _assign(
    s: Session, result: RollbackResult, todo: list[RollbackEntry]
) -> list[AppliedChange]:
    """One `assignLicense` per user with the file's disabled plans, checked by a re-read."""
    by_user: dict[str, list[RollbackEntry]] = {}
    for e in todo:
        by_user.setdefault(e.user_id, []).append(e)
    jobs = {
        u: AssignLicense(u, tuple(Assignment(e.sku_id, e.disabled_plans) for e in es))
        for u, es in sorted(by_user.items())
    }
    async with s.keeping_lease():
        outcomes = await send_by_user(s.client, list(jobs.values()), s.budget)
    written = {u: jobs[u] for u, o in outcomes.items() if o.ok}
    after = (await read_users(s.client, written, written)).users
    changes = []
    for e in todo:
        key, o = (e.user_id, e.sku_id), outcomes[e.user_id]
        if o.ok and e.user_id not in after:
            result.outcomes[key] = _GONE
        elif not o.ok:
            result.problems.append(failure_problem(o, e.user_id, e.user_principal_name, e.sku_id))
            result.outcomes[key] = EntryOutcome(WriteOutcome.FAILED, o.failure)
        elif after[e.user_id].direct_licenses().get(e.sku_id) != e.disabled_plans:
            message = "re-read after the rollback: the direct assignment differs from the file"
            result.problems.append(_problem(e, message))
            result.outcomes[key] = EntryOutcome(WriteOutcome.FAILED, message)
        else:
            result.outcomes[key] = _RESTORED
        changes.append(
            AppliedChange(
                s.run_id,
                e.user_id,
                e.sku_id,
                ChangeAction.ADD,
                o.outcome,
                disabled_plans=e.disabled_plans,
                request_id=o.request_id,
            )
        )
    return changes


async def run_rollback(config: Config, path: Path, **session_kw: Any) -> RollbackResult:
    """Restore what the rollback file at `path` lists (see the module docstring)."""
    _, _, entries = read_rollback(path)
    result = RollbackResult(path, entries)
    todo = [e for e in entries if e.status in RESTORABLE]
    for e in entries:
        if e.status not in RESTORABLE:
            result.outcomes[(e.user_id, e.sku_id)] = _skipped_status(e)
    if not todo:
        return result
    async with session(config, KIND, **session_kw) as s:
        ledger = s.store.load_ledger()
        adopted = [e for e in todo if e.action is MigrateAction.ADOPT]
        removed = [e for e in todo if e.action is MigrateAction.REMOVE_DIRECT]
        new, unadopted = _unadopt(result, ledger, adopted)
        changes = await _restore_graph(s, result, removed, unadopted)
        status = RunStatus.FAILED if result.problems else RunStatus.SUCCEEDED
        s.record(
            KIND,
            changes=changes,
            problems=result.problems,
            ledger=diff_ledger(ledger, new),
            finish=(status, {"rollbackFile": str(path), **result.summary()}),
            exit_code=result.exit_code,
        )
        log.info("migrate.rollback", **result.summary())
    return result
