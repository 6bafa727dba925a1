"""CSV report: one row per change or problem, for spreadsheets and ticketing imports."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from licsync.model import Plan
from licsync.reports.names import Names

COLUMNS = (
    "userPrincipalName",
    "userId",
    "action",
    "skuPartNumber",
    "skuId",
    "productName",
    "disabledPlans",
    "group",
    "error",
    "message",
)


def _rows(plan: Plan, names: Names) -> Iterator[tuple[str, ...]]:
    for user in sorted(plan.changes, key=lambda u: u.user_principal_name.casefold()):
        current = names.tenant.users[user.user_id].direct_licenses()
        base = (user.user_principal_name, user.user_id)
        if user.usage_location:
            yield (*base, "set-usage-location", "", "", "", "", "", "", user.usage_location)
        for a in user.add_licenses:
            action = "update" if a.sku_id in current else "add"
            yield (
                *base,
                action,
                names.part_number(a.sku_id),
                a.sku_id,
                names.product(a.sku_id),
                ";".join(names.plan_list(a.disabled_plans)),
                "",
                "",
                "",
            )
        for sku_id in user.remove_licenses:
            yield (
                *base,
                "remove",
                names.part_number(sku_id),
                sku_id,
                names.product(sku_id),
                "",
                "",
                "",
                "",
            )
    for p in sorted(plan.problems, key=lambda p: (p.user_principal_name.casefold(), p.sku_id)):
        yield (
            p.user_principal_name,
            p.user_id,
            "problem",
            names.part_number(p.sku_id),
            p.sku_id,
            names.product(p.sku_id),
            "",
            names.group(p.group_id),
            p.error.value,
            p.message,
        )


def plan_csv(plan: Plan, names: Names) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(_rows(plan, names))
    return out.getvalue()
