"""Target entra end to end against the emulator over real HTTP: remove covered direct
assignments, verify by re-reading, waves, a wave that breaks verification, and rollback."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import orjson

from licsync.cli import main
from licsync.config import Config
from licsync.emulator.server import Emulator
from licsync.graph import WriteBudget
from licsync.migrate import MigrateAction, Target
from licsync.migrate.restore import run_rollback
from licsync.reader import read_tenant
from licsync.store import open_store
from licsync.sync import graph_client
from tests.e2e.conftest import direct_licences, user_id
from tests.migrate.conftest import (
    E3,
    apply,
    cli_apply,
    consumed,
    effective,
    license_group,
    make_config,
    sku_id,
)


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
    assert effective(entra) == before  # every user's enabled plans, re-read from the emulator
    assert consumed(entra) == seats
    assert [r.kind for r in _store_runs(config)] == ["migrate"]

    rollback = asyncio.run(
        run_rollback(config, tmp_path / "rollback.json", budget=WriteBudget(100_000))
    )
    assert int(rollback.exit_code) == 0, rollback.problems
    assert direct_licences(entra) == directs
    assert effective(entra) == before and consumed(entra) == seats


def test_waves_limit_and_users_file(entra: Emulator, config: Config, tmp_path: Path) -> None:
    directs = direct_licences(entra)
    first = apply(config, Target.ENTRA, tmp_path, limit=1)
    removed = {
        d.user_id for d in first.decisions if first.outcomes.get((d.user_id, d.sku_id)) == "removed"
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
    assert report["entries"][0]["outcome"] == "removed"
    after = direct_licences(entra)
    assert sku_id(E3) not in after[user_id(2)]
    assert after[user_id(3)] == directs[user_id(3)]
    rb = json.loads((tmp_path / "rb2.json").read_text())
    assert [(e["userId"], e["status"]) for e in rb["entries"]] == [(user_id(2), "applied")]
    assert rb["entries"][0]["disabledPlans"] == sorted(directs[user_id(2)][sku_id(E3)])


def test_a_wave_that_loses_a_plan_stops_the_run(
    entra: Emulator, config: Config, tmp_path: Path
) -> None:
    async def read():
        async with graph_client(config) as client:
            return await read_tenant(client, config, progress=False)

    stale = asyncio.run(read())
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
        assert store.list_runs()[0].status == "aborted"
    finally:
        store.close()
    rb = json.loads((tmp_path / "rollback.json").read_text())
    assert sorted(e["status"] for e in rb["entries"]) == ["applied", "not-applied"]

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


def test_guardrail_stops_before_any_write(entra: Emulator, tmp_path: Path) -> None:
    config = make_config(tmp_path, entra, [], guardrail=(1, 100.0))
    directs = direct_licences(entra)
    code = cli_apply(config, "entra", tmp_path / "rb.json", "--format", "json")
    assert code == 6
    assert direct_licences(entra) == directs
    assert not (tmp_path / "rb.json").exists()
    assert _store_runs(config) == []


def test_unknown_user_in_apply_writes_nothing(
    entra: Emulator, config: Config, tmp_path: Path, capsys
) -> None:
    users = tmp_path / "wave.txt"
    users.write_text(f"{user_id(1)}\nghost@contoso.com\n", encoding="utf-8")
    entra.stats.reset()
    code = cli_apply(config, "entra", tmp_path / "rb.json", "--users", str(users))
    assert code == 3
    assert "wave.txt:2: no user 'ghost@contoso.com' in the tenant" in capsys.readouterr().err
    assert entra.stats.writes == 0 and _store_runs(config) == []
    assert not (tmp_path / "rb.json").exists()
