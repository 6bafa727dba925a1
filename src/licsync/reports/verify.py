"""The report of `licsync verify` (and `verify --reprocess`): one JSON document, rendered as a
table, JSON, CSV, xlsx or HTML (format in docs/report-format.md, "verify")."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from licsync.model import AssignmentState, SourceState
from licsync.reports.html_page import HtmlTable, ReportContext, Stat, render_page
from licsync.reports.names import Names
from licsync.reports.output import write_document
from licsync.reports.remedies import REMEDIES
from licsync.verification import Finding, Status, Verification

VERIFY_VERSION = 1
CSV_COLUMNS = (
    "userPrincipalName",
    "userId",
    "group",
    "groupId",
    "skuPartNumber",
    "skuId",
    "status",
    "entraState",
    "error",
    "lastUpdatedDateTime",
    "entraDisabledPlans",
    "expectedState",
    "expectedDisabledPlans",
    "remedy",
)
TABLE_ROWS = 50  # findings other than `ok` shown on a terminal; the other formats list all


def _state(state: AssignmentState | SourceState | None, names: Names) -> dict[str, Any] | None:
    """Entra's state of one licence, or the engine's verdict on it."""
    if state is None:
        return None
    return {
        "state": state.state,
        "error": state.error.value if state.error else None,
        "disabledPlans": names.plan_list(state.disabled_plans),
    }


def _error(f: Finding) -> dict[str, Any] | None:
    """Entra's error with its time and Microsoft's documented remedy."""
    if f.entra is None or f.entra.error is None:
        return None
    remedy = REMEDIES[f.entra.error]
    text = remedy.remedy
    if f.status is Status.STALE:
        text = "The tenant no longer explains this error: reprocess the user (verify --reprocess)."
    return {
        "code": f.entra.error.value,
        "lastUpdatedDateTime": f.last_updated,
        "meaning": remedy.meaning,
        "remedy": text,
        "url": remedy.url,
    }


def finding_entry(f: Finding, names: Names) -> dict[str, Any]:
    return {
        "userId": f.user_id,
        "userPrincipalName": f.user_principal_name,
        "groupId": f.group_id,
        "skuId": f.sku_id,
        "skuPartNumber": names.part_number(f.sku_id),
        "status": f.status.value,
        "error": _error(f),
        "entraState": _state(f.entra, names),
        "expected": _state(f.expected, names),
    }


def document(
    verification: Verification, names: Names, reprocess: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The report as one JSON-ready document; `reprocess`: what a reprocess run did."""
    doc: dict[str, Any] = {
        "version": VERIFY_VERSION,
        "groups": [
            {
                "groupId": g.group_id,
                "displayName": g.display_name,
                "licenseProcessingState": g.processing_state,
                "hasMembersWithLicenseErrors": g.has_members_with_license_errors,
            }
            for g in verification.groups
        ],
        "findings": [finding_entry(f, names) for f in verification.findings],
        "summary": verification.summary(),
    }
    if reprocess is not None:
        doc["reprocess"] = dict(reprocess)
    return doc


def _plans(state: Mapping[str, Any] | None) -> str:
    return ", ".join(state["disabledPlans"]) if state else ""


def _rows(doc: Mapping[str, Any], groups: Mapping[str, str]) -> Iterator[list[str]]:
    for e in doc["findings"]:
        entra, expected, error = e["entraState"], e["expected"], e["error"] or {}
        yield [
            e["userPrincipalName"],
            e["userId"],
            groups.get(e["groupId"], e["groupId"]),
            e["groupId"],
            e["skuPartNumber"],
            e["skuId"],
            e["status"],
            entra["state"] if entra else "",
            error.get("code") or "",
            error.get("lastUpdatedDateTime") or "",
            _plans(entra),
            expected["state"] if expected else "",
            _plans(expected),
            error.get("remedy") or "",
        ]


def _group_names(doc: Mapping[str, Any]) -> dict[str, str]:
    return {g["groupId"]: g["displayName"] for g in doc["groups"]}


def _table(doc: Mapping[str, Any], console: Console) -> None:
    groups = Table(title="Entra-licensed groups")
    for column in ("Group", "Processing", "Members with errors"):
        groups.add_column(column)
    for g in doc["groups"]:
        errors = g["hasMembersWithLicenseErrors"]
        groups.add_row(
            g["displayName"],
            g["licenseProcessingState"] or "unknown",
            "unknown" if errors is None else "yes" if errors else "no",
        )
    console.print(groups)
    names = _group_names(doc)
    rows = [r for r in _rows(doc, names) if r[6] != Status.OK.value]
    findings = Table(title=f"Findings other than ok ({len(rows)})")
    for column in ("User", "Group", "SKU", "Status", "Entra", "Rules say", "Remedy"):
        findings.add_column(column)
    for r in rows[:TABLE_ROWS]:
        entra = f"{r[7]} {r[8]}".strip() + (f" (off: {r[10]})" if r[10] else "")
        rules = r[11] + (f" (off: {r[12]})" if r[12] else "")
        findings.add_row(r[0], r[2], r[4], r[6], entra or "nothing", rules or "nothing", r[13])
    if len(rows) > TABLE_ROWS:
        findings.caption = f"{len(rows) - TABLE_ROWS} more: use --format csv, xlsx or json"
    console.print(findings)
    summary = ", ".join(f"{k} {v}" for k, v in doc["summary"].items())
    console.print(f"summary: {summary}")
    if "reprocess" in doc:
        run = doc["reprocess"]
        console.print(
            f"reprocess run {run['run_id']}: {run['users']} users, {run['writes_succeeded']} "
            f"reprocessed, {run['writes_failed']} refused, {run['now_matching']} now match"
        )


def _html(doc: Mapping[str, Any], context: ReportContext) -> bytes:
    stats = [
        Stat(key, value, key, bad=key != Status.OK.value) for key, value in doc["summary"].items()
    ]
    names = _group_names(doc)
    table = HtmlTable(
        "findings",
        "Users, SKUs and groups",
        tuple(CSV_COLUMNS),
        list(_rows(doc, names)),
        filters=("status", "group", "skuPartNumber", "error"),
        tags=("status",),
    )
    return render_page(context, stats, [], [table])


def write(doc: Mapping[str, Any], fmt: str, output: Path | None, context: ReportContext) -> None:
    """Write the report in `fmt` to `output` (standard output when None)."""
    write_document(
        doc,
        fmt,
        output,
        table=lambda console: _table(doc, console),
        html=lambda: _html(doc, context),
        sheet=lambda: (CSV_COLUMNS, _rows(doc, _group_names(doc))),
    )
