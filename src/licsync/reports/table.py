"""Terminal report: seat forecast, changes and problems an admin can read in a minute."""

from __future__ import annotations

from collections import Counter

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from licsync.model import Plan
from licsync.reports.json_report import summary
from licsync.reports.names import Names


def _seats(plan: Plan, names: Names) -> Table:
    table = Table(title="Seats by product", title_justify="left")
    table.add_column("SKU", no_wrap=True)
    table.add_column("Product", overflow="ellipsis", no_wrap=True, max_width=34)
    for column in ("Bought", "In use", "Freed", "Available", "Needed", "Short"):
        table.add_column(column, justify="right", no_wrap=True)
    for f in plan.skus:
        if not (f.requested or f.freed or f.consumed):
            continue
        shortfall = Text(str(f.shortfall), style="bold red") if f.shortfall else Text("0")
        table.add_row(
            f.part_number,
            names.product(f.sku_id),
            str(f.enabled),
            str(f.consumed),
            str(f.freed),
            str(f.available),
            str(f.requested),
            shortfall,
        )
    return table


def _changes(plan: Plan, names: Names, limit: int) -> Table:
    changes = sorted(plan.changes, key=lambda u: u.user_principal_name.casefold())
    table = Table(title=f"Changes ({len(changes)} users)", title_justify="left")
    for column in ("User", "Change", "Product", "Plans disabled"):
        table.add_column(column)
    for user in changes[:limit]:
        current = names.tenant.users[user.user_id].direct_licenses()
        if user.usage_location:
            table.add_row(user.user_principal_name, "set usage location", user.usage_location, "")
        for a in user.add_licenses:
            verb = "update" if a.sku_id in current else "add"
            disabled = ", ".join(names.plan_list(a.disabled_plans)) or "none"
            table.add_row(user.user_principal_name, verb, names.part_number(a.sku_id), disabled)
        for sku_id in user.remove_licenses:
            table.add_row(
                user.user_principal_name,
                Text("remove", style="yellow"),
                names.part_number(sku_id),
                "",
            )
    if len(changes) > limit:
        table.caption = f"… and {len(changes) - limit} more users: use --format json or csv"
    return table


def _problems(plan: Plan, names: Names, limit: int) -> Table:
    kinds = Counter(p.error.value for p in plan.problems)
    title = "Problems: " + ", ".join(f"{n} {k}" for k, n in kinds.most_common())
    table = Table(title=title, title_justify="left")
    for column in ("User", "Product", "Group", "Error", "Why"):
        table.add_column(column, overflow="fold")
    problems = sorted(plan.problems, key=lambda p: (p.user_principal_name.casefold(), p.sku_id))
    for p in problems[:limit]:
        table.add_row(
            p.user_principal_name,
            names.part_number(p.sku_id),
            names.group(p.group_id),
            Text(p.error.value, style="red"),
            p.message,
        )
    if len(problems) > limit:
        table.caption = f"… and {len(problems) - limit} more: use --format json or csv"
    return table


def render_plan(plan: Plan, names: Names, console: Console, limit: int = 40) -> None:
    facts = summary(plan)
    parts: list = [_seats(plan, names)]
    if plan.changes:
        parts.append(_changes(plan, names, limit))
    if plan.problems:
        parts.append(_problems(plan, names, limit))
    parts.append(
        Text(
            f"{facts['users']} users with licences or rules; {facts['usersWithChanges']} to change "
            f"({facts['addLicenses']} add/update, {facts['removeLicenses']} remove); "
            f"{facts['problems']} problems for {facts['usersWithProblems']} users.",
            style="bold",
        )
    )
    console.print(Group(*parts))
