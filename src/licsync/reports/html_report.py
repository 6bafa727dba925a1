"""The HTML reports: a plan (dry run), a sync with its writes, and a migration.

Built on `html_page`: headline numbers (the JSON report's summary), a seat chart per SKU drawn
in SVG, every change old -> new with its cause, every problem with Microsoft's remedy.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from html import escape
from typing import Any

from licsync.model import LicenseError, Plan
from licsync.outcomes import WriteOutcome
from licsync.reports.changes import ChangeRow, change_rows
from licsync.reports.forecast import SeatForecast, seat_forecast
from licsync.reports.html_page import HtmlTable, ReportContext, Stat, render_page
from licsync.reports.json_report import summary
from licsync.reports.names import Names
from licsync.reports.remedies import REMEDIES
from licsync.reports.spend import spend_html, spend_stats, spend_view
from licsync.reports.writes import WriteRow
from licsync.spend.costs import Spend

NO_LICENCE = "no licence"
EMPTY_SEATS = '<p class="empty">no seats in use or wanted</p>'
COLOURS = {
    "kept": "var(--kept)",
    "freed": "var(--freed)",
    "granted": "var(--granted)",
    "other": "#9fb3cf",
    "free": "var(--free)",
    "short": "var(--short)",
}
LEGEND = (
    ("kept", "held and kept"),
    ("freed", "freed"),
    ("granted", "granted"),
    ("other", "in use by others"),
    ("free", "free"),
    ("short", "short"),
)


def disabled_text(disabled: frozenset[str] | None, names: Names) -> str:
    """A licence's disabled plans as a report shows them."""
    if disabled is None:
        return NO_LICENCE
    return "disabled: " + ", ".join(names.plan_list(disabled)) if disabled else "all plans on"


def _bar(y: int, parts: Sequence[tuple[str, int]], scale: float, label: str) -> str:
    x = 70.0
    out = [f'<text x="0" y="{y + 13}" font-size="12">{label}</text>']
    for kind, count in parts:
        if count <= 0:
            continue
        width = count * scale
        out.append(
            f'<rect x="{x:.1f}" y="{y}" width="{max(width, 1.5):.1f}" height="18" '
            f'fill="{COLOURS[kind]}"><title>{count} {kind}</title></rect>'
        )
        x += width
    return "".join(out)


def seat_chart(f: SeatForecast) -> str:
    """Two bars, seats now and after the run, on the scale of what was bought (and what is
    short beyond it); a line marks prepaidUnits.enabled."""
    others = max(f.in_use - f.kept - f.freed, 0)
    used = max(f.in_use, f.after + f.short, 1)
    drawn = f.enabled <= max(4 * used, 100)  # 1,000,000 free seats are not drawn whole
    top = max(f.enabled, used) if drawn else used * 1.25
    scale = 290 / top
    free_now = f.available if drawn else 0
    free_after = f.free_after if drawn else 0
    now = (("kept", f.kept), ("freed", f.freed), ("other", others), ("free", free_now))
    after = (
        ("kept", f.kept),
        ("granted", f.granted),
        ("other", others),
        ("free", free_after),
        ("short", f.short),
    )
    limit = (
        f'<line x1="{70 + f.enabled * scale:.1f}" x2="{70 + f.enabled * scale:.1f}" y1="0" '
        'y2="52" stroke="#1b1f24" stroke-dasharray="3 2"/>'
        if drawn
        else f'<text x="365" y="57" font-size="10" text-anchor="end">{f.enabled} bought: '
        "free seats not drawn</text>"
    )
    label = escape(f"seats of {f.part_number}")
    return (
        f'<svg viewBox="0 0 370 58" width="100%" role="img" aria-label="{label}">'
        f"{_bar(4, now, scale, 'now')}{_bar(30, after, scale, 'after')}{limit}</svg>"
    )


def seat_section(forecast: Sequence[SeatForecast], names: Names) -> str:
    cards = []
    for f in forecast:
        if not (f.in_use or f.wanted or f.freed):
            continue
        numbers = (
            f"bought <b>{f.enabled}</b> · in use <b>{f.in_use}</b> · available <b>{f.available}</b>"
            f" · kept <b>{f.kept}</b> · freed <b>{f.freed}</b> · wanted <b>{f.wanted}</b>"
            f" → granted <b>{f.granted}</b>, short <b>{f.short}</b>, blocked <b>{f.blocked}</b>"
            f" · in use after <b>{f.after}</b>"
        )
        cards.append(
            f'<div class="seat" data-sku="{escape(f.part_number)}"><h3>{escape(f.part_number)} '
            f"<small>{escape(names.product(f.sku_id))}</small></h3>{seat_chart(f)}"
            f'<div class="nums">{numbers}</div></div>'
        )
    legend = "".join(
        f'<span><i style="background:{COLOURS[k]}"></i>{escape(text)}</span>' for k, text in LEGEND
    )
    return (
        '<h2 id="h-seats">Seats by product</h2>'
        f'<div class="legend">{legend}<span>┆ seats bought</span></div>'
        '<p class="meta">wanted: users a group gives the product who do not hold it yet; '
        "short: refused for lack of seats (CountViolation); blocked: refused for another reason "
        "(usage location, conflict, prerequisite, or another licence of the same group failed)."
        "</p>"
        f'<div class="seats">{"".join(cards) or EMPTY_SEATS}</div>'
    )


def _remedies(counts: Mapping[LicenseError, int]) -> str:
    blocks = []
    for error, count in sorted(counts.items(), key=lambda kv: -kv[1]):
        remedy = REMEDIES[error]
        blocks.append(
            f'<div class="remedy" data-error="{error.value}"><h3>{error.value} · {count}</h3>'
            f"<div>{escape(remedy.meaning)}</div><div><b>Remedy:</b> {escape(remedy.remedy)} "
            f'<a href="{escape(remedy.url)}">Microsoft\'s guidance</a></div></div>'
        )
    return "".join(blocks) + (
        '<p class="meta">Each problem below has the remedy of its error type above.</p>'
        if blocks
        else ""
    )


def _change_cells(row: ChangeRow, names: Names, writes: Mapping[str, WriteRow] | None) -> list[str]:
    if row.action == "set-usage-location":
        cells = [row.user_principal_name, row.action, "", "", "", row.usage_location, "policy"]
    else:
        cells = [
            row.user_principal_name,
            row.action,
            names.part_number(row.sku_id),
            names.product(row.sku_id),
            disabled_text(row.before, names),
            disabled_text(row.after, names),
            "; ".join(row.sources),
        ]
    if writes is not None:
        key = "usageLocation" if row.action == "set-usage-location" else "assignLicense"
        write = writes.get(f"{row.user_id}:{key}")
        cells += [write.outcome, write.request_id] if write else ["not sent", ""]
    return cells


def plan_stats(plan: Plan, names: Names, forecast: Sequence[SeatForecast]) -> list[Stat]:
    facts = summary(plan, names.tenant, forecast)
    return [
        Stat("users to change", facts["usersWithChanges"], "usersWithChanges"),
        Stat("licences added", facts["newLicenses"], "newLicenses"),
        Stat("licences updated", facts["updatedLicenses"], "updatedLicenses"),
        Stat("licences removed", facts["removeLicenses"], "removeLicenses"),
        Stat("usage locations set", facts["usageLocations"], "usageLocations"),
        Stat("problems", facts["problems"], "problems", bad=True),
        Stat("users with problems", facts["usersWithProblems"], "usersWithProblems", bad=True),
        Stat("products short of seats", facts["skusShort"], "skusShort", bad=True),
    ]


def _problem_rows(plan: Plan, names: Names) -> Iterator[list[str]]:
    for p in sorted(plan.problems, key=lambda p: (p.user_principal_name.casefold(), p.sku_id)):
        yield [
            p.user_principal_name,
            names.part_number(p.sku_id),
            names.product(p.sku_id),
            names.group(p.group_id),
            p.error.value,
            p.message,
        ]


def plan_html(
    plan: Plan,
    names: Names,
    context: ReportContext,
    writes: Sequence[WriteRow] | None = None,
    spend: Spend | None = None,
) -> bytes:
    """The report of a plan; with `writes` (a sync that wrote), also what each write did;
    with `spend`, cost and renewals."""
    forecast = seat_forecast(plan, names.tenant)
    stats = plan_stats(plan, names, forecast)
    view = None if spend is None else spend_view(plan, names.tenant, forecast, spend)
    if view is not None:
        stats += spend_stats(view)
    columns: tuple[str, ...] = ("User", "Change", "SKU", "Product", "Before", "After", "Caused by")
    by_key = None
    tables: list[HtmlTable] = []
    if writes is not None:
        by_key = {w.key: w for w in writes}
        columns += ("Outcome", "Request id")
        done = Counter(w.outcome for w in writes)
        stats += [
            Stat("writes applied", done[WriteOutcome.APPLIED], "writesSucceeded"),
            Stat("writes failed", done[WriteOutcome.FAILED], "writesFailed", bad=True),
            Stat("writes not sent", done[WriteOutcome.SKIPPED], "writesSkipped", bad=True),
        ]
    tables.append(
        HtmlTable(
            "changes",
            "Changes",
            columns,
            [_change_cells(r, names, by_key) for r in change_rows(plan, names)],
            filters=("Change", "SKU", "Caused by") + (("Outcome",) if writes is not None else ()),
            tags=("Change",) + (("Outcome",) if writes is not None else ()),
        )
    )
    counts = Counter(p.error for p in plan.problems)
    tables.append(
        HtmlTable(
            "problems",
            "Problems",
            ("User", "SKU", "Product", "Group", "Error", "Why"),
            list(_problem_rows(plan, names)),
            filters=("Error", "SKU", "Group"),
            tags=("Error",),
            intro=_remedies(counts),
        )
    )
    if writes is not None:
        tables.append(
            HtmlTable(
                "writes",
                "Writes",
                ("User", "Write", "Outcome", "HTTP status", "Request id", "Error", "Message"),
                [w.cells() for w in writes],
                filters=("Write", "Outcome", "Error"),
                tags=("Outcome",),
                numeric=("HTTP status",),
            )
        )
    if view is not None:
        tables[1:1] = spend_html(view, forecast, names)
    return render_page(context, stats, [seat_section(forecast, names)], tables)


def migration_html(doc: Mapping[str, Any], context: ReportContext, names: Names | None) -> bytes:
    """The report of `migrate plan|apply|rollback` (the document of `reports.migration`)."""
    stats = [
        Stat(key, value, key, bad=key in ("skip", "failed"))
        for key, value in doc["summary"].items()
        if isinstance(value, int) and not isinstance(value, bool)
    ]
    rows = [
        [
            e["userPrincipalName"],
            e["skuPartNumber"],
            names.product(e["skuId"]) if names else "",
            e["action"],
            e.get("reason") or "; ".join(e.get("groups", ())),
            ", ".join(e.get("disabledPlans", ())),
            e.get("outcome") or "",
        ]
        for e in doc["entries"]
    ]
    table = HtmlTable(
        "entries",
        "Users and licences considered",
        ("User", "SKU", "Product", "Action", "Reason / groups", "Disabled plans", "Outcome"),
        rows,
        filters=("Action", "SKU", "Outcome"),
        tags=("Action",),
    )
    return render_page(context, stats, [], [table])
