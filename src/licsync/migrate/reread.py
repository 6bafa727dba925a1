"""What `migrate apply` and `migrate rollback` share beside the run session: re-reading users
and the effective plans of a user."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from licsync.config import Config
from licsync.connector.licence_writes import AssignLicense
from licsync.connector.read_full import USER_SELECT
from licsync.engine.service_plans import ServicePlanIndex
from licsync.graph.errors import GraphError, GraphPagingError
from licsync.graph.paging import SHAPE_ERRORS
from licsync.graphjson import parse_user
from licsync.model import Tenant, User, guid

if TYPE_CHECKING:
    from licsync.graph import GraphClient

READ_CONCURRENCY = 8
DELETED = "user deleted since the plan"


@dataclass(frozen=True, slots=True)
class Reread:
    """Users as Graph shows them now, by id; `deleted`: those Graph no longer has (404)."""

    users: dict[str, User]
    deleted: frozenset[str]


async def read_users(
    client: GraphClient,
    user_ids: Iterable[str],
    written: Mapping[str, AssignLicense] | None = None,
) -> Reread:
    """Re-read users with their licence properties (GET /users/{id}), a few at a time. A user
    in `written` (a job that succeeded, by user id) is read again, backing off up to the retry
    policy's replication wait, until Graph shows that write: a replica may still serve the
    version before it. A user deleted meanwhile is in `deleted`, not an error."""
    semaphore = asyncio.Semaphore(READ_CONCURRENCY)
    found: dict[str, Any] = {}
    deleted: set[str] = set()

    async def one(user_id: str) -> None:
        async with semaphore:
            try:
                found[user_id] = await client.get_json(
                    f"/users/{user_id}", {"$select": USER_SELECT}
                )
            except GraphError as exc:
                if exc.verdict is None or exc.verdict.status != 404:
                    raise
                found.pop(user_id, None)
                deleted.add(user_id)

    await asyncio.gather(*(one(u) for u in sorted(set(user_ids))))
    waiting = {u for u, job in (written or {}).items() if u in found and not job.applied(found[u])}

    async def settled() -> bool:
        await asyncio.gather(*(one(u) for u in sorted(waiting)))
        waiting.difference_update(
            [u for u in waiting if u not in found or (written or {})[u].applied(found[u])]
        )
        return not waiting

    if waiting:
        await client.policy.until_replicated(settled, what="re-read", wait_first=True)
    users = {}
    for user_id, raw in found.items():
        try:
            users[guid(user_id)] = parse_user(raw)
        except SHAPE_ERRORS as exc:  # never trust a reply: one clear error, exit 5
            raise GraphPagingError(
                f"GET /users/{user_id}: the reply is not a Graph user ({exc})"
            ) from None
    return Reread(users, frozenset(guid(u) for u in deleted))


def effective_plans(index: ServicePlanIndex, user: User) -> dict[str, frozenset[str]]:
    """The user's enabled service plans per SKU held (what `assignedLicenses` adds up to)."""
    return {a.sku_id: index.enabled(a.sku_id, a.disabled_plans) for a in user.assigned_licenses}


def plan_index(tenant: Tenant, config: Config) -> ServicePlanIndex:
    return ServicePlanIndex(tenant, config.policy().plan_rules)
