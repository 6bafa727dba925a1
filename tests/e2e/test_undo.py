"""`licsync runs undo` over real HTTP: the undo of a first sync gives every user back exactly the
licences (with disabled plans) and the ledger they had; a user changed in between is reported and
left alone; the undo of the undo gives the synced state back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from licsync.cli import main
from licsync.exitcodes import ExitCode
from tests.builders import catalogue_sku_id as sku_id
from tests.builders import user_id
from tests.e2e.test_crash import E3, config_for, ledger, snapshot
from tests.syncing import direct_licences, sync

CHANGED = 45  # a member whose E3 an administrator removes between the sync and the undo


def undo(config: Path, run_id: str, capsys: pytest.CaptureFixture[str], *extra: str) -> Any:
    capsys.readouterr()
    code = main(["runs", "undo", run_id, "--config", str(config), "--format", "json", *extra])
    return code, json.loads(capsys.readouterr().out)


def latest_run(config: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["runs", "--config", str(config), "--format", "json"]) == 0
    rows: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return rows[0]


def test_undo_of_a_first_sync_and_undo_of_the_undo(
    emulator_factory: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    graph = emulator_factory(snapshot())
    config = config_for(graph, tmp_path / "a")
    before = direct_licences(graph)
    first = sync(config)
    synced, synced_ledger = direct_licences(graph), ledger(config)
    assert synced != before and synced_ledger
    writes = graph.stats.writes

    code, rows = undo(config.path, first.run_id, capsys, "--dry-run")
    assert code == ExitCode.OK and graph.stats.writes == writes  # a dry run writes nothing
    assert {r["outcome"] for r in rows} == {"would restore"} and len(rows) == 150

    with graph.tenant.lock:  # an administrator's change after the sync
        graph.tenant.assign_user_license(
            user_id(CHANGED), {"addLicenses": [], "removeLicenses": [sku_id(E3)]}
        )
    code, rows = undo(config.path, first.run_id, capsys)
    assert code == ExitCode.PROBLEMS  # one user left as it is
    outcomes = {r["userId"]: r["outcome"] for r in rows}
    assert outcomes.pop(user_id(CHANGED)) == "ChangedSinceRun"
    assert set(outcomes.values()) == {"restored"} and len(outcomes) == 149
    undone = direct_licences(graph)
    for uid, held in before.items():
        assert undone[uid] == ({} if uid == user_id(CHANGED) else held), uid
    assert ledger(config) == {k: e for k, e in synced_ledger.items() if k[0] == user_id(CHANGED)}
    undo_run = latest_run(config.path, capsys)
    assert (undo_run["kind"], undo_run["status"], undo_run["exitCode"]) == ("undo", "succeeded", 10)

    code, rows = undo(config.path, undo_run["id"], capsys)  # the undo of the undo
    assert code == ExitCode.OK and {r["outcome"] for r in rows} == {"restored"}
    redone = direct_licences(graph)
    for uid, held in synced.items():
        assert redone[uid] == ({} if uid == user_id(CHANGED) else held), uid
    assert ledger(config) == synced_ledger


def test_undo_refuses_an_unknown_run(
    emulator_factory: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    graph = emulator_factory(snapshot())
    config = config_for(graph, tmp_path / "a")
    sync(config)
    capsys.readouterr()
    code = main(["runs", "undo", "0123abcd", "--config", str(config.path)])
    assert code == ExitCode.BAD_INPUT
    assert "no run '0123abcd'" in capsys.readouterr().err
    assert latest_run(config.path, capsys)["kind"] == "sync"  # the refusal is no run
