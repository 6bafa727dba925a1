"""Target entra end to end against the emulator over real HTTP: remove covered direct
assignments, verify by re-reading, waves, a wave that breaks verification, and rollback."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import orjson
import pytest

from licsync.cli import main
from licsync.config import Config
from licsync.connector.read_full import read_tenant
from licsync.emulator.server import Emulator
from licsync.migrate import MigrateAction, Target
from licsync.migrate.run import plan_migration
from licsync.model import Tenant
from licsync.outcomes import EntryOutcome, RunStatus, WriteOutcome
from licsync.runtime import graph_client
from licsync.store import open_store
from tests.builders import catalogue_plan_id as plan_id
from tests.builders import catalogue_sku_id as sku_id
from tests.builders import small_snapshot, user_id
from tests.migrate.helpers import (
    E3,
    apply,
    cli_apply,
    consumed,
    effective,
    license_group,
    reread,
    rollback,
)
from tests.syncing import direct_licences, make_config, sync


def _read(config: Config) -> Tenant:
    """The tenant as a dry run saw it (to apply a stale view)."""

    async def read() -> Tenant:
        async with graph_client(config) as client:
            return await read_tenant(client, config, progress=False)

    return asyncio.run(read())


def _store_runs(config: Config) -> list:
    store = open_store(str(config.path.parent / "state.db"))
    try:
        return store.list_runs()
    finally:
        store.close()


def test_apply_removes_covered_direct_assignments_without_losing_a_plan(
    entra: Emulator, config: Config, tmp_path: Path
) -> None:
    before, seats, directs = effective(entra), consumed(entra), direct_licences(entra)
    read_before = reread(config)
    result = apply(config, Target.ENTRA, tmp_path)

    actions = {(d.user_id, d.action) for d in result.decisions if d.sku_id == sku_id(E3)}
    assert (user_id(1), MigrateAction.REMOVE_DIRECT) in actions
    assert (user_id(2), MigrateAction.REMOVE_DIRECT) in actions  # SWAY off directly, on in group
    assert (user_id(3), MigrateAction.SKIP) in actions  # group 2 switches SWAY off
    assert (user_id(4), MigrateAction.SKIP) in actions  # in no group
    assert int(result.exit_code) == 0 and result.waves_done == 1
    after = direct_licences(entra)
    assert sku_id(E3) not in after[user_id(1)] and sku_id(E3) not in after[user_id(2)]
    assert after[user_id(3)] == directs[user_id(3)] and after[user_id(4)] == directs[user_id(4)]
    assert effective(entra) == before  # every user's enabled plans, in the emulator
    assert reread(config) == read_before  # and re-read through Graph
    assert consumed(entra) == seats
    assert [r.kind for r in _store_runs(config)] == ["migrate"]

    back = rollback(config, tmp_path / "rollback.json")
    assert int(back.exit_code) == 0, back.problems
    assert set(back.outcomes.values()) == {EntryOutcome(WriteOutcome.APPLIED)}
    assert direct_licences(entra) == directs
    assert effective(entra) == before and consumed(entra) == seats
    assert reread(config) == read_before

    entra.stats.reset()  # a second rollback finds everything back and writes nothing
    again = rollback(config, tmp_path / "rollback.json")
    assert int(again.exit_code) == 0, again.problems
    assert set(again.outcomes.values()) == {EntryOutcome(WriteOutcome.SKIPPED, "already restored")}
    assert entra.stats.writes == 0 and direct_licences(entra) == directs


def test_rollback_leaves_a_direct_assignment_changed_since(
    entra: Emulator, config: Config, tmp_path: Path
) -> None:
    apply(config, Target.ENTRA, tmp_path)
    sway = plan_id(E3, "SWAY")
    body = {"addLicenses": [{"skuId": sku_id(E3), "disabledPlans": [sway]}], "removeLicenses": []}
    entra.tenant.assign_user_license(user_id(1), body)  # an admin re-adds it, SWAY off
    back = rollback(config, tmp_path / "rollback.json")
    assert int(back.exit_code) == 10
    assert str(back.outcomes[(user_id(1), sku_id(E3))]).startswith(
        "failed: conflict: the user holds"
    )
    assert direct_licences(entra)[user_id(1)][sku_id(E3)] == frozenset({sway})
    assert back.outcomes[(user_id(2), sku_id(E3))] == EntryOutcome(WriteOutcome.APPLIED)


def test_an_existing_rollback_file_is_never_replaced(
    entra: Emulator, config: Config, tmp_path: Path, capsys
) -> None:
    old = tmp_path / "wave1.json"
    old.write_text("{}", encoding="utf-8")
    directs = direct_licences(entra)
    entra.stats.reset()
    assert cli_apply(config, "entra", old) == 3
    assert "wave1.json: a rollback file is there already" in capsys.readouterr().err
    assert old.read_text(encoding="utf-8") == "{}"
    assert entra.stats.writes == 0 and direct_licences(entra) == directs
    [run] = _store_runs(config)  # recorded, with its cause: it wrote nothing
    assert (run.status, run.exit_code) == ("failed", 3)
    assert run.error is not None and "rollback file is there already" in run.error


def test_graph_dry_run_creates_no_store(entra: Emulator, config: Config, tmp_path: Path) -> None:
    result = asyncio.run(plan_migration(config, Target.ENTRA))
    assert {d.action for d in result.decisions} == {MigrateAction.REMOVE_DIRECT, MigrateAction.SKIP}
    assert not (tmp_path / "state.db").exists()


def test_waves_limit_and_users_file(entra: Emulator, config: Config, tmp_path: Path) -> None:
    directs = direct_licences(entra)
    first = apply(config, Target.ENTRA, tmp_path, limit=1)
    removed = {
        d.user_id
        for d in first.decisions
        if first.outcomes.get((d.user_id, d.sku_id)) == EntryOutcome(WriteOutcome.APPLIED)
    }
    assert removed == {user_id(1)}  # user1@ sorts first
    assert "not in this wave (--limit 1)" in {d.reason for d in first.decisions}

    users = tmp_path / "wave2.txt"
    users.write_text("# second wave\nUSER2@contoso.com\n", encoding="utf-8")
    code = cli_apply(
        config,
        "entra",
        tmp_path / "rb2.json",
        "--users",
        str(users),
        "--format",
        "json",
        "--output",
        str(tmp_path / "r.json"),
    )
    assert code == 0
    report = orjson.loads((tmp_path / "r.json").read_bytes())
    assert {e["id"] for e in report["entries"]} == {user_id(2)}
    assert report["entries"][0]["action"] == "remove-direct"
    assert report["entries"][0]["outcome"] == "applied"
    after = direct_licences(entra)
    assert sku_id(E3) not in after[user_id(2)]
    assert after[user_id(3)] == directs[user_id(3)]
    rb = json.loads((tmp_path / "rb2.json").read_text())
    assert [(e["userId"], e["status"]) for e in rb["entries"]] == [(user_id(2), "applied")]
    assert rb["entries"][0]["disabledPlans"] == sorted(directs[user_id(2)][sku_id(E3)])


def test_a_wave_that_loses_a_plan_stops_the_run(
    entra: Emulator, config: Config, tmp_path: Path
) -> None:
    stale = _read(config)
    before, directs = effective(entra), direct_licences(entra)
    license_group(entra, 1, E3, ["SWAY"])  # an admin narrows the group after the dry run
    result = apply(config, Target.ENTRA, tmp_path, tenant=stale, wave_size=1)

    assert int(result.exit_code) == 10 and result.stopped
    assert result.waves_total == 2 and result.waves_done == 1
    assert any("lost SWAY" in p.message for p in result.problems)
    assert direct_licences(entra)[user_id(2)] == directs[user_id(2)]  # wave 2 never started
    store = open_store(str(tmp_path / "state.db"))
    try:
        assert any("lost SWAY" in p.message for p in store.list_problems())
        assert store.list_runs()[0].status is RunStatus.STOPPED
    finally:
        store.close()
    rb = json.loads((tmp_path / "rollback.json").read_text())
    assert sorted(e["status"] for e in rb["entries"]) == ["applied", "skipped"]
    # a file as licsync wrote it before the outcome vocabulary (`not-applied`) rolls back alike
    for e in rb["entries"]:
        e["status"] = "not-applied" if e["status"] == "skipped" else e["status"]
    (tmp_path / "rollback.json").write_text(json.dumps(rb))

    code = main(
        [
            "migrate",
            "rollback",
            str(tmp_path / "rollback.json"),
            "--config",
            str(config.path),
            "--format",
            "json",
            "--output",
            str(tmp_path / "rb.json"),
        ]
    )
    assert code == 0
    assert direct_licences(entra) == directs
    assert effective(entra)[user_id(1)] == before[user_id(1)]
    report = json.loads((tmp_path / "rb.json").read_text())
    outcomes = {e["id"]: e["outcome"] for e in report["entries"]}
    assert outcomes == {user_id(1): "applied", user_id(2): "skipped: status skipped"}


def test_guardrail_stops_before_any_write(entra: Emulator, tmp_path: Path) -> None:
    config = make_config(tmp_path, entra, [], guardrail=(1, 100.0))
    directs = direct_licences(entra)
    code = cli_apply(config, "entra", tmp_path / "rb.json", "--format", "json")
    assert code == 6
    assert direct_licences(entra) == directs
    assert not (tmp_path / "rb.json").exists()
    [run] = _store_runs(config)  # recorded stopped by the guardrail, with nothing written
    assert (run.status, run.exit_code) == ("stopped", 6)
    # the two removals, approved (the lease was released: this run takes it)
    assert cli_apply(config, "entra", tmp_path / "rb.json", "--allow-removals", "1") == 6
    assert cli_apply(config, "entra", tmp_path / "rb.json", "--allow-removals", "2") == 0
    assert sku_id(E3) not in direct_licences(entra)[user_id(1)]


def test_unknown_user_in_apply_writes_nothing(
    entra: Emulator, config: Config, tmp_path: Path, capsys
) -> None:
    users = tmp_path / "wave.txt"
    users.write_text(f"{user_id(1)}\nghost@contoso.com\n", encoding="utf-8")
    entra.stats.reset()
    code = cli_apply(config, "entra", tmp_path / "rb.json", "--users", str(users))
    assert code == 3
    assert 'wave.txt:2: no user "ghost@contoso.com" in the tenant' in capsys.readouterr().err
    assert entra.stats.writes == 0
    [run] = _store_runs(config)  # recorded failed (bad input), with nothing written
    assert (run.status, run.exit_code) == ("failed", 3)
    assert not (tmp_path / "rb.json").exists()


def test_a_wave_that_enters_an_error_state_stops_the_run(emulator_factory, tmp_path: Path) -> None:
    snap = small_snapshot(
        users=2,
        seats={E3: 10, "POWER_BI_PRO": 0},
        members={1: [1, 2]},
        direct={1: [(E3, [])], 2: [(E3, [])]},
    )
    graph = emulator_factory(snap)
    license_group(graph, 1, E3, [])
    config = make_config(tmp_path, graph, [])
    stale = _read(config)
    license_group(graph, 1, "POWER_BI_PRO", [])  # no seat: the members' new licence is in error
    directs = direct_licences(graph)
    result = apply(config, Target.ENTRA, tmp_path, tenant=stale, wave_size=1)

    assert int(result.exit_code) == 10 and result.stopped and result.waves_done == 1
    assert any("POWER_BI_PRO (group Group 1) is in state" in p.message for p in result.problems)
    assert direct_licences(graph)[user_id(2)] == directs[user_id(2)]  # wave 2 never started


def test_a_refused_write_is_failed_and_not_rolled_back(
    entra: Emulator, config: Config, tmp_path: Path
) -> None:
    stale = _read(config)
    remove = {"addLicenses": [], "removeLicenses": [sku_id(E3)]}
    entra.tenant.assign_user_license(user_id(1), remove)  # someone removes it meanwhile
    directs = direct_licences(entra)
    result = apply(config, Target.ENTRA, tmp_path, tenant=stale)

    assert int(result.exit_code) == 10
    assert str(result.outcomes[(user_id(1), sku_id(E3))]).startswith("failed: ")
    assert result.outcomes[(user_id(2), sku_id(E3))] == EntryOutcome(WriteOutcome.APPLIED)
    rb = json.loads((tmp_path / "rollback.json").read_text())
    assert {e["userId"]: e["status"] for e in rb["entries"]} == {
        user_id(1): "failed",
        user_id(2): "applied",
    }
    back = rollback(config, tmp_path / "rollback.json")
    assert str(back.outcomes[(user_id(1), sku_id(E3))]) == "skipped: status failed"
    assert direct_licences(entra) == directs  # user 1's is not re-added; user 2's is back


def test_an_error_mid_run_leaves_a_restorable_file_and_a_failed_run(
    entra: Emulator, config: Config, tmp_path: Path, monkeypatch
) -> None:
    from licsync.graph.errors import GraphError
    from licsync.migrate import run

    real, calls = run.read_users, []

    async def flaky(client, user_ids, *written):
        calls.append(user_ids)
        if len(calls) == 2:
            raise GraphError("GET /users/…: connection reset")
        return await real(client, user_ids, *written)

    monkeypatch.setattr(run, "read_users", flaky)
    directs = direct_licences(entra)
    with pytest.raises(GraphError):
        apply(config, Target.ENTRA, tmp_path, wave_size=1)
    rb = json.loads((tmp_path / "rollback.json").read_text())
    assert [e["status"] for e in rb["entries"]] == ["applied", "pending"]  # wave 2 wrote, unread
    runs = _store_runs(config)
    assert [(r.kind, r.status) for r in runs] == [("migrate", "failed")]
    monkeypatch.undo()
    back = rollback(config, tmp_path / "rollback.json")
    assert int(back.exit_code) == 0, back.problems
    assert direct_licences(entra) == directs


def test_the_next_incremental_sync_re_reads_migrated_users(
    entra: Emulator, config: Config, tmp_path: Path
) -> None:
    """Removing a direct assignment an Entra group also grants may leave assignedLicenses as
    it was, which users/delta does not report: the migration marks its users for re-reading."""
    assert sync(config).summary()["read"] == "full"
    apply(config, Target.ENTRA, tmp_path)
    after = sync(config)
    assert after.summary()["read"] == "incremental"
    assert after.tenant.users == _read(config).users
