"""Licence spend over real HTTP against the emulator: cost in the reports, subscriptions and
renewals, `licsync seats`."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from licsync.cli import main
from licsync.commands.demo import demo_prices_csv
from licsync.emulator.generate import generate_rules
from licsync.emulator.server import Emulator
from licsync.exitcodes import ExitCode
from licsync.spend.prices import load_prices
from tests.builders import catalogue_sku_id as sku_id
from tests.builders import group_id, small_snapshot
from tests.syncing import config_text

PRICED = '[prices]\nfile = "prices.csv"\ngroup_by = "department"\n\n'


def write_config(
    tmp_path: Path, graph: Emulator, rules: list[dict[str, Any]], prices: bool
) -> Path:
    """A config for `graph`; with `prices`, the demo's example price file and `[prices]`."""
    path = tmp_path / "licsync.toml"
    text = config_text(graph, tmp_path / "state.db", rules)
    if prices:
        (tmp_path / "prices.csv").write_text(demo_prices_csv(graph.snapshot()), encoding="utf-8")
        text = PRICED + text
    path.write_text(text, encoding="utf-8")
    return path


def report(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code = main([*args, "--format", "json"])
    assert code in (ExitCode.OK, ExitCode.PROBLEMS), capsys.readouterr().err
    return orjson.loads(capsys.readouterr().out)


def monthly(tmp_path: Path) -> dict[str, Decimal]:
    """The price file's monthly prices by part number."""
    return dict(load_prices(tmp_path / "prices.csv").monthly)


def cents(amount: Decimal) -> float:
    return float(amount.quantize(Decimal("0.01")))


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Any:
    graph = Emulator(users=160, groups=16, seed=5).start()
    yield graph
    graph.stop()


def test_plan_reports_cost_equal_to_seats_times_prices(
    generated: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, generated, generate_rules(generated.snapshot(), 6, 5), True)
    plan = report(capsys, "plan", "--config", str(config))
    prices = monthly(tmp_path)
    before = after = Decimal(0)
    for sku in plan["skus"]:
        price = prices[sku["skuPartNumber"].upper()]
        assert sku["monthlyCostBefore"] == cents(sku["consumed"] * price)
        assert sku["monthlyCostAfter"] == cents(sku["consumedAfter"] * price)
        before += sku["consumed"] * price
        after += sku["consumedAfter"] * price
    assert plan["summary"]["cost"] == {
        "currency": "EUR",
        "monthlyBefore": cents(before),
        "monthlyAfter": cents(after),
    }
    assert after > before  # the rules hand out licences
    # every licence is some department's: the breakdown adds up to the total
    by_department = plan["costs"]["byAttribute"]
    assert {row["value"] for row in by_department} <= {
        u.get("department") or "(none)" for u in generated.snapshot()["users"]
    }
    assert sum(row["monthlyBefore"] for row in by_department) == pytest.approx(cents(before))
    assert sum(row["monthlyAfter"] for row in by_department) == pytest.approx(cents(after))
    # a rule's cost after the plan: its members who get each of its licences, times the price
    names = {s["skuId"]: s["skuPartNumber"] for s in plan["skus"]}
    for rule in plan["costs"]["byRule"]:
        expected = sum(
            (
                prices[names[state["skuId"]].upper()]
                for user in plan["users"]
                for state in user["licenseAssignmentStates"]
                if state["assignedByGroup"] == rule["groupId"]
                and state["source"] == "rule"
                and state["error"] is None
            ),
            Decimal(0),
        )
        assert rule["monthlyAfter"] == cents(expected)

    html = tmp_path / "plan.html"
    assert main(["plan", "--config", str(config), "--format", "html", "--output", str(html)]) in (
        ExitCode.OK,
        ExitCode.PROBLEMS,
    )
    page = html.read_text(encoding="utf-8")
    assert f"<b>{cents(before):,.2f}</b><small>EUR a month now" in page
    assert f"<b>{cents(after):,.2f}</b><small>EUR a month after" in page


def test_without_prices_nothing_changes(
    generated: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, generated, generate_rules(generated.snapshot(), 6, 5), False)
    read = generated.stats.count("GET /directory/subscriptions")
    plan = report(capsys, "plan", "--config", str(config))
    assert "cost" not in plan["summary"] and "costs" not in plan
    assert not {"monthlyCostBefore", "subscriptions"} & set(plan["skus"][0])
    assert generated.stats.count("GET /directory/subscriptions") == read


def expected_renewals(graph: Emulator, plan: dict[str, Any]) -> dict[str, tuple[int, str]]:
    """Per part number, (droppable seats, renewal date) computed from what Graph serves:
    paid Enabled subscriptions' seats minus the seats held after the plan and still wanted."""
    subscriptions = httpx.get(f"{graph.url}/directory/subscriptions").json()["value"]
    found: dict[str, tuple[int, str]] = {}
    for sku in plan["skus"]:
        paid = [
            s
            for s in subscriptions
            if s["skuId"] == sku["skuId"] and s["status"] == "Enabled" and not s["isTrial"]
        ]
        if paid:
            bought = sum(s["totalLicenses"] for s in paid)
            date = min(paid, key=lambda s: datetime.fromisoformat(s["nextLifecycleDateTime"]))
            needed = sku["consumedAfter"] + sku["short"]
            found[sku["skuPartNumber"]] = (max(bought - needed, 0), date["nextLifecycleDateTime"])
    return found


def test_seats_and_the_plan_report_droppable_seats_and_renewal_dates(
    generated: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, generated, generate_rules(generated.snapshot(), 6, 5), True)
    plan = report(capsys, "plan", "--config", str(config))
    expected = expected_renewals(generated, plan)
    assert any(drop for drop, _ in expected.values())  # the check is not vacuous
    for sku in plan["skus"]:
        part = sku["skuPartNumber"]
        got = (sku["droppableAtRenewal"], sku["nextRenewalDateTime"])
        assert got == expected.get(part, (None, None)), part
    seats = report(capsys, "seats", "--config", str(config))
    assert {
        s["skuPartNumber"]: (s["droppableAtRenewal"], s["nextRenewalDateTime"])
        for s in seats["skus"]
        if s["droppableAtRenewal"] is not None
    } == expected
    assert seats["summary"]["droppableAtRenewal"] == sum(d for d, _ in expected.values())
    trials = [sub for sku in seats["skus"] for sub in sku["subscriptions"] if sub["isTrial"]]
    assert len(trials) == 1  # the emulator's generated tenant has one trial
    assert seats["summary"]["cost"] == plan["summary"]["cost"]


def test_seats_warn_of_users_losing_a_licence_when_a_subscription_ends(
    emulator_factory: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshot = small_snapshot(users=12, seats={"SPE_E3": 12}, members={1: list(range(1, 13))})
    e3 = sku_id("SPE_E3")
    snapshot["subscriptions"] = [
        {"id": "11111111-0000-4000-8000-000000000001", "skuId": e3, "status": "Enabled",
         "isTrial": False, "totalLicenses": 8, "nextLifecycleDateTime": "2027-09-01T00:00:00Z"},
        {"id": "11111111-0000-4000-8000-000000000002", "skuId": e3, "status": "Warning",
         "isTrial": False, "totalLicenses": 4, "nextLifecycleDateTime": "2027-02-01T00:00:00Z"},
    ]  # fmt: skip
    graph = emulator_factory(snapshot)
    rules = [{"group": group_id(1), "licenses": [{"sku": "SPE_E3"}]}]
    config = write_config(tmp_path, graph, rules, False)
    seats = report(capsys, "seats", "--config", str(config))
    (e3_row,) = [s for s in seats["skus"] if s["skuPartNumber"] == "SPE_E3"]
    assert e3_row["needed"] == 12 and e3_row["droppableAtRenewal"] == 0
    assert e3_row["seatsAtRisk"] == [
        {
            "subscriptionId": "11111111-0000-4000-8000-000000000002",
            "status": "Warning",
            "isTrial": False,
            "users": 4,
            "dateTime": "2027-02-01T00:00:00Z",
        }
    ]
    assert seats["summary"]["usersLosingSeats"] == 4
    assert main(["seats", "--config", str(config), "--format", "table"]) == ExitCode.OK
    assert "4 users lose SPE_E3 on 2027-02-01" in capsys.readouterr().out
    for fmt in ("csv", "html"):
        out = tmp_path / f"seats.{fmt}"
        args = ["seats", "--config", str(config), "--format", fmt, "--output", str(out)]
        assert main(args) == ExitCode.OK
        assert "11111111-0000-4000-8000-000000000002" in out.read_text(encoding="utf-8-sig")


def test_the_demo_report_shows_the_cost_its_json_report_adds_up_to(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`licsync demo` writes example prices; its HTML dry-run report shows the monthly cost,
    which equals seats times prices summed from the JSON report of the same tenant."""
    monkeypatch.chdir(tmp_path)
    main(["demo", "--workdir", "demo", "--users", "80", "--groups", "10"])
    capsys.readouterr()
    demo = tmp_path / "demo"
    plan = report(
        capsys,
        "plan",
        "--config",
        str(demo / "licsync.toml"),
        "--snapshot",
        str(demo / "tenant-before.json"),
    )
    prices = monthly(demo)
    before = sum(
        (s["consumed"] * prices[s["skuPartNumber"].upper()] for s in plan["skus"]), Decimal(0)
    )
    after = sum(
        (s["consumedAfter"] * prices[s["skuPartNumber"].upper()] for s in plan["skus"]), Decimal(0)
    )
    assert plan["summary"]["cost"]["monthlyBefore"] == cents(before)
    assert plan["summary"]["cost"]["monthlyAfter"] == cents(after)
    page = (demo / "report.html").read_text(encoding="utf-8")
    cards = dict(re.findall(r"<b>([\d,.]+)</b><small>(EUR a month \w+)</small>", page)[::-1])
    assert cards == {f"{cents(before):,.2f}": "EUR a month now"} | {
        f"{cents(after):,.2f}": "EUR a month after"
    }
