"""`licsync runs show RUN_ID`: one run, its phases, every write it made and the problems it
recorded and resolved, as a terminal table, JSON, CSV/xlsx (the writes) or an HTML page."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text

from licsync.catalogue import default_catalogue
from licsync.reports.output import sheet_bytes
from licsync.reports.records import problem_rows, rows_table, run_fields
from licsync.store import AppliedChange, ChangeAction, ProblemRecord, Run, StateStore

WRITE_COLUMNS = (
    "at",
    "userPrincipalName",
    "write",
    "skusAdded",
    "skusRemoved",
    "usageLocation",
    "outcome",
    "httpStatus",
    "requestId",
    "error",
    "userId",
)
PROBLEM_SHOWN = ("userPrincipalName", "skuPartNumber", "error", "message", "resolvedAt")


@dataclass(frozen=True, slots=True)
class RunDetail:
    """What `runs show` prints."""

    run: dict[str, Any]
    writes: list[dict[str, Any]]
    problems_recorded: list[dict[str, Any]]
    problems_resolved: list[dict[str, Any]]

    def data(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "writes": self.writes,
            "problemsRecorded": self.problems_recorded,
            "problemsResolved": self.problems_resolved,
        }


def _licence(change: AppliedChange) -> dict[str, Any]:
    sku_id = change.sku_id or ""
    sku = default_catalogue().skus.get(sku_id)
    return {
        "skuId": sku_id,
        "skuPartNumber": sku.part_number if sku else sku_id,
        "disabledPlans": sorted(change.disabled_plans),
    }


def write_rows(changes: Iterable[AppliedChange]) -> list[dict[str, Any]]:
    """One row per write (a user's usage-location PATCH, or one assignLicense whatever number
    of licences it changed), in the order they were recorded."""
    writes: dict[tuple[str, bool], dict[str, Any]] = {}
    for c in changes:
        location = c.action is ChangeAction.USAGE_LOCATION
        row = writes.get((c.user_id, location))
        if row is None:
            row = writes[(c.user_id, location)] = {
                "at": c.at.isoformat(timespec="seconds") if c.at else None,
                "userPrincipalName": c.user_principal_name,
                "write": "usageLocation" if location else "assignLicense",
                "skusAdded": [],
                "skusRemoved": [],
                "usageLocation": c.usage_location,
                "outcome": str(c.outcome),
                "httpStatus": c.http_status,
                "requestId": c.request_id,
                "error": c.error,
                "userId": c.user_id,
            }
        if c.action is ChangeAction.REMOVE:
            row["skusRemoved"].append(_licence(c))
        elif not location:
            row["skusAdded"].append(_licence(c))
    return list(writes.values())


def _problems(records: Sequence[ProblemRecord], run_id: str) -> tuple[list[Any], list[Any]]:
    recorded = [p for p in records if p.last_run_id == run_id and p.resolved_run_id != run_id]
    resolved = [p for p in records if p.resolved_run_id == run_id]
    return problem_rows(recorded), problem_rows(resolved)


def run_detail(store: StateStore, run: Run) -> RunDetail:
    """Everything the store remembers of `run`."""
    fields = run_fields(run, store.count_writes([run.id])[run.id])
    if run.phases is not None:
        fields["phaseSeconds"] = dict(run.phases)
    if run.finished_at is not None:
        fields["durationSeconds"] = round((run.finished_at - run.started_at).total_seconds(), 3)
    recorded, resolved = _problems(store.list_problems(include_resolved=True), run.id)
    return RunDetail(fields, write_rows(store.list_changes(run_id=run.id)), recorded, resolved)


def _text(value: Any) -> str:
    """A field as one cell: a licence list as `PART (disabled: …)`, joined by `; `."""
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(
            v["skuPartNumber"]
            + (f" (disabled: {', '.join(v['disabledPlans'])})" if v["disabledPlans"] else "")
            for v in value
        )
    if isinstance(value, dict):
        return ", ".join(f"{k} {v:g} s" for k, v in value.items())
    return str(value)


def detail_bytes(detail: RunDetail, fmt: str) -> bytes:
    """`fmt` json: the whole detail; csv/xlsx: the writes; html: a page of all of it."""
    if fmt == "json":
        return orjson.dumps(detail.data(), option=orjson.OPT_INDENT_2) + b"\n"
    if fmt == "html":
        return _html(detail).encode("utf-8")
    rows = ([_text(w[c]) for c in WRITE_COLUMNS] for w in detail.writes)
    return sheet_bytes(fmt, WRITE_COLUMNS, rows)


def draw_detail(detail: RunDetail, console: Console) -> None:
    """The run's fields, then its writes and problems, as terminal tables."""
    fields = Table(title=f"Run {detail.run['id']}", title_justify="left", show_header=False)
    fields.add_column("field", style="bold")
    fields.add_column("value", overflow="fold")
    for key, value in detail.run.items():
        if key != "id" and value is not None:
            fields.add_row(key, Text(_text(value)))
    console.print(fields)
    shown = [{c: _text(w[c]) or None for c in WRITE_COLUMNS} for w in detail.writes]
    console.print(rows_table(shown, WRITE_COLUMNS, f"Writes ({len(shown)})"))
    for title, rows in (
        ("Problems recorded", detail.problems_recorded),
        ("Problems resolved", detail.problems_resolved),
    ):
        if rows:
            console.print(rows_table(rows, PROBLEM_SHOWN, f"{title} ({len(rows)})"))


def _html_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_text(r.get(c)))}</td>" for c in columns) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html(detail: RunDetail) -> str:
    run = detail.run
    fields = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(_text(v))}</td></tr>"
        for k, v in run.items()
        if v is not None
    )
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>licsync run {html.escape(run['id'])}</title>",
        "<style>body{font:14px system-ui,sans-serif;margin:1.5em}table{border-collapse:"
        "collapse;margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:.2em .5em;"
        "text-align:left;vertical-align:top}</style></head><body>",
        f"<h1>Run {html.escape(run['id'])}: {html.escape(str(run['status']))}</h1>",
        f"<table>{fields}</table>",
        f"<h2>Writes ({len(detail.writes)})</h2>",
        _html_table(detail.writes, WRITE_COLUMNS),
    ]
    for title, rows in (
        ("Problems recorded", detail.problems_recorded),
        ("Problems resolved", detail.problems_resolved),
    ):
        parts += [f"<h2>{title} ({len(rows)})</h2>", _html_table(rows, PROBLEM_SHOWN)]
    return "".join(parts) + "</body></html>\n"
