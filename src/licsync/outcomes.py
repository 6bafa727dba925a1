"""licsync's outcome vocabulary: what a write did, and how a run ended.

These values are interface: the state store keeps them, reports and rollback files print them,
and schedulers read them. Every module spells an outcome through these enums, never as a literal.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class WriteOutcome(StrEnum):
    """What one write (a user's `assignLicense`, a usage location, a group licence…) did."""

    PENDING = "pending"  # journalled, not sent or not answered yet
    APPLIED = "applied"  # Graph answered success (and, where required, a read-back confirmed it)
    FAILED = "failed"  # Graph refused it: nothing changed for that write
    SKIPPED = "skipped"  # never sent: the run stopped first
    UNKNOWN = "unknown"  # sent, but the answer was lost or unreadable: a read-back decides


class RunStatus(StrEnum):
    """How a run (sync, migration, rollback, undo, …) stands or ended."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"  # finished; per-user problems may remain (exit 0 or 10)
    FAILED = "failed"  # ended by an error (Graph, credentials, store, a bug)
    STOPPED = "stopped"  # ended early on purpose: a signal, a guardrail, max_run_seconds
    INTERRUPTED = "interrupted"  # never finished (killed); a later run reconciled its writes


class RunKind(StrEnum):
    """What a run was."""

    SYNC = "sync"
    MIGRATE = "migrate"
    ROLLBACK = "rollback"
    UNDO = "undo"
    REPROCESS = "reprocess"
    RECLAIM = "reclaim"


@dataclass(frozen=True, slots=True)
class EntryOutcome:
    """What became of one entry of a migration or a rollback: the write's outcome, and why
    when that is not plain (`failed: <Graph's message>`, `skipped: user deleted …`)."""

    outcome: WriteOutcome
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.outcome}: {self.detail}" if self.detail else str(self.outcome)
