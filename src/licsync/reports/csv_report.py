"""CSV report: one row per change or problem (with the write's outcome after a sync, and with
prices what the change does to the monthly cost), for spreadsheets and ticketing imports.
Columns: `licsync.reports.columns`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal

from licsync.model import Plan
from licsync.reports.changes import change_rows
from licsync.reports.names import Names
from licsync.reports.writes import WriteRow
from licsync.spend.costs import Spend, money

COLUMNS = (
    "userPrincipalName",
    "userId",
    "action",
    "skuPartNumber",
    "skuId",
    "productName",
    "previousDisabledPlans",
    "disabledPlans",
    "source",
    "usageLocation",
    "group",
    "error",
    "message",
)
WRITE_COLUMNS = ("outcome", "requestId", "httpStatus")
COST_COLUMN = "monthlyCostChange"
SIGN = {"add": 1, "remove": -1, "update": 0}


def _plans(disabled: frozenset[str] | None, names: Names) -> str:
    return "" if disabled is None else ";".join(names.plan_list(disabled))


def _cost(action: str, price: Decimal | None) -> str:
    """What one change does to the monthly cost ("" for no price or no licence)."""
    if price is None or action not in SIGN:
        return ""
    return f"{money(price * SIGN[action]):.2f}"


def _rows(
    plan: Plan,
    names: Names,
    rows: Sequence[WriteRow] | None,
    prices: Mapping[str, Decimal] | None,
) -> Iterator[list[str]]:
    writes = {w.key: w for w in rows} if rows is not None else None
    for row in change_rows(plan, names):
        sku = row.sku_id
        cells = [
            row.user_principal_name,
            row.user_id,
            row.action,
            names.part_number(sku) if sku else "",
            sku,
            names.product(sku) if sku else "",
            _plans(row.before, names),
            _plans(row.after, names),
            ";".join(row.sources),
            row.usage_location,
            "",
            "",
            "",
        ]
        if writes is not None:
            job = "usageLocation" if row.action == "set-usage-location" else "assignLicense"
            w = writes.get(f"{row.user_id}:{job}")
            cells[-2:] = [w.error, w.message] if w else ["", ""]
            cells += [w.outcome, w.request_id, w.status] if w else ["not sent", "", ""]
        if prices is not None:
            cells.append(_cost(row.action, prices.get(sku)))
        yield cells
    for p in sorted(plan.problems, key=lambda p: (p.user_principal_name.casefold(), p.sku_id)):
        cells = [p.user_principal_name, p.user_id, "problem", names.part_number(p.sku_id)]
        cells += [p.sku_id, names.product(p.sku_id), "", "", "", "", names.group(p.group_id)]
        cells += [p.error.value, p.message]
        cells += ["", "", ""] if writes is not None else []
        yield cells + ([""] if prices is not None else [])


def plan_csv_rows(
    plan: Plan, names: Names, writes: Sequence[WriteRow] | None = None, spend: Spend | None = None
) -> tuple[tuple[str, ...], Iterator[list[str]]]:
    """The header and rows; with `writes`, each change also says what its write did; with
    prices, the monthly cost it adds (or, negative, saves)."""
    columns = COLUMNS + (WRITE_COLUMNS if writes is not None else ())
    prices = spend.prices if spend is not None and spend.priced else None
    columns += (COST_COLUMN,) if prices is not None else ()
    return columns, _rows(plan, names, writes, prices)
