"""What licsync remembers between runs: runs, the ownership ledger, changes, problems, delta links
and the write lease, behind one interface with a SQLite and a PostgreSQL backend (outcomes and
run statuses are `licsync.outcomes`' values).

    store = open_store(settings.url)          # migrates the schema to the current version
    with store.transaction(holder=run.id) as tx:
        tx.apply_ledger_diff(...); tx.record_changes(...); tx.record_problems(...)
        tx.commit_delta_links(run.id); tx.finish_run(run.id, RunStatus.SUCCEEDED, summary)
"""

from __future__ import annotations

from pathlib import Path

from licsync.store.base import (
    AppliedChange,
    CachedObjects,
    CacheKey,
    CacheRow,
    ChangeAction,
    Intent,
    Lease,
    LedgerDiff,
    Prior,
    ProblemRecord,
    Run,
    RunEnd,
    RunPhase,
    StateStore,
    StateTransaction,
    stale_rows,
)
from licsync.store.ownership import (
    diff_ledger,
    normalise_ownership,
    settle_ledger,
)
from licsync.store.schema import CURRENT_VERSION
from licsync.store.settings import StateSettings
from licsync.store.sqlstore import Clock, Database, SqlStateStore, utc_now
from licsync.store.urls import parse_state_url, redact_url

__all__ = [
    "CURRENT_VERSION",
    "AppliedChange",
    "CacheKey",
    "CacheRow",
    "CachedObjects",
    "ChangeAction",
    "Intent",
    "Lease",
    "LedgerDiff",
    "Prior",
    "ProblemRecord",
    "Run",
    "RunEnd",
    "RunPhase",
    "SqlStateStore",
    "StateSettings",
    "StateStore",
    "StateTransaction",
    "diff_ledger",
    "normalise_ownership",
    "open_store",
    "redact_url",
    "settle_ledger",
    "stale_rows",
    "state_exists",
]


def open_store(
    url: str,
    *,
    migrate: bool = True,
    clock: Clock = utc_now,
    read_only: bool = False,
    schema: str | None = None,
) -> SqlStateStore:
    """Open the state store a `[state] url` names, upgrading its schema unless `migrate` is False.

    `read_only` opens an existing store for reading only (dry runs): no migration, no write
    transaction, an older schema version accepted as it is (`schema_version` tells which), and a
    SQLite file that does not exist is refused instead of created. `schema` (PostgreSQL only):
    the PostgreSQL schema that holds the store, created unless `read_only`.

    Raises StateError for an unknown scheme, an unreachable server, a database newer than this
    licsync, or (with migrate=False) one that needs migrating. Messages never show the password.
    """
    target = parse_state_url(url)
    if target.backend == "sqlite":
        from licsync.store.sqlite import SqliteDatabase

        db: Database = SqliteDatabase(target.location, read_only=read_only)
    else:
        from licsync.store.postgres import PostgresDatabase

        db = PostgresDatabase(target.location, read_only=read_only, schema=schema)
    return SqlStateStore(db, clock=clock, migrate=migrate, read_only=read_only)


def state_exists(url: str) -> bool:
    """False only for a SQLite state file that does not exist yet (a server is assumed to)."""
    target = parse_state_url(url)
    return target.backend != "sqlite" or Path(target.location).exists()
