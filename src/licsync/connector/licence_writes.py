"""Push a plan to Graph: one `assignLicense` per user with changes, after its usage location.

    outcomes = await apply_plan(client, plan, budget)

Each changed user gets at most two jobs: `PATCH /users/{id}` with `usageLocation` when the plan
fills it (key `{user}:usageLocation`), then `POST /users/{id}/assignLicense` with the plan's
`addLicenses` (and their disabled plans) and `removeLicenses` (key `{user}:assignLicense`), sent
only if the PATCH succeeded. Jobs go through `send_writes` ($batch of 20, bounded in flight,
write budget, per-item retries).
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog

from licsync.graph.budget import WriteBudget
from licsync.graph.client import GraphClient
from licsync.graph.writes import WriteJob, WriteOutcome, send_writes
from licsync.model import Plan, UserPlan

log = structlog.get_logger("licsync.writer")


def build_jobs(changes: Iterable[UserPlan]) -> list[WriteJob]:
    """The write jobs for `changes`, in order, each PATCH before its user's assignLicense."""
    jobs: list[WriteJob] = []
    for change in changes:
        after = None
        if change.usage_location:
            location = WriteJob.set_usage_location(change.user_id, change.usage_location)
            after = location.key
            jobs.append(location)
        if change.add_licenses or change.remove_licenses:
            jobs.append(
                WriteJob.assign_license(
                    change.user_id,
                    [(a.sku_id, a.disabled_plans) for a in change.add_licenses],
                    change.remove_licenses,
                    after=after,
                )
            )
    return jobs


async def apply_plan(
    client: GraphClient,
    plan: Plan,
    budget: WriteBudget,
) -> list[WriteOutcome]:
    """Send the plan's changes; one outcome per job, in `build_jobs` order."""
    todo = plan.changes
    jobs = build_jobs(todo)
    if not jobs:
        return []
    outcomes = await send_writes(client, jobs, budget)
    by_user = {c.user_id: c for c in todo}
    for job, outcome in zip(jobs, outcomes, strict=True):
        user_id = job.user_id
        change = by_user[user_id]
        fields = {
            "user": user_id,
            "upn": change.user_principal_name,
            "outcome": str(outcome.action),
            "status": outcome.status,
            "request_id": outcome.request_id,
        }
        if job.method == "PATCH":
            fields["usage_location"] = change.usage_location
        else:
            fields["add"] = [a.sku_id for a in change.add_licenses]
            fields["remove"] = list(change.remove_licenses)
        if not outcome.ok:
            fields["license_error"] = str(outcome.license_error) if outcome.license_error else None
            fields["message"] = outcome.message or None
        (log.info if outcome.ok else log.warning)("sync.write", **fields)
    return outcomes
