"""Service-plan arithmetic over one tenant: enabled plans, conflicts and prerequisites.

Everything is memoised per (SKU, disabled plans): a tenant has few distinct combinations, and
the engine asks about them once per user.
"""

from __future__ import annotations

from collections.abc import Iterable

from licsync.engine.inputs import PlanRules
from licsync.model import Tenant

Key = tuple[str, frozenset[str]]


class ServicePlanIndex:
    """Answers plan questions for one tenant and one set of compatibility tables."""

    def __init__(self, tenant: Tenant, rules: PlanRules) -> None:
        self.tenant = tenant
        self.names: dict[str, str] = {}
        self.sku_plans: dict[str, frozenset[str]] = {}
        for sku in tenant.skus.values():
            self.sku_plans[sku.id] = frozenset(p.id for p in sku.plans)
            for plan in sku.plans:
                self.names[plan.id] = plan.name
        ids_by_name: dict[str, set[str]] = {}
        for plan_id, name in self.names.items():
            ids_by_name.setdefault(name, set()).add(plan_id)
        self.conflict_group: dict[str, int] = {}
        for index, names in enumerate(rules.conflicts):
            for name in names:
                for plan_id in ids_by_name.get(name, ()):
                    self.conflict_group[plan_id] = index
        self.prerequisites: dict[str, frozenset[str]] = {}
        for name, needs in rules.dependencies.items():
            needed = frozenset(i for n in needs for i in ids_by_name.get(n, ()))
            for plan_id in ids_by_name.get(name, ()):
                self.prerequisites[plan_id] = needed
        self.relevant = frozenset(self.conflict_group) | frozenset(
            i for needs in self.prerequisites.values() for i in needs
        )
        self._enabled: dict[Key, frozenset[str]] = {}
        self._relevant: dict[Key, frozenset[str]] = {}
        self._dependents: dict[Key, tuple[str, ...]] = {}
        self._groups: dict[tuple[Key, ...], frozenset[str]] = {}

    def name(self, plan_id: str) -> str:
        return self.names.get(plan_id, plan_id)

    def part_number(self, sku_id: str) -> str:
        sku = self.tenant.skus.get(sku_id)
        return sku.part_number if sku else sku_id

    def enabled(self, sku_id: str, disabled: frozenset[str]) -> frozenset[str]:
        """Plans a source of `sku_id` with `disabled` plans switches on."""
        key = (sku_id, disabled)
        found = self._enabled.get(key)
        if found is None:
            found = self._enabled[key] = self.sku_plans.get(sku_id, frozenset()) - disabled
        return found

    def relevant_enabled(self, sku_id: str, disabled: frozenset[str]) -> frozenset[str]:
        """The enabled plans that take part in a conflict or are someone's prerequisite."""
        key = (sku_id, disabled)
        found = self._relevant.get(key)
        if found is None:
            found = self._relevant[key] = self.enabled(sku_id, disabled) & self.relevant
        return found

    def dependents(self, sku_id: str, disabled: frozenset[str]) -> tuple[str, ...]:
        """Enabled plans of this source that need a prerequisite plan."""
        key = (sku_id, disabled)
        found = self._dependents.get(key)
        if found is None:
            found = self._dependents[key] = tuple(
                sorted(p for p in self.enabled(sku_id, disabled) if p in self.prerequisites)
            )
        return found

    def conflict(self, new: Iterable[str], held: Iterable[str]) -> tuple[str, str] | None:
        """The first pair (new plan, held plan) that cannot be assigned together, if any."""
        held_groups: dict[int, set[str]] = {}
        for plan_id in held:
            group = self.conflict_group.get(plan_id)
            if group is not None:
                held_groups.setdefault(group, set()).add(plan_id)
        if not held_groups:
            return None
        for plan_id in sorted(new):
            group = self.conflict_group.get(plan_id)
            others = held_groups.get(group, ()) if group is not None else ()
            clashing = sorted(p for p in others if p != plan_id)
            if clashing:
                return plan_id, clashing[0]
        return None

    def missing_prerequisite(
        self, dependents: Iterable[str], available: frozenset[str] | set[str]
    ) -> tuple[str, frozenset[str]] | None:
        """The first dependent plan none of whose prerequisites is available, if any."""
        for plan_id in dependents:
            needs = self.prerequisites[plan_id]
            if needs and not needs & available:
                return plan_id, needs
        return None

    def group_enabled(self, licenses: Iterable[tuple[str, frozenset[str]]]) -> frozenset[str]:
        """Plans one group's assignment switches on, over all of its licences."""
        key = tuple(licenses)
        found = self._groups.get(key)
        if found is None:
            found = self._groups[key] = frozenset().union(*(self.enabled(*k) for k in key))
        return found

    def group_missing_prerequisite(
        self, licenses: Iterable[tuple[str, frozenset[str]]]
    ) -> tuple[str, frozenset[str]] | None:
        """Entra's same-group rule: the first plan of a group's assignment whose prerequisites
        that same assignment does not enable (what the user holds elsewhere does not count)."""
        licenses = tuple(licenses)
        own = self.group_enabled(licenses)
        for sku_id, disabled in licenses:
            missing = self.missing_prerequisite(self.dependents(sku_id, disabled), own)
            if missing is not None:
                return missing
        return None

    def same_group_message(self, plan_id: str, needs: frozenset[str]) -> str:
        """Why a group's assignment breaks the same-group rule, in the administrator's words."""
        names = ", ".join(sorted(self.name(p) for p in needs))
        return (
            f"{self.name(plan_id)} depends on one of {names}, which the same group does not "
            "enable (Entra requires a plan and its prerequisite in the same group; add the "
            "prerequisite to the group or disable the dependent plan)"
        )
