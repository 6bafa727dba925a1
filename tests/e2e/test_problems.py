"""Problem records end to end: each error type of the rulebook is recorded by a sync against the
emulator, stays open while its cause does, and is resolved by the first sync after the fix.
(CountViolation and a write Graph refuses are in test_sync.py.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from licsync.cli import main
from licsync.emulator.server import Emulator
from licsync.exitcodes import ExitCode
from licsync.model import LicenseError
from licsync.reports.records import PROBLEM_COLUMNS, problem_rows
from licsync.store import open_store
from tests.builders import catalogue_sku_id as sku_id
from tests.builders import group_id, small_snapshot, user_id
from tests.syncing import direct_licences, make_config, sync

ANN = user_id(1)


def open_problems(tmp_path: Path) -> set[tuple[str, str, LicenseError]]:
    with open_store(str(tmp_path / "state.db")) as store:
        return {(p.user_id, p.sku_id, p.error) for p in store.list_problems()}


def remove_direct(graph: Emulator, part: str) -> None:
    graph.tenant.assign_user_license(ANN, {"addLicenses": [], "removeLicenses": [sku_id(part)]})


def add_direct(graph: Emulator, part: str) -> None:
    body = {"addLicenses": [{"skuId": sku_id(part), "disabledPlans": []}], "removeLicenses": []}
    graph.tenant.assign_user_license(ANN, body)


def no_location(graph: Emulator) -> None:
    with graph.tenant.lock:
        graph.tenant.users[ANN].usage_location = None


def located(graph: Emulator) -> None:
    graph.tenant.patch_user(ANN, {"usageLocation": "GB"})


CASES = {
    # rule: group 1 grants these; `break_` runs before the first sync, `fix` before the last.
    "usage location": dict(
        licences=["POWER_BI_PRO"],
        direct=[],
        break_=no_location,
        expected={("POWER_BI_PRO", LicenseError.PROHIBITED_IN_USAGE_LOCATION_VIOLATION)},
        fix=located,
    ),
    "mutually exclusive, and Other for the group's second licence": dict(
        licences=["DESKLESSPACK", "POWER_BI_PRO"],
        direct=["EXCHANGESTANDARD"],
        break_=None,
        expected={
            ("DESKLESSPACK", LicenseError.MUTUALLY_EXCLUSIVE_VIOLATION),
            ("POWER_BI_PRO", LicenseError.OTHER),
        },
        fix=lambda graph: remove_direct(graph, "EXCHANGESTANDARD"),
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_problem_is_recorded_and_resolved_by_the_fix(
    case: dict, emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    seats = {part: 10 for part in [*case["licences"], *case["direct"]]}
    graph = emulator_factory(
        small_snapshot(seats=seats, members={1: [1]}, direct={1: [(p, []) for p in case["direct"]]})
    )
    if case["break_"]:
        case["break_"](graph)
    rule = {"group": "Group 1", "licenses": [{"sku": p} for p in case["licences"]]}
    config = make_config(tmp_path, graph, [rule], usage_location="problem")
    expected = {(ANN, sku_id(part), error) for part, error in case["expected"]}

    first = sync(config)
    assert first.exit_code == ExitCode.PROBLEMS
    assert open_problems(tmp_path) == expected
    assert not set(direct_licences(graph)[ANN]) & {sku_id(p) for p in case["licences"]}

    assert sync(config).exit_code == ExitCode.PROBLEMS  # the cause is still there
    assert open_problems(tmp_path) == expected

    case["fix"](graph)
    fixed = sync(config)
    assert fixed.exit_code == ExitCode.OK and fixed.succeeded_users == (ANN,)
    assert open_problems(tmp_path) == set()
    assert set(direct_licences(graph)[ANN]) == {sku_id(p) for p in case["licences"]}


def test_a_removal_that_breaks_a_prerequisite_waits_for_the_fix(
    emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    """licsync gave E3; an admin adds Audio Conferencing, which needs E3's Teams plan; the user
    leaves the group: E3 stays (DependencyViolation) until the add-on goes."""
    graph = emulator_factory(
        small_snapshot(seats={"SPE_E3": 10, "MCOMEETADV": 10}, members={1: [1, 2]})
    )
    config = make_config(tmp_path, graph, [{"group": "Group 1", "licenses": [{"sku": "SPE_E3"}]}])
    e3 = sku_id("SPE_E3")
    assert sync(config).exit_code == ExitCode.OK
    add_direct(graph, "MCOMEETADV")
    graph.tenant.remove_member(group_id(1), ANN)

    blocked = sync(config)
    assert blocked.exit_code == ExitCode.PROBLEMS
    assert open_problems(tmp_path) == {(ANN, e3, LicenseError.DEPENDENCY_VIOLATION)}
    assert e3 in direct_licences(graph)[ANN]

    remove_direct(graph, "MCOMEETADV")
    fixed = sync(config)
    assert fixed.exit_code == ExitCode.OK
    assert open_problems(tmp_path) == set()
    assert direct_licences(graph)[ANN] == {} and e3 in direct_licences(graph)[user_id(2)]


def test_the_problems_and_runs_commands_show_what_the_store_remembers(
    emulator_factory: Callable[..., Emulator],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    graph = emulator_factory(small_snapshot(seats={"POWER_BI_PRO": 1}, members={1: [1, 2]}))
    config = make_config(
        tmp_path, graph, [{"group": "Group 1", "licenses": [{"sku": "POWER_BI_PRO"}]}]
    )
    path = str(config.path)
    # no store at that path: an error naming it, not "no problems" (and none is created)
    assert main(["problems", "--config", path, "--format", "json"]) == ExitCode.STATE
    assert str(tmp_path / "state.db") in capsys.readouterr().err
    assert not (tmp_path / "state.db").exists()

    sync(config)  # one seat for two users: user 2 gets a CountViolation
    capsys.readouterr()  # the sync's own log lines
    assert main(["problems", "--config", path, "--format", "json"]) == ExitCode.PROBLEMS
    (row,) = orjson.loads(capsys.readouterr().out)
    assert (row["userId"], row["skuPartNumber"], row["error"]) == (
        user_id(2),
        "POWER_BI_PRO",
        "CountViolation",
    )
    assert row["attempts"] == 1 and row["resolvedAt"] is None and "no seats left" in row["message"]

    with graph.tenant.lock:
        graph.tenant.skus[sku_id("POWER_BI_PRO")].enabled = 2
    sync(config)
    capsys.readouterr()
    assert main(["problems", "--config", path, "--format", "csv"]) == ExitCode.OK
    assert capsys.readouterr().out.splitlines() == ["\ufeff" + ",".join(PROBLEM_COLUMNS)]
    assert main(["problems", "--config", path, "--all", "--format", "json"]) == ExitCode.OK
    (row,) = orjson.loads(capsys.readouterr().out)
    assert row["userId"] == user_id(2) and row["resolvedAt"] is not None

    assert main(["runs", "--config", path, "--format", "json"]) == ExitCode.OK
    runs = orjson.loads(capsys.readouterr().out)
    assert [(r["kind"], r["status"], r["writesSucceeded"]) for r in runs] == [
        ("sync", "succeeded", 1),
        ("sync", "succeeded", 1),
    ]
    assert main(["runs", "--config", path, "--limit", "1"]) == ExitCode.OK
    assert "succeeded" in capsys.readouterr().out  # the table


def test_a_problem_closes_when_its_cause_goes_away_without_a_write(
    emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    """Open records are exactly the last sync's problems: a user refused a seat who leaves the
    group (no write for them) or whose rule is removed has no problem any more; an `Other`
    record names the partner that caused it."""
    graph = emulator_factory(
        small_snapshot(seats={"SPE_E3": 1, "POWER_BI_PRO": 10}, members={1: [1, 2, 3]})
    )
    rule = {"group": "Group 1", "licenses": [{"sku": "SPE_E3"}, {"sku": "POWER_BI_PRO"}]}
    config = make_config(tmp_path, graph, [rule])
    first = sync(config)
    assert first.exit_code == ExitCode.PROBLEMS
    assert open_problems(tmp_path) == {(p.user_id, p.sku_id, p.error) for p in first.problems}
    assert {(u, e) for u, _, e in open_problems(tmp_path)} == {
        (user_id(n), e) for n in (2, 3) for e in (LicenseError.COUNT_VIOLATION, LicenseError.OTHER)
    }
    with open_store(str(tmp_path / "state.db")) as store:
        rows = problem_rows(store.list_problems())
    assert {r["causedBy"] for r in rows if r["error"] == "Other"} == {"SPE_E3 CountViolation"}

    graph.tenant.remove_member(group_id(1), user_id(3))
    left = sync(config)
    assert {u for u, _, _ in open_problems(tmp_path)} == {user_id(2)}
    assert left.resolved == 2

    config = make_config(tmp_path, graph, [])
    sync(config, allow_removals=10)
    assert open_problems(tmp_path) == set()
