"""CSV report: one row per change or problem (with the write's outcome after a sync), for
spreadsheets and ticketing imports. Columns: `licsync.reports.columns`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from licsync.model import Plan
from licsync.reports.changes import change_rows
from licsync.reports.names import Names
from licsync.reports.writes import WriteRow

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


def _plans(disabled: frozenset[str] | None, names: Names) -> str:
    return "" if disabled is None else ";".join(names.plan_list(disabled))


def _rows(plan: Plan, names: Names, rows: Sequence[WriteRow] | None) -> Iterator[list[str]]:
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
        yield cells
    for p in sorted(plan.problems, key=lambda p: (p.user_principal_name.casefold(), p.sku_id)):
        cells = [p.user_principal_name, p.user_id, "problem", names.part_number(p.sku_id)]
        cells += [p.sku_id, names.product(p.sku_id), "", "", "", "", names.group(p.group_id)]
        cells += [p.error.value, p.message]
        yield cells + (["", "", ""] if writes is not None else [])


def plan_csv_rows(
    plan: Plan, names: Names, writes: Sequence[WriteRow] | None = None
) -> tuple[tuple[str, ...], Iterator[list[str]]]:
    """The header and rows; with `writes`, each change also says what its write did."""
    columns = COLUMNS + (WRITE_COLUMNS if writes is not None else ())
    return columns, _rows(plan, names, writes)
