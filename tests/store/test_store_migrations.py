"""Frozen files of every older schema version upgrade to the current one, data intact."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from licsync.errors import StateError
from licsync.model import Ownership
from licsync.outcomes import RunStatus, WriteOutcome
from licsync.store import CURRENT_VERSION, Intent, RunEnd, RunPhase, open_store
from licsync.store.schema import STEPS, steps_after

DATA = Path(__file__).parent / "data"
U1, U2 = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
SKU = "c7df2760-2c81-4ef7-b578-5b5392b571df"
G1, G2 = "aaaaaaaa-0000-0000-0000-000000000001", "aaaaaaaa-0000-0000-0000-000000000002"
PLAN = "9aaf7827-d63c-4b61-89c3-182f06f82e5c"
OLD_LINK = "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=v1"


def test_every_version_has_one_step_for_each_dialect():
    assert sorted(STEPS) == list(range(1, CURRENT_VERSION + 1))
    for version, step in STEPS.items():
        assert step.version == version
        assert step.sqlite and step.postgresql
    assert [s.version for s in steps_after(0)] == list(range(1, CURRENT_VERSION + 1))
    assert steps_after(CURRENT_VERSION) == []
    with pytest.raises(StateError, match="upgrade licsync"):
        steps_after(CURRENT_VERSION + 1)


FROZEN_VERSIONS = sorted(int(p.stem.split("-v")[1]) for p in DATA.glob("state-v*.sqlite"))


def load_frozen(backend, version: int = 1) -> None:
    """Put the frozen database of `version` where the backend's url points."""
    if backend.name == "sqlite":
        shutil.copyfile(DATA / f"state-v{version}.sqlite", backend.url)
    else:  # a script, no parameters
        backend.raw((DATA / f"state-v{version}.postgresql.sql").read_text())


def load_v1(backend) -> None:
    load_frozen(backend, 1)


def test_every_older_version_is_frozen():
    assert sorted(set(FROZEN_VERSIONS)) == [*range(1, CURRENT_VERSION)]


@pytest.mark.parametrize("version", FROZEN_VERSIONS)
def test_a_frozen_database_upgrades_with_its_data(backend, clock, version):
    load_frozen(backend, version)
    assert backend.raw("SELECT version FROM licsync_schema") == [(version,)]
    with open_store(backend.url, clock=clock) as store:
        assert store.schema_version == CURRENT_VERSION
        assert store.load_ledger() == {
            (U1, SKU): Ownership(U1, SKU, (G1, G2), None),
            (U2, SKU): Ownership(U2, SKU, (G1,), frozenset({PLAN})),
        }
        assert store.get_run("run-1").summary == {"changes": 2}
        assert store.get_run("run-2").status is RunStatus.FAILED
        (change,) = store.list_changes()
        assert (change.run_id, change.request_id) == ("run-1", "req-1")
        (problem,) = store.list_problems()
        assert (problem.attempts, problem.last_run_id) == (2, "run-2")
        assert store.delta_link("users") == OLD_LINK
        # what version 2 added works on the upgraded data
        with store.transaction() as tx:
            run = tx.start_run("sync")
            tx.hold_delta_link(run.id, "users", "v2-link")
        assert store.delta_link("users") == OLD_LINK
        with store.transaction() as tx:
            assert tx.commit_delta_links(run.id) == ("users",)
            tx.resolve_problems(run.id, [(U2, SKU)])
        assert store.delta_link("users") == "v2-link"
        assert store.list_problems() == []
        # version 3: the cached tenant view (kept when frozen at v3 or later, else empty) works
        assert store.load_tenant_cache() == ({"user": {U1: {"id": U1}}} if version >= 3 else {})
        # version 5: the store is not bound to a tenant yet
        assert store.bound_tenant() is None
        with store.transaction() as tx:
            tx.replace_tenant_cache([("user", U1, {"id": U1})])
        assert store.load_tenant_cache() == {"user": {U1: {"id": U1}}}
        # version 4: the intent journal starts empty and works
        assert store.pending_intents() == []
        after = Ownership(U1, SKU, (G1,), None)
        intent = Intent(run.id, U1, SKU, frozenset({PLAN}), None, after)
        with store.transaction() as tx:
            tx.record_intents([intent])
        assert store.pending_intents() == [intent]
        with store.transaction() as tx:
            tx.clear_intents(run.id, [U1])
        assert store.pending_intents() == []
    assert backend.raw("SELECT version FROM licsync_schema") == [(CURRENT_VERSION,)]


def test_a_version_2_database_keeps_its_pending_link_pending(backend, clock):
    load_frozen(backend, 2)
    with open_store(backend.url, clock=clock) as store:
        assert store.delta_link("groups") is None
        assert store.pending_delta_links("run-2") == {
            "groups": "https://graph.microsoft.com/v1.0/groups/delta?$deltatoken=v2"
        }


def test_read_only_opens_an_older_database_as_it_is(backend, clock):
    load_v1(backend)
    with open_store(backend.url, clock=clock, read_only=True) as store:
        assert store.schema_version == 1
        assert len(store.load_ledger()) == 2
        assert store.load_tenant_cache() == {}
        with pytest.raises(StateError, match="read-only"):
            store.acquire_lease("me", 60)
    assert backend.raw("SELECT version FROM licsync_schema") == [(1,)]


def test_without_migrate_an_older_database_is_refused_untouched(backend, clock):
    load_v1(backend)
    with pytest.raises(
        StateError, match=rf"schema version 1; this licsync needs {CURRENT_VERSION}"
    ):
        open_store(backend.url, clock=clock, migrate=False)
    assert backend.raw("SELECT version FROM licsync_schema") == [(1,)]


def test_a_failing_step_leaves_the_old_version(backend, clock, monkeypatch):
    load_v1(backend)
    broken = type(STEPS[2])(
        2, "broken", ["SELECT no_such_column FROM runs"], ["SELECT no_such_column FROM runs"]
    )
    monkeypatch.setitem(STEPS, 2, broken)
    with pytest.raises(Exception, match="no_such_column"):
        open_store(backend.url, clock=clock)
    assert backend.raw("SELECT version FROM licsync_schema") == [(1,)]


def test_a_version_5_database_speaks_the_outcome_vocabulary(backend, clock):
    """v6: a change `succeeded` is `applied`, a refusal (`problem`, `fatal`…) `failed`, a write
    never sent stays `skipped`; a run `aborted` is `stopped`. A read-only open (not upgraded) of
    the old database reads the same values."""
    load_frozen(backend, 5)
    for outcome in ("problem", "skipped"):
        backend.raw(
            "INSERT INTO changes (run_id, user_id, sku_id, action, disabled_plans, outcome, at) "
            f"SELECT run_id, user_id, sku_id, 'remove', disabled_plans, '{outcome}', at "
            "FROM changes WHERE outcome = 'succeeded'"
        )
    expected = [WriteOutcome.APPLIED, WriteOutcome.FAILED, WriteOutcome.SKIPPED]
    with open_store(backend.url, clock=clock, read_only=True) as store:
        assert store.schema_version == 5
        assert store.get_run("run-3").status is RunStatus.STOPPED
        assert [c.outcome for c in store.list_changes()] == expected
    with open_store(backend.url, clock=clock) as store:
        assert store.schema_version == CURRENT_VERSION
        assert store.get_run("run-3").status is RunStatus.STOPPED
        assert store.get_run("run-1").status is RunStatus.SUCCEEDED
        assert [c.outcome for c in store.list_changes()] == expected
    assert backend.raw("SELECT status FROM runs WHERE run_id = 'run-3'") == [("stopped",)]
    assert backend.raw("SELECT outcome FROM changes ORDER BY change_id") == [
        ("applied",),
        ("failed",),
        ("skipped",),
    ]


def test_a_version_6_database_gains_run_history(backend, clock):
    """v7: runs and changes of older versions read without exit code, phase, error or what a
    change replaced (an undo refuses them); read-only (not upgraded) they read the same, and
    after the upgrade a run ends with its history."""
    load_frozen(backend, 6)
    with open_store(backend.url, clock=clock, read_only=True) as store:
        assert store.schema_version == 6
        old = store.get_run("run-4")
        assert (old.status, old.exit_code, old.phase, old.error) == ("stopped", None, None, None)
        assert all(c.prior is None and c.http_status is None for c in store.list_changes())
        assert store.count_writes(["run-1"]) == {"run-1": (1, 0)}
    with open_store(backend.url, clock=clock) as store:
        assert store.schema_version == CURRENT_VERSION
        assert store.get_run("run-4") == old
        with store.transaction() as tx:
            tx.start_run("sync", "run-5")
            tx.set_run_phase("run-5", RunPhase.READ)
            tx.end_run("run-5", RunEnd(RunStatus.FAILED, None, 5, "Graph unreachable"))
        run = store.get_run("run-5")
        assert (run.exit_code, run.phase, run.error) == (5, "read", "Graph unreachable")
