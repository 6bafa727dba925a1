"""Resolve configured rules (names or ids) against the tenant's groups and subscribed SKUs.

Names resolve against what the tenant has, never against a hard-coded list. Every problem is
collected and reported at once, with its file line, key and the closest matches (Microsoft's
catalogue helps with a product name or a part number the tenant has not bought); nothing is
computed from a configuration that fails.
"""

from __future__ import annotations

from collections.abc import Iterable

from licsync.catalogue import default_catalogue
from licsync.config.filters import parse_filter
from licsync.config.names import GroupNames
from licsync.config.settings import Config, GroupLicenses, LicenseSpec
from licsync.engine.inputs import Rule
from licsync.model import Group, Sku, Tenant, guid
from licsync.validation import Issue, Loc, close_matches, closest, shown


class _Resolver:
    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.group_names = GroupNames(tenant.groups)
        self.skus_by_part = {s.part_number.casefold(): s for s in tenant.skus.values()}
        self.plan_names = sorted({p.name for s in tenant.skus.values() for p in s.plans})
        self.problems: list[Issue] = []

    def problem(self, loc: Loc, message: str) -> None:
        self.problems.append(Issue(loc, message))

    def group(self, loc: Loc, value: str) -> Group | None:
        matches = self.group_names.matching(value)
        if len(matches) > 1:
            ids = ", ".join(sorted(g.id for g in matches))
            self.problem(
                loc,
                f"{shown(value)} names {len(matches)} groups ({ids}); "
                "use the object id of the one you mean",
            )
            return None
        if not matches:
            names = [g.display_name for g in self.tenant.groups.values()]
            self.problem(loc, f"no group named {shown(value)}{closest(value, names)}")
            return None
        found = matches[0]
        if not found.security_enabled:
            self.problem(
                loc,
                f"group {shown(found.display_name)} ({found.id}) is not "
                "security-enabled; only security groups can carry licences",
            )
            return None
        if found.assigned_licenses:
            self.problem(
                loc,
                f"group {shown(found.display_name)} ({found.id}) already "
                "has licences assigned by Entra; a licsync rule on it would "
                "duplicate them (remove the rule or the group's Entra licences)",
            )
            return None
        return found

    def sku(self, loc: Loc, value: str) -> Sku | None:
        found = self.tenant.skus.get(guid(value)) or self.skus_by_part.get(value.casefold())
        if found is None:
            self.problem(loc, f"the tenant has no subscribed SKU {shown(value)}{self._hint(value)}")
            return None
        if found.applies_to != "User":
            self.problem(
                loc,
                f"{found.part_number} applies to {found.applies_to}, "
                "not to users; it cannot be assigned to a user",
            )
            return None
        return found

    def _hint(self, value: str) -> str:
        """The closest subscribed part numbers, or what Microsoft's catalogue calls `value`."""
        parts = {s.part_number.casefold(): s.part_number for s in self.tenant.skus.values()}
        near = close_matches(value.casefold(), list(parts))
        if near:
            return "; closest: " + ", ".join(parts[p] for p in near)
        catalogue = default_catalogue().skus.values()
        by_name = {c.display_name.casefold(): c.part_number for c in catalogue}
        known = {c.part_number.casefold(): c.display_name for c in catalogue}
        bought = ", ".join(sorted(parts.values())) or "none"
        if value.casefold() in by_name:
            part = by_name[value.casefold()]
            listed = f"; it is {part}" if part.casefold() in parts else ""
            return f" (write the part number, not the product name{listed}; subscribed: {bought})"
        if value.casefold() in known:
            return f" ({known[value.casefold()]} is not bought here; subscribed: {bought})"
        return f"; subscribed: {bought}"

    def plans(self, loc: Loc, sku: Sku, values: Iterable[str]) -> frozenset[str]:
        by_name = {p.name.casefold(): p.id for p in sku.plans}
        by_id = {p.id for p in sku.plans}
        known = {n.casefold() for n in self.plan_names}
        found: set[str] = set()
        for index, value in enumerate(values):
            plan_id = guid(value) if guid(value) in by_id else by_name.get(value.casefold())
            if plan_id is not None:
                found.add(plan_id)
            elif value.casefold() in known:
                names = [p.name for p in sku.plans]
                self.problem(
                    (*loc, index),
                    f"service plan {shown(value)} is not part of "
                    f"{sku.part_number}{closest(value, names)}",
                )
            else:
                self.problem(
                    (*loc, index),
                    f"unknown service plan {shown(value)}{closest(value, self.plan_names)}",
                )
        return frozenset(found)

    def rule(self, loc: Loc, spec: GroupLicenses) -> Rule | None:
        group = None if spec.group is None else self.group((*loc, "group"), spec.group)
        licenses: list[tuple[str, frozenset[str]]] = []
        for index, item in enumerate(spec.licenses):
            licenses.extend(self.license((*loc, "licenses", index), item, licenses))
        if (spec.group is not None and group is None) or len(licenses) != len(spec.licenses):
            return None
        return Rule(
            None if group is None else group.id,
            tuple(sorted(licenses)),
            spec.nested,
            None if spec.filter is None else parse_filter(spec.filter),
            spec.name,
        )

    def license(
        self, loc: Loc, item: LicenseSpec, earlier: list[tuple[str, frozenset[str]]]
    ) -> list[tuple[str, frozenset[str]]]:
        sku = self.sku((*loc, "sku"), item.sku)
        if sku is None:
            return []
        disabled = self.plans((*loc, "disabled_plans"), sku, item.disabled_plans)
        if any(sku.id == s for s, _ in earlier):
            self.problem((*loc, "sku"), f"{sku.part_number} is listed twice in this rule")
            return []
        return [(sku.id, disabled)]


def resolve_rules(tenant: Tenant, config: Config) -> tuple[Rule, ...]:
    """The config's rules with ids in place of names; ConfigError lists every problem."""
    resolver = _Resolver(tenant)
    rules: list[Rule] = []
    first: dict[str, Loc] = {}
    for index, spec in enumerate(config.settings.group_licenses):
        loc: Loc = ("group_licenses", index)
        rule = resolver.rule(loc, spec)
        if rule is None:
            continue
        key = rule.source_id.casefold()
        if key in first:
            where = config.lines.line(first[key])
            what = shown(spec.group) if spec.group is not None else f"rule {shown(spec.name)}"
            resolver.problem(
                (*loc, "group" if spec.group is not None else "name"),
                f"{what} already has a rule at "
                f"group_licenses[{first[key][1]}]"
                + (f" (line {where})" if where else "")
                + "; put all its licences in one"
                + ("" if spec.group is not None else ", or give each rule its own name"),
            )
            continue
        first[key] = loc
        rules.append(rule)
    if resolver.problems:
        raise config.error(resolver.problems)
    return tuple(rules)
