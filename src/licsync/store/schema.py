"""Schema versions of the state database and the one migration step that reaches each.

`STEPS[n]` takes a database at version n-1 to version n (version 0 is an empty database). Each step
is plain SQL per dialect, run inside the transaction that also records the new version, so a failed
step leaves the database at its old version. A database newer than `CURRENT_VERSION` is refused
with a `StateError`: an older licsync must never write a schema it does not know.

History:
  1  runs, ownership (the ledger), changes, problems, delta_links (committed links only), lease.
  2  delta_links holds a pending link per run (`pending_link`, `pending_run_id`, `pending_at`),
     which the run's final transaction commits together with the ledger and problems.
  3  tenant_cache: the last-known tenant view (users, groups and the memberships licsync reads)
     that incremental runs patch with Graph's delta pages; committed with the delta links.
  4  intents: the write-ahead journal. Before a sync sends a licence write it records, per user
     and SKU, the direct assignment the write leaves and the ledger entries before and after;
     a run that never finished leaves them for the next run to reconcile against Graph.
  5  tenant_binding: the Entra tenant id (from Graph's /organization) the store belongs to,
     recorded on its first run; a run against another tenant is refused.
  6  one outcome vocabulary (`licsync.outcomes`): a change's outcome is a `WriteOutcome` (a
     success was `succeeded` or `recovered`, a refusal the classifier's action such as `problem`
     or `fatal`) and a run ended on purpose is `stopped` (was `aborted`).
  7  run history: a run's exit code, the phase it reached, its error line and the seconds of
     each phase; a change's HTTP status, error, user principal name and the state it replaced
     (`before`, for `licsync runs undo`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from licsync.errors import StateError
from licsync.outcomes import RunStatus, WriteOutcome

SCHEMA_TABLE = "licsync_schema"


@dataclass(frozen=True, slots=True)
class MigrationStep:
    version: int
    description: str
    sqlite: Sequence[str]
    postgresql: Sequence[str]

    def statements(self, dialect: str) -> Sequence[str]:
        return self.sqlite if dialect == "sqlite" else self.postgresql


# Timestamps: ISO-8601 UTC text in SQLite, timestamptz in PostgreSQL. Lists of ids: JSON text in
# SQLite, text[] in PostgreSQL. A problem without a group stores '' so that it can be part of the
# unique key (NULLs never conflict).
_V1_SQLITE = (
    f"CREATE TABLE {SCHEMA_TABLE} (version INTEGER NOT NULL)",
    """CREATE TABLE runs (
        run_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        summary TEXT
    )""",
    """CREATE TABLE ownership (
        user_id TEXT NOT NULL,
        sku_id TEXT NOT NULL,
        groups TEXT NOT NULL,
        prior_direct TEXT,
        PRIMARY KEY (user_id, sku_id)
    ) WITHOUT ROWID""",
    """CREATE TABLE changes (
        change_id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs (run_id),
        user_id TEXT NOT NULL,
        sku_id TEXT,
        action TEXT NOT NULL,
        disabled_plans TEXT NOT NULL,
        usage_location TEXT,
        outcome TEXT NOT NULL,
        request_id TEXT,
        at TEXT NOT NULL
    )""",
    "CREATE INDEX changes_run ON changes (run_id)",
    "CREATE INDEX changes_user ON changes (user_id, sku_id)",
    """CREATE TABLE problems (
        problem_id INTEGER PRIMARY KEY,
        user_id TEXT NOT NULL,
        user_principal_name TEXT NOT NULL,
        sku_id TEXT NOT NULL,
        group_id TEXT NOT NULL,
        error TEXT NOT NULL,
        message TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        last_run_id TEXT NOT NULL REFERENCES runs (run_id),
        resolved_at TEXT,
        resolved_run_id TEXT REFERENCES runs (run_id)
    )""",
    """CREATE UNIQUE INDEX problems_open ON problems (user_id, sku_id, group_id, error)
        WHERE resolved_at IS NULL""",
    """CREATE TABLE delta_links (
        resource TEXT PRIMARY KEY,
        link TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        run_id TEXT REFERENCES runs (run_id)
    )""",
    """CREATE TABLE lease (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        acquired_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
    )""",
)

_V1_POSTGRESQL = (
    f"CREATE TABLE {SCHEMA_TABLE} (version integer NOT NULL)",
    """CREATE TABLE runs (
        run_id text PRIMARY KEY,
        kind text NOT NULL,
        status text NOT NULL,
        started_at timestamptz NOT NULL,
        finished_at timestamptz,
        summary jsonb
    )""",
    """CREATE TABLE ownership (
        user_id text NOT NULL,
        sku_id text NOT NULL,
        groups text[] NOT NULL,
        prior_direct text[],
        PRIMARY KEY (user_id, sku_id)
    )""",
    """CREATE TABLE changes (
        change_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        run_id text NOT NULL REFERENCES runs (run_id),
        user_id text NOT NULL,
        sku_id text,
        action text NOT NULL,
        disabled_plans text[] NOT NULL,
        usage_location text,
        outcome text NOT NULL,
        request_id text,
        at timestamptz NOT NULL
    )""",
    "CREATE INDEX changes_run ON changes (run_id)",
    "CREATE INDEX changes_user ON changes (user_id, sku_id)",
    """CREATE TABLE problems (
        problem_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        user_id text NOT NULL,
        user_principal_name text NOT NULL,
        sku_id text NOT NULL,
        group_id text NOT NULL,
        error text NOT NULL,
        message text NOT NULL,
        first_seen timestamptz NOT NULL,
        last_seen timestamptz NOT NULL,
        attempts integer NOT NULL,
        last_run_id text NOT NULL REFERENCES runs (run_id),
        resolved_at timestamptz,
        resolved_run_id text REFERENCES runs (run_id)
    )""",
    """CREATE UNIQUE INDEX problems_open ON problems (user_id, sku_id, group_id, error)
        WHERE resolved_at IS NULL""",
    """CREATE TABLE delta_links (
        resource text PRIMARY KEY,
        link text NOT NULL,
        updated_at timestamptz NOT NULL,
        run_id text REFERENCES runs (run_id)
    )""",
    """CREATE TABLE lease (
        name text PRIMARY KEY,
        holder text NOT NULL,
        acquired_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL
    )""",
)

# v2: a delta link is held pending while its run works. A row can now exist with only a pending
# link, so `link` becomes nullable; SQLite cannot drop NOT NULL in place and rebuilds the table.
_V2_SQLITE = (
    """CREATE TABLE delta_links_v2 (
        resource TEXT PRIMARY KEY,
        link TEXT,
        updated_at TEXT,
        run_id TEXT REFERENCES runs (run_id),
        pending_link TEXT,
        pending_run_id TEXT REFERENCES runs (run_id),
        pending_at TEXT
    )""",
    """INSERT INTO delta_links_v2 (resource, link, updated_at, run_id)
        SELECT resource, link, updated_at, run_id FROM delta_links""",
    "DROP TABLE delta_links",
    "ALTER TABLE delta_links_v2 RENAME TO delta_links",
)

_V2_POSTGRESQL = (
    "ALTER TABLE delta_links ALTER COLUMN link DROP NOT NULL",
    "ALTER TABLE delta_links ALTER COLUMN updated_at DROP NOT NULL",
    "ALTER TABLE delta_links ADD COLUMN pending_link text",
    "ALTER TABLE delta_links ADD COLUMN pending_run_id text REFERENCES runs (run_id)",
    "ALTER TABLE delta_links ADD COLUMN pending_at timestamptz",
)

# v3: the cached tenant view. One row per object: `kind` is `user`, `group`, `stale` (a user to
# re-read on the next run) or `meta`; `data` is the object as Graph JSON text (orjson on both
# backends: the cache is opaque to SQL and 100k rows must load fast). Not WITHOUT ROWID on SQLite:
# a user's row (~400 bytes) is too wide for it, and saving 100k rows took twice as long.
_V3_SQLITE = (
    """CREATE TABLE tenant_cache (
        kind TEXT NOT NULL,
        object_id TEXT NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (kind, object_id)
    )""",
)

_V3_POSTGRESQL = (
    """CREATE TABLE tenant_cache (
        kind text NOT NULL,
        object_id text NOT NULL,
        data text NOT NULL,
        PRIMARY KEY (kind, object_id)
    )""",
)

# v4: the write-ahead intent journal. `expect` is the direct assignment's disabled plans after
# the write (JSON list; NULL: no direct assignment of the SKU); `before`/`after` the ledger
# entries (JSON {"groups": [...], "prior_direct": [...] | null}; NULL: no entry).
_V4 = (
    """CREATE TABLE intents (
        run_id TEXT NOT NULL REFERENCES runs (run_id),
        user_id TEXT NOT NULL,
        sku_id TEXT NOT NULL,
        expect TEXT,
        before TEXT,
        after TEXT,
        PRIMARY KEY (run_id, user_id, sku_id)
    )""",
)

# v5: the tenant the store belongs to, one row (`name` = 'tenant'). A store of an older version
# has none, and binds on its next run.
_V5_SQLITE = (
    """CREATE TABLE tenant_binding (
        name TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        bound_at TEXT NOT NULL,
        run_id TEXT
    )""",
)

_V5_POSTGRESQL = (
    """CREATE TABLE tenant_binding (
        name text PRIMARY KEY,
        tenant_id text NOT NULL,
        bound_at timestamptz NOT NULL,
        run_id text
    )""",
)

# v6: the values of versions up to 5 in the outcome vocabulary. A change's outcome that is neither
# a success nor a write never sent was a refusal: failed.
_V5_RUN_STATUS = {"aborted": RunStatus.STOPPED}
_V5_CHANGE_OUTCOME = {
    "succeeded": WriteOutcome.APPLIED,
    "recovered": WriteOutcome.APPLIED,  # a dead run's write a later run found applied
    **{o.value: o for o in WriteOutcome},  # `skipped` already was, and v6's own values
}


def run_status(stored: str) -> RunStatus:
    """A run's stored status, written by any schema version (a read-only store is not upgraded)."""
    return _V5_RUN_STATUS.get(stored) or RunStatus(stored)


def change_outcome(stored: str) -> WriteOutcome:
    """A change's stored outcome, written by any schema version."""
    return _V5_CHANGE_OUTCOME.get(stored, WriteOutcome.FAILED)


def _cases(column: str, mapping: Mapping[str, str], otherwise: str) -> str:
    whens = " ".join(f"WHEN '{old}' THEN '{new}'" for old, new in mapping.items())
    return f"CASE {column} {whens} ELSE {otherwise} END"


_V6 = (
    f"UPDATE runs SET status = {_cases('status', _V5_RUN_STATUS, 'status')}",
    "UPDATE changes SET outcome = "
    + _cases(
        "outcome",
        _V5_CHANGE_OUTCOME,
        f"'{WriteOutcome.FAILED.value}'",
    ),
)

# v7: run history (`licsync runs`, `runs show`, `runs undo`). Older rows read as NULL.
RUN_HISTORY_VERSION = 7
_V7_SQLITE = (
    "ALTER TABLE runs ADD COLUMN exit_code INTEGER",
    "ALTER TABLE runs ADD COLUMN phase TEXT",
    "ALTER TABLE runs ADD COLUMN error TEXT",
    "ALTER TABLE runs ADD COLUMN phases TEXT",
    "ALTER TABLE changes ADD COLUMN user_principal_name TEXT",
    "ALTER TABLE changes ADD COLUMN http_status INTEGER",
    "ALTER TABLE changes ADD COLUMN error TEXT",
    "ALTER TABLE changes ADD COLUMN before TEXT",
)
_V7_POSTGRESQL = (
    "ALTER TABLE runs ADD COLUMN exit_code integer",
    "ALTER TABLE runs ADD COLUMN phase text",
    "ALTER TABLE runs ADD COLUMN error text",
    "ALTER TABLE runs ADD COLUMN phases jsonb",
    "ALTER TABLE changes ADD COLUMN user_principal_name text",
    "ALTER TABLE changes ADD COLUMN http_status integer",
    "ALTER TABLE changes ADD COLUMN error text",
    "ALTER TABLE changes ADD COLUMN before jsonb",
)

STEPS: dict[int, MigrationStep] = {
    1: MigrationStep(1, "initial schema", _V1_SQLITE, _V1_POSTGRESQL),
    2: MigrationStep(2, "pending delta links", _V2_SQLITE, _V2_POSTGRESQL),
    3: MigrationStep(3, "cached tenant view", _V3_SQLITE, _V3_POSTGRESQL),
    4: MigrationStep(4, "write-ahead intents", _V4, _V4),
    5: MigrationStep(5, "tenant binding", _V5_SQLITE, _V5_POSTGRESQL),
    6: MigrationStep(6, "outcome vocabulary", _V6, _V6),
    7: MigrationStep(RUN_HISTORY_VERSION, "run history", _V7_SQLITE, _V7_POSTGRESQL),
}

CURRENT_VERSION = max(STEPS)


def steps_after(version: int, target: int = CURRENT_VERSION) -> list[MigrationStep]:
    """The steps that take a database at `version` to `target`, in order.

    Raises StateError when the database is newer than this licsync knows.
    """
    if version > CURRENT_VERSION:
        raise StateError(
            f"the state database is at schema version {version}, but this licsync knows versions "
            f"up to {CURRENT_VERSION}: upgrade licsync (never run an older licsync against it)"
        )
    if version < 0:
        raise StateError(f"the state database records an invalid schema version {version}")
    return [STEPS[v] for v in range(version + 1, target + 1)]
