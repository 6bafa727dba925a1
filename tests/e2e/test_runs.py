"""Run history over real HTTP: every run that fails is recorded with its status, exit code and
one line of cause (`licsync runs`), and `licsync runs show` lists exactly the writes Graph
received."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from licsync.cli import main
from licsync.emulator.server import Emulator
from licsync.exitcodes import ExitCode
from licsync.store import open_store
from tests.builders import group_id, small_snapshot, user_id
from tests.secure import graph_table, secure_emulator
from tests.syncing import make_config, sync

E3 = "SPE_E3"
RULES = [{"group": "Group 1", "licenses": [{"sku": E3, "disabled_plans": ["SWAY"]}]}]
WRONG_SECRET = "not-the-secret-Qx7~value"


def runs_json(config: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert main(["runs", "--config", str(config), "--format", "json"]) == 0
    rows: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return rows


def test_each_failure_is_a_run_with_its_status_exit_code_and_cause(
    emulator_factory: Any,
    tls_files: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    graph = secure_emulator(
        emulator_factory, tls_files, small_snapshot(users=6, members={1: [1, 2, 3, 4, 5, 6]})
    )
    config = tmp_path / "licsync.toml"
    table = graph_table(graph, tls_files)

    def sync_exit(**graph_overrides: Any) -> int:
        make_config(
            tmp_path, graph, RULES, graph={**table, **graph_overrides}, guardrail=(2, 100.0)
        )
        return main(["sync", "--config", str(config), "--format", "json"])

    monkeypatch.setenv("LICSYNC_GRAPH_CLIENT_SECRET", WRONG_SECRET)
    assert sync_exit() == ExitCode.GRAPH  # credentials refused
    monkeypatch.setenv("LICSYNC_GRAPH_CLIENT_SECRET", "emulator-test-secret-Zq8~")
    assert (
        sync_exit(url="https://127.0.0.1:9/v1.0", max_attempts=1) == ExitCode.GRAPH
    )  # nothing listens there
    assert sync_exit() == ExitCode.OK
    with graph.tenant.lock:
        for n in (1, 2, 3):
            graph.tenant.remove_member(group_id(1), user_id(n))
    assert sync_exit() == ExitCode.GUARDRAIL  # three removals, two allowed
    with open_store(str(tmp_path / "state.db")) as store:
        store.acquire_lease("sync-other@elsewhere:1", 600)
    assert sync_exit() == ExitCode.STATE

    rows = runs_json(config, capsys)
    lease, guardrail, first, unreachable, credentials = rows
    assert [r["status"] for r in rows] == ["failed", "stopped", "succeeded", "failed", "failed"]
    assert [r["exitCode"] for r in rows] == [4, 6, 0, 5, 5]
    assert [r["kind"] for r in rows] == ["sync"] * 5
    assert (first["writesSucceeded"], first["error"], first["phase"]) == (6, None, "record")
    assert "AADSTS7000215" in credentials["error"] and credentials["phase"] == "start"
    assert "127.0.0.1:9" in unreachable["error"]
    assert "guardrail" in guardrail["error"] and guardrail["phase"] == "plan"
    assert "sync-other@elsewhere:1" in lease["error"] and lease["phase"] == "start"
    for row in (lease, guardrail, unreachable, credentials):
        assert row["finishedAt"] and row["startedAt"] and row["id"]
        assert (row["writesSucceeded"], row["writesFailed"]) == (0, 0)
    assert WRONG_SECRET not in json.dumps(rows)


def test_runs_show_lists_exactly_the_writes_graph_received(
    emulator_factory: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 3,000-user first sync: an assignLicense per user (100 of them widen an administrator's
    own E3), and a usage location for the 50 users without one."""
    users = 3000
    snapshot = small_snapshot(
        users=users,
        seats={E3: users},
        members={1: list(range(1, users + 1))},
        direct={n: [(E3, ["YAMMER_ENTERPRISE"])] for n in range(1, 101)},
    )
    for user in snapshot["users"][-50:]:
        user["usageLocation"] = None
    graph: Emulator = emulator_factory(snapshot)
    config = make_config(tmp_path, graph, RULES)
    result = sync(config)
    assert result.exit_code == ExitCode.OK

    capsys.readouterr()
    code = main(["runs", "show", result.run_id, "--config", str(config.path), "--format", "json"])
    assert code == 0
    shown = json.loads(capsys.readouterr().out)
    writes = shown["writes"]
    received = graph.stats.applied
    assert len(writes) == len(received) == users + 50
    assert sorted(w["requestId"] for w in writes) == sorted(rid for _, rid in received)
    assert {w["outcome"] for w in writes} == {"applied"}
    status = {(w["write"], w["httpStatus"]) for w in writes}
    assert status == {("assignLicense", 200), ("usageLocation", 204)}
    plain = next(w for w in writes if w["userId"] == user_id(200) and w["write"] == "assignLicense")
    assert plain["userPrincipalName"] == "user200@contoso.com"
    [added] = plain["skusAdded"]
    assert added["skuPartNumber"] == E3 and len(added["disabledPlans"]) == 1  # SWAY
    run = shown["run"]
    assert (run["status"], run["exitCode"], run["writesSucceeded"]) == ("succeeded", 0, 3050)
    assert set(run["phaseSeconds"]) == {"start", "read", "plan", "write", "record"}
    assert run["durationSeconds"] >= sum(run["phaseSeconds"].values()) - 0.01

    for fmt, check in (("csv", b"userPrincipalName"), ("html", b"<table>")):
        out = tmp_path / f"run.{fmt}"
        args = ["runs", "show", result.run_id, "--config", str(config.path), "--format", fmt]
        assert main([*args, "--output", str(out)]) == 0
        assert check in out.read_bytes()


def test_runs_show_refuses_an_unknown_run(
    small: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config(tmp_path, small, RULES)
    sync(config)
    capsys.readouterr()
    assert main(["runs", "show", "no-such-run", "--config", str(config.path)]) == ExitCode.BAD_INPUT
    assert "no run 'no-such-run'" in capsys.readouterr().err
