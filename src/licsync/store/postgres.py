"""PostgreSQL backend (psycopg 3) for shared deployments.

The connection runs in autocommit mode and the store issues BEGIN/COMMIT itself, exactly as on
SQLite. Row locks (`SELECT … FOR UPDATE`) guard the lease, and an advisory lock serialises
migrations between processes opening the same database. The url's password never leaves this
module: `describe()` and every error message use the redacted url.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from licsync.errors import StateError
from licsync.store.urls import redact_url, scrub

try:
    import psycopg
    from psycopg import sql
    from psycopg.types.json import Jsonb
except ImportError:  # pragma: no cover - depends on the installation
    psycopg = None  # type: ignore[assignment]

# Arbitrary, fixed key for pg_advisory_xact_lock: "licsync" in ASCII.
_MIGRATION_LOCK = 0x6C696373796E63
_COLUMNS = ("user_id", "sku_id", "groups", "prior_direct")
_COLUMN_LIST = ", ".join(_COLUMNS)


def _pg(sql: str) -> str:
    """The store writes `?` placeholders; psycopg wants `%s` (the SQL has no other `%` or `?`)."""
    return sql.replace("?", "%s")


class PostgresDatabase:
    dialect = "postgresql"
    select_ownership_text = (
        "SELECT user_id, sku_id, groups::text, prior_direct::text FROM ownership"
    )
    for_update = " FOR UPDATE"
    fresh = True  # an empty database on a server is a new store (the operator created it)

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: int = 10,
        read_only: bool = False,
        schema: str | None = None,
    ) -> None:
        """`read_only`: the session refuses every write (dry runs), as SQLite's `mode=ro`.
        `schema`: keep the tables in that PostgreSQL schema (created unless `read_only`)."""
        if psycopg is None:
            raise StateError(
                "a postgresql:// state url needs psycopg: pip install 'licsync[postgres]'"
            )
        self._safe_url = redact_url(url)
        try:
            self._conn = psycopg.connect(
                url,
                autocommit=True,
                connect_timeout=connect_timeout,
                application_name="licsync",
            )
        except psycopg.Error as exc:
            message = scrub(str(exc).strip(), url)
            raise StateError(f"cannot connect to {self._safe_url}: {message}") from None
        self._conn.execute("SET TIME ZONE 'UTC'")
        if schema is not None:
            self._use_schema(schema, create=not read_only)
        if read_only:
            self._conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")

    def _use_schema(self, schema: str, *, create: bool) -> None:
        name = sql.Identifier(schema)
        try:
            if create:
                self._conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(name))
            self._conn.execute(sql.SQL("SET search_path TO {}").format(name))
        except psycopg.Error as exc:
            self._conn.close()
            raise StateError(
                f"{self._safe_url}: cannot use schema {schema!r}: {str(exc).strip()}"
            ) from None
        self._safe_url += f" (schema {schema})"

    def __repr__(self) -> str:
        return f"PostgresDatabase({self._safe_url!r})"

    def describe(self) -> str:
        return self._safe_url

    def begin(self) -> None:
        self.execute("BEGIN")

    def commit(self) -> None:
        self.execute("COMMIT")

    def rollback(self) -> None:
        """Best effort: after a lost connection there is nothing left to roll back."""
        if self._conn.closed:
            return
        with suppress(psycopg.Error):
            self._conn.execute("ROLLBACK")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        try:
            return self._conn.execute(_pg(sql), params or None)
        except psycopg.Error as exc:
            raise self._error(exc) from exc

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        rows = list(rows)
        if not rows:
            return 0
        try:
            with self._conn.cursor() as cur:
                cur.executemany(_pg(sql), rows)
                return max(cur.rowcount, 0)
        except psycopg.Error as exc:
            raise self._error(exc) from exc

    def _error(self, exc: psycopg.Error) -> StateError:
        """Every failure of the server (restarted, unreachable, a table missing) as one
        StateError naming the database (never its password)."""
        return StateError(f"{self._safe_url}: {str(exc).strip()}")

    def has_tables(self) -> bool:
        row = self.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema()"
        ).fetchone()
        return row is not None

    def lock_schema(self) -> None:
        self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))

    def table_exists(self, name: str) -> bool:
        row = self._conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
        return bool(row and row[0])

    def bulk_insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """COPY `rows` into `table` (an order of magnitude faster than INSERTs)."""
        count = 0
        with (
            self._conn.cursor() as cur,
            cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
                count += 1
        return count

    def bulk_upsert_ownership(self, rows: Sequence[Sequence[Any]]) -> int:
        if len(rows) < 500:
            return self.executemany(
                f"INSERT INTO ownership ({_COLUMN_LIST}) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (user_id, sku_id) DO UPDATE SET groups = excluded.groups, "
                "prior_direct = excluded.prior_direct",
                rows,
            )
        # Many rows: COPY into a scratch table, then one INSERT … SELECT … ON CONFLICT.
        self._conn.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS ownership_incoming "
            "(LIKE ownership INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        self._conn.execute("TRUNCATE ownership_incoming")
        self.bulk_insert("ownership_incoming", _COLUMNS, rows)
        cur = self._conn.execute(
            f"INSERT INTO ownership ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM ownership_incoming "
            "ON CONFLICT (user_id, sku_id) DO UPDATE SET groups = excluded.groups, "
            "prior_direct = excluded.prior_direct"
        )
        return max(cur.rowcount, 0)

    def close(self) -> None:
        self._conn.close()

    # encodings: timestamptz, text[], jsonb

    def enc_time(self, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError(f"timestamps must be timezone-aware, got {value!r}")
        return value

    def dec_time(self, value: datetime) -> datetime:
        return value.astimezone(UTC)

    def enc_ids(self, values: Iterable[str]) -> str:
        """An array literal: psycopg sends str untyped, so the server casts it to text[]; as text
        it also costs COPY nothing to write (lists would be re-dumped for every row)."""
        quoted = (v.replace("\\", "\\\\").replace('"', '\\"') for v in sorted(values))
        return "{" + ",".join(f'"{v}"' for v in quoted) + "}"

    def dec_ids(self, value: Sequence[str]) -> tuple[str, ...]:
        return tuple(value)

    def dec_ids_text(self, value: str) -> tuple[str, ...]:
        return parse_text_array(value)

    def enc_json(self, value: Mapping[str, Any]) -> Jsonb:
        return Jsonb(json.loads(json.dumps(value, default=str)))

    def dec_json(self, value: Any) -> dict[str, Any]:
        return value if isinstance(value, dict) else json.loads(value)


def parse_text_array(text: str) -> tuple[str, ...]:
    """Parse PostgreSQL's text output of a one-dimensional text[] (`{a,b}`, `{"a b","c\\"d"}`)."""
    if not (text.startswith("{") and text.endswith("}")):
        raise ValueError(f"not a PostgreSQL array: {text!r}")
    body = text[1:-1]
    if not body:
        return ()
    if '"' not in body and "\\" not in body:
        return tuple(body.split(","))
    items: list[str] = []
    i, n = 0, len(body)
    while i < n:
        if body[i] == '"':
            i += 1
            chars = []
            while body[i] != '"':
                if body[i] == "\\":
                    i += 1
                chars.append(body[i])
                i += 1
            items.append("".join(chars))
            i += 1  # closing quote
        else:
            end = body.find(",", i)
            end = n if end < 0 else end
            items.append(body[i:end])
            i = end
        i += 1  # the comma
    return tuple(items)
