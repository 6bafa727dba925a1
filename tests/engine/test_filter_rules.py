"""Attribute rules in the engine and the config: one more kind of source (union of plans, all or
nothing per rule, seats), `group` AND `filter`, explanations clause by clause, config errors with
file, line and column, and the what-if of a rule change."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from licsync.cli import main
from licsync.config import parse_config, resolve_rules
from licsync.connector.planning import make_plan
from licsync.engine.whatif import Change, compare_grants, rule_grants
from licsync.exitcodes import ExitCode
from licsync.model import LicenseError
from licsync.reports.explain import explain, find_user
from licsync.reports.names import Names
from tests.builders import TenantBuilder, object_id

E3, BI = "ENTERPRISEPACK", "POWER_BI_PRO"


def builder() -> TenantBuilder:
    b = TenantBuilder().sku(E3, enabled=3).sku(BI, enabled=10)
    b.user("ann", department="Sales", country="FR")
    b.user("ben", department="Sales", country="DE", employeeType="Contractor")
    b.user("cat", department="sales", country="US")
    b.user("dan", department="Finance", country="FR")
    b.user("eve", location=None, department="Sales", country="FR")
    b.group("Staff", members=["ann", "ben", "dan"])
    return b


RULES = """
[[group_licenses]]
name = "Sales FR"
filter = 'user.department -eq "Sales" -and user.country -in ["FR","DE"]'
licenses = [{ sku = "ENTERPRISEPACK", disabled_plans = ["SWAY", "YAMMER_ENTERPRISE"] },
            { sku = "POWER_BI_PRO" }]

[[group_licenses]]
group = "Staff"
filter = 'user.employeeType -ne "Contractor"'
licenses = [{ sku = "ENTERPRISEPACK", disabled_plans = ["SWAY"] }]
"""


def plan_for(tmp_path: Path, rules: str = RULES):
    path = tmp_path / "licsync.toml"
    path.write_text(rules, encoding="utf-8")
    config = parse_config(rules, path)
    tenant = builder().tenant(config.filter_properties())
    return config, tenant, make_plan(tenant, config)


def test_filter_rules_are_sources_like_groups(tmp_path: Path) -> None:
    _, tenant, plan = plan_for(tmp_path)
    names = Names(tenant)
    after = {
        u.user_principal_name.split("@")[0]: {
            names.part_number(a.sku_id): names.plan_list(a.disabled_plans)
            for a in u.assigned_licenses
        }
        for u in plan.users
    }
    assert after == {
        "ann": {E3: ["SWAY"], BI: []},  # union over the filter rule and Staff's rule
        "ben": {E3: ["SWAY", "YAMMER_ENTERPRISE"], BI: []},  # a contractor: Staff's rule skips
        "dan": {E3: ["SWAY"]},  # Finance: only Staff's rule
        "eve": {},  # cat (US) is selected by no rule and not planned at all
    }
    # eve has no usage location: the whole rule fails for her (all or nothing per rule)
    eve = {(names.part_number(p.sku_id), p.group_id, p.error) for p in plan.problems}
    assert eve == {
        (E3, "rule:Sales FR", LicenseError.PROHIBITED_IN_USAGE_LOCATION_VIOLATION),
        (BI, "rule:Sales FR", LicenseError.OTHER),
    }


def test_explain_says_which_clauses_matched(tmp_path: Path) -> None:
    config, tenant, plan = plan_for(tmp_path)
    names = Names(tenant)
    doc = explain(
        plan, names, find_user(names, "ann@contoso.example"), rules=resolve_rules(tenant, config)
    )
    (e3,) = [s for s in doc["skus"] if s["skuPartNumber"] == E3]
    by_name = {s["name"]: s for s in e3["sources"]}
    sales = by_name['rule "Sales FR"']["filter"]
    assert sales["matched"] is True
    assert [(c["clause"], c["matched"], c["value"]) for c in sales["clauses"]] == [
        ('user.department -eq "Sales"', True, "Sales"),
        ('user.country -in ["FR","DE"]', True, "FR"),
    ]
    staff = by_name["rule: Staff"]["filter"]
    assert staff["clauses"][0]["value"] is None and staff["matched"] is True


@pytest.mark.parametrize(
    ("rule", "line", "words"),
    [
        (
            "filter = 'user.officeLocation -eq \"x\"'",
            4,
            "column 1: unknown property user.officeLocation",
        ),
        ("filter = 'user.department -eq \"Sales'", 4, "column 21: unbalanced quote"),
        ("filter = 'user.department -eq [\"a\"]'", 4, "column 17: -eq compares one value"),
        ('filter = "user.department -eq true"', 4, "is a string"),
    ],
)
def test_a_bad_filter_exits_3_naming_file_line_and_column(
    tmp_path: Path, rule: str, line: int, words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshot = tmp_path / "tenant.json"
    snapshot.write_bytes(orjson.dumps(builder().snapshot()))
    config = tmp_path / "licsync.toml"
    config.write_text(
        f'[[group_licenses]]\nname = "X"\n# a rule by attribute\n{rule}\n'
        'licenses = [{ sku = "ENTERPRISEPACK" }]\n',
        encoding="utf-8",
    )
    code = main(["plan", "--snapshot", str(snapshot), "--config", str(config)])
    err = capsys.readouterr().err
    assert code == ExitCode.BAD_INPUT
    assert f"{config}:{line}: group_licenses[0].filter: " in err and words in err
    assert "Traceback" not in err


def test_a_rule_needs_a_group_or_a_filter_and_a_name(tmp_path: Path, capsys) -> None:
    config = tmp_path / "licsync.toml"
    config.write_text(
        '[[group_licenses]]\nlicenses = [{ sku = "ENTERPRISEPACK" }]\n\n'
        "[[group_licenses]]\nfilter = 'user.department -eq \"Sales\"'\n"
        'licenses = [{ sku = "ENTERPRISEPACK" }]\n',
        encoding="utf-8",
    )
    assert main(["plan", "--snapshot", str(tmp_path / "none.json"), "--config", str(config)]) == 3
    err = capsys.readouterr().err
    assert "a rule needs a group, a filter, or both" in err and "needs a name" in err


def test_what_if_lists_losses_gains_and_plan_changes(tmp_path: Path) -> None:
    old_config, tenant, _ = plan_for(tmp_path)
    new_rules = RULES.replace('"SWAY", "YAMMER_ENTERPRISE"', '"SWAY"').replace(
        '["FR","DE"]', '["FR"]'
    )
    new_config = parse_config(new_rules, tmp_path / "new.toml")
    old = rule_grants(tenant, resolve_rules(tenant, old_config), old_config.policy())
    new = rule_grants(tenant, resolve_rules(tenant, new_config), new_config.policy())
    changes = {(c.user_id, c.sku_id): c.change for c in compare_grants(old, new)}
    b = builder()
    assert changes == {
        (object_id("ben"), b.sku_id(E3)): Change.LOSE,  # DE leaves the rule, no other source
        (object_id("ben"), b.sku_id(BI)): Change.LOSE,
        (object_id("eve"), b.sku_id(E3)): Change.PLANS,  # only the filter rule grants her E3
    }


def test_plan_compare_reports_in_json_and_exits_10_on_a_loss(tmp_path: Path) -> None:
    snapshot = tmp_path / "tenant.json"
    snapshot.write_bytes(orjson.dumps(builder().snapshot()))
    old, new = tmp_path / "old.toml", tmp_path / "new.toml"
    old.write_text(RULES, encoding="utf-8")
    new.write_text(RULES.replace('["FR","DE"]', '["FR"]'), encoding="utf-8")
    out = tmp_path / "whatif.json"
    args = ["plan", "--snapshot", str(snapshot), "--config", str(new), "--compare", str(old)]
    assert main([*args, "--format", "json", "--output", str(out)]) == ExitCode.PROBLEMS
    doc = json.loads(out.read_text(encoding="utf-8"))
    found = [(c["userPrincipalName"], c["skuPartNumber"], c["change"]) for c in doc["changes"]]
    assert sorted(found) == [
        ("ben@contoso.example", E3, "lose"),
        ("ben@contoso.example", BI, "lose"),
    ]
    assert doc["changes"][0]["rules"] == ['rule "Sales FR"']
    assert doc["summary"]["losses"] == 2 and doc["summary"]["usersLosing"] == 1
    assert (
        main([*args.copy()[:-2], "--compare", str(new), "--format", "json", "--output", str(out)])
        == 0
    )


def test_explain_table_prints_each_clause_and_its_value(tmp_path: Path, capsys) -> None:
    snapshot = tmp_path / "tenant.json"
    snapshot.write_bytes(orjson.dumps(builder().snapshot()))
    config = tmp_path / "licsync.toml"
    config.write_text(RULES, encoding="utf-8")
    out = tmp_path / "explain.txt"
    args = ["explain", "ben@contoso.example", "--snapshot", str(snapshot), "--config", str(config)]
    assert main([*args, "--output", str(out)]) == ExitCode.OK
    text = " ".join(out.read_text(encoding="utf-8").split())
    assert "because" in text and "(country = 'DE'): yes" in text


def test_the_what_if_comes_in_every_format(tmp_path: Path, capsys) -> None:
    import csv
    import io

    snapshot = tmp_path / "tenant.json"
    snapshot.write_bytes(orjson.dumps(builder().snapshot()))
    old, new = tmp_path / "old.toml", tmp_path / "new.toml"
    old.write_text(RULES, encoding="utf-8")
    new.write_text(RULES.replace('["FR","DE"]', '["FR"]'), encoding="utf-8")
    base = ["plan", "--snapshot", str(snapshot), "--config", str(new), "--compare", str(old)]
    for fmt in ("csv", "xlsx", "html", "table"):
        out = tmp_path / f"whatif.{fmt}"
        assert main([*base, "--format", fmt, "--output", str(out)]) == ExitCode.PROBLEMS
        data = out.read_bytes()
        if fmt == "csv":
            rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
            assert rows[0][:5] == [
                "userId",
                "userPrincipalName",
                "skuId",
                "skuPartNumber",
                "change",
            ]
            assert [r[4] for r in rows[1:]] == ["lose", "lose"]
        elif fmt == "xlsx":
            assert data[:2] == b"PK"
        elif fmt == "html":
            assert b'data-key="losses"><b>2</b>' in data
        else:
            assert "2 licences lost (1 users)" in data.decode("utf-8")


def test_with_prices_the_what_if_says_what_the_seat_difference_costs(tmp_path: Path) -> None:
    snapshot = tmp_path / "tenant.json"
    snapshot.write_bytes(orjson.dumps(builder().snapshot()))
    (tmp_path / "prices.csv").write_text(
        "sku,price,currency,per\nENTERPRISEPACK,240,EUR,year\nPOWER_BI_PRO,9.5,EUR,month\n",
        encoding="utf-8",
    )
    prices = '[prices]\nfile = "prices.csv"\n'
    old, new = tmp_path / "old.toml", tmp_path / "new.toml"
    old.write_text(prices + RULES, encoding="utf-8")
    new.write_text(prices + RULES.replace('["FR","DE"]', '["FR"]'), encoding="utf-8")
    out = tmp_path / "whatif.json"
    args = ["plan", "--snapshot", str(snapshot), "--config", str(new), "--compare", str(old)]
    assert main([*args, "--format", "json", "--output", str(out)]) == ExitCode.PROBLEMS
    summary = json.loads(out.read_text(encoding="utf-8"))["summary"]
    # ben loses E3 (240/year = 20/month) and Power BI (9.5/month)
    assert summary["cost"] == {"currency": "EUR", "monthlyDifference": -29.5}
    by_sku = {s["skuPartNumber"]: s["monthlyCostDifference"] for s in summary["seats"]}
    assert by_sku == {E3: -20.0, BI: -9.5}
