"""Terminal report: seat forecast, changes and problems an admin can read in a minute.

Every cell is a `Text`, never markup: a message that mentions `[policy]` prints as written.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from licsync.model import Plan
from licsync.outcomes import WriteOutcome
from licsync.reports.changes import change_rows
from licsync.reports.forecast import SeatForecast, seat_forecast
from licsync.reports.json_report import summary
from licsync.reports.names import Names
from licsync.reports.spend import spend_tables, spend_view
from licsync.reports.writes import WriteRow
from licsync.spend.costs import Spend

SEAT_COLUMNS = (
    "Bought",
    "In use",
    "Available",
    "Kept",
    "Freed",
    "Wanted",
    "Granted",
    "Short",
    "Blocked",
    "After",
)


def seat_table(forecast: list[SeatForecast], names: Names) -> Table:
    table = Table(title="Seats by product", title_justify="left")
    table.add_column("SKU", no_wrap=True)
    table.add_column("Product", overflow="ellipsis", no_wrap=True, max_width=34)
    for column in SEAT_COLUMNS:
        table.add_column(column, justify="right", no_wrap=True)
    for f in forecast:
        if not (f.in_use or f.wanted or f.freed):
            continue
        numbers = (f.enabled, f.in_use, f.available, f.kept, f.freed, f.wanted, f.granted)
        table.add_row(
            Text(f.part_number),
            Text(names.product(f.sku_id)),
            *(Text(str(n)) for n in numbers),
            Text(str(f.short), style="bold red" if f.short else ""),
            Text(str(f.blocked), style="yellow" if f.blocked else ""),
            Text(str(f.after)),
        )
    table.caption = (
        "Wanted: users a group gives the product who do not hold it yet = Granted + Short "
        "(no seats: CountViolation) + Blocked (another reason, see Problems)."
    )
    table.caption_justify = "left"
    return table


MORE = "use --format html, json or csv"


def _changes(plan: Plan, names: Names, limit: int, more: str) -> Table:
    users = len(plan.changes)
    table = Table(title=f"Changes ({users} users)", title_justify="left")
    for column in ("User", "Change", "SKU", "Plans disabled (before → after)", "Caused by"):
        table.add_column(column)
    for shown, row in enumerate(change_rows(plan, names)):
        if shown == limit:
            table.caption = f"… and more: {more}"
            break
        if row.action == "set-usage-location":
            cells = (row.action, "", f"usage location → {row.usage_location}", "[policy]")
        else:
            before = _plans(row.before, names)
            after = _plans(row.after, names)
            detail = after if row.action == "add" else f"{before} → {after}"
            cells = (row.action, names.part_number(row.sku_id), detail, "; ".join(row.sources))
        style = "yellow" if row.action == "remove" else ""
        table.add_row(
            Text(row.user_principal_name), Text(cells[0], style=style), *map(Text, cells[1:])
        )
    return table


def _plans(disabled: frozenset[str] | None, names: Names) -> str:
    if disabled is None:
        return "none (no licence)"
    return ", ".join(names.plan_list(disabled)) or "none"


def _problems(plan: Plan, names: Names, limit: int, more: str = MORE) -> Table:
    kinds = Counter(p.error.value for p in plan.problems)
    title = "Problems: " + ", ".join(f"{n} {k}" for k, n in kinds.most_common())
    table = Table(title=title, title_justify="left")
    for column in ("User", "SKU", "Group", "Error", "Why"):
        table.add_column(column, overflow="fold")
    problems = sorted(plan.problems, key=lambda p: (p.user_principal_name.casefold(), p.sku_id))
    for p in problems[:limit]:
        table.add_row(
            Text(p.user_principal_name),
            Text(names.part_number(p.sku_id)),
            Text(names.group(p.group_id)),
            Text(p.error.value, style="red"),
            Text(p.message),
        )
    if len(problems) > limit:
        table.caption = f"… and {len(problems) - limit} more: {more}"
    return table


def _spend(plan: Plan, names: Names, forecast: list[SeatForecast], spend: Spend | None) -> list:
    if spend is None:
        return []
    return list(spend_tables(spend_view(plan, names.tenant, forecast, spend), forecast, names))


def render_plan(
    plan: Plan,
    names: Names,
    console: Console,
    limit: int = 40,
    more: str = MORE,
    spend: Spend | None = None,
) -> None:
    """The plan as tables; `more` says where to find the rows beyond `limit`; `spend` adds
    cost and renewals."""
    forecast = seat_forecast(plan, names.tenant)
    facts = summary(plan, names.tenant, forecast)
    parts: list = [seat_table(forecast, names), *_spend(plan, names, forecast, spend)]
    if plan.changes:
        parts.append(_changes(plan, names, limit, more))
    if plan.problems:
        parts.append(_problems(plan, names, limit, more))
    parts.append(
        Text(
            f"{facts['users']} users with licences or rules; {facts['usersWithChanges']} to change "
            f"({facts['newLicenses']} add, {facts['updatedLicenses']} update, "
            f"{facts['removeLicenses']} remove); {facts['problems']} problems for "
            f"{facts['usersWithProblems']} users.",
            style="bold",
        )
    )
    console.print(Group(*parts))


def _writes(writes: Sequence[WriteRow], limit: int) -> Table:
    done = Counter(w.outcome for w in writes)
    title = f"Writes ({len(writes)}): " + ", ".join(f"{n} {k}" for k, n in done.most_common())
    table = Table(title=title, title_justify="left")
    for column in ("User", "Write", "Outcome", "Request id", "Error", "Message"):
        table.add_column(column, overflow="fold")
    applied = WriteOutcome.APPLIED
    ordered = sorted(writes, key=lambda w: (w.outcome is applied, w.user_principal_name))
    for w in ordered[:limit]:
        style = "green" if w.outcome is applied else "red"
        table.add_row(
            Text(w.user_principal_name),
            Text(w.write),
            Text(w.outcome, style=style),
            Text(w.request_id),
            Text(w.error),
            Text(w.message),
        )
    if len(writes) > limit:
        table.caption = f"… and {len(writes) - limit} more: {MORE}"
    return table


def render_sync(
    plan: Plan,
    names: Names,
    console: Console,
    writes: Sequence[WriteRow],
    run: Mapping[str, Any],
    limit: int = 40,
    spend: Spend | None = None,
) -> None:
    """What a sync did: the seats (and spend), every write with its outcome (failures first),
    the counts."""
    forecast = seat_forecast(plan, names.tenant)
    parts: list = [seat_table(forecast, names), *_spend(plan, names, forecast, spend)]
    if writes:
        parts.append(_writes(writes, limit))
    if plan.problems:
        parts.append(_problems(plan, names, limit))
    parts.append(Text(", ".join(f"{k}: {v}" for k, v in run.items()), style="bold"))
    console.print(Group(*parts))
