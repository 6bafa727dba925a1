"""The report of `licsync reclaim plan`: inactive users, their licences and how to take each
back, the monthly saving, and who was left out and why (JSON, table, CSV, xlsx, HTML)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from licsync.reports.html_page import HtmlTable, ReportContext, Stat, render_page
from licsync.reports.inventory import path_text
from licsync.reports.json_report import REPORT_VERSION
from licsync.reports.names import Names
from licsync.reports.output import emit, sheet_bytes, show
from licsync.spend.costs import money
from licsync.spend.inventory import InventoryRow
from licsync.spend.reclaim import Candidate, ReclaimLicence, ReclaimPlan

COLUMNS = (
    "userPrincipalName",
    "userId",
    "lastActivity",
    "skuPartNumber",
    "skuId",
    "paths",
    "action",
    "monthlyCost",
)


def _day(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def _action(c: Candidate, names: Names) -> str:
    steps: list[str] = []
    for lic in c.licences:
        steps.extend(s for s in lic.actions(names.group) if s not in steps)
    return "; ".join(steps)


def _paths(c: Candidate, lic: ReclaimLicence, names: Names) -> str:
    row = InventoryRow(c.user, lic.sku_id, lic.paths, frozenset(), None, None)
    return path_text(row, names)


def reclaim_document(plan: ReclaimPlan, names: Names, currency: str | None) -> dict[str, Any]:
    users = [
        {
            "userId": c.user.id,
            "userPrincipalName": c.user.user_principal_name,
            "lastActivity": _day(c.last_activity),
            "skus": [
                {
                    "skuId": lic.sku_id,
                    "skuPartNumber": names.part_number(lic.sku_id),
                    "paths": [
                        {"kind": p.kind, **({"groupId": p.group_id} if p.group_id else {})}
                        for p in lic.paths
                    ],
                    "actions": lic.actions(names.group),
                }
                for lic in c.licences
            ],
            "monthlyCost": None if c.monthly_cost is None else money(c.monthly_cost),
            "action": _action(c, names),
        }
        for c in plan.candidates
    ]
    saving = sum((c.monthly_cost or Decimal(0) for c in plan.candidates), Decimal(0))
    return {
        "version": REPORT_VERSION,
        "users": users,
        "excluded": [
            {
                "userId": e.user.id,
                "userPrincipalName": e.user.user_principal_name,
                "reason": e.reason,
            }
            for e in plan.excluded
        ],
        "summary": {
            "users": len(users),
            "licences": sum(len(c.licences) for c in plan.candidates),
            "monthlySaving": money(saving) if currency else None,
            "currency": currency,
            "excluded": len(plan.excluded),
            "inactiveDays": plan.inactive_days,
            "source": plan.source,
            "inactiveSince": plan.cutoff.isoformat(),
        },
    }


def _rows(plan: ReclaimPlan, names: Names) -> Iterator[list[str]]:
    for c in plan.candidates:
        for lic in c.licences:
            yield [
                c.user.user_principal_name,
                c.user.id,
                _day(c.last_activity) or "never",
                names.part_number(lic.sku_id),
                lic.sku_id,
                _paths(c, lic, names),
                "; ".join(lic.actions(names.group)),
                "" if lic.monthly_cost is None else f"{money(lic.monthly_cost):.2f}",
            ]


def write_reclaim(
    plan: ReclaimPlan,
    names: Names,
    currency: str | None,
    fmt: str,
    output: Path | None,
    context: ReportContext,
) -> None:
    document = reclaim_document(plan, names, currency)
    summary = document["summary"]
    if fmt == "json":
        emit(orjson.dumps(document) + b"\n", output)
    elif fmt == "table":
        table = Table(
            title=f"Inactive since {summary['inactiveSince']} ({plan.source}): "
            f"{summary['users']} users, {summary['licences']} licences",
            title_justify="left",
        )
        for column in ("User", "Last activity", "SKU", "Paths", "Action", "Cost"):
            table.add_column(column, overflow="fold")
        for row in _rows(plan, names):
            table.add_row(*map(Text, (row[0], row[2], row[3], *row[5:])))
        lines: list[Table | Text] = [table]
        if currency:
            saving = f"{summary['monthlySaving']:,.2f} {currency} a month"
            lines.append(Text(f"Reclaiming all of them saves {saving}.", style="bold"))
        if plan.excluded:
            lines.append(Text(f"Left out: {len(plan.excluded)} users (new accounts, no record)."))

        def draw(console: Console) -> None:
            console.print(Group(*lines))

        show(draw, output)
    elif fmt == "html":
        stats = [
            Stat("inactive users", summary["users"], "users", bad=True),
            Stat("licences", summary["licences"], "licences"),
            Stat("users left out", summary["excluded"], "excluded"),
        ]
        if currency:
            stats.append(
                Stat(
                    f"{currency} a month saved", f"{summary['monthlySaving']:,.2f}", "monthlySaving"
                )
            )
        tables = [
            HtmlTable(
                "reclaim",
                "Licences of inactive users",
                ("User", "Last activity", "SKU", "Paths", "Action", "Cost"),
                [[r[0], r[2], r[3], *r[5:]] for r in _rows(plan, names)],
                filters=("SKU", "Paths"),
                numeric=("Cost",),
            ),
            HtmlTable(
                "excluded",
                "Left out",
                ("User", "Why"),
                [[e.user.user_principal_name, e.reason] for e in plan.excluded],
                search="users",
            ),
        ]
        emit(render_page(context, stats, [], tables), output)
    else:
        emit(sheet_bytes(fmt, COLUMNS, _rows(plan, names)), output)
