"""The report of `licsync seats`: per SKU, the seats bought, held and needed after the plan,
the subscriptions behind them, seats droppable at the next renewal, seats about to stop working
and (with prices) the monthly cost. The same figures as the plan report's, alone, for a
monthly review."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console, Group

from licsync.model import Plan
from licsync.reports.forecast import seat_forecast
from licsync.reports.html_page import ReportContext, Stat, render_page
from licsync.reports.html_report import seat_section
from licsync.reports.json_report import REPORT_VERSION
from licsync.reports.names import Names
from licsync.reports.output import emit, sheet_bytes, show
from licsync.reports.spend import (
    RENEWAL_COLUMNS,
    SpendView,
    renewal_rows,
    sku_json,
    spend_html,
    spend_stats,
    spend_tables,
    spend_view,
    summary_cost,
)
from licsync.reports.table import seat_table
from licsync.spend.costs import Spend

COST_COLUMNS = ("Monthly cost before", "Monthly cost after")


def seats_document(plan: Plan, names: Names, spend: Spend) -> dict[str, Any]:
    """`seats --format json`: one entry per SKU, and the totals."""
    forecast = seat_forecast(plan, names.tenant)
    view = spend_view(plan, names.tenant, forecast, spend)
    skus = [
        {
            "skuId": f.sku_id,
            "skuPartNumber": f.part_number,
            "productName": names.product(f.sku_id),
            "enabled": f.enabled,
            "consumed": f.in_use,
            "consumedAfter": f.after,
            "short": f.short,
            "needed": f.after + f.short,
            **sku_json(view, f.sku_id),
        }
        for f in forecast
    ]
    summary: dict[str, Any] = {
        "skus": len(skus),
        "droppableAtRenewal": sum(r.droppable or 0 for r in view.renewals.values()),
        "usersLosingSeats": sum(loss.users for r in view.renewals.values() for loss in r.losses),
    }
    if spend.priced:
        summary["cost"] = summary_cost(view)
    return {"version": REPORT_VERSION, "skus": skus, "summary": summary}


def _rows(view: SpendView, plan: Plan, names: Names) -> Iterator[list[object]]:
    forecast = seat_forecast(plan, names.tenant)
    costs = view.costs
    by_part = {f.part_number: f.sku_id for f in forecast}
    for row in renewal_rows(view, forecast):
        cost = costs.get(by_part[row[0]]) if view.spend.priced else None
        extra = [] if not view.spend.priced else ["", ""]
        if cost is not None and row[-1] != "":  # the SKU's cost on its first renewing row
            extra = [f"{cost.before:.2f}", f"{cost.after:.2f}"]
        yield [*row, *extra]


def write_seats(
    plan: Plan,
    names: Names,
    spend: Spend,
    fmt: str,
    output: Path | None,
    context: ReportContext,
) -> None:
    """The seats report in `fmt` (table, json, csv, xlsx or html)."""
    forecast = seat_forecast(plan, names.tenant)
    view = spend_view(plan, names.tenant, forecast, spend)
    if fmt == "table":
        draw: Callable[[Console], None] = lambda console: console.print(  # noqa: E731
            Group(seat_table(forecast, names), *spend_tables(view, forecast, names))
        )
        show(draw, output)
    elif fmt == "json":
        emit(orjson.dumps(seats_document(plan, names, spend), option=orjson.OPT_INDENT_2), output)
    elif fmt == "html":
        document = seats_document(plan, names, spend)["summary"]
        stats = [
            Stat(
                "seats droppable at renewal", document["droppableAtRenewal"], "droppableAtRenewal"
            ),
            Stat("users losing seats", document["usersLosingSeats"], "usersLosingSeats", bad=True),
            *spend_stats(view),
        ]
        page = render_page(
            context, stats, [seat_section(forecast, names)], spend_html(view, forecast, names)
        )
        emit(page, output)
    else:
        columns = RENEWAL_COLUMNS + (COST_COLUMNS if spend.priced else ())
        emit(sheet_bytes(fmt, columns, _rows(view, plan, names)), output)
