"""What a sync's writes did, one row per write, for every report format.

Reports do not import the Graph layer: a write outcome is anything with the fields of
`licsync.graph.WriteResult` that this module reads (`WriteResult`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from licsync.model import Plan
from licsync.outcomes import WriteOutcome


class WriteResult(Protocol):
    @property
    def key(self) -> str: ...  # "{user id}:assignLicense" or "{user id}:usageLocation"
    @property
    def subject(self) -> str: ...  # the user id
    @property
    def outcome(self) -> WriteOutcome: ...
    @property
    def status(self) -> int | None: ...
    @property
    def error_type(self) -> Enum | None: ...  # LicenseError for assignLicense
    @property
    def message(self) -> str: ...
    @property
    def request_id(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class WriteRow:
    key: str
    user_id: str
    user_principal_name: str
    write: str  # assignLicense | usageLocation
    outcome: WriteOutcome  # applied | failed | skipped
    status: str
    request_id: str
    error: str
    message: str

    def cells(self) -> list[str]:
        """The row as the HTML and table reports show it."""
        return [
            self.user_principal_name,
            self.write,
            self.outcome.value,
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
        outcome = o.outcome
        rows.append(
            WriteRow(
                o.key,
                o.subject,
                upns.get(o.subject, o.subject),
                o.key.removeprefix(f"{o.subject}:"),
                outcome,
                "" if o.status is None else str(o.status),
                o.request_id or "",
                str(o.error_type.value) if o.error_type and outcome is WriteOutcome.FAILED else "",
                "" if outcome is WriteOutcome.APPLIED else o.message,
            )
        )
    return rows
