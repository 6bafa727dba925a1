"""SQLite backend: one file, WAL journal, the default for a single licsync host."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from licsync.errors import StateError
from licsync.files import make_private


class SqliteDatabase:
    dialect = "sqlite"
    select_ownership_text = "SELECT user_id, sku_id, groups, prior_direct FROM ownership"
    for_update = ""  # BEGIN IMMEDIATE already holds the database's write lock

    def __init__(
        self, path: str | Path, *, busy_timeout: float = 10.0, read_only: bool = False
    ) -> None:
        """`read_only` opens an existing file without ever writing or creating it."""
        self.path = str(path)
        # a new store is created only where no file exists: an existing file must hold one
        self.fresh = self.path == ":memory:" or not Path(self.path).exists()
        if self.path != ":memory:":
            file = Path(self.path).resolve()
            if not file.parent.is_dir():
                raise StateError(
                    f"state database {self.path}: directory {file.parent} does not exist"
                )
            if read_only and not file.exists():
                raise StateError(f"state database {self.path} does not exist")
        try:
            if read_only:
                self._conn = self._open_read_only(busy_timeout)
            else:
                created = self.path != ":memory:" and not Path(self.path).exists()
                self._conn = sqlite3.connect(
                    self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
                )
                if created:  # before the WAL files exist: SQLite gives them the file's mode
                    make_private(self.path)
                self._conn.execute("PRAGMA journal_mode = WAL").fetchone()
                self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.DatabaseError as exc:
            raise StateError(f"state database {self.path}: {exc}") from exc

    def _open_read_only(self, busy_timeout: float) -> sqlite3.Connection:
        """Open for reading only. A WAL database needs its `-shm` file even to read; in a
        folder licsync may not write to, the file is opened as immutable instead (no writer
        can be working there)."""
        uri = Path(self.path).resolve().as_uri()
        for mode in ("mode=ro", "mode=ro&immutable=1"):
            conn = sqlite3.connect(
                f"{uri}?{mode}",
                uri=True,
                timeout=busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite3.OperationalError:
                conn.close()
                continue
            return conn
        raise StateError(f"state database {self.path}: cannot be opened for reading")

    def describe(self) -> str:
        return f"sqlite:{self.path}"

    def begin(self) -> None:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StateError(f"state database {self.path}: cannot start a write: {exc}") from exc

    def commit(self) -> None:
        self.execute("COMMIT")

    def rollback(self) -> None:
        """Best effort: a failed rollback must not hide the error that called for it."""
        if self._conn.in_transaction:
            with suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        try:
            cursor = self._conn.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        return max(cursor.rowcount, 0)

    def _error(self, exc: sqlite3.Error) -> StateError:
        """Every failure of the file (locked, damaged, read-only, a table missing) as one
        StateError naming the file."""
        hint = " (the file or its folder is read-only)" if "readonly" in str(exc) else ""
        return StateError(f"state database {self.path}: {exc}{hint}")

    def lock_schema(self) -> None:
        """BEGIN IMMEDIATE already serialises writers on the file."""

    def has_tables(self) -> bool:
        return (
            self.execute("SELECT 1 FROM sqlite_master WHERE type = 'table'").fetchone() is not None
        )

    def table_exists(self, name: str) -> bool:
        row = self.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).fetchone()
        return row is not None

    def bulk_insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        marks = ", ".join("?" * len(columns))
        return self.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows
        )

    def bulk_upsert_ownership(self, rows: Sequence[Sequence[Any]]) -> int:
        return self.executemany(
            "INSERT INTO ownership (user_id, sku_id, groups, prior_direct) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (user_id, sku_id) DO UPDATE SET groups = excluded.groups, "
            "prior_direct = excluded.prior_direct",
            rows,
        )

    def close(self) -> None:
        self._conn.close()

    # encodings: ISO-8601 UTC text, JSON arrays, JSON objects

    def enc_time(self, value: datetime) -> str:
        if value.tzinfo is None:
            raise ValueError(f"timestamps must be timezone-aware, got {value!r}")
        return value.astimezone(UTC).isoformat(timespec="microseconds")

    def dec_time(self, value: str) -> datetime:
        return datetime.fromisoformat(value)

    def enc_ids(self, values: Iterable[str]) -> str:
        return json.dumps(sorted(values), separators=(",", ":"))

    def dec_ids(self, value: str) -> tuple[str, ...]:
        return tuple(json.loads(value))

    dec_ids_text = dec_ids

    def enc_json(self, value: Mapping[str, Any]) -> str:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)

    def dec_json(self, value: str) -> dict[str, Any]:
        return json.loads(value)
