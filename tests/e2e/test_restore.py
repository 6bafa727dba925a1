"""A user restored from the recycle bin keeps its groups, and Graph reports no members@delta
for them: the next incremental run reads its groups (memberOf) and plans as a full read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from licsync.emulator.server import Emulator
from tests.builders import catalogue_sku_id as sku_id
from tests.builders import group_id, user_id
from tests.e2e.test_incremental import RULES, same_tenant, tenant_with_nesting
from tests.syncing import direct_licences, make_config, sync


def restore(graph: Emulator, object_id: str) -> dict[str, Any]:
    reply = httpx.post(f"{graph.url}/directory/deletedItems/{object_id}/restore")
    reply.raise_for_status()
    return reply.json()


def test_a_restored_user_is_planned_as_a_full_read_would(
    emulator_factory: Any, tmp_path: Path
) -> None:
    graph = emulator_factory(tenant_with_nesting())
    config = make_config(tmp_path, graph, RULES)
    sync(config)
    e3 = sku_id("SPE_E3")
    held = direct_licences(graph)[user_id(2)]
    assert e3 in held
    httpx.delete(f"{graph.url}/users/{user_id(2)}").raise_for_status()
    assert user_id(2) not in sync(config).tenant.users  # incremental: @removed, forgotten

    assert restore(graph, user_id(2))["id"] == user_id(2)
    fresh = sync(config, dry_run=True, full=True)
    graph.stats.reset()
    after = sync(config)

    assert after.incremental
    assert user_id(2) in after.tenant.groups[group_id(1)].member_users
    same_tenant(after.tenant, fresh.tenant, {group_id(n) for n in (1, 2, 3, 4)})
    assert after.plan.changes == fresh.plan.changes and after.plan.ledger == fresh.plan.ledger
    assert after.plan.changes == ()
    assert direct_licences(graph)[user_id(2)] == held
    assert graph.stats.count("GET /users/{id}/memberOf") == 1  # only the user that came back
