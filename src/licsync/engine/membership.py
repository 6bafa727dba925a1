"""Who gets which group's licences: direct user members, or transitive ones for nested rules."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from licsync.engine.filters import AttributeValue, Compare, clauses, compile_decisions, holds
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
    """Which filter rules select a user, each distinct answer computed once.

    A user is reduced to the truths of the comparisons the filters make, property by property
    (each distinct value of a property is compared once); users with the same truths share one
    decision of the rules. Unique values (proxy addresses, employee ids) cost a few string
    comparisons, not an evaluation of every rule."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = [(r, r.filter) for r in rules if r.filter is not None]
        by_prop: dict[str, dict[Compare, None]] = {}
        for _, expr in self.rules:
            for clause in clauses(expr):
                by_prop.setdefault(clause.prop, {})[clause] = None
        self.props = [(prop, tuple(found)) for prop, found in sorted(by_prop.items())]
        index = {c: i for i, c in enumerate(c for _, found in self.props for c in found)}
        self._decide_all = compile_decisions([expr for _, expr in self.rules], index)
        self._values: list[dict[object, tuple[bool, ...]]] = [{} for _ in self.props]
        self._seen: dict[tuple[bool, ...], frozenset[int]] = {}
        self._position = {id(r): i for i, (r, _) in enumerate(self.rules)}
        self._users: dict[str, frozenset[int]] = {}

    def selects(self, rule: Rule, user: User) -> bool:
        """Whether `rule`'s filter (if it has one) selects `user`."""
        index = self._position.get(id(rule))
        return index is None or index in self.matching(user)

    def matching(self, user: User) -> frozenset[int]:
        """The positions (among the filter rules given) of those that select `user`."""
        known = self._users.get(user.id)
        if known is None:
            known = self._users[user.id] = self._decide(user)
        return known

    def _decide(self, user: User) -> frozenset[int]:
        values = dict(user.attributes)
        truth: tuple[bool, ...] = ()
        for (prop, found), cache in zip(self.props, self._values, strict=True):
            value = CORE[prop](user) if prop in CORE else values.get(prop)
            known = cache.get(value)
            if known is None:
                known = cache[value] = tuple(holds(c, value) for c in found)
            truth += known
        matched = self._seen.get(truth)
        if matched is None:
            matched = self._decide_all(truth)
            self._seen[truth] = matched
        return matched


def _licensable(user: User, policy: Policy) -> bool:
    """Whether the policy lets rules license `user` (disabled accounts, guests)."""
    if not policy.license_disabled_accounts and not user.account_enabled:
        return False
    return policy.license_guests or not user.is_guest


def _rule_sources(
    tenant: Tenant, rules: list[Rule], policy: Policy
) -> dict[str, list[GroupSource]]:
    """The sources licsync's rules give each user (unsorted)."""
    found: dict[str, list[GroupSource]] = {}
    users = tenant.users
    matcher = FilterMatcher(rules)
    alone = {
        i: GroupSource(r.source_id, SourceKind.RULE, r.licenses)
        for i, (r, _) in enumerate(matcher.rules)
        if r.group_id is None
    }
    if alone:  # filter rules without a group: every user, its filters decided once
        for user in users.values():
            if _licensable(user, policy):
                chosen = [alone[i] for i in matcher.matching(user) if i in alone]
                if chosen:
                    found[user.id] = chosen
    for rule in rules:
        if rule.group_id is None:
            continue
        source = GroupSource(rule.source_id, SourceKind.RULE, rule.licenses)
        for user_id in members_of(tenant, rule.group_id, rule.nested):
            member = users.get(user_id)
            if member is not None and _licensable(member, policy) and matcher.selects(rule, member):
                found.setdefault(user_id, []).append(source)
    return found


def sources_by_user(
    tenant: Tenant, rules: Iterable[Rule], policy: Policy
) -> dict[str, list[GroupSource]]:
    """Every user's group sources, each user's list sorted by group id.

    Rule sources skip users the policy excludes (disabled accounts, guests); Entra's own groups
    license direct user members whatever the policy, as Entra does.
    """
    found = _rule_sources(tenant, list(rules), policy)
    users = tenant.users
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
