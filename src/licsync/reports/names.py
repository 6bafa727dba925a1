"""Friendly names for SKUs and service plans: the tenant's part numbers, Microsoft's catalogue."""

from __future__ import annotations

from collections.abc import Iterable

from licsync.catalogue import Catalogue, default_catalogue
from licsync.engine.inputs import RULE_SOURCE
from licsync.model import Tenant


class Names:
    def __init__(self, tenant: Tenant, catalogue: Catalogue | None = None) -> None:
        self.tenant = tenant
        self.catalogue = catalogue or default_catalogue()
        self.plans = {p.id: p.name for s in tenant.skus.values() for p in s.plans}

    def part_number(self, sku_id: str) -> str:
        sku = self.tenant.skus.get(sku_id)
        return sku.part_number if sku else sku_id

    def product(self, sku_id: str) -> str:
        return self.catalogue.sku_name(sku_id) or self.part_number(sku_id)

    def plan_list(self, plan_ids: Iterable[str]) -> list[str]:
        return sorted(self.plans.get(p, p) for p in plan_ids)

    def group(self, group_id: str | None) -> str:
        if group_id is None:
            return "direct"
        group = self.tenant.groups.get(group_id)
        if group is None and group_id.startswith(RULE_SOURCE):
            return f'rule "{group_id.removeprefix(RULE_SOURCE)}"'
        return group.display_name if group else group_id
