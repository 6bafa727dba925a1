"""Migration helpers: views of the emulator's state, Entra group licensing, and the migration
and its rollback run in-process or through the command line."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from licsync.config import Config
from licsync.emulator.server import Emulator
from licsync.graph import WriteBudget
from licsync.migrate import Target
from licsync.migrate.restore import RollbackResult, run_rollback
from licsync.migrate.run import MigrationResult, apply_migration
from licsync.model import Tenant
from tests.builders import catalogue_plan_id as plan_id
from tests.builders import catalogue_sku_id as sku_id
from tests.builders import group_id

E3 = "SPE_E3"


def effective(emulator: Emulator) -> dict[str, dict[str, frozenset[str]]]:
    """Every user's enabled plans per SKU held, from the emulator's assignedLicenses."""
    with emulator.tenant.lock:
        skus = emulator.tenant.skus
        return {
            uid: {
                lic["skuId"]: frozenset(
                    p["servicePlanId"]
                    for p in skus[lic["skuId"]].plans
                    if p["servicePlanId"] not in set(lic["disabledPlans"])
                )
                for lic in user.licenses
            }
            for uid, user in emulator.tenant.users.items()
        }


def consumed(emulator: Emulator) -> dict[str, int]:
    with emulator.tenant.lock:
        return {s.id: s.consumed for s in emulator.tenant.skus.values()}


def license_group(emulator: Emulator, n: int, part: str, disabled: list[str]) -> None:
    """Entra group licensing on group n (the emulator propagates it to the members)."""
    body = {
        "addLicenses": [
            {"skuId": sku_id(part), "disabledPlans": [plan_id(part, d) for d in disabled]}
        ],
        "removeLicenses": [],
    }
    emulator.tenant.assign_group_license(group_id(n), body)


def apply(config: Config, target: Target, tmp_path: Path, **kw: Any) -> MigrationResult:
    kw.setdefault("budget", WriteBudget(100_000))
    kw.setdefault("rollback", tmp_path / "rollback.json")
    return asyncio.run(apply_migration(config, target, **kw))


def cli_apply(config: Config, target: str, rollback: Path, *extra: str) -> int:
    """`licsync migrate apply` through the command line."""
    from licsync.cli import main

    args = ["migrate", "apply", "--config", str(config.path), "--target", target]
    return main([*args, "--rollback-file", str(rollback), *extra])


def reread(config: Config) -> dict[str, dict[str, frozenset[str]]]:
    """Every user's effective enabled plans per SKU, re-read through Graph (over HTTP)."""
    from licsync.connector.read_full import read_tenant
    from licsync.engine.service_plans import ServicePlanIndex
    from licsync.migrate.reread import effective_plans
    from licsync.runtime import graph_client

    async def read() -> Tenant:
        async with graph_client(config) as client:
            return await read_tenant(client, config, progress=False)

    tenant = asyncio.run(read())
    index = ServicePlanIndex(tenant, config.policy().plan_rules)
    return {u.id: effective_plans(index, u) for u in tenant.users.values()}


def rollback(config: Config, path: Path) -> RollbackResult:
    return asyncio.run(run_rollback(config, path, budget=WriteBudget(100_000)))
