"""Resolve configured rules (names or ids) against the tenant's groups and subscribed SKUs.

Names resolve against what the tenant has, never against a hard-coded list. Every problem is
collected and reported at once, with its key and the closest matches; nothing is computed from a
configuration that fails.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from licsync.config.names import GroupNames
from licsync.config.settings import Config, GroupLicenses, LicenseSpec
from licsync.engine.inputs import Rule
from licsync.errors import ConfigError
from licsync.model import Group, Sku, Tenant, guid


def _closest(word: str, options: Iterable[str]) -> str:
    matches = difflib.get_close_matches(word, list(options), n=3, cutoff=0.6)
    return f"; closest: {', '.join(matches)}" if matches else ""


class _Resolver:
    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.group_names = GroupNames(tenant.groups)
        self.skus_by_part = {s.part_number.casefold(): s for s in tenant.skus.values()}
        self.plan_names = sorted({p.name for s in tenant.skus.values() for p in s.plans})
        self.problems: list[str] = []

    def group(self, key: str, value: str) -> Group | None:
        matches = self.group_names.matching(value)
        if len(matches) > 1:
            ids = ", ".join(sorted(g.id for g in matches))
            self.problems.append(
                f"{key}: {value!r} names {len(matches)} groups ({ids}); "
                "use the object id of the one you mean"
            )
            return None
        if not matches:
            names = (g.display_name for g in self.tenant.groups.values())
            self.problems.append(f"{key}: no group named {value!r}{_closest(value, names)}")
            return None
        found = matches[0]
        if not found.security_enabled:
            self.problems.append(
                f"{key}: group {found.display_name!r} ({found.id}) is not "
                "security-enabled; only security groups can carry licences"
            )
            return None
        if found.assigned_licenses:
            self.problems.append(
                f"{key}: group {found.display_name!r} ({found.id}) already "
                "has licences assigned by Entra; a licsync rule on it would "
                "duplicate them (remove the rule or the group's Entra licences)"
            )
            return None
        return found

    def sku(self, key: str, value: str) -> Sku | None:
        found = self.tenant.skus.get(guid(value)) or self.skus_by_part.get(value.casefold())
        if found is None:
            parts = (s.part_number for s in self.tenant.skus.values())
            self.problems.append(
                f"{key}: the tenant has no subscribed SKU {value!r}{_closest(value, parts)}"
            )
            return None
        if found.applies_to != "User":
            self.problems.append(
                f"{key}: {found.part_number} applies to {found.applies_to}, "
                "not to users; it cannot be assigned to a user"
            )
            return None
        return found

    def plans(self, key: str, sku: Sku, values: Iterable[str]) -> frozenset[str]:
        by_name = {p.name.casefold(): p.id for p in sku.plans}
        by_id = {p.id for p in sku.plans}
        found: set[str] = set()
        for index, value in enumerate(values):
            plan_id = guid(value) if guid(value) in by_id else by_name.get(value.casefold())
            if plan_id is not None:
                found.add(plan_id)
            elif value.casefold() in {n.casefold() for n in self.plan_names}:
                self.problems.append(
                    f"{key}[{index}]: service plan {value!r} is not part of "
                    f"{sku.part_number}{_closest(value, by_name)}"
                )
            else:
                self.problems.append(
                    f"{key}[{index}]: unknown service plan {value!r}"
                    f"{_closest(value, self.plan_names)}"
                )
        return frozenset(found)

    def rule(self, key: str, spec: GroupLicenses) -> Rule | None:
        group = self.group(f"{key}.group", spec.group)
        licenses: list[tuple[str, frozenset[str]]] = []
        for index, item in enumerate(spec.licenses):
            licenses.extend(self.license(f"{key}.licenses[{index}]", item, licenses))
        if group is None or len(licenses) != len(spec.licenses):
            return None
        return Rule(group.id, tuple(sorted(licenses)), spec.nested)

    def license(
        self, key: str, item: LicenseSpec, earlier: list[tuple[str, frozenset[str]]]
    ) -> list[tuple[str, frozenset[str]]]:
        sku = self.sku(f"{key}.sku", item.sku)
        if sku is None:
            return []
        disabled = self.plans(f"{key}.disabled_plans", sku, item.disabled_plans)
        if any(sku.id == s for s, _ in earlier):
            self.problems.append(f"{key}.sku: {sku.part_number} is listed twice in this rule")
            return []
        return [(sku.id, disabled)]


def resolve_rules(tenant: Tenant, config: Config) -> tuple[Rule, ...]:
    """The config's rules with ids in place of names; ConfigError lists every problem."""
    resolver = _Resolver(tenant)
    rules: list[Rule] = []
    first_key: dict[str, str] = {}
    for index, spec in enumerate(config.settings.group_licenses):
        key = f"group_licenses[{index}]"
        rule = resolver.rule(key, spec)
        if rule is None:
            continue
        if rule.group_id in first_key:
            resolver.problems.append(
                f"{key}.group: {spec.group!r} already has a rule at "
                f"{first_key[rule.group_id]}; put all its licences in one"
            )
            continue
        first_key[rule.group_id] = key
        rules.append(rule)
    if resolver.problems:
        raise ConfigError(str(config.path), resolver.problems)
    return tuple(rules)
