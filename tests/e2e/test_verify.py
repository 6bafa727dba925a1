"""`licsync verify [--reprocess]` over real HTTP against the emulator: stale errors after seats
are bought, fixed by one reprocess run; a group change Entra has not processed yet, with the
exact difference; bad input and a missing permission."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from licsync.cli import main
from licsync.emulator.server import Emulator
from licsync.exitcodes import ExitCode
from licsync.outcomes import RunStatus
from licsync.store import ChangeAction, open_store
from tests.builders import catalogue_plan_id as plan_id
from tests.builders import catalogue_sku_id as sku_id
from tests.builders import group_id, small_snapshot, user_id
from tests.syncing import make_config

E3 = sku_id("SPE_E3")
YAMMER = plan_id("SPE_E3", "YAMMER_ENTERPRISE")


def entra_group(graph: Emulator, n: int, disabled: tuple[str, ...] = ()) -> None:
    """Let Entra license group `n` with SPE_E3 (as an admin would in the portal)."""
    body = {"addLicenses": [{"skuId": E3, "disabledPlans": list(disabled)}], "removeLicenses": []}
    graph.tenant.assign_group_license(group_id(n), body)


def buy(graph: Emulator, seats: int) -> None:
    with graph.tenant.lock:
        graph.tenant.skus[E3].enabled += seats


def verify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, dict[str, Any], str]:
    code = main(["verify", "--config", str(tmp_path / "licsync.toml"), "--format", "json", *args])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else {}, err


def statuses(doc: dict[str, Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for f in doc["findings"]:
        found.setdefault(f["status"], []).append(f["userId"])
    return found


@pytest.fixture
def short(emulator_factory: Any, tmp_path: Path) -> Emulator:
    """Ten users in group 1, which Entra licenses with SPE_E3; four seats: six CountViolations."""
    graph = emulator_factory(small_snapshot(seats={"SPE_E3": 4}, members={1: list(range(1, 11))}))
    entra_group(graph, 1)
    make_config(tmp_path, graph, [])
    return graph


def test_stale_errors_after_buying_seats_are_fixed_by_one_reprocess_run(
    short: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc, _ = verify(tmp_path, capsys)
    assert code == ExitCode.PROBLEMS
    assert doc["summary"]["error"] == 6 and doc["summary"]["ok"] == 4  # explained: no seats
    [error] = {json.dumps(f["error"]["code"]) for f in doc["findings"] if f["error"]}
    assert error == '"CountViolation"'
    buy(short, 6)
    code, doc, _ = verify(tmp_path, capsys)
    assert code == ExitCode.PROBLEMS
    stale = statuses(doc)["stale"]
    assert stale == [user_id(n) for n in range(5, 11)]  # exactly the six in error
    first = next(f for f in doc["findings"] if f["status"] == "stale")
    assert first["error"]["lastUpdatedDateTime"]  # Entra's time of the error
    assert first["expected"] == {"state": "Active", "error": None, "disabledPlans": []}
    assert doc["groups"] == [
        {
            "groupId": group_id(1),
            "displayName": "Group 1",
            "licenseProcessingState": "ProcessingComplete",
            "hasMembersWithLicenseErrors": True,
        }
    ]

    code, doc, _ = verify(tmp_path, capsys, "--reprocess")
    assert code == ExitCode.OK
    assert doc["reprocess"]["users"] == [
        {
            "userId": user_id(n),
            "outcome": "applied",
            "message": None,
            "requestId": doc["reprocess"]["users"][n - 5]["requestId"],
            "nowMatching": True,
        }
        for n in range(5, 11)
    ]
    assert short.stats.count("POST /users/") == 6  # only the stale users, in $batch
    with open_store(str(tmp_path / "state.db")) as store:
        [run] = store.list_runs()
        assert (run.kind, run.status) == ("reprocess", RunStatus.SUCCEEDED)
        assert run.summary and run.summary["now_matching"] == 6
        changes = store.list_changes(run_id=run.id)
        assert {c.user_id for c in changes} == set(stale)
        assert {c.action for c in changes} == {ChangeAction.REPROCESS}
    code, doc, _ = verify(tmp_path, capsys)
    assert code == ExitCode.OK and set(statuses(doc)) == {"ok"}


def test_reprocess_touches_only_stale_and_missing_users_and_keeps_to_the_limit(
    short: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    buy(short, 2)  # two of the six errors are no longer explained
    code, doc, _ = verify(tmp_path, capsys, "--reprocess", "--limit", "1")
    assert code == ExitCode.PROBLEMS
    assert [u["userId"] for u in doc["reprocess"]["users"]] == [user_id(5)]
    assert doc["reprocess"]["before"]["stale"] == 2
    assert doc["summary"]["stale"] == 1 and doc["summary"]["error"] == 4
    assert short.stats.count("POST /users/") == 1


def test_a_group_change_entra_has_not_processed_shows_the_exact_difference(
    emulator_factory: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    graph = emulator_factory(small_snapshot(seats={"SPE_E3": 10}, members={1: [1, 2, 3]}))
    entra_group(graph, 1)
    make_config(tmp_path, graph, [])
    clock = [0.0]
    graph.tenant.monotonic = lambda: clock[0]
    graph.tenant.processing_delay = 30.0
    entra_group(graph, 1, (YAMMER,))  # disabled plans changed on the group, not processed yet
    code, doc, _ = verify(tmp_path, capsys)
    assert code == ExitCode.PROBLEMS
    assert doc["groups"][0]["licenseProcessingState"] == "QueuedForProcessing"
    assert statuses(doc) == {"plansDiffer": [user_id(1), user_id(2), user_id(3)]}
    finding = doc["findings"][0]
    assert finding["entraState"]["disabledPlans"] == []
    assert finding["expected"]["disabledPlans"] == ["YAMMER_ENTERPRISE"]
    assert doc["summary"]["groupsProcessing"] == 1
    clock[0] = 30.0  # Entra finishes
    code, doc, _ = verify(tmp_path, capsys)
    assert code == ExitCode.OK
    assert doc["groups"][0]["licenseProcessingState"] == "ProcessingComplete"
    assert {tuple(f["entraState"]["disabledPlans"]) for f in doc["findings"]} == {
        ("YAMMER_ENTERPRISE",)
    }


def test_a_group_name_that_designates_no_licensed_group_is_exit_3_with_the_closest(
    short: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc, err = verify(tmp_path, capsys, "--group", "Grup 1")
    assert code == ExitCode.BAD_INPUT and doc == {}
    assert "--group 'Grup 1'" in err and "Group 1" in err
    assert "Traceback" not in err
    code, doc, _ = verify(tmp_path, capsys, "--group", "group 1")
    assert code == ExitCode.PROBLEMS and len(doc["findings"]) == 10


def test_a_403_on_reprocess_names_the_missing_permission(
    short: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    buy(short, 6)
    with short.tenant.lock:
        for user in short.tenant.users.values():
            user.management_restricted = True
    code, _, err = verify(tmp_path, capsys, "--reprocess")
    assert code == ExitCode.GRAPH
    [line] = [ln for ln in err.splitlines() if ln.startswith("licsync: error:")]
    assert "grant the app the User.ReadWrite.All application permission" in line
    assert "Traceback" not in err
    with open_store(str(tmp_path / "state.db")) as store:
        assert [r.status for r in store.list_runs()] == [RunStatus.FAILED]


def test_a_group_licence_removed_and_not_yet_processed_is_unexpected(
    short: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    short.tenant.processing_delay = 3600.0
    body = {"addLicenses": [], "removeLicenses": [E3]}
    short.tenant.assign_group_license(group_id(1), body)
    code, doc, _ = verify(tmp_path, capsys)
    assert code == ExitCode.PROBLEMS
    assert doc["groups"][0]["licenseProcessingState"] == "QueuedForProcessing"
    assert statuses(doc) == {  # the CountViolations are no longer explained: stale
        "unexpected": [user_id(n) for n in range(1, 5)],
        "stale": [user_id(n) for n in range(5, 11)],
    }
    assert {f["expected"] is None for f in doc["findings"]} == {True}


def test_members_entra_never_processed_are_missing_and_reprocess_licenses_them(
    emulator_factory: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshot = small_snapshot(seats={"SPE_E3": 10}, members={2: [3, 4]})
    snapshot["groups"][1]["assignedLicenses"] = [{"skuId": E3, "disabledPlans": [YAMMER]}]
    graph = emulator_factory(snapshot)  # a snapshot taken before Entra processed group 2
    make_config(tmp_path, graph, [])
    code, doc, _ = verify(tmp_path, capsys)
    assert code == ExitCode.PROBLEMS
    assert statuses(doc) == {"missing": [user_id(3), user_id(4)]}
    assert doc["findings"][0]["entraState"] is None
    code, doc, _ = verify(tmp_path, capsys, "--reprocess")
    assert code == ExitCode.OK
    assert [u["nowMatching"] for u in doc["reprocess"]["users"]] == [True, True]
    assert {tuple(f["entraState"]["disabledPlans"]) for f in doc["findings"]} == {
        ("YAMMER_ENTERPRISE",)
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_on_a_generated_tenant_the_engine_agrees_with_the_emulators_entra(
    emulator_factory: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], seed: int
) -> None:
    """Two independent implementations of Entra's rules (the emulator processed the generated
    groups; the engine recomputes them): every finding is ok or an error both explain."""
    graph = emulator_factory(users=2000, groups=120, seed=seed)
    make_config(tmp_path, graph, [])
    code, doc, _ = verify(tmp_path, capsys)
    assert doc["groups"] and doc["summary"]["ok"] > 0
    assert {f["status"] for f in doc["findings"]} <= {"ok", "error"}
    assert code == (ExitCode.PROBLEMS if doc["summary"]["error"] else ExitCode.OK)


@pytest.mark.parametrize("fmt", ["table", "csv", "xlsx", "html"])
def test_every_report_format_lists_the_findings(
    short: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    buy(short, 1)
    out = tmp_path / f"verify.{fmt}"
    config = str(tmp_path / "licsync.toml")
    code = main(["verify", "--config", config, "--format", fmt, "--output", str(out)])
    assert code == ExitCode.PROBLEMS
    data = out.read_bytes()
    if fmt == "xlsx":
        import zipfile

        with zipfile.ZipFile(out) as book:
            data = book.read("xl/sharedStrings.xml")
    text = data.decode("utf-8")
    assert "user5@contoso.com" in text and "stale" in text  # the one seat bought
    assert "user6@contoso.com" in text and "CountViolation" in text
    if fmt == "csv":
        rows = text.lstrip("\ufeff").splitlines()
        assert rows[0].startswith("userPrincipalName,userId,group,")
        assert len(rows) == 11  # a header and one row per finding
