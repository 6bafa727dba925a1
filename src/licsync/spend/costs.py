"""What the licences cost each month, before and after a plan: per SKU, per licsync rule and
per value of a user attribute (`[prices] group_by`).

Seats are counted as the seat forecast counts them (`consumedUnits` before, the forecast's
`after` once the plan is applied), so a SKU's cost is `seats * monthly price`; SKUs the price
file does not name cost nothing and are listed as unpriced.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from licsync.model import Plan, SourceKind, Tenant
from licsync.reports.forecast import SeatForecast
from licsync.spend.subscriptions import Subscription

ZERO = Decimal(0)
NO_VALUE = "(none)"


@dataclass(frozen=True, slots=True)
class Spend:
    """What a report needs to show spend: the tenant's monthly prices by skuId (empty without
    `[prices]`), the subscriptions by skuId (None when not read), and each user's value of the
    `group_by` attribute."""

    currency: str | None = None
    prices: Mapping[str, Decimal] = field(default_factory=dict)
    subscriptions: Mapping[str, tuple[Subscription, ...]] | None = None
    group_by: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)

    @property
    def priced(self) -> bool:
        return self.currency is not None


@dataclass(frozen=True, slots=True)
class Cost:
    """A monthly cost before and after the plan, for one line of a breakdown."""

    key: str  # skuId, rule group id or attribute value
    before: Decimal
    after: Decimal

    @property
    def difference(self) -> Decimal:
        return self.after - self.before


def money(amount: Decimal) -> float:
    """An amount for a report: rounded to the cent."""
    return float(amount.quantize(Decimal("0.01")))


def sku_costs(forecast: Sequence[SeatForecast], spend: Spend) -> dict[str, Cost]:
    """Each priced SKU's cost: seats in use before * price, seats after * price."""
    return {
        f.sku_id: Cost(f.sku_id, f.in_use * price, f.after * price)
        for f in forecast
        if (price := spend.prices.get(f.sku_id)) is not None
    }


def total(costs: Iterable[Cost]) -> Cost:
    before = after = ZERO
    for cost in costs:
        before += cost.before
        after += cost.after
    return Cost("", before, after)


def rule_costs(plan: Plan, tenant: Tenant, spend: Spend) -> list[Cost]:
    """Per rule group: the licences it gives (after the plan) to the users it covers, priced
    before and after. A licence two rules give counts under each."""
    before: dict[str, Decimal] = {}
    after: dict[str, Decimal] = {}
    for user_plan in plan.users:
        user = tenant.users.get(user_plan.user_id)
        held = user.held_skus() if user is not None else frozenset()
        kept = {a.sku_id for a in user_plan.assigned_licenses}
        for state in user_plan.states:
            price = spend.prices.get(state.sku_id)
            if state.kind is not SourceKind.RULE or state.group_id is None or price is None:
                continue
            group = state.group_id
            before[group] = before.get(group, ZERO) + (price if state.sku_id in held else ZERO)
            after[group] = after.get(group, ZERO) + (price if state.sku_id in kept else ZERO)
    return [Cost(g, before[g], after[g]) for g in sorted(before)]


def attribute_costs(plan: Plan, tenant: Tenant, spend: Spend) -> list[Cost]:
    """Per value of the `group_by` attribute: every licence its users hold, before and after
    (users without a value under "(none)"); empty without `group_by`."""
    if spend.group_by is None:
        return []
    before: dict[str, Decimal] = {}
    after: dict[str, Decimal] = {}
    prices = spend.prices
    for user_plan in plan.users:
        value = spend.attributes.get(user_plan.user_id) or NO_VALUE
        user = tenant.users.get(user_plan.user_id)
        held = user.held_skus() if user is not None else frozenset()
        before[value] = before.get(value, ZERO) + sum((prices.get(s, ZERO) for s in held), ZERO)
        after[value] = after.get(value, ZERO) + sum(
            (prices.get(a.sku_id, ZERO) for a in user_plan.assigned_licenses), ZERO
        )
    return [Cost(v, before[v], after[v]) for v in sorted(before, key=str.casefold)]
