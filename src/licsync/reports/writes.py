"""What a sync's writes did, one row per write, for every report format.

Reports do not import the Graph layer: a write outcome is anything with the fields of
`licsync.graph.WriteOutcome` that this module reads (`WriteResult`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from licsync.model import Plan


class WriteResult(Protocol):
    @property
    def key(self) -> str: ...  # "{user id}:assignLicense" or "{user id}:usageLocation"
    @property
    def action(self) -> str: ...
    @property
    def status(self) -> int | None: ...
    @property
    def error_type(self) -> Enum | None: ...  # LicenseError for assignLicense
    @property
    def message(self) -> str: ...
    @property
    def request_id(self) -> str | None: ...


OUTCOMES = {"success": "applied", "skipped": "skipped"}  # anything else: failed


@dataclass(frozen=True, slots=True)
class WriteRow:
    key: str
    user_id: str
    user_principal_name: str
    write: str  # assignLicense | usageLocation
    outcome: str  # applied | failed | skipped
    status: str
    request_id: str
    error: str
    message: str

    def cells(self) -> list[str]:
        """The row as the HTML and table reports show it."""
        return [
            self.user_principal_name,
            self.write,
            self.outcome,
            self.status,
            self.request_id,
            self.error,
            self.message,
        ]


def write_rows(plan: Plan, outcomes: Iterable[WriteResult]) -> list[WriteRow]:
    """One row per write, in the order they were built (each PATCH before its assignLicense)."""
    upns = {u.user_id: u.user_principal_name for u in plan.changes}
    rows = []
    for o in outcomes:
        user_id, _, write = o.key.partition(":")
        outcome = OUTCOMES.get(str(o.action), "failed")
        rows.append(
            WriteRow(
                o.key,
                user_id,
                upns.get(user_id, user_id),
                write,
                outcome,
                "" if o.status is None else str(o.status),
                o.request_id or "",
                str(o.error_type.value) if o.error_type and outcome == "failed" else "",
                "" if outcome == "applied" else o.message,
            )
        )
    return rows
