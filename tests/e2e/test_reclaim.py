"""`licsync reclaim plan` over real HTTP against the emulator: inactive users from sign-ins
and from the usage report, exclusions, concealed names, refused permissions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from licsync.cli import main
from licsync.emulator.server import Emulator
from licsync.exitcodes import ExitCode
from tests.syncing import make_config

DAYS = 90


@pytest.fixture(scope="module")
def generated() -> Any:
    graph = Emulator(users=150, groups=10, seed=4).start()
    yield graph
    graph.stop()


def _day(text: str | None) -> date | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).date() if text else None


def expected(graph: Emulator) -> tuple[set[str], set[str]]:
    """(inactive users, new accounts) among the users holding a licence, from what Graph
    serves: no successful sign-in within DAYS days, account older than that."""
    cutoff = datetime.now(UTC).date() - timedelta(days=DAYS)
    users = httpx.get(
        f"{graph.url}/users",
        params={"$select": "id,assignedLicenses,createdDateTime,signInActivity", "$top": "999"},
    ).json()["value"]
    inactive, new = set(), set()
    for user in users:
        if not user["assignedLicenses"]:
            continue
        if _day(user["createdDateTime"]) > cutoff:
            new.add(user["id"])
            continue
        last = _day(user["signInActivity"]["lastSuccessfulSignInDateTime"])
        if last is None or last < cutoff:
            inactive.add(user["id"])
    return inactive, new


@pytest.mark.parametrize("source", ["signins", "usage"])
def test_reclaim_plan_lists_exactly_the_inactive_users(
    generated: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str
) -> None:
    config = make_config(tmp_path, generated, [])
    args = ["reclaim", "plan", "--config", str(config.path), "--inactive-days", str(DAYS)]
    assert main([*args, "--source", source, "--format", "json"]) == ExitCode.OK
    report = orjson.loads(capsys.readouterr().out)
    inactive, new = expected(generated)
    assert inactive and new  # the generated tenant has both
    assert {u["userId"] for u in report["users"]} == inactive
    assert {e["userId"] for e in report["excluded"]} == new
    assert all(e["reason"].startswith("new account") for e in report["excluded"])
    users = {u["id"]: u for u in generated.snapshot()["users"]}
    licences = {uid: {a["skuId"] for a in u["assignedLicenses"]} for uid, u in users.items()}
    for user in report["users"]:
        assert {s["skuId"] for s in user["skus"]} == licences[user["userId"]]
        for sku in user["skus"]:  # no rules and no ledger: Entra groups' and direct paths
            states = [
                s for s in users[user["userId"]]["licenseAssignmentStates"]
                if s["skuId"] == sku["skuId"]
            ]  # fmt: skip
            groups = sorted(s["assignedByGroup"] for s in states if s["assignedByGroup"])
            want = [{"kind": "entraGroup", "groupId": g} for g in groups]
            want += [{"kind": "direct"}] if any(not s["assignedByGroup"] for s in states) else []
            assert sku["paths"] == want
            assert len(sku["actions"]) == len(want)
    assert report["summary"]["users"] == len(inactive)
    assert report["summary"]["licences"] == sum(len(licences[u]) for u in inactive)


def test_reclaim_counts_the_monthly_saving_of_the_chosen_skus(
    generated: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "prices.csv").write_text(
        "sku,price,currency,per\nSPE_E3,36,EUR,month\nSPE_E5,684,EUR,year\n", encoding="utf-8"
    )
    config = make_config(tmp_path, generated, [])
    text = config.path.read_text(encoding="utf-8")
    config.path.write_text('[prices]\nfile = "prices.csv"\n\n' + text, encoding="utf-8")
    args = ["reclaim", "plan", "--config", str(config.path), "--inactive-days", str(DAYS)]
    assert main([*args, "--sku", "SPE_E3", "spe_e5", "--format", "json"]) == ExitCode.OK
    report = orjson.loads(capsys.readouterr().out)
    skus = [s["skuPartNumber"] for u in report["users"] for s in u["skus"]]
    assert skus and set(skus) <= {"SPE_E3", "SPE_E5"}
    assert report["summary"]["monthlySaving"] == pytest.approx(
        sum({"SPE_E3": 36, "SPE_E5": 57}[s] for s in skus)
    )
    assert report["summary"]["currency"] == "EUR"
    assert main([*args, "--sku", "NO_SUCH_SKU"]) == ExitCode.BAD_INPUT
    assert "no SKU NO_SUCH_SKU" in capsys.readouterr().err


def test_concealed_names_stop_the_usage_source_naming_the_setting(
    emulator_factory: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    graph = emulator_factory(users=40, groups=4, seed=1)
    patched = httpx.patch(f"{graph.url}/admin/reportSettings", json={"displayConcealedNames": True})
    assert patched.status_code == 204
    config = make_config(tmp_path, graph, [])
    args = ["reclaim", "plan", "--config", str(config.path), "--inactive-days", "30"]
    assert main([*args, "--source", "usage"]) == ExitCode.BAD_INPUT
    err = capsys.readouterr().err
    assert "displayConcealedNames" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("source", "permission"), [("signins", "AuditLog.Read.All"), ("usage", "Reports.Read.All")]
)
def test_a_refused_permission_is_named(
    emulator_factory: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    source: str,
    permission: str,
) -> None:
    graph = emulator_factory(users=30, groups=3, seed=1)
    graph.tenant.denied_permissions.add(permission)
    config = make_config(tmp_path, graph, [])
    args = ["reclaim", "plan", "--config", str(config.path), "--inactive-days", "30"]
    assert main([*args, "--source", source]) == ExitCode.GRAPH
    err = capsys.readouterr().err
    assert permission in err and "Traceback" not in err
