"""What the state store remembers, as rows for admins: problem records and runs."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from rich.table import Table

from licsync.catalogue import default_catalogue
from licsync.store import ProblemRecord, Run

PROBLEM_COLUMNS = (
    "userPrincipalName",
    "skuPartNumber",
    "error",
    "message",
    "attempts",
    "firstSeen",
    "lastSeen",
    "resolvedAt",
    "userId",
    "skuId",
    "groupId",
)
RUN_COLUMNS = (
    "startedAt",
    "kind",
    "status",
    "read",
    "changes",
    "writes_succeeded",
    "writes_failed",
    "problems",
    "problems_resolved",
    "finishedAt",
    "id",
)


def _time(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def problem_rows(records: Sequence[ProblemRecord]) -> list[dict[str, Any]]:
    """One row per problem record, most recently seen first; SKUs by Microsoft's part number."""
    catalogue = default_catalogue()
    rows = []
    for p in sorted(records, key=lambda p: (p.last_seen, p.user_principal_name), reverse=True):
        sku = catalogue.skus.get(p.sku_id)
        rows.append(
            {
                "userPrincipalName": p.user_principal_name,
                "skuPartNumber": sku.part_number if sku else p.sku_id,
                "error": p.error.value,
                "message": p.message,
                "attempts": p.attempts,
                "firstSeen": _time(p.first_seen),
                "lastSeen": _time(p.last_seen),
                "resolvedAt": _time(p.resolved_at),
                "userId": p.user_id,
                "skuId": p.sku_id,
                "groupId": p.group_id,
            }
        )
    return rows


def run_rows(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """One row per run, newest first, with the counts of its summary."""
    rows = []
    for run in runs:
        row: dict[str, Any] = {
            **(run.summary or {}),
            "startedAt": _time(run.started_at),
            "kind": run.kind,
            "status": run.status.value,
            "finishedAt": _time(run.finished_at),
            "id": run.id,
        }
        rows.append({c: row.get(c) for c in RUN_COLUMNS})
    return rows


def rows_data(rows: list[dict[str, Any]], columns: Sequence[str], fmt: str) -> bytes:
    """The rows as JSON (`fmt` "json") or CSV."""
    if fmt == "json":
        return orjson.dumps(rows, option=orjson.OPT_INDENT_2) + b"\n"
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def rows_table(rows: list[dict[str, Any]], columns: Sequence[str], title: str) -> Table:
    """The rows as a terminal table, without the object-id columns."""
    table = Table(title=title, title_justify="left")
    shown = [c for c in columns if c not in ("userId", "skuId", "groupId", "id")]
    for column in shown:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if row[c] is None else str(row[c]) for c in shown))
    return table
