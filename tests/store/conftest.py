"""Backends for the store contract suite: SQLite always, PostgreSQL when a server is given.

    export LICSYNC_TEST_POSTGRES_URL=$(bash .ci/postgres.sh)

Each PostgreSQL test gets a fresh schema (dropped afterwards) selected through the url's
`options=-c search_path=…`, so tests never see each other's tables.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest

from licsync.store import SqlStateStore, open_store
from tests.postgres import PG_SKIP, postgres_url

DATA = Path(__file__).parent / "data"


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgresql",
        id="postgresql",
        marks=pytest.mark.skipif(postgres_url() is None, reason=PG_SKIP),
    ),
]


class FakeClock:
    """A clock the tests move by hand."""

    def __init__(self) -> None:
        self.now = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


def with_search_path(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(f'-c search_path={schema}', safe='')}"


class Backend:
    """A place for one test's state database, plus raw SQL access to it."""

    def __init__(self, name: str, url: str, raw: Callable[[str], list[tuple]]) -> None:
        self.name = name
        self.url = url
        self.raw = raw


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        path = tmp_path / "state.db"

        def raw_sqlite(sql: str) -> list[tuple]:
            conn = sqlite3.connect(path, isolation_level=None)
            try:
                return conn.execute(sql).fetchall()
            finally:
                conn.close()

        yield Backend("sqlite", str(path), raw_sqlite)
        return

    import psycopg

    base = postgres_url()
    assert base is not None
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = psycopg.connect(base, autocommit=True)
    admin.execute(f"CREATE SCHEMA {schema}")
    url = with_search_path(base, schema)

    def raw_postgres(sql: str) -> list[tuple]:
        with psycopg.connect(url, autocommit=True) as conn:
            cur = conn.execute(sql)
            return cur.fetchall() if cur.description else []

    try:
        yield Backend("postgresql", url, raw_postgres)
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(backend: Backend, clock: FakeClock) -> Iterator[SqlStateStore]:
    s = open_store(backend.url, clock=clock)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def other_store(backend: Backend, clock: FakeClock) -> Iterator[SqlStateStore]:
    """A second connection to the same database, as a second licsync process would have."""
    s = open_store(backend.url, clock=clock)
    try:
        yield s
    finally:
        s.close()
