"""The state store is opened, not guessed; when it fails, the run stops writing and says why.

Every case ends in exit 4 (or 6 for the read-size guard) with the store's path in the message,
no Graph write on a path that fails before the writes, and the lease released.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from licsync.cli import main
from licsync.connector import record
from licsync.emulator.server import Emulator
from licsync.errors import GuardrailError, StateError
from licsync.exitcodes import ExitCode
from licsync.graph import WriteBudget
from licsync.runtime import holder_name, unlock
from licsync.store import open_store
from tests.builders import user_id
from tests.syncing import make_config, sync

RULES = [{"group": "Group 1", "licenses": [{"sku": "SPE_E3"}]}]
MEMBERS = {"members": {1: list(range(1, 41))}, "users": 60}


def run_cli(config_path: Path, *args: str) -> int:
    return main(["sync", "--config", str(config_path), *args])


@pytest.mark.parametrize("small", [MEMBERS], indirect=True)
@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda db: db.write_bytes(b""), "holds no licsync schema"),
        (lambda db: _sql(db, "CREATE TABLE notes (x TEXT)"), "holds no licsync schema"),
        (lambda db: db.write_bytes(b"not a database at all" * 100), "not a database"),
        (lambda db: _sql(db, "UPDATE licsync_schema SET version = 'x'"), "damaged"),
        (lambda db: _sql(db, "DROP TABLE ownership"), "no such table"),
        (lambda db: _sql(db, "UPDATE tenant_cache SET data = '{not json'"), "damaged"),
    ],
    ids=["zero-bytes", "foreign", "garbage", "text-version", "dropped-table", "bad-json"],
)
def test_a_damaged_or_foreign_store_is_exit_4_with_no_write(
    small: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: Any, expected: str
) -> None:
    config = make_config(tmp_path, small, RULES)
    db = tmp_path / "state.db"
    if "schema" not in expected:  # damage a real store (a first sync made it)
        sync(config)
        with open_store(str(db)) as store:
            assert store.load_ledger()
    damage(db)
    writes = small.stats.writes
    assert run_cli(config.path) == ExitCode.STATE
    err = capsys.readouterr().err
    assert str(db) in err and expected in err
    assert "Traceback" not in err
    assert small.stats.writes == writes  # nothing sent to Graph


def _sql(db: Path, statement: str) -> None:
    conn = sqlite3.connect(db)
    if not conn.execute("SELECT 1 FROM sqlite_master").fetchone():
        conn.execute("CREATE TABLE placeholder (x)")  # for a store that does not exist yet
    conn.execute(statement)
    conn.commit()
    conn.close()


def test_a_failed_begin_leaves_no_transaction_open(tmp_path: Path) -> None:
    """SQLite locked past the busy timeout: the real cause is reported, and the next
    transaction works once the lock is gone."""
    url = str(tmp_path / "state.db")
    open_store(url).close()
    from licsync.store.sqlite import SqliteDatabase
    from licsync.store.sqlstore import SqlStateStore

    store = SqlStateStore(SqliteDatabase(url, busy_timeout=0.05))
    blocker = sqlite3.connect(url, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    with pytest.raises(StateError, match="locked"), store.transaction() as tx:
        tx.start_run("sync", "r1")
    blocker.execute("ROLLBACK")
    blocker.close()
    with store.transaction() as tx:  # not "a state transaction is already open"
        tx.start_run("sync", "r1")
    assert store.get_run("r1") is not None
    store.close()


@pytest.mark.parametrize("small", [MEMBERS], indirect=True)
def test_a_store_failing_mid_run_stops_the_writes_and_releases_the_lease(
    small: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config(tmp_path, small, RULES)
    monkeypatch.setattr(record, "FLUSH_USERS", 5)
    calls = {"n": 0}
    real_flush = record.OutcomeRecorder.flush

    def failing_flush(self: record.OutcomeRecorder) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise StateError("state database: disk I/O error")
        real_flush(self)

    monkeypatch.setattr(record.OutcomeRecorder, "flush", failing_flush)
    with pytest.raises(StateError, match="disk I/O error"):
        sync(config, budget=WriteBudget(20))  # one $batch now, the next a second later
    assert small.stats.writes < 40  # the writes stopped
    with open_store(str(tmp_path / "state.db")) as store:
        assert store.current_lease() is None  # released
        assert len(store.pending_intents()) > 0  # the unrecorded writes are journaled
    monkeypatch.undo()
    rerun = sync(config)  # reconciles the journal, then finishes the job
    assert rerun.failed_users == ()
    assert sync(config).plan.changes == ()


@pytest.mark.parametrize("small", [MEMBERS], indirect=True)
def test_a_full_read_far_smaller_than_the_last_view_stops_before_any_write(
    small: Emulator, tmp_path: Path
) -> None:
    config = make_config(tmp_path, small, RULES)
    sync(config)
    with small.tenant.lock:  # a read gone wrong looks like this: most users gone
        for n in range(1, 36):
            small.tenant.delete_user(user_id(n))
    writes = small.stats.writes
    with pytest.raises(GuardrailError, match="full read returned 25 users; the last run saw 60"):
        sync(config, full=True)
    assert small.stats.writes == writes
    relaxed = make_config(tmp_path, small, RULES)
    relaxed.path.write_text(
        relaxed.path.read_text().replace("[guardrail]\n", "[guardrail]\nmax_shrink_percent = 100\n")
    )
    assert main(["sync", "--config", str(relaxed.path), "--full"]) == ExitCode.OK


def test_unlock_refuses_while_the_holder_lives(tmp_path: Path) -> None:
    with open_store(str(tmp_path / "state.db")) as store:
        store.acquire_lease(holder_name("sync", "alive"), 60)  # this very process
        with pytest.raises(StateError, match="that process is alive"):
            unlock(store)
        store.release_lease(holder_name("sync", "alive"))
        dead = holder_name("sync", "dead").rsplit(":", 1)[0] + f":{_dead_pid()}"
        store.acquire_lease(dead, 60)
        assert "its process no longer runs" in unlock(store)
        assert store.current_lease() is None
        store.acquire_lease("sync-x@another-host:1", 60)
        with pytest.raises(StateError, match="another host"):
            unlock(store)
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    with open_store(str(tmp_path / "state.db"), clock=lambda: an_hour_ago) as past:
        past.release_lease("sync-x@another-host:1")
        past.acquire_lease("sync-x@another-host:1", 60)  # expired 59 minutes ago
    with open_store(str(tmp_path / "state.db")) as store:
        assert "it had expired" in unlock(store)
        assert "not leased" in unlock(store)


def _dead_pid() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid
