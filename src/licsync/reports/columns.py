"""The one column vocabulary of every CSV licsync writes (documented in docs/report-format.md).

A column means the same thing in every report that has it; `tests/reports` checks that every
CSV header is listed here.
"""

from __future__ import annotations

COLUMNS: dict[str, str] = {
    "userPrincipalName": "the user's UPN",
    "userId": "the user's object id",
    "action": "add, update, remove, set-usage-location or problem (plan, sync); adopt, "
    "remove-direct, skip, restore or re-adopt (migrate)",
    "skuPartNumber": "the SKU's part number (ENTERPRISEPACK)",
    "skuId": "the SKU's id",
    "productName": "Microsoft's product name for the SKU (Office 365 E3)",
    "previousDisabledPlans": "disabled plans before the change, names ;-separated "
    "(empty: no licence before)",
    "disabledPlans": "disabled plans, names ;-separated",
    "source": "what causes the change: rule: GROUP, Entra group: GROUP, direct, or why a "
    "licence goes",
    "group": "group display names, ;-separated (direct: the user's own assignment)",
    "groupId": "the group's object id",
    "usageLocation": "the usage location set before assigning",
    "error": "Entra's licence error type (CountViolation, …)",
    "message": "what went wrong, in words",
    "reason": "why a migration skips the licence",
    "outcome": "applied, failed or skipped (sync); the migration's outcome",
    "requestId": "Graph's request id of the write",
    "httpStatus": "Graph's HTTP status of the write",
    "attempts": "runs that saw the problem",
    "firstSeen": "when the problem was first seen (UTC)",
    "lastSeen": "when the problem was last seen (UTC)",
    "resolvedAt": "when the problem went away (UTC)",
    "startedAt": "when the run started (UTC)",
    "finishedAt": "when the run finished (UTC)",
    "kind": "sync, migrate, rollback or undo",
    "status": "the run's status: running, succeeded, failed, stopped or interrupted",
    "exitCode": "the run's exit code (README: exit codes)",
    "phase": "how far the run got: start, read, plan, write or record",
    "read": "full or incremental",
    "changes": "users with changes",
    "writesSucceeded": "writes Graph applied",
    "writesFailed": "writes Graph refused",
    "problems": "open problem records after the run",
    "causedBy": "for an Other problem: the partner's SKU and error that caused it",
    "problemsResolved": "problem records the run closed",
    "id": "the run's id",
}
