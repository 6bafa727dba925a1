"""What licsync remembers between runs: runs, the ownership ledger, changes, problems, delta links
and the write lease, behind one interface with a SQLite and a PostgreSQL backend.

    store = open_store(settings.url)          # migrates the schema to the current version
    with store.transaction(holder=run.id) as tx:
        tx.apply_ledger_diff(...); tx.record_changes(...); tx.record_problems(...)
        tx.commit_delta_links(run.id); tx.finish_run(run.id, RunStatus.SUCCEEDED, summary)
"""

from __future__ import annotations

from licsync.store.base import (
    AppliedChange,
    ChangeAction,
    ChangeOutcome,
    Lease,
    LedgerDiff,
    ProblemRecord,
    Run,
    RunStatus,
    StateStore,
    StateTransaction,
)
from licsync.store.ownership import (
    diff_ledger,
    hand_back,
    may_remove,
    normalise_ownership,
    settle_ledger,
    take_over,
)
from licsync.store.schema import CURRENT_VERSION
from licsync.store.settings import StateSettings
from licsync.store.sqlstore import Clock, SqlStateStore, utc_now
from licsync.store.urls import parse_state_url, redact_url

__all__ = [
    "CURRENT_VERSION",
    "AppliedChange",
    "ChangeAction",
    "ChangeOutcome",
    "Lease",
    "LedgerDiff",
    "ProblemRecord",
    "Run",
    "RunStatus",
    "SqlStateStore",
    "StateSettings",
    "StateStore",
    "StateTransaction",
    "diff_ledger",
    "hand_back",
    "may_remove",
    "normalise_ownership",
    "open_store",
    "redact_url",
    "settle_ledger",
    "take_over",
]


def open_store(url: str, *, migrate: bool = True, clock: Clock = utc_now) -> SqlStateStore:
    """Open the state store a `[state] url` names, upgrading its schema unless `migrate` is False.

    Raises StateError for an unknown scheme, an unreachable server, a database newer than this
    licsync, or (with migrate=False) one that needs migrating. Messages never show the password.
    """
    target = parse_state_url(url)
    if target.backend == "sqlite":
        from licsync.store.sqlite import SqliteDatabase

        return SqlStateStore(SqliteDatabase(target.location), clock=clock, migrate=migrate)
    from licsync.store.postgres import PostgresDatabase

    return SqlStateStore(PostgresDatabase(target.location), clock=clock, migrate=migrate)
