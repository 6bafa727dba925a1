"""The migration report in the formats of `licsync plan`: JSON (versioned), CSV and a table.

JSON: `{"version": 1, "target", "mode", "entries": [...], "summary": {...}}` with one entry per
user and SKU considered: `id`, `userPrincipalName`, `skuId`, `skuPartNumber`, `action` (adopt,
remove-direct, skip), `reason` (skips only), `disabledPlans` (names, of the direct assignment),
`groups` (names of the covering group sources) and, after `migrate apply`, `outcome`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from licsync.catalogue import default_catalogue
from licsync.migrate.classify import Decision, MigrateAction, Target
from licsync.outcomes import EntryOutcome
from licsync.reports.html_page import ReportContext
from licsync.reports.html_report import migration_html
from licsync.reports.names import Names
from licsync.reports.output import write_document

VERSION = 1
CSV_COLUMNS = (  # the vocabulary of licsync.reports.columns
    "userPrincipalName",
    "userId",
    "skuPartNumber",
    "skuId",
    "action",
    "reason",
    "disabledPlans",
    "group",
    "outcome",
)


def entry(d: Decision, names: Names, outcome: EntryOutcome | None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": d.user_id,
        "userPrincipalName": d.user_principal_name,
        "skuId": d.sku_id,
        "skuPartNumber": names.part_number(d.sku_id),
        "action": d.action.value,
    }
    if d.reason is not None:
        item["reason"] = d.reason
    if d.disabled_plans is not None:
        item["disabledPlans"] = names.plan_list(d.disabled_plans)
    if d.groups:
        item["groups"] = sorted(names.group(g) for g in d.groups)
    if outcome is not None:
        item["outcome"] = str(outcome)
    return item


def document(
    target: Target,
    mode: str,
    decisions: Sequence[Decision],
    names: Names,
    outcomes: Mapping[tuple[str, str], EntryOutcome] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    outcomes = outcomes or {}
    counts = Counter(d.action.value for d in decisions)
    summary: dict[str, Any] = {
        "considered": len(decisions),
        "users": len({d.user_id for d in decisions}),
        **{a.value: counts.get(a.value, 0) for a in MigrateAction},
        **(extra or {}),
    }
    return {
        "version": VERSION,
        "target": target.value,
        "mode": mode,
        "entries": [entry(d, names, outcomes.get((d.user_id, d.sku_id))) for d in decisions],
        "summary": summary,
    }


def _csv_rows(doc: dict[str, Any]) -> Iterator[list[str]]:
    for item in doc["entries"]:
        yield [
            item["userPrincipalName"],
            item["id"],
            item["skuPartNumber"],
            item["skuId"],
            item["action"],
            item.get("reason", ""),
            ";".join(item.get("disabledPlans", ())),
            ";".join(item.get("groups", ())),
            item.get("outcome") or "",
        ]


def _table(doc: dict[str, Any], console: Console) -> None:
    title = f"Migration to {doc['target']} group licensing ({doc['mode']})"
    if doc["mode"] == "rollback":
        title = "Migration rollback"
    table = Table(title=title, title_justify="left")
    for column in ("User", "SKU", "Action", "Reason / groups", "Outcome"):
        table.add_column(column, overflow="fold")
    for item in doc["entries"]:
        detail = item.get("reason") or ", ".join(item.get("groups", ()))
        cells = (item["userPrincipalName"], item["skuPartNumber"], item["action"], detail)
        table.add_row(*map(Text, cells), Text(item.get("outcome") or ""))
    console.print(table)
    console.print(Text(", ".join(f"{k}: {v}" for k, v in doc["summary"].items())))


def write(
    doc: dict[str, Any],
    fmt: str,
    output: Path | None,
    context: ReportContext | None = None,
    names: Names | None = None,
) -> None:
    """Render `doc` as `fmt` (table, json, csv, xlsx, html) to `output` or standard output."""
    title = "migration rollback" if doc["mode"] == "rollback" else f"migration {doc['mode']}"
    page = context or ReportContext(title, "tenant", "rules")
    write_document(
        doc,
        fmt,
        output,
        table=lambda console: _table(doc, console),
        html=lambda: migration_html(doc, page, names),
        sheet=lambda: (CSV_COLUMNS, _csv_rows(doc)),
    )


def rollback_document(
    entries: Sequence[Any],
    outcomes: Mapping[tuple[str, str], EntryOutcome],
    summary: Mapping[str, Any],
) -> dict[str, Any]:
    """The `migrate rollback` report: one entry per rollback-file entry, with its outcome."""
    skus = default_catalogue().skus
    items = []
    for e in entries:
        known = skus.get(e.sku_id)
        outcome = outcomes.get((e.user_id, e.sku_id))
        items.append(
            {
                "id": e.user_id,
                "userPrincipalName": e.user_principal_name,
                "skuId": e.sku_id,
                "skuPartNumber": known.part_number if known else e.sku_id,
                "action": e.action.value,
                "outcome": None if outcome is None else str(outcome),
            }
        )
    return {
        "version": VERSION,
        "target": "rollback",
        "mode": "rollback",
        "entries": items,
        "summary": dict(summary),
    }
