"""What-if: what two rule sets grant on one tenant, and who gains, loses or changes what.

A comparison of grants, not of plans: the licences each rule set's sources would give every user
(per SKU, the union of enabled plans over the rules that grant it), before the ledger, seats,
conflicts and prerequisites. So it answers "whom would the new rules no longer cover" even on a
fresh state store, and a change that only moves a seat shortage is not reported as a loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from licsync.engine.inputs import Policy, Rule
from licsync.engine.membership import sources_by_user
from licsync.model import SourceKind, Tenant


class Change(StrEnum):
    GAIN = "gain"
    LOSE = "lose"
    PLANS = "plans"


@dataclass(frozen=True, slots=True)
class Grant:
    """A SKU the rules give a user: the plans off in every granting rule, and those rules."""

    disabled_plans: frozenset[str]
    sources: tuple[str, ...]  # rule source ids (group id, or "rule:" + name), sorted


@dataclass(frozen=True, slots=True)
class GrantChange:
    user_id: str
    sku_id: str
    change: Change
    old: Grant | None
    new: Grant | None


Grants = dict[tuple[str, str], Grant]  # (user id, sku id) → grant


def rule_grants(tenant: Tenant, rules: Sequence[Rule], policy: Policy) -> Grants:
    """Every (user, SKU) the rules grant, with the plans left off (a plan is off only if every
    granting rule switches it off)."""
    found: dict[tuple[str, str], list[tuple[str, frozenset[str]]]] = {}
    for user_id, sources in sources_by_user(tenant, rules, policy).items():
        for source in sources:
            if source.kind is not SourceKind.RULE:
                continue
            for sku_id, disabled in source.licenses:
                found.setdefault((user_id, sku_id), []).append((source.group_id, disabled))
    return {
        key: Grant(
            frozenset.intersection(*(d for _, d in given)),
            tuple(sorted(s for s, _ in given)),
        )
        for key, given in found.items()
    }


def compare_grants(old: Grants, new: Grants) -> list[GrantChange]:
    """What changes from `old` to `new`: losses first, then gains, then plan changes, each by
    user and SKU. A grant whose plans and rules are the same is no change; one that moves to
    other rules with the same plans is none either (the user holds the same licence)."""
    changes = []
    for key in old.keys() | new.keys():
        before, after = old.get(key), new.get(key)
        if before is None:
            kind = Change.GAIN
        elif after is None:
            kind = Change.LOSE
        elif before.disabled_plans != after.disabled_plans:
            kind = Change.PLANS
        else:
            continue
        changes.append(GrantChange(key[0], key[1], kind, before, after))
    order = {Change.LOSE: 0, Change.GAIN: 1, Change.PLANS: 2}
    changes.sort(key=lambda c: (order[c.change], c.user_id, c.sku_id))
    return changes
