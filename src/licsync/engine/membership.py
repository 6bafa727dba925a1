"""Who gets which group's licences: direct user members, or transitive ones for nested rules."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from licsync.engine.filters import AttributeValue, evaluate, properties
from licsync.engine.inputs import Policy, Rule
from licsync.model import Group, SourceKind, Tenant, User

# filter properties the User model carries as fields rather than in `attributes`
CORE = {
    "accountEnabled": lambda u: u.account_enabled,
    "objectId": lambda u: u.id,
    "usageLocation": lambda u: u.usage_location,
    "userPrincipalName": lambda u: u.user_principal_name,
    "userType": lambda u: u.user_type,
}


@dataclass(frozen=True, slots=True)
class GroupSource:
    """A group that grants a user some SKUs: a licsync rule or Entra's own group licensing."""

    group_id: str
    kind: SourceKind
    licenses: tuple[tuple[str, frozenset[str]], ...]


def transitive_users(groups: dict[str, Group], root: str) -> set[str]:
    """Users in `root` and in every group nested below it; cycles and unknown groups are safe."""
    users: set[str] = set()
    seen = {root}
    stack = [root]
    while stack:
        group = groups.get(stack.pop())
        if group is None:
            continue
        users.update(group.member_users)
        for child in group.member_groups:
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return users


def members_of(tenant: Tenant, group_id: str, nested: bool) -> Iterable[str]:
    """The users a rule on `group_id` licenses: direct members, or transitive ones if nested."""
    if nested:
        return transitive_users(tenant.groups, group_id)
    group = tenant.groups.get(group_id)
    return group.member_users if group else ()


def user_attributes(user: User) -> dict[str, AttributeValue]:
    """Every filter property of `user` licsync read: its attributes and the core fields."""
    found: dict[str, AttributeValue] = {name: read(user) for name, read in CORE.items()}
    found.update(user.attributes)
    return found


class FilterMatcher:
    """Which filter rules select a user. Users with equal values of every property the filters
    read share one evaluation (a tenant has far fewer distinct tuples than users)."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = [r for r in rules if r.filter is not None]
        needed = {p for r in self.rules for p in properties(r.filter)}  # type: ignore[arg-type]
        self.core = [read for name, read in CORE.items() if name in needed]
        self._seen: dict[object, frozenset[int]] = {}

    def matching(self, user: User) -> frozenset[int]:
        """The positions (in the rules given) of the filter rules that select `user`."""
        key = (user.attributes, *[read(user) for read in self.core])
        found = self._seen.get(key)
        if found is None:
            values = user_attributes(user)
            found = frozenset(
                i
                for i, r in enumerate(self.rules)
                if evaluate(r.filter, values)  # type: ignore[arg-type]
            )
            self._seen[key] = found
        return found


def sources_by_user(
    tenant: Tenant, rules: Iterable[Rule], policy: Policy
) -> dict[str, list[GroupSource]]:
    """Every user's group sources, each user's list sorted by group id.

    Rule sources skip users the policy excludes (disabled accounts, guests); Entra's own groups
    license direct user members whatever the policy, as Entra does.
    """
    found: dict[str, list[GroupSource]] = {}
    users = tenant.users
    rules = list(rules)
    matcher = FilterMatcher(rules)
    position = {id(r): i for i, r in enumerate(matcher.rules)}
    for rule in rules:
        source = GroupSource(rule.source_id, SourceKind.RULE, rule.licenses)
        selected = (
            users.keys()
            if rule.group_id is None
            else members_of(tenant, rule.group_id, rule.nested)
        )
        index = position.get(id(rule))
        for user_id in selected:
            user = users.get(user_id)
            if user is None:
                continue
            if not policy.license_disabled_accounts and not user.account_enabled:
                continue
            if not policy.license_guests and user.is_guest:
                continue
            if index is not None and index not in matcher.matching(user):
                continue
            found.setdefault(user_id, []).append(source)
    for group in tenant.groups.values():
        if not group.assigned_licenses or not group.security_enabled:
            continue
        licenses = tuple((a.sku_id, a.disabled_plans) for a in group.assigned_licenses)
        source = GroupSource(group.id, SourceKind.ENTRA, licenses)
        for user_id in group.member_users:
            if user_id in users:
                found.setdefault(user_id, []).append(source)
    for sources in found.values():
        sources.sort(key=lambda s: s.group_id)
    return found
