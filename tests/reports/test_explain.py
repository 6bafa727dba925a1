"""`licsync explain` agrees with the plan for every user of a generated tenant."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from functools import reduce

import orjson
import pytest

from licsync.cli import main
from licsync.errors import InputError
from licsync.exitcodes import ExitCode
from licsync.reports.explain import explain, find_sku, find_user
from licsync.reports.forecast import seat_forecast
from tests.builders import small_snapshot
from tests.syncing import make_config


@pytest.mark.slow
def test_explain_agrees_with_the_plan_for_every_user(generated) -> None:
    plan, names = generated.plan, generated.names
    problems = Counter((p.user_id, p.sku_id) for p in plan.problems)
    new_seats: Counter[str] = Counter()
    freed: Counter[str] = Counter()
    for user_plan in plan.users:
        user = find_user(names, user_plan.user_principal_name.upper())
        doc = explain(plan, names, user)
        assert doc["userId"] == user_plan.user_id
        after = {a.sku_id: names.plan_list(a.disabled_plans) for a in user_plan.assigned_licenses}
        adds = {a.sku_id for a in user_plan.add_licenses}
        assert {e["skuId"] for e in doc["skus"]} >= set(after) | set(user.held_skus())
        for entry in doc["skus"]:
            sku = entry["skuId"]
            assert entry["after"] == after.get(sku)
            assert (entry["write"] in ("add", "update")) == (sku in adds)
            assert (entry["write"] == "remove") == (sku in user_plan.remove_licenses)
            assert len(entry["blockedBy"]) == problems[(user.id, sku)]
            states = [s for s in user_plan.states if s.sku_id == sku]
            assert len(entry["sources"]) == len(states)
            applying = [set(s["disabledPlans"]) for s in entry["sources"] if not s["error"]]
            if entry["after"] is not None and not entry["blockedBy"] and applying:
                # enabled plans are the union: a plan is off only if every source turns it off
                assert set(entry["after"]) == reduce(set.intersection, applying)
            new_seats[sku] += entry["seat"] == "gets a new seat"
            freed[sku] += entry["seat"] == "loses its seat (freed)"
    for f in seat_forecast(plan, generated.tenant):
        assert new_seats[f.sku_id] == f.granted and freed[f.sku_id] == f.freed, f.part_number


def test_explain_finds_users_and_skus_by_name_or_id(demo) -> None:
    names = demo.names
    user = next(iter(demo.tenant.users.values()))
    assert find_user(names, user.id.upper()) is user
    sku = next(iter(demo.tenant.skus.values()))
    assert find_sku(names, sku.part_number.lower()) == sku.id == find_sku(names, sku.id)
    with pytest.raises(InputError, match=r"no user 'nobody@example\.com'"):
        find_user(names, "nobody@example.com")
    with pytest.raises(InputError, match="no SKU 'NOPE'"):
        find_sku(names, "NOPE")


def _licsync(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "licsync", *args]
    return subprocess.run(command, capture_output=True, text=True, check=False)


@pytest.mark.slow
def test_explain_command_on_a_snapshot(demo) -> None:
    problem = demo.plan.problems[0]
    part = demo.names.part_number(problem.sku_id)
    common = ["--snapshot", str(demo.snapshot), "--config", str(demo.config)]
    done = _licsync(
        "explain", problem.user_principal_name, "--sku", part, "--format", "json", *common
    )
    assert done.returncode == 10, done.stderr
    doc = orjson.loads(done.stdout)
    assert [e["skuPartNumber"] for e in doc["skus"]] == [part]
    assert problem.error.value in {b["error"] for b in doc["skus"][0]["blockedBy"]}
    table = _licsync("explain", problem.user_id, *common)
    assert table.returncode == 10 and problem.message in " ".join(table.stdout.split())
    missing = _licsync("explain", "nobody@example.com", *common)
    assert missing.returncode == 3 and "no user 'nobody@example.com'" in missing.stderr


def test_explain_reads_graph_without_a_snapshot(emulator_factory, tmp_path, capsys) -> None:
    graph = emulator_factory(small_snapshot(seats={"SPE_E3": 1}, members={1: [1, 2]}))
    config = make_config(tmp_path, graph, [{"group": "Group 1", "licenses": [{"sku": "SPE_E3"}]}])
    args = ["explain", "user2@contoso.com", "--config", str(config.path), "--format", "json"]
    assert main(args) == ExitCode.PROBLEMS
    (entry,) = orjson.loads(capsys.readouterr().out)["skus"]
    assert entry["seat"] == "no new seat: blocked (below)"
    assert [b["error"] for b in entry["blockedBy"]] == ["CountViolation"]
    assert [s["name"] for s in entry["sources"]] == ["rule: Group 1"]
    assert main([*args[:1], "user1@contoso.com", *args[2:]]) == ExitCode.OK
    (entry,) = orjson.loads(capsys.readouterr().out)["skus"]
    assert (entry["seat"], entry["write"], entry["after"]) == ("gets a new seat", "add", [])
    table = [*args[:1], "user2@contoso.com", "--config", str(config.path), "--sku", "spe_e3"]
    assert main(table) == ExitCode.PROBLEMS
    text = " ".join(capsys.readouterr().out.split())
    assert "SPE_E3 (Microsoft 365 E3): no new seat: blocked (below)" in text
    assert "blocked by CountViolation (Group 1): no seats left in SPE_E3" in text
    assert graph.stats.writes == 0  # a dry run: nothing written
