"""Licence writes: typed jobs, Graph's assignLicense refusals, one log line per write.

    outcomes = await apply_plan(client, plan, budget)             # sync
    outcomes = await send_licence_writes(client, jobs, budget)    # migrate, rollback

Each changed user gets at most two jobs: `SetUsageLocation` (`PATCH /users/{id}`) when the plan
fills the usage location, then `AssignLicense` (`POST /users/{id}/assignLicense` with the plan's
`addLicenses`, their disabled plans, and `removeLicenses`), sent only if the PATCH succeeded.
Jobs go through `licsync.graph.writes.send_writes` ($batch of 20, bounded in flight, write
budget, per-item retries, read-back after a lost answer) with `LICENSE_RULES`, the assignLicense
refusals matched on Graph's message text (rulebook sections 3-4), ahead of the generic table.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import structlog

from licsync.connector.progress import Progress
from licsync.graph.budget import WriteBudget
from licsync.graph.classify import Action, Rule, rule
from licsync.graph.retry import RetryPolicy
from licsync.graph.writes import Halt, OnOutcome, WriteJob, WriteResult, send_writes
from licsync.model import Assignment, LicenseError, Plan, Problem, UserPlan

if TYPE_CHECKING:
    from licsync.graph.client import GraphClient

log = structlog.get_logger("licsync.connector")

CONFIRM_SELECT = "id,assignedLicenses,licenseAssignmentStates"

LICENSE_RULES: tuple[Rule, ...] = (
    rule(
        400,
        Action.PROBLEM,
        pattern=r"invalid usage location",
        error=LicenseError.PROHIBITED_IN_USAGE_LOCATION_VIOLATION,
        reason="the user has no valid usage location",
    ),
    rule(
        400,
        Action.PROBLEM,
        pattern=r"does not have any available licenses",
        error=LicenseError.COUNT_VIOLATION,
        reason="no seats left in the subscription",
    ),
    rule(
        400,
        Action.PROBLEM,
        pattern=r"mutually exclusive|cannot be assigned at the same time",
        error=LicenseError.MUTUALLY_EXCLUSIVE_VIOLATION,
        reason="conflicting service plans",
    ),
    rule(
        400,
        Action.PROBLEM,
        pattern=r"depends on the service plan",
        error=LicenseError.DEPENDENCY_VIOLATION,
        reason="a service plan needs another plan the user would not have",
    ),
    rule(
        400,
        Action.PROBLEM,
        pattern=r"does not correspond to a valid company license",
        error=LicenseError.OTHER,
        reason="the SKU is not a subscription of this tenant",
    ),
    rule(
        400,
        Action.PROBLEM,
        pattern=r"inherited from a group membership",
        error=LicenseError.OTHER,
        reason="the licence is inherited from a group and cannot be changed on the user",
    ),
    rule(
        400,
        Action.PROBLEM,
        pattern=r"cannot be assigned to a user",
        error=LicenseError.OTHER,
        reason="the SKU applies to the company, not to users",
    ),
    rule(
        400,
        Action.PROBLEM,
        pattern=r"proxy address .*already being used",
        error=LicenseError.UNIQUENESS_VIOLATION,
        reason="the user's proxy address clashes with another object's",
    ),
    # One user Graph will not let this app change (restricted management administrative unit,
    # privileged user): that user's problem; `send_writes` stops only after a run of them.
    rule(
        403,
        Action.PROBLEM,
        error=LicenseError.ACCESS_DENIED,
        reason="Graph refused to let this app change the user",
    ),
)


@dataclass(frozen=True, slots=True)
class SetUsageLocation:
    """`PATCH /users/{id}` setting `usageLocation` (must precede the user's assignLicense)."""

    user_id: str
    country: str
    key: str = ""
    after: str | None = None

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", f"{self.user_id}:usageLocation")

    @property
    def subject(self) -> str:
        return self.user_id

    def request(self) -> tuple[str, str, Any]:
        return "PATCH", f"/users/{self.user_id}", {"usageLocation": self.country}

    def confirmation(self) -> None:
        return None

    def applied(self, found: Mapping[str, Any]) -> bool:
        return False

    def log_fields(self) -> dict[str, Any]:
        return {"usage_location": self.country}


@dataclass(frozen=True, slots=True)
class AssignLicense:
    """`POST /users/{id}/assignLicense` adding `add` (with their disabled plans) and removing
    the SKUs in `remove`; both keys are always in the body."""

    user_id: str
    add: tuple[Assignment, ...] = ()
    remove: tuple[str, ...] = ()
    key: str = ""
    after: str | None = None

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", f"{self.user_id}:assignLicense")

    @property
    def subject(self) -> str:
        return self.user_id

    def request(self) -> tuple[str, str, Any]:
        body = {
            "addLicenses": [
                {"skuId": a.sku_id, "disabledPlans": sorted(a.disabled_plans)} for a in self.add
            ],
            "removeLicenses": list(self.remove),
        }
        return "POST", f"/users/{self.user_id}/assignLicense", body

    def confirmation(self) -> tuple[str, dict[str, str | int]]:
        return f"/users/{self.user_id}", {"$select": CONFIRM_SELECT}

    def applied(self, found: Mapping[str, Any]) -> bool:
        """Whether `found` (a user with `licenseAssignmentStates`) shows this write: each added
        SKU assigned directly with exactly its disabled plans, each removed SKU no longer
        assigned directly. False without the states."""
        states = found.get("licenseAssignmentStates")
        if not isinstance(states, list):
            return False
        direct = {
            str(s.get("skuId", "")).lower(): _lowered(s.get("disabledPlans"))
            for s in states
            if isinstance(s, dict) and s.get("assignedByGroup") is None
        }
        adds_ok = all(
            direct.get(a.sku_id.lower()) == frozenset(p.lower() for p in a.disabled_plans)
            for a in self.add
        )
        return adds_ok and not any(sku.lower() in direct for sku in self.remove)

    def log_fields(self) -> dict[str, Any]:
        return {"add": [a.sku_id for a in self.add], "remove": list(self.remove)}


LicenceJob = SetUsageLocation | AssignLicense


def _lowered(ids: Any) -> frozenset[str] | None:
    """GUIDs compared case-insensitively; None when Graph sent no list."""
    return frozenset(str(i).lower() for i in ids) if isinstance(ids, list) else None


def license_error(outcome: WriteResult) -> LicenseError:
    """The Entra error type a failed write is recorded with (`Other` when Graph named none)."""
    error = outcome.error_type
    return error if isinstance(error, LicenseError) else LicenseError.OTHER


def failure_problem(
    outcome: WriteResult, user_id: str, upn: str, sku_id: str, group_id: str | None = None
) -> Problem:
    """The problem record of a licence a failed write did not change."""
    return Problem(user_id, upn, sku_id, group_id, license_error(outcome), outcome.failure)


def build_jobs(changes: Iterable[UserPlan]) -> list[LicenceJob]:
    """The write jobs for `changes`, in order, each PATCH before its user's assignLicense."""
    jobs: list[LicenceJob] = []
    for change in changes:
        after = None
        if change.usage_location:
            location = SetUsageLocation(change.user_id, change.usage_location)
            after = location.key
            jobs.append(location)
        if change.add_licenses or change.remove_licenses:
            jobs.append(
                AssignLicense(
                    change.user_id, change.add_licenses, change.remove_licenses, after=after
                )
            )
    return jobs


async def send_by_user(
    client: GraphClient, jobs: Sequence[LicenceJob], budget: WriteBudget
) -> dict[str, WriteResult]:
    """Send one job per user; the outcomes by user id."""
    outcomes = await send_licence_writes(client, jobs, budget)
    return {job.user_id: o for job, o in zip(jobs, outcomes, strict=True)}


async def send_licence_writes(
    client: GraphClient,
    jobs: Sequence[LicenceJob],
    budget: WriteBudget,
    names: Mapping[str, str] | None = None,
    *,
    policy: RetryPolicy | None = None,
    max_batches_in_flight: int | None = None,
    halt: Halt | None = None,
    on_outcome: OnOutcome | None = None,
    max_consecutive_denials: int | None = None,
    quiet: bool = False,
) -> list[WriteResult]:
    """Send `jobs` with the assignLicense refusal table; log one line per write (`names`: the
    users' principal names by id, for the log; `quiet`: successful writes at debug level, for a
    terminal that shows a progress bar). One outcome per job, in order."""
    if not jobs:
        return []

    async def send(
        part: Sequence[LicenceJob], notify: OnOutcome | None = None
    ) -> list[WriteResult]:
        return await send_writes(
            client,
            part,
            budget,
            policy,
            rules=LICENSE_RULES,
            max_batches_in_flight=max_batches_in_flight,
            halt=halt,
            on_outcome=notify,
            max_consecutive_denials=max_consecutive_denials,
        )

    def ended(job: WriteJob, outcome: WriteResult) -> None:
        assert isinstance(job, (SetUsageLocation, AssignLicense))
        log_write(job, outcome, (names or {}).get(job.user_id), quiet=quiet)
        if on_outcome is not None:
            on_outcome(job, outcome)

    def first_pass(job: WriteJob, outcome: WriteResult) -> None:
        if not _awaits_location(job, outcome):
            ended(job, outcome)  # the others end once the usage location replicated

    first = await send(jobs, first_pass)
    outcomes = await _after_location(jobs, first, send, policy or client.policy)
    for job, before, after in zip(jobs, first, outcomes, strict=True):
        if _awaits_location(job, before):
            ended(job, after)
    return outcomes


def log_write(job: LicenceJob, outcome: WriteResult, upn: str | None, *, quiet: bool) -> None:
    """One `licence.write` line, as the write's outcome arrives (so a log shipper sees the
    writes as they happen, and a killed run's log holds those made before the kill). `quiet`:
    successful writes at debug level (a terminal shows a progress bar instead)."""
    method, url, _ = job.request()
    fields: dict[str, Any] = {
        "user": job.user_id,
        "method": method,
        "url": url,
        "upn": upn,
        "outcome": str(outcome.action),
        "status": outcome.status,
        "request_id": outcome.request_id,
        "attempts": outcome.attempts,
        **job.log_fields(),
    }
    if not outcome.ok:
        fields["license_error"] = str(license_error(outcome))
        fields["message"] = outcome.message or outcome.reason or None
    if outcome.action is Action.SKIPPED:  # never sent: not a write (debug only)
        emit = log.debug
    else:
        emit = log.warning if not outcome.ok else log.debug if quiet else log.info
    emit("licence.write", **fields)


def _awaits_location(job: WriteJob, outcome: WriteResult) -> bool:
    """An assignLicense after this run's usageLocation PATCH refused for the usage location."""
    return (
        isinstance(job, AssignLicense)
        and job.after is not None
        and outcome.error_type is LicenseError.PROHIBITED_IN_USAGE_LOCATION_VIOLATION
    )


async def _after_location(
    jobs: Sequence[LicenceJob],
    outcomes: Sequence[WriteResult],
    send: Callable[[Sequence[LicenceJob]], Awaitable[list[WriteResult]]],
    policy: RetryPolicy,
) -> list[WriteResult]:
    """Entra replicates a new usageLocation asynchronously: an assignLicense right after the
    PATCH that set it may be refused for an invalid usage location. Such jobs are sent again,
    backing off, until accepted or the policy's replication wait is over."""
    result = list(outcomes)
    waiting = [
        i for i, (j, o) in enumerate(zip(jobs, outcomes, strict=True)) if _awaits_location(j, o)
    ]

    async def resend() -> bool:
        nonlocal waiting
        again = await send([replace(jobs[i], after=None) for i in waiting])
        for i, outcome in zip(waiting, again, strict=True):
            result[i] = replace(outcome, attempts=result[i].attempts + outcome.attempts)
        waiting = [i for i in waiting if _awaits_location(jobs[i], result[i])]
        return not waiting

    if waiting:
        await policy.until_replicated(
            resend, what="assignLicense after usageLocation", wait_first=True
        )
    return result


@dataclass(frozen=True, slots=True)
class UserWrites:
    """The outcomes of one user's jobs (None: that job was not needed)."""

    location: WriteResult | None = None
    assign: WriteResult | None = None

    @property
    def outcomes(self) -> tuple[WriteResult, ...]:
        return tuple(o for o in (self.location, self.assign) if o is not None)

    @property
    def failure(self) -> WriteResult | None:
        """The first job that did not succeed, if any."""
        return next((o for o in self.outcomes if not o.ok), None)


def pair_outcomes(
    jobs: Sequence[LicenceJob],
    outcomes: Sequence[WriteResult],
    start: UserWrites | None = None,
) -> dict[str, UserWrites]:
    """The outcomes of `build_jobs`' jobs, by user (`start`: what one user already had)."""
    by_user: dict[str, UserWrites] = {}
    for job, outcome in zip(jobs, outcomes, strict=True):
        writes = by_user.get(job.user_id, start or UserWrites())
        if isinstance(job, SetUsageLocation):
            by_user[job.user_id] = replace(writes, location=outcome)
        else:
            by_user[job.user_id] = replace(writes, assign=outcome)
    return by_user


async def apply_plan(
    client: GraphClient,
    plan: Plan,
    budget: WriteBudget,
    *,
    halt: Halt | None = None,
    on_user_done: Callable[[str, UserWrites], None] | None = None,
    progress: bool | None = None,
) -> dict[str, UserWrites]:
    """Send the plan's changes; the outcomes by user. `on_user_done(user, writes)` is called as
    soon as all of a user's jobs have ended (the writes recorded as they arrive); `halt` is
    asked before each `$batch` whether anything more may be sent. `progress`: a progress bar
    of the writes (default: only when stderr is a terminal)."""
    jobs = build_jobs(plan.changes)
    names = {c.user_id: c.user_principal_name for c in plan.changes}
    waiting = Counter(job.user_id for job in jobs)
    ended: dict[str, UserWrites] = {}

    by_key = {job.key: job for job in jobs}

    shown = sys.stderr.isatty() if progress is None else progress

    def on_outcome(sent: WriteJob, outcome: WriteResult) -> None:
        bar.advance("writes", total=len(jobs))
        job = by_key[sent.key]
        user = job.user_id
        ended[user] = pair_outcomes([job], [outcome], ended.get(user))[user]
        waiting[user] -= 1
        if waiting[user] == 0 and on_user_done is not None:
            on_user_done(user, ended[user])

    with Progress(shown) as bar:
        outcomes = await send_licence_writes(
            client, jobs, budget, names, halt=halt, on_outcome=on_outcome, quiet=shown
        )
    return pair_outcomes(jobs, outcomes)


__all__ = [
    "AssignLicense",
    "LicenceJob",
    "SetUsageLocation",
    "UserWrites",
    "WriteJob",
    "apply_plan",
    "build_jobs",
    "failure_problem",
    "license_error",
    "pair_outcomes",
    "send_by_user",
    "send_licence_writes",
]
