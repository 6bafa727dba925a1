"""`licsync verify --reprocess`: ask Entra to process again the users `verify` found `stale` or
`missing`, then read them back until they match (or the wait ends).

    result = await run_reprocess(config, limit=None, groups=())

A run of kind `reprocess`, like a sync's: under the write lease (renewed while it runs), the
`POST /users/{id}/reprocessLicenseAssignment` calls go in `$batch` envelopes paced by the write
budget, each user's outcome is recorded as a change of the run as it arrives, and the run ends
with its counters. Users whose finding is `ok`, `unexpected`, `error` or `plansDiffer` are never
touched. A reprocess changes no direct assignment and may be repeated, so it writes no intent:
a run that dies is marked `interrupted` by the next writing run, and reprocessing again is safe.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import structlog

from licsync.config import Config
from licsync.connector.read_full import USER_SELECT, read_org_and_skus
from licsync.connector.verify import MEMBER_READS, state_stamps, verify_tenant
from licsync.engine.inputs import Policy
from licsync.errors import StateError
from licsync.exitcodes import ExitCode
from licsync.graph import Action, WriteBudget, WriteResult
from licsync.graph.permissions import missing_permission_hint
from licsync.graph.writes import WriteJob, send_writes
from licsync.graphjson import parse_user
from licsync.outcomes import RunKind, RunStatus
from licsync.runtime import session
from licsync.store import AppliedChange, ChangeAction
from licsync.verification import Status, Verification, compare

if TYPE_CHECKING:
    from licsync.graph.client import GraphClient

log = structlog.get_logger("licsync.reprocess")

FLUSH_USERS = 200  # outcomes recorded per store transaction
WAIT_SECONDS = 60.0  # how long the re-read waits for Entra to show the reprocessed users
POLL_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class ReprocessLicenseAssignment:
    """`POST /users/{id}/reprocessLicenseAssignment` (no body; 200 with the user)."""

    user_id: str
    key: str = ""
    after: str | None = None

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", f"{self.user_id}:reprocessLicenseAssignment")

    @property
    def subject(self) -> str:
        return self.user_id

    def request(self) -> tuple[str, str, Any]:
        return "POST", f"/users/{self.user_id}/reprocessLicenseAssignment", None

    def confirmation(self) -> None:
        return None  # reprocessing twice is harmless: a lost answer is simply retried

    def applied(self, found: Any) -> bool:
        return False


@dataclass
class ReprocessResult:
    run_id: str
    before: Verification
    after: Verification
    results: dict[str, WriteResult] = field(default_factory=dict)  # by user id

    @property
    def fatal_result(self) -> WriteResult | None:
        return next((o for o in self.results.values() if o.action is Action.FATAL), None)

    def stop_message(self) -> str | None:
        """Why the reprocessing stopped (naming the permission to grant after a 403), or None."""
        stop = self.fatal_result
        if stop is None:
            return None
        if stop.status != 403:
            return stop.failure
        user_id = stop.key.partition(":")[0]
        method, url, _ = ReprocessLicenseAssignment(user_id).request()
        return f"{stop.failure}; {missing_permission_hint(f'{method} {url}')}"

    def matching(self) -> list[str]:
        """Reprocessed users whose every finding is now `ok`."""
        wrong = {f.user_id for f in self.after.findings if f.status is not Status.OK}
        return [u for u, o in self.results.items() if o.ok and u not in wrong]

    @property
    def exit_code(self) -> ExitCode:
        if self.fatal_result is not None:
            return ExitCode.GRAPH
        return ExitCode.OK if self.after.ok else ExitCode.PROBLEMS

    def summary(self) -> dict[str, Any]:
        """The run's counters (kept with the run record)."""
        return {
            "run_id": self.run_id,
            "users": len(self.results),
            "writes_succeeded": sum(1 for o in self.results.values() if o.ok),
            "writes_failed": sum(1 for o in self.results.values() if not o.ok),
            "now_matching": len(self.matching()),
        }

    def report(self) -> dict[str, Any]:
        """The counters, the findings before, and each user's outcome (the report's
        `reprocess` member)."""
        matching = set(self.matching())
        return {
            **self.summary(),
            "before": self.before.summary(),
            "users": [
                {
                    "userId": user_id,
                    "outcome": answer.outcome.value,
                    "message": None if answer.ok else answer.failure,
                    "requestId": answer.request_id,
                    "nowMatching": user_id in matching,
                }
                for user_id, answer in sorted(self.results.items())
            ],
        }


async def reread_users(
    client: GraphClient,
    before: Verification,
    user_ids: Sequence[str],
    policy: Policy,
    *,
    wait: float = WAIT_SECONDS,
    poll: float = POLL_SECONDS,
) -> Verification:
    """`before` with `user_ids` and the subscribed SKUs (their seats moved) read again, every
    `poll` seconds until those users' findings are all `ok` or `wait` seconds have passed
    (Entra shows a reprocess after replication)."""
    gate = asyncio.Semaphore(MEMBER_READS)

    async def read(user_id: str) -> dict[str, Any]:
        async with gate:
            return await client.get_json(f"/users/{user_id}", {"$select": USER_SELECT})

    deadline = time.monotonic() + wait
    tenant, stamps = before.tenant, {}
    wanted = set(user_ids)
    while True:
        (_, skus), *items = await asyncio.gather(
            read_org_and_skus(client), *(read(u) for u in user_ids)
        )
        users = dict(tenant.users)
        for item in items:
            user = parse_user(item)
            users[user.id] = user
            stamps.update(state_stamps(user.id, item))
        tenant = replace(tenant, users=users, skus=skus)
        after = compare(tenant, before.groups, _merged(before, stamps), policy)
        if all(f.status is Status.OK for f in after.findings if f.user_id in wanted):
            return after
        if time.monotonic() + poll > deadline:
            return after
        await asyncio.sleep(poll)


def _merged(before: Verification, stamps: dict[tuple[str, str, str], str]) -> dict[Any, str]:
    """The first read's timestamps, updated by the re-read's."""
    merged = {
        (f.user_id, f.group_id, f.sku_id): f.last_updated for f in before.findings if f.last_updated
    }
    merged.update(stamps)
    return merged


async def run_reprocess(
    config: Config,
    *,
    limit: int | None = None,
    groups: Sequence[str] = (),
    wait: float = WAIT_SECONDS,
    client: GraphClient | None = None,
    budget: WriteBudget | None = None,
) -> ReprocessResult:
    """Verify, reprocess the `stale` and `missing` users (the first `limit`), re-read them."""
    policy = config.policy()
    async with (
        session(config, RunKind.REPROCESS, client=client, budget=budget) as s,
        s.keeping_lease(),
    ):
        before = await verify_tenant(s.client, policy, groups)
        targets = before.reprocess_targets()[:limit]
        s.record(RunKind.REPROCESS)  # the run exists before the first write
        jobs = [ReprocessLicenseAssignment(u) for u in targets]
        result = ReprocessResult(s.run_id, before, before)

        buffer: list[AppliedChange] = []

        def flush() -> None:
            s.record(RunKind.REPROCESS, changes=buffer)  # also marks them for re-reading
            buffer.clear()

        def keep(job: WriteJob, answer: WriteResult) -> None:
            result.results[job.subject] = answer
            buffer.append(_change(s.run_id, job.subject, answer))
            if len(buffer) >= FLUSH_USERS:
                flush()

        # any error from here on ends the run as failed in the store (`runtime.session`)
        await send_writes(s.client, jobs, s.budget, halt=s.guard.lapsed, on_outcome=keep)
        flush()
        if s.guard.lost is not None:
            raise StateError(f"{s.guard.lost}; reprocessing stopped")
        sent = [u for u, o in result.results.items() if o.ok]
        if sent:
            result.after = await reread_users(s.client, before, sent, policy, wait=wait)
        status = RunStatus.FAILED if result.fatal_result else RunStatus.SUCCEEDED
        s.record(RunKind.REPROCESS, finish=(status, result.summary()))
    log.info("reprocess.done", **result.summary())
    return result


def _change(run_id: str, user_id: str, answer: WriteResult) -> AppliedChange:
    return AppliedChange(
        run_id,
        user_id,
        None,
        ChangeAction.REPROCESS,
        answer.outcome,
        request_id=answer.request_id,
    )
