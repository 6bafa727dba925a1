"""The tenant generator: deterministic, realistic and internally consistent."""

from __future__ import annotations

from collections import Counter

import pytest

from licsync.catalogue import default_catalogue
from licsync.emulator import state as emulator_state
from licsync.emulator.generate import generate_rules, generate_tenant
from licsync.emulator.rules import default_rules
from licsync.emulator.server import Emulator


@pytest.fixture(scope="module")
def snapshot() -> dict:
    return generate_tenant(3000, 120, seed=5)


def test_deterministic_per_seed(snapshot, monkeypatch):
    monkeypatch.setattr(emulator_state, "now_iso", lambda: "2030-06-01T12:00:00Z")
    assert generate_tenant(3000, 120, seed=5) == snapshot
    assert generate_tenant(3000, 120, seed=6)["users"][0]["id"] != snapshot["users"][0]["id"]


def test_uses_the_real_catalogue(snapshot):
    catalogue = default_catalogue()
    for sku in snapshot["subscribedSkus"]:
        real = catalogue.skus[sku["skuId"]]
        assert real.part_number == sku["skuPartNumber"]
        assert {p["servicePlanId"] for p in sku["servicePlans"]} == {p.id for p in real.plans}


def test_realistic_mix(snapshot):
    users, groups, skus = snapshot["users"], snapshot["groups"], snapshot["subscribedSkus"]
    assert any(u["userType"] == "Guest" for u in users)
    assert any(not u["accountEnabled"] for u in users)
    assert any(u["usageLocation"] is None for u in users)
    assert any(u["assignedLicenses"] for u in users)
    assert {g["securityEnabled"] for g in groups} == {True, False}
    assert any(m["@odata.type"] == "#microsoft.graph.group" for g in groups for m in g["members"])
    assert any(g["assignedLicenses"] for g in groups)
    assert {s["appliesTo"] for s in skus} == {"User", "Company"}
    assert any(
        s["appliesTo"] == "User"
        and s["prepaidUnits"]["enabled"] - s["consumedUnits"] <= 2
        and s["consumedUnits"] > 0
        for s in skus
    )
    assert any(s["prepaidUnits"]["enabled"] >= 1_000_000 for s in skus)  # self-service SKU


def test_consistent_seats_and_sources(snapshot):
    held = Counter(a["skuId"] for u in snapshot["users"] for a in u["assignedLicenses"])
    for sku in snapshot["subscribedSkus"]:
        assert sku["consumedUnits"] == held[sku["skuId"]]
        assert sku["consumedUnits"] <= sku["prepaidUnits"]["enabled"]
    licensed = {g["id"]: g for g in snapshot["groups"] if g["assignedLicenses"]}
    members = {gid: {m["id"] for m in g["members"]} for gid, g in licensed.items()}
    by_group = 0
    for user in snapshot["users"]:
        active = [s for s in user["licenseAssignmentStates"] if s["state"] == "Active"]
        assert {a["skuId"] for a in user["assignedLicenses"]} == {s["skuId"] for s in active}
        for state in user["licenseAssignmentStates"]:
            if state["assignedByGroup"]:
                by_group += 1
                assert user["id"] in members[state["assignedByGroup"]]
    assert by_group > 0


def test_generated_users_break_no_rule():
    tenant = Emulator(users=1500, groups=60, seed=3).tenant
    rules = default_rules()
    for user in tenant.users.values():
        active = [s for s in user.sources if s.active]
        enabled = set(tenant.enabled_plans(active))
        assert not rules.missing_prerequisites(enabled)


def test_generate_rules(snapshot):
    rules = generate_rules(snapshot, 50, seed=2)
    assert len(rules) == 50 and rules == generate_rules(snapshot, 50, seed=2)
    groups = {g["id"]: g for g in snapshot["groups"]}
    skus = {s["skuPartNumber"]: s for s in snapshot["subscribedSkus"]}
    for rule in rules:
        group = groups[rule["group"]]
        assert group["securityEnabled"] and not group["assignedLicenses"]
        assert isinstance(rule["nested"], bool) and rule["licenses"]
        for licence in rule["licenses"]:
            sku = skus[licence["sku"]]
            assert sku["appliesTo"] == "User"
            names = {p["servicePlanName"] for p in sku["servicePlans"]}
            assert set(licence["disabled_plans"]) <= names


def test_generate_rules_gives_each_group_one_rule_at_most(snapshot):
    eligible = [g for g in snapshot["groups"] if g["securityEnabled"] and not g["assignedLicenses"]]
    rules = generate_rules(snapshot, len(eligible) + 10, seed=3)
    assert sorted(r["group"] for r in rules) == sorted(g["id"] for g in eligible)


def test_snapshot_round_trip(snapshot, tmp_path):
    with Emulator(snapshot) as graph:
        assert graph.snapshot() == snapshot
        graph.save(tmp_path / "tenant.json")
    with Emulator(tmp_path / "tenant.json") as graph:
        assert graph.snapshot() == snapshot


def test_the_first_run_shape_gives_most_users_three_licences_and_half_a_problem(tmp_path):
    """`first_run_shape`: the tenant of licsync's first run (benchmarks/engine_plan.py)."""
    import json

    from licsync.config import load_config, rules_toml
    from licsync.connector.planning import make_plan
    from licsync.emulator.generate import first_run_shape
    from licsync.snapshot import load_snapshot

    tenant = generate_tenant(2000, 80, seed=3)
    rules = first_run_shape(tenant, 30, seed=3)
    assert len(rules) == 30 and len({r["group"] for r in rules}) == 30
    (tmp_path / "tenant.json").write_text(json.dumps(tenant))
    (tmp_path / "licsync.toml").write_text(rules_toml(rules))
    plan = make_plan(
        load_snapshot(tmp_path / "tenant.json"), load_config(tmp_path / "licsync.toml")
    )
    three = sum(len(c.add_licenses) >= 3 for c in plan.changes)
    with_problem = len({p.user_id for p in plan.problems})
    assert three > 0.6 * 2000
    assert 0.3 * 2000 < with_problem < 0.7 * 2000
