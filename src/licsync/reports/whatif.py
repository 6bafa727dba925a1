"""The what-if report (`plan --compare`): who gains, loses or changes what between two rule sets,
in every format. Shapes in docs/report-format.md."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from licsync.engine.whatif import Change, Grant, GrantChange
from licsync.reports.html_page import HtmlTable, ReportContext, Stat, render_page
from licsync.reports.names import Names
from licsync.reports.output import write_document
from licsync.spend.prices import PriceList

WHATIF_VERSION = 1
COLUMNS = (
    "userId",
    "userPrincipalName",
    "skuId",
    "skuPartNumber",
    "change",
    "old",
    "new",
    "rules",
)


def _plans(grant: Grant | None, names: Names) -> list[str] | None:
    return None if grant is None else names.plan_list(grant.disabled_plans)


def _rules(change: GrantChange, names: Names) -> list[str]:
    grant = change.old if change.change is Change.LOSE else change.new
    return [names.group(s) for s in grant.sources] if grant else []


def document(
    changes: Sequence[GrantChange], names: Names, prices: PriceList | None = None
) -> dict[str, Any]:
    """The report as a JSON-ready dict: `changes` (losses first) and `summary`; with `prices`
    (`[prices]`), what the seat difference costs per month."""
    users = names.tenant.users
    rows = [
        {
            "userId": c.user_id,
            "userPrincipalName": users[c.user_id].user_principal_name,
            "skuId": c.sku_id,
            "skuPartNumber": names.part_number(c.sku_id),
            "change": c.change.value,
            "old": _plans(c.old, names),
            "new": _plans(c.new, names),
            "rules": _rules(c, names),
        }
        for c in changes
    ]
    kinds = Counter(c.change for c in changes)
    per_rule: dict[str, Counter[str]] = {}
    for c in changes:
        for rule in _rules(c, names):
            per_rule.setdefault(rule, Counter())[c.change.value] += 1
    seats = Counter[str]()
    for c in changes:
        if c.change is not Change.PLANS:
            seats[c.sku_id] += 1 if c.change is Change.GAIN else -1
    monthly = prices.for_tenant(names.tenant) if prices is not None else {}
    seat_rows = [
        {"skuId": sku, "skuPartNumber": names.part_number(sku), "difference": n}
        | ({"monthlyCostDifference": float(monthly[sku] * n)} if sku in monthly else {})
        for sku, n in sorted(seats.items(), key=lambda i: names.part_number(i[0]))
        if n
    ]
    cost = (
        {
            "currency": prices.currency,
            "monthlyDifference": float(sum(monthly.get(s, 0) * n for s, n in seats.items())),
        }
        if prices is not None
        else None
    )
    return {
        "version": WHATIF_VERSION,
        "changes": rows,
        "summary": {
            **({"cost": cost} if cost is not None else {}),
            "users": len({c.user_id for c in changes}),
            "usersLosing": len({c.user_id for c in changes if c.change is Change.LOSE}),
            "gains": kinds[Change.GAIN],
            "losses": kinds[Change.LOSE],
            "planChanges": kinds[Change.PLANS],
            "rules": [
                {
                    "rule": rule,
                    "gains": count["gain"],
                    "losses": count["lose"],
                    "planChanges": count["plans"],
                }
                for rule, count in sorted(per_rule.items())
            ],
            "seats": seat_rows,
        },
    }


def _cell(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return ", ".join(value) or "all plans on"
    return str(value)


def _cells(row: dict[str, Any]) -> list[str]:
    return [_cell(row["old"]), _cell(row["new"]), _cell(row["rules"])]


def _rows(doc: dict[str, Any]) -> Iterator[list[str]]:
    for row in doc["changes"]:
        yield [_cell(row[column]) for column in COLUMNS]


def _table(doc: dict[str, Any], console: Console) -> None:
    summary = doc["summary"]
    table = Table(title="What the new rules change", title_justify="left")
    for column in ("User", "Product", "Change", "Disabled before", "Disabled after", "Rules"):
        table.add_column(column, overflow="fold")
    styles = {"lose": "red", "gain": "green", "plans": "yellow"}
    for row in doc["changes"]:
        table.add_row(
            row["userPrincipalName"],
            row["skuPartNumber"],
            Text(row["change"], style=styles[row["change"]]),
            *_cells(row),
        )
    headline = Text(
        f"{summary['losses']} licences lost ({summary['usersLosing']} users), "
        f"{summary['gains']} gained, {summary['planChanges']} with other plans; "
        f"{summary['users']} users change",
        style="bold red" if summary["losses"] else "bold",
    )
    seats = "; ".join(f"{s['skuPartNumber']} {s['difference']:+d}" for s in summary["seats"])
    lines: list[Any] = [headline, table, Text(f"seats: {seats or 'no difference'}")]
    if "cost" in summary:
        cost = summary["cost"]
        lines.append(Text(f"monthly cost: {cost['monthlyDifference']:+.2f} {cost['currency']}"))
    console.print(Group(*lines))


def _html(doc: dict[str, Any], context: ReportContext) -> bytes:
    summary = doc["summary"]
    stats = [
        Stat("licences lost", summary["losses"], "losses", bad=True),
        Stat("users losing", summary["usersLosing"], "usersLosing", bad=True),
        Stat("licences gained", summary["gains"], "gains"),
        Stat("plan changes", summary["planChanges"], "planChanges"),
        Stat("users changing", summary["users"], "users"),
    ]
    changes = HtmlTable(
        "changes",
        "Changes (losses first)",
        ("User", "Product", "Change", "Disabled before", "Disabled after", "Rules"),
        [
            [r["userPrincipalName"], r["skuPartNumber"], r["change"], *_cells(r)]
            for r in doc["changes"]
        ],
        filters=("Product", "Change", "Rules"),
        tags=("Change",),
        search="users, products, rules",
    )
    rules = HtmlTable(
        "rules",
        "Per rule",
        ("Rule", "Gains", "Losses", "Plan changes"),
        [
            [r["rule"], str(r["gains"]), str(r["losses"]), str(r["planChanges"])]
            for r in summary["rules"]
        ],
        numeric=("Gains", "Losses", "Plan changes"),
        search="rules",
    )
    seats = HtmlTable(
        "seats",
        "Seats",
        ("Product", "Difference"),
        [[s["skuPartNumber"], f"{s['difference']:+d}"] for s in summary["seats"]],
        numeric=("Difference",),
        search="products",
    )
    return render_page(context, stats, [], [changes, rules, seats])


def write_whatif(
    doc: dict[str, Any], fmt: str, output: Path | None, context: ReportContext
) -> None:
    """The what-if report in `fmt` (table, json, csv, xlsx, html) to `output` or stdout."""
    write_document(
        doc,
        fmt,
        output,
        table=lambda console: _table(doc, console),
        html=lambda: _html(doc, context),
        sheet=lambda: (COLUMNS, _rows(doc)),
    )
