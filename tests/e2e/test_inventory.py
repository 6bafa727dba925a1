"""`licsync inventory` over real HTTP against the emulator: every licence with its paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from licsync.cli import main
from licsync.emulator.server import Emulator
from licsync.exitcodes import ExitCode
from tests.builders import catalogue_sku_id as sku_id
from tests.builders import group_id, small_snapshot, user_id
from tests.syncing import make_config, sync

E3, BI = sku_id("SPE_E3"), sku_id("POWER_BI_PRO")
RULES = [{"group": group_id(1), "licenses": [{"sku": "SPE_E3"}]}]


@pytest.fixture
def four_paths(emulator_factory: Any) -> Emulator:
    """user1: SPE_E3 by a licsync rule; user2: SPE_E3 direct; user3: POWER_BI_PRO by an Entra
    group; user4: SPE_E3 by the rule and direct (several), POWER_BI_PRO by the Entra group;
    user5: POWER_BI_PRO direct and by the Entra group (several)."""
    snapshot = small_snapshot(
        users=6,
        members={1: [1, 4], 2: [3, 4, 5]},
        direct={2: [("SPE_E3", [])], 4: [("SPE_E3", [])], 5: [("POWER_BI_PRO", [])]},
    )
    graph = emulator_factory(snapshot)
    body = {"addLicenses": [{"skuId": BI, "disabledPlans": []}], "removeLicenses": []}
    graph.tenant.assign_group_license(group_id(2), body)
    return graph


def test_inventory_lists_every_licence_with_the_paths_it_comes_by(
    four_paths: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config(tmp_path, four_paths, RULES)
    sync(config)  # the rule's licences: the ledger says licsync assigned them
    capsys.readouterr()
    assert main(["inventory", "--config", str(config.path), "--format", "json"]) == ExitCode.OK
    report = orjson.loads(capsys.readouterr().out)
    users = httpx.get(f"{four_paths.url}/users", params={"$select": "id,assignedLicenses"}).json()[
        "value"
    ]
    assert len(report["rows"]) == sum(len(u["assignedLicenses"]) for u in users)
    paths = {(r["userId"], r["skuId"]): r["paths"] for r in report["rows"]}
    rule = {"kind": "rule", "groupId": group_id(1)}
    entra = {"kind": "entraGroup", "groupId": group_id(2)}
    direct = {"kind": "direct"}
    assert paths == {
        (user_id(1), E3): [rule],
        (user_id2 := user_id(2), E3): [direct],
        (user_id(3), BI): [entra],
        (user_id(4), E3): [rule, direct],
        (user_id(4), BI): [entra],
        (user_id(5), BI): [entra, direct],
    }
    assert user_id2 and report["summary"]["severalPaths"] == 2
    row = report["rows"][0]
    assert set(row) == {
        "userId",
        "userPrincipalName",
        "skuId",
        "skuPartNumber",
        "paths",
        "disabledPlans",
        "accountEnabled",
        "lastSignIn",
        "monthlyCost",
    }
    for fmt in ("csv", "xlsx", "html"):
        out = tmp_path / f"inventory.{fmt}"
        args = ["inventory", "--config", str(config.path), "--format", fmt, "--output", str(out)]
        assert main(args) == ExitCode.OK
        assert out.stat().st_size > 0
    text = (tmp_path / "inventory.csv").read_text(encoding="utf-8-sig")
    assert "rule: Group 1;direct" not in text and "rule: Group 1; direct" in text


def test_last_sign_ins_come_from_graph_and_a_refusal_names_the_permission(
    emulator_factory: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    graph = emulator_factory(users=60, groups=6, seed=2)
    config = make_config(tmp_path, graph, [])
    args = ["inventory", "--config", str(config.path), "--format", "json"]
    assert main(args) == ExitCode.OK
    rows = orjson.loads(capsys.readouterr().out)["rows"]
    activity = {
        u["id"]: u["signInActivity"]["lastSuccessfulSignInDateTime"]
        for u in graph.snapshot()["users"]
    }
    assert rows and all(r["lastSignIn"] == activity[r["userId"]] for r in rows)
    assert any(r["lastSignIn"] for r in rows)

    graph.tenant.denied_permissions.add("AuditLog.Read.All")
    assert main(args) == ExitCode.OK
    captured = capsys.readouterr()
    assert {r["lastSignIn"] for r in orjson.loads(captured.out)["rows"]} == {None}
    assert "AuditLog.Read.All" in captured.err and "Traceback" not in captured.err
