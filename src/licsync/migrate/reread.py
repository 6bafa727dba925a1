"""What `migrate apply` and `migrate rollback` share beside the run session: re-reading users
and the effective plans of a user."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from licsync.config import Config
from licsync.connector.read_full import USER_SELECT
from licsync.engine.service_plans import ServicePlanIndex
from licsync.graph import GraphClient
from licsync.graphjson import parse_user
from licsync.model import Tenant, User, guid

READ_CONCURRENCY = 8


async def read_users(client: GraphClient, user_ids: Iterable[str]) -> dict[str, User]:
    """Re-read users with their licence properties (GET /users/{id}), a few at a time."""
    semaphore = asyncio.Semaphore(READ_CONCURRENCY)

    async def one(user_id: str) -> User:
        async with semaphore:
            raw = await client.get_json(f"/users/{user_id}", {"$select": USER_SELECT})
        return parse_user(raw)

    users = await asyncio.gather(*(one(u) for u in sorted(set(user_ids))))
    return {guid(u.id): u for u in users}


def effective_plans(index: ServicePlanIndex, user: User) -> dict[str, frozenset[str]]:
    """The user's enabled service plans per SKU held (what `assignedLicenses` adds up to)."""
    return {a.sku_id: index.enabled(a.sku_id, a.disabled_plans) for a in user.assigned_licenses}


def plan_index(tenant: Tenant, config: Config) -> ServicePlanIndex:
    return ServicePlanIndex(tenant, config.policy().plan_rules)
