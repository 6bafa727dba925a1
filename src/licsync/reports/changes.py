"""Every change of a plan as rows an admin can read: per user and SKU, old -> new, and why.

One `ChangeRow` per licence added, updated or removed and per usage location set. `before` and
`after` are the disabled plans of licsync's direct assignment (None: no assignment); `sources`
names what causes the change: the rule groups that grant the SKU, the user's own direct
assignment licsync restores, or, for a removal, that no rule grants the SKU any more.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from licsync.engine.inputs import RULE_SOURCE
from licsync.model import Plan, SourceKind, UserPlan
from licsync.reports.names import Names

NO_RULE = "no rule grants it any more"


@dataclass(frozen=True, slots=True)
class ChangeRow:
    user_id: str
    user_principal_name: str
    action: str  # add | update | remove | set-usage-location
    sku_id: str  # "" for set-usage-location
    before: frozenset[str] | None
    after: frozenset[str] | None
    sources: tuple[str, ...]
    usage_location: str = ""


def source_label(kind: SourceKind, group_id: str | None, names: Names) -> str:
    """How a report names one source: `rule: Sales`, `Entra group: Staff` or `direct`."""
    if kind is SourceKind.DIRECT:
        return "direct"
    if group_id is not None and group_id.startswith(RULE_SOURCE):
        return names.group(group_id)  # `rule "Sales FR"`: a filter rule without a group
    prefix = "rule" if kind is SourceKind.RULE else "Entra group"
    return f"{prefix}: {names.group(group_id)}"


def user_changes(user: UserPlan, names: Names) -> Iterator[ChangeRow]:
    """The rows of one user's changes: usage location first, then each SKU."""
    current = names.tenant.users[user.user_id].direct_licenses()
    base = (user.user_id, user.user_principal_name)
    if user.usage_location:
        yield ChangeRow(*base, "set-usage-location", "", None, None, (), user.usage_location)
    for a in user.add_licenses:
        causes = tuple(
            source_label(s.kind, s.group_id, names)
            for s in sorted(user.states, key=lambda s: s.kind is SourceKind.DIRECT)
            if s.sku_id == a.sku_id and s.error is None and s.kind is not SourceKind.ENTRA
        )
        before = current.get(a.sku_id)
        action = "update" if before is not None else "add"
        yield ChangeRow(*base, action, a.sku_id, before, a.disabled_plans, causes)
    for sku_id in user.remove_licenses:
        yield ChangeRow(*base, "remove", sku_id, current.get(sku_id), None, (NO_RULE,))


def change_rows(plan: Plan, names: Names) -> Iterator[ChangeRow]:
    """Every change of the plan, users by user principal name."""
    for user in sorted(plan.changes, key=lambda u: u.user_principal_name.casefold()):
        yield from user_changes(user, names)
