"""The inventory report (`licsync inventory`): one row per user and SKU held, with the paths
it comes by, disabled plans, account state, last sign-in and cost; JSON, table, CSV, xlsx and
an HTML page with the plan report's filters."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text

from licsync.reports.html_page import HtmlTable, ReportContext, Stat, render_page
from licsync.reports.json_report import REPORT_VERSION
from licsync.reports.names import Names
from licsync.reports.output import emit, sheet_bytes, show
from licsync.spend.costs import money
from licsync.spend.inventory import DIRECT, ENTRA_GROUP, InventoryRow
from licsync.spend.subscriptions import iso

COLUMNS = (
    "userPrincipalName",
    "userId",
    "skuPartNumber",
    "skuId",
    "productName",
    "paths",
    "disabledPlans",
    "accountEnabled",
    "lastSignIn",
    "monthlyCost",
)
TABLE_LIMIT = 60


def _path_json(kind: str, group_id: str | None) -> dict[str, Any]:
    return {"kind": kind} if group_id is None else {"kind": kind, "groupId": group_id}


def path_text(row: InventoryRow, names: Names) -> str:
    """`rule: Sales; Entra group: Staff; direct`."""
    labels = {ENTRA_GROUP: "Entra group", DIRECT: "direct"}
    return "; ".join(
        labels.get(p.kind, p.kind) + (f": {names.group(p.group_id)}" if p.group_id else "")
        for p in row.paths
    )


def row_json(row: InventoryRow, names: Names) -> dict[str, Any]:
    return {
        "userId": row.user.id,
        "userPrincipalName": row.user.user_principal_name,
        "skuId": row.sku_id,
        "skuPartNumber": names.part_number(row.sku_id),
        "paths": [_path_json(p.kind, p.group_id) for p in row.paths],
        "disabledPlans": sorted(row.disabled_plans),
        "accountEnabled": row.user.account_enabled,
        "lastSignIn": iso(row.last_sign_in),
        "monthlyCost": None if row.monthly_cost is None else money(row.monthly_cost),
    }


def inventory_summary(
    rows: Sequence[InventoryRow], currency: str | None, sign_ins: bool
) -> dict[str, Any]:
    priced = [r.monthly_cost for r in rows if r.monthly_cost is not None]
    return {
        "users": len({r.user.id for r in rows}),
        "rows": len(rows),
        "severalPaths": sum(1 for r in rows if len(r.paths) > 1),
        "signInsRead": sign_ins,
        "currency": currency,
        "monthlyCost": money(sum(priced, Decimal(0))) if currency else None,
    }


def _cells(row: InventoryRow, names: Names) -> list[str]:
    return [
        row.user.user_principal_name,
        row.user.id,
        names.part_number(row.sku_id),
        row.sku_id,
        names.product(row.sku_id),
        path_text(row, names),
        ";".join(names.plan_list(row.disabled_plans)),
        "yes" if row.user.account_enabled else "no",
        (iso(row.last_sign_in) or "")[:10],
        "" if row.monthly_cost is None else f"{money(row.monthly_cost):.2f}",
    ]


def _table(rows: Sequence[InventoryRow], names: Names, summary: dict[str, Any]) -> Table:
    table = Table(title=f"Licences held ({summary['rows']} for {summary['users']} users)")
    for column in ("User", "SKU", "Paths", "Disabled plans", "Enabled", "Last sign-in", "Cost"):
        table.add_column(column, overflow="fold")
    for row in rows[:TABLE_LIMIT]:
        cells = _cells(row, names)
        table.add_row(*map(Text, (cells[0], cells[2], *cells[5:])))
    if len(rows) > TABLE_LIMIT:
        table.caption = f"… and {len(rows) - TABLE_LIMIT} more: use --format html, csv or xlsx"
    return table


def write_inventory(
    rows: Sequence[InventoryRow],
    names: Names,
    currency: str | None,
    sign_ins: bool,
    fmt: str,
    output: Path | None,
    context: ReportContext,
) -> None:
    """The inventory in `fmt` (table, json, csv, xlsx or html)."""
    summary = inventory_summary(rows, currency, sign_ins)
    if fmt == "json":
        document = {
            "version": REPORT_VERSION,
            "rows": [row_json(r, names) for r in rows],
            "summary": summary,
        }
        emit(orjson.dumps(document) + b"\n", output)
    elif fmt == "table":

        def draw(console: Console) -> None:
            console.print(_table(rows, names, summary))

        show(draw, output)
    elif fmt == "html":
        stats = [
            Stat("users", summary["users"], "users"),
            Stat("licences", summary["rows"], "rows"),
            Stat("licences by several paths", summary["severalPaths"], "severalPaths"),
        ]
        if currency:
            stats.append(
                Stat(f"{currency} a month", f"{summary['monthlyCost']:,.2f}", "monthlyCost")
            )
        table = HtmlTable(
            "inventory",
            "Licences held",
            (
                "User",
                "SKU",
                "Product",
                "Paths",
                "Disabled plans",
                "Enabled",
                "Last sign-in",
                "Cost",
            ),
            [[c[0], c[2], c[4], *c[5:]] for c in (_cells(r, names) for r in rows)],
            filters=("SKU", "Paths", "Enabled"),
            tags=("Enabled",),
            numeric=("Cost",),
        )
        emit(render_page(context, stats, [], [table]), output)
    else:
        emit(sheet_bytes(fmt, COLUMNS, _sheet_rows(rows, names)), output)


def _sheet_rows(rows: Sequence[InventoryRow], names: Names) -> Iterator[list[str]]:
    for row in rows:
        yield _cells(row, names)
