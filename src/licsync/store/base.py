"""The state store's interface and the records it keeps.

Reads are methods of `StateStore`; every write goes through a `StateTransaction`
(`with store.transaction() as tx: ...`) so that the ledger, the changes, the problems, the run's
status and the delta links commit together or not at all. The lease has its own short transactions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from licsync.model import Ledger, LicenseError, Ownership, Problem
from licsync.outcomes import RunStatus, WriteOutcome


class ChangeAction(StrEnum):
    ADD = "add"
    UPDATE = "update"
    REMOVE = "remove"
    USAGE_LOCATION = "usage_location"
    REPROCESS = "reprocess"  # reprocessLicenseAssignment: Entra re-ran the user's group licences


class RunPhase(StrEnum):
    """How far a run got: a run that ends early says where."""

    START = "start"  # lease, credentials, the tenant check
    READ = "read"
    PLAN = "plan"
    WRITE = "write"
    RECORD = "record"


@dataclass(frozen=True, slots=True)
class Run:
    """A run as the store remembers it. `error`: one line of cause for a run that did not
    succeed (no secret); `phases`: seconds spent in each phase reached."""

    id: str
    kind: str
    status: RunStatus
    started_at: datetime
    finished_at: datetime | None = None
    summary: Mapping[str, Any] | None = None
    exit_code: int | None = None
    phase: str | None = None
    error: str | None = None
    phases: Mapping[str, float] | None = None


@dataclass(frozen=True, slots=True)
class RunEnd:
    """How a run ended, as `finish_run` records it."""

    status: RunStatus
    summary: Mapping[str, Any] | None = None
    exit_code: int | None = None
    error: str | None = None
    phases: Mapping[str, float] | None = None


@dataclass(frozen=True, slots=True)
class Prior:
    """What one change replaced, for `licsync runs undo`: the user's direct assignment of the
    SKU (its disabled plans; None: not assigned directly), the usage location, and licsync's
    ledger entry for that user and SKU (None: none)."""

    direct: frozenset[str] | None = None
    usage_location: str | None = None
    ledger: Ownership | None = None


@dataclass(frozen=True, slots=True)
class AppliedChange:
    """One change licsync applied (or tried to) through Graph, as the writer reports it.

    `sku_id` is None for a usage-location change, which carries `usage_location` instead.
    `at` defaults to the store's clock when recorded.
    """

    run_id: str
    user_id: str
    sku_id: str | None
    action: ChangeAction
    outcome: WriteOutcome
    disabled_plans: frozenset[str] = frozenset()
    usage_location: str | None = None
    request_id: str | None = None
    at: datetime | None = None
    user_principal_name: str | None = None
    http_status: int | None = None
    error: str | None = None
    prior: Prior | None = None


@dataclass(frozen=True, slots=True)
class ProblemRecord:
    """A problem as the store remembers it across runs."""

    user_id: str
    user_principal_name: str
    sku_id: str
    group_id: str | None
    error: LicenseError
    message: str
    first_seen: datetime
    last_seen: datetime
    attempts: int
    last_run_id: str
    resolved_at: datetime | None = None
    resolved_run_id: str | None = None

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None

    def to_problem(self) -> Problem:
        return Problem(
            self.user_id,
            self.user_principal_name,
            self.sku_id,
            self.group_id,
            self.error,
            self.message,
        )


@dataclass(frozen=True, slots=True)
class Intent:
    """A licence write a sync is about to send, recorded before it is sent.

    `expect` is the user's direct assignment of the SKU once the write is applied (its disabled
    plans; None: no direct assignment); `before` and `after` are licsync's ledger entries for
    that user and SKU before and after (None: no entry).
    """

    run_id: str
    user_id: str
    sku_id: str
    expect: frozenset[str] | None
    before: Ownership | None
    after: Ownership | None


@dataclass(frozen=True, slots=True)
class Lease:
    holder: str
    acquired_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class LedgerDiff:
    """The writes that turn one ledger into another."""

    upserts: tuple[Ownership, ...] = ()
    deletes: tuple[tuple[str, str], ...] = field(default=())

    def __bool__(self) -> bool:
        return bool(self.upserts or self.deletes)


CacheKey = tuple[str, str]  # (kind, object id): kind is "user", "group", "stale" or "meta"
CacheRow = tuple[str, str, Mapping[str, Any]]  # (kind, object id, the object as Graph JSON)


def stale_rows(user_ids: Iterable[str]) -> list[CacheRow]:
    """Cache rows marking users the next incremental read must re-read in full (Graph's
    users/delta does not report a change to licenseAssignmentStates alone)."""
    return [("stale", uid, {}) for uid in sorted(set(user_ids))]


CachedObjects = dict[str, dict[str, dict[str, Any]]]  # kind → object id → object


class StateTransaction(Protocol):
    """One unit of work. Nothing is visible to other connections until the `with` block exits
    normally; an exception anywhere inside rolls back every write made through it."""

    # runs
    def start_run(self, kind: str, run_id: str | None = None) -> Run: ...
    def finish_run(
        self, run_id: str, status: RunStatus, summary: Mapping[str, Any] | None = None
    ) -> Run: ...
    def end_run(self, run_id: str, end: RunEnd) -> Run: ...
    def set_run_phase(self, run_id: str, phase: RunPhase) -> None: ...

    # ledger
    def upsert_ownership(self, entries: Iterable[Ownership]) -> int: ...
    def delete_ownership(self, keys: Iterable[tuple[str, str]]) -> int: ...
    def replace_ledger(self, ledger: Ledger) -> int: ...
    def apply_ledger_diff(self, diff: LedgerDiff) -> None: ...

    # changes and problems
    def record_changes(self, changes: Iterable[AppliedChange]) -> int: ...
    def record_problems(self, run_id: str, problems: Iterable[Problem]) -> int: ...
    def resolve_problems(self, run_id: str, succeeded: Iterable[tuple[str, str]]) -> int: ...
    def resolve_unseen_problems(self, run_id: str) -> int: ...

    # the write-ahead journal
    def record_intents(self, intents: Iterable[Intent]) -> int: ...
    def clear_intents(self, run_id: str, user_ids: Iterable[str] | None = None) -> int: ...

    # delta links
    def hold_delta_link(self, run_id: str, resource: str, link: str) -> None: ...
    def commit_delta_links(self, run_id: str) -> tuple[str, ...]: ...
    def reset_delta_link(self, resource: str) -> None: ...

    # the tenant the store belongs to
    def bind_tenant(self, tenant_id: str, run_id: str | None = None) -> None: ...

    # the cached tenant view (incremental reads)
    def replace_tenant_cache(self, rows: Iterable[CacheRow]) -> int: ...
    def patch_tenant_cache(
        self, upserts: Iterable[CacheRow], deletes: Iterable[CacheKey] = ()
    ) -> None: ...


@runtime_checkable
class StateStore(Protocol):
    """What licsync remembers between runs. Obtain one with `licsync.store.open_store(url)`."""

    backend: str  # "sqlite" or "postgresql"

    @property
    def schema_version(self) -> int: ...

    def close(self) -> None: ...
    def describe(self) -> str: ...
    def __enter__(self) -> StateStore: ...
    def __exit__(self, *exc: object) -> None: ...

    def transaction(self, *, holder: str | None = None) -> AbstractContextManager[StateTransaction]:
        """A unit of work; with `holder`, it first checks inside the transaction that `holder`
        still holds an unexpired lease and raises StateError otherwise."""
        ...

    # reads
    def get_run(self, run_id: str) -> Run | None: ...
    def list_runs(self, limit: int = 20) -> list[Run]: ...
    def latest_run(self, status: RunStatus) -> Run | None: ...
    def load_ledger(self) -> Ledger: ...
    def list_changes(
        self, *, run_id: str | None = None, user_id: str | None = None
    ) -> list[AppliedChange]: ...
    def count_writes(self, run_ids: Sequence[str]) -> dict[str, tuple[int, int]]: ...
    def list_problems(self, *, include_resolved: bool = False) -> list[ProblemRecord]: ...
    def delta_link(self, resource: str) -> str | None: ...
    def pending_delta_links(self, run_id: str) -> dict[str, str]: ...
    def load_tenant_cache(self) -> CachedObjects: ...
    def pending_intents(self) -> list[Intent]: ...
    def unfinished_runs(self) -> list[Run]: ...  # status `running`: alive only with the lease
    def bound_tenant(self) -> str | None: ...

    # lease
    def acquire_lease(self, holder: str, ttl: timedelta | float) -> Lease: ...
    def renew_lease(self, holder: str, ttl: timedelta | float) -> Lease: ...
    def release_lease(self, holder: str) -> bool: ...
    def current_lease(self) -> Lease | None: ...
