"""Spend in every report: cost per SKU, rule and attribute value, the subscriptions behind each
SKU, seats droppable at renewal and seats about to stop working.

`spend_view` computes the figures once per report; the `*_json`, `*_tables` and `*_html`
functions render them for the JSON, terminal and HTML reports (CSV and xlsx take rows from
`sku_rows`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from rich.table import Table
from rich.text import Text

from licsync.model import Plan, Tenant
from licsync.reports.forecast import SeatForecast
from licsync.reports.html_page import HtmlTable, Stat
from licsync.reports.names import Names
from licsync.spend.costs import (
    Cost,
    Spend,
    attribute_costs,
    money,
    rule_costs,
    sku_costs,
    total,
)
from licsync.spend.renewals import Renewal, renewal
from licsync.spend.subscriptions import iso


@dataclass(frozen=True, slots=True)
class SpendView:
    """The spend figures of one report."""

    spend: Spend
    costs: dict[str, Cost]  # by skuId, priced SKUs only
    total: Cost
    renewals: dict[str, Renewal]  # by skuId, when subscriptions were read
    rules: list[Cost]
    attributes: list[Cost]


def spend_view(
    plan: Plan, tenant: Tenant, forecast: Sequence[SeatForecast], spend: Spend
) -> SpendView:
    costs = sku_costs(forecast, spend)
    subscriptions = spend.subscriptions
    renewals = (
        {}
        if subscriptions is None
        else {f.sku_id: renewal(f, subscriptions.get(f.sku_id, ())) for f in forecast}
    )
    return SpendView(
        spend,
        costs,
        total(costs.values()),
        renewals,
        rule_costs(plan, tenant, spend) if spend.priced else [],
        attribute_costs(plan, tenant, spend) if spend.priced else [],
    )


def _amount(amount: Decimal | None) -> float | None:
    return None if amount is None else money(amount)


def _text(amount: Decimal) -> str:
    return f"{amount.quantize(Decimal('0.01')):,}"


# ----- JSON ---------------------------------------------------------------------------------
def sku_json(view: SpendView, sku_id: str) -> dict[str, Any]:
    """The members a SKU's JSON entry gains: cost (with prices), subscriptions and renewal
    (when they were read)."""
    out: dict[str, Any] = {}
    if view.spend.priced:
        cost = view.costs.get(sku_id)
        out["monthlyCostBefore"] = _amount(cost.before) if cost else None
        out["monthlyCostAfter"] = _amount(cost.after) if cost else None
    found = view.renewals.get(sku_id)
    if found is not None:
        assert view.spend.subscriptions is not None
        subs = view.spend.subscriptions.get(sku_id, ())
        out["subscriptions"] = [s.to_json() for s in subs]
        out["droppableAtRenewal"] = found.droppable
        out["nextRenewalDateTime"] = iso(found.date)
        out["seatsAtRisk"] = [
            {
                "subscriptionId": loss.subscription.id,
                "status": loss.subscription.status,
                "isTrial": loss.subscription.is_trial,
                "users": loss.users,
                "dateTime": iso(loss.date),
            }
            for loss in found.losses
        ]
    return out


def summary_cost(view: SpendView) -> dict[str, Any]:
    """`summary.cost`: the monthly total before and after the plan."""
    return {
        "currency": view.spend.currency,
        "monthlyBefore": money(view.total.before),
        "monthlyAfter": money(view.total.after),
    }


def costs_json(view: SpendView, names: Names) -> dict[str, Any]:
    """The breakdowns: per rule group and per value of `[prices] group_by`."""
    return {
        "currency": view.spend.currency,
        "byRule": [
            {
                "groupId": c.key,
                "group": names.group(c.key),
                "monthlyBefore": money(c.before),
                "monthlyAfter": money(c.after),
            }
            for c in view.rules
        ],
        "groupBy": view.spend.group_by,
        "byAttribute": [
            {"value": c.key, "monthlyBefore": money(c.before), "monthlyAfter": money(c.after)}
            for c in view.attributes
        ],
    }


# ----- rows shared by the terminal, HTML and spreadsheet reports ---------------------------
COST_COLUMNS = ("SKU", "Seats before", "Seats after", "Monthly before", "Monthly after", "Change")
RENEWAL_COLUMNS = (
    "SKU",
    "Subscription",
    "Status",
    "Trial",
    "Seats",
    "Next lifecycle",
    "Droppable at renewal",
)


def cost_rows(view: SpendView, forecast: Sequence[SeatForecast]) -> Iterator[list[str]]:
    for f in forecast:
        cost = view.costs.get(f.sku_id)
        if cost is None or not (f.in_use or f.after):
            continue
        yield [
            f.part_number,
            str(f.in_use),
            str(f.after),
            _text(cost.before),
            _text(cost.after),
            _text(cost.difference),
        ]


def breakdown_rows(costs: Sequence[Cost], label: Any) -> Iterator[list[str]]:
    for c in costs:
        yield [label(c.key), _text(c.before), _text(c.after), _text(c.difference)]


def renewal_rows(view: SpendView, forecast: Sequence[SeatForecast]) -> Iterator[list[str]]:
    """One row per subscription (the SKU's droppable seats on its first renewing one)."""
    subscriptions = view.spend.subscriptions or {}
    for f in forecast:
        found = view.renewals.get(f.sku_id)
        subs = subscriptions.get(f.sku_id, ())
        if found is None or not subs:
            continue
        first = next((s for s in subs if s.renews), None)
        for sub in subs:
            droppable = found.droppable if sub is first else None
            yield [
                f.part_number,
                sub.id,
                sub.status,
                "yes" if sub.is_trial else "no",
                str(sub.total_licenses),
                (iso(sub.next_lifecycle) or "")[:10],
                "" if droppable is None else str(droppable),
            ]


def loss_lines(view: SpendView, names: Names) -> list[str]:
    """ "N users lose X on DATE", one per subscription that ends while the plan needs it."""
    lines = []
    for sku_id, found in view.renewals.items():
        for loss in found.losses:
            sub = loss.subscription
            kind = "trial" if sub.is_trial else sub.status
            lines.append(
                f"{loss.users} users lose {names.part_number(sku_id)} on "
                f"{(iso(loss.date) or 'an unknown date')[:10]} ({kind} subscription {sub.id})"
            )
    return lines


def _breakdowns(view: SpendView, names: Names) -> list[tuple[str, str, list[list[str]]]]:
    """(id, title, rows) of the rule and attribute breakdowns that have rows."""
    found = []
    if view.rules:
        found.append(("cost-rules", "Cost by rule", list(breakdown_rows(view.rules, names.group))))
    if view.attributes:
        rows = list(breakdown_rows(view.attributes, str))
        found.append(("cost-attribute", f"Cost by {view.spend.group_by}", rows))
    return found


# ----- terminal -----------------------------------------------------------------------------
def _table(title: str, columns: Sequence[str], rows: Iterator[list[str]], right: int) -> Table:
    table = Table(title=title, title_justify="left")
    for position, column in enumerate(columns):
        table.add_column(column, justify="right" if position >= right else "left")
    for row in rows:
        table.add_row(*map(Text, row))
    return table


def spend_tables(
    view: SpendView, forecast: Sequence[SeatForecast], names: Names
) -> list[Table | Text]:
    """The terminal report's spend tables."""
    parts: list[Table | Text] = []
    currency = view.spend.currency
    if currency is not None:
        parts.append(
            _table(f"Cost ({currency} a month)", COST_COLUMNS, cost_rows(view, forecast), 1)
        )
        for _, title, rows in _breakdowns(view, names):
            columns = (title.removeprefix("Cost by ").capitalize(), *COST_COLUMNS[3:])
            parts.append(_table(f"{title} ({currency} a month)", columns, iter(rows), 1))
        parts.append(
            Text(
                f"Monthly cost: {_text(view.total.before)} {currency} now, "
                f"{_text(view.total.after)} {currency} after the plan "
                f"({_text(view.total.difference)}).",
                style="bold",
            )
        )
    if view.renewals:
        parts.append(_table("Subscriptions", RENEWAL_COLUMNS, renewal_rows(view, forecast), 4))
        parts.extend(Text(line, style="bold red") for line in loss_lines(view, names))
    return parts


# ----- HTML ---------------------------------------------------------------------------------
def spend_stats(view: SpendView) -> list[Stat]:
    if view.spend.currency is None:
        return []
    currency = view.spend.currency
    return [
        Stat(f"{currency} a month now", _text(view.total.before), "cost.monthlyBefore"),
        Stat(f"{currency} a month after", _text(view.total.after), "cost.monthlyAfter"),
    ]


def spend_html(view: SpendView, forecast: Sequence[SeatForecast], names: Names) -> list[HtmlTable]:
    """The HTML report's spend tables."""
    tables: list[HtmlTable] = []
    if view.spend.currency is not None:
        tables.append(
            HtmlTable(
                "cost",
                f"Cost ({view.spend.currency} a month)",
                COST_COLUMNS,
                list(cost_rows(view, forecast)),
                filters=("SKU",),
                numeric=COST_COLUMNS[1:],
                search="products",
            )
        )
        for table_id, title, rows in _breakdowns(view, names):
            columns = (title.removeprefix("Cost by ").capitalize(), *COST_COLUMNS[3:])
            tables.append(
                HtmlTable(
                    table_id,
                    f"{title} ({view.spend.currency} a month)",
                    columns,
                    rows,
                    numeric=COST_COLUMNS[3:],
                    search="names",
                )
            )
    if view.renewals:
        losses = "".join(f'<p class="bad">{line}</p>' for line in loss_lines(view, names))
        tables.append(
            HtmlTable(
                "subscriptions",
                "Subscriptions and renewals",
                RENEWAL_COLUMNS,
                list(renewal_rows(view, forecast)),
                filters=("SKU", "Status", "Trial"),
                tags=("Status",),
                numeric=("Seats", "Droppable at renewal"),
                search="products, subscriptions",
                intro=losses,
            )
        )
    return tables
