"""The command line: exit codes, report formats, and nothing written on bad input."""

from __future__ import annotations

import csv
import io
import json
import shlex
import subprocess
import sys

import orjson
import pytest

from licsync.cli import main
from licsync.config import load_config
from licsync.connector.planning import make_plan
from licsync.exitcodes import ExitCode
from licsync.reports.json_report import plan_document
from licsync.reports.names import Names
from licsync.snapshot import load_snapshot
from licsync.store import open_store
from tests.builders import TenantBuilder

RULES = """
[[group_licenses]]
group = "Sales"
licenses = [{ sku = "ENTERPRISEPACK", disabled_plans = ["SWAY"] }]
"""


@pytest.fixture
def files(tmp_path):
    b = TenantBuilder().sku("ENTERPRISEPACK", enabled=1).user("ann").user("ben")
    b.group("Sales", members=["ann", "ben"])
    snapshot = tmp_path / "tenant.json"
    snapshot.write_bytes(orjson.dumps(b.snapshot()))
    config = tmp_path / "licsync.toml"
    config.write_text(RULES)
    return snapshot, config, tmp_path


def test_plan_json_report_and_problem_exit_code(files):
    snapshot, config, tmp = files
    out = tmp / "plan.json"
    code = main(
        [
            "plan",
            "--snapshot",
            str(snapshot),
            "--config",
            str(config),
            "--format",
            "json",
            "--output",
            str(out),
        ]
    )
    report = json.loads(out.read_text())
    assert code == 10  # one of the two users gets no seat
    assert report["version"] == 1
    assert report["summary"]["usersWithChanges"] == 1
    assert [p["error"] for p in report["problems"]] == ["CountViolation"]
    tenant = load_snapshot(snapshot)
    plan = make_plan(tenant, load_config(config))
    assert report == plan_document(plan, Names(tenant))  # the streamed file is the document
    assert out.read_text().count("\n") > len(report["users"]) + len(report["skus"])


def test_plan_csv_report(files, capsys):
    snapshot, config, _ = files
    main(["plan", "--snapshot", str(snapshot), "--config", str(config), "--format", "csv"])
    out = capsys.readouterr().out
    assert out.startswith("\ufeffuserPrincipalName,userId,action")  # a BOM for Excel
    rows = list(csv.DictReader(io.StringIO(out.removeprefix("\ufeff"))))
    assert any(
        r["action"] == "add"
        and r["skuPartNumber"] == "ENTERPRISEPACK"
        and "SWAY" in r["disabledPlans"]
        for r in rows
    )


def test_bad_config_exits_3_and_writes_nothing(files, capsys):
    snapshot, config, tmp = files
    config.write_text(RULES.replace("ENTERPRISEPACK", "ENTERPRISEPAK"))
    out = tmp / "plan.json"
    code = main(
        ["plan", "--snapshot", str(snapshot), "--config", str(config), "--output", str(out)]
    )
    assert code == 3
    assert not out.exists()
    error = capsys.readouterr().err
    assert str(config) in error and "closest: ENTERPRISEPACK" in error


@pytest.mark.slow
def test_demo_runs_the_whole_job_through_the_emulator(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path.parent)
    workdir = tmp_path.name
    code = main(["demo", "--workdir", workdir, "--users", "80", "--groups", "10"])
    out = capsys.readouterr().out
    assert "Seats by product" in out  # the dry-run report
    assert (tmp_path / "report.html").read_bytes().startswith(b"<!DOCTYPE html>")
    with open_store(str(tmp_path / "state.db")) as store:
        remaining = len(store.list_problems())
    # exits as sync does: 10 while problems remain, and says how many
    assert remaining and code == ExitCode.PROBLEMS
    assert f"No changes left, but {remaining} problems remain" in " ".join(out.split())
    assert "Nothing left to do" not in out
    # every command it suggests works exactly as printed, from where the demo ran
    commands = [line.strip() for line in out.splitlines() if line.startswith("  licsync ")]
    assert len(commands) == 3
    for command in commands:
        argv = [sys.executable, "-m", "licsync", *shlex.split(command)[1:]]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        assert done.returncode == ExitCode.PROBLEMS, (command, done.stderr)
        assert "error" not in done.stderr, command
    assert (tmp_path / "plan-after.html").exists()
    before = load_snapshot(tmp_path / "tenant-before.json")
    after = load_snapshot(tmp_path / "tenant-after.json")
    with open_store(str(tmp_path / "state.db")) as store:
        runs = store.list_runs()
        ledger = store.load_ledger()
    assert len(runs) == 2 and ledger  # two syncs recorded; the ledger is where the state is
    changed = {u for u in after.users if after.users[u] != before.users[u]}
    assert changed and changed <= {user for user, _ in ledger}
    for (user, sku), _ in ledger.items():
        assert sku in after.users[user].held_skus()
    # the offline plan of the saved tenant agrees: nothing left to do
    assert make_plan(after, load_config(tmp_path / "licsync.toml"), ledger).changes == ()


@pytest.mark.slow
@pytest.mark.parametrize("command", [["--help"], ["sync", "--help"], ["plan", "--snapshot"]])
def test_help_and_offline_plans_do_not_load_the_graph_sdk(files, command):
    """Start-up: msgraph-sdk, kiota and azure-identity load only when a command talks to Graph."""
    if command[-1] == "--snapshot":
        snapshot, config, _ = files
        command = [*command, str(snapshot), "--config", str(config), "--format", "json"]
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "licsync", *command],
        capture_output=True,
        text=True,
    )
    assert out.returncode in (0, 10), out.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines()}
    assert "licsync.cli" in imported
    assert not {"msgraph", "msgraph_core", "kiota_http", "azure.identity"} & imported


def test_the_graph_package_names_load_on_first_use():
    import licsync.graph

    assert licsync.graph.WriteBudget.__name__ == "WriteBudget"
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        _ = licsync.graph.Nothing
