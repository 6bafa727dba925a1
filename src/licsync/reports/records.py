"""What the state store remembers, as rows for admins: problem records and runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from rich.table import Table
from rich.text import Text

from licsync.catalogue import default_catalogue
from licsync.model import LicenseError
from licsync.reports.output import sheet_bytes
from licsync.store import ProblemRecord, Run

PROBLEM_COLUMNS = (
    "userPrincipalName",
    "skuPartNumber",
    "error",
    "causedBy",
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
    "exitCode",
    "phase",
    "read",
    "changes",
    "writesSucceeded",
    "writesFailed",
    "problems",
    "problemsResolved",
    "finishedAt",
    "error",
    "id",
)


def _time(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def problem_rows(records: Sequence[ProblemRecord]) -> list[dict[str, Any]]:
    """One row per problem record, most recently seen first; SKUs by Microsoft's part number.

    An `Other` record is the consequence of its partner (all or nothing per group): `causedBy`
    names the partner's SKU and error, from the open record of the same user and group."""
    catalogue = default_catalogue()

    def part(sku_id: str) -> str:
        sku = catalogue.skus.get(sku_id)
        return sku.part_number if sku else sku_id

    roots = {
        (p.user_id, p.group_id, p.resolved_at is None): f"{part(p.sku_id)} {p.error.value}"
        for p in records
        if p.error is not LicenseError.OTHER
    }
    rows = []
    for p in sorted(records, key=lambda p: (p.last_seen, p.user_principal_name), reverse=True):
        caused_by = None
        if p.error is LicenseError.OTHER:
            caused_by = roots.get((p.user_id, p.group_id, p.resolved_at is None))
        rows.append(
            {
                "userPrincipalName": p.user_principal_name,
                "skuPartNumber": part(p.sku_id),
                "error": p.error.value,
                "causedBy": caused_by,
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


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(word.title() for word in rest)


def run_fields(run: Run, writes: tuple[int, int]) -> dict[str, Any]:
    """A run's fields for admins: the counts of its summary in camelCase (`writes_succeeded`
    is `writesSucceeded`: every report names fields alike), then its own; the write counts
    (`writes`: succeeded, failed) come from the writes it recorded, so an interrupted run
    counts those recovery found applied."""
    return {
        **{_camel(k): v for k, v in (run.summary or {}).items()},
        "id": run.id,
        "kind": run.kind,
        "status": run.status.value,
        "exitCode": run.exit_code,
        "phase": run.phase,
        "error": run.error,
        "startedAt": _time(run.started_at),
        "finishedAt": _time(run.finished_at),
        "writesSucceeded": writes[0],
        "writesFailed": writes[1],
    }


def run_rows(runs: Sequence[Run], writes: Mapping[str, tuple[int, int]]) -> list[dict[str, Any]]:
    """One row per run, newest first (`writes`: each run's succeeded and failed writes)."""
    rows = []
    for run in runs:
        row = run_fields(run, writes.get(run.id, (0, 0)))
        rows.append({c: row.get(c) for c in RUN_COLUMNS})
    return rows


def rows_data(rows: list[dict[str, Any]], columns: Sequence[str], fmt: str) -> bytes:
    """The rows as JSON (`fmt` "json"), CSV or xlsx."""
    if fmt == "json":
        return orjson.dumps(rows, option=orjson.OPT_INDENT_2) + b"\n"
    return sheet_bytes(fmt, columns, ([row[c] for c in columns] for row in rows))


def rows_table(rows: list[dict[str, Any]], columns: Sequence[str], title: str) -> Table:
    """The rows as a terminal table, without the object-id columns."""
    table = Table(title=title, title_justify="left")
    shown = [c for c in columns if c not in ("userId", "skuId", "groupId", "id")]
    for column in shown:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(Text("" if row[c] is None else str(row[c])) for c in shown))
    return table
