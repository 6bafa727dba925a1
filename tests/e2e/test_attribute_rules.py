"""Attribute rules end to end: users selected by Entra's rule syntax, over real HTTP against the
emulator; a changed attribute moves a user between rules on the next incremental run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from licsync.config import parse_config
from licsync.emulator.server import Emulator
from tests.builders import catalogue_plan_id as plan_id
from tests.builders import catalogue_sku_id as sku_id
from tests.builders import small_snapshot, user_id
from tests.syncing import direct_licences, sync

E3, BI = "SPE_E3", "POWER_BI_PRO"
DEPARTMENTS = {1: "Sales", 2: "Sales", 3: "Sales", 4: "Finance", 5: "Finance", 6: None}

RULES = """
[[group_licenses]]
name = "Sales"
filter = 'user.department -eq "sales"'
licenses = [{ sku = "SPE_E3", disabled_plans = ["SWAY"] }]

[[group_licenses]]
name = "Finance in the US"
filter = 'user.department -eq "Finance" -and user.usageLocation -in ["US"]'
licenses = [{ sku = "POWER_BI_PRO" }]

[[group_licenses]]
group = "Group 1"
filter = 'user.employeeType -ne "Contractor"'
licenses = [{ sku = "SPE_E3", disabled_plans = ["SWAY", "YAMMER_ENTERPRISE"] }]
"""


def tenant() -> dict[str, Any]:
    snapshot = small_snapshot(users=6, members={1: [1, 2, 4]})
    for user in snapshot["users"]:
        n = int(user["id"][-12:])
        user["department"] = DEPARTMENTS[n]
        user["employeeType"] = "Contractor" if n == 2 else "Employee"
    return snapshot


def config(tmp_path: Path, graph: Emulator) -> Any:
    text = (
        f'[graph]\nurl = "{graph.url}"\nauth = "none"\nwrite_rate = 100\n'
        f'[state]\nurl = "{tmp_path / "state.db"}"\n'
        "[guardrail]\nmax_removals = 100\nmax_removal_percent = 100\n" + RULES
    )
    path = tmp_path / "licsync.toml"
    path.write_text(text, encoding="utf-8")
    return parse_config(text, path)


def test_a_changed_department_moves_the_user_between_rules_and_nothing_else(
    emulator_factory: Any, tmp_path: Path
) -> None:
    graph = emulator_factory(tenant())
    cfg = config(tmp_path, graph)
    e3, bi = sku_id(E3), sku_id(BI)
    sway, yammer = plan_id(E3, "SWAY"), plan_id(E3, "YAMMER_ENTERPRISE")

    first = sync(cfg)
    assert not first.incremental and first.failed_users == ()
    before = direct_licences(graph)
    assert before[user_id(1)] == {e3: frozenset({sway})}  # union of Sales and Group 1's rule
    assert before[user_id(2)] == {e3: frozenset({sway})}  # a contractor: Group 1's rule skips
    assert before[user_id(3)] == {e3: frozenset({sway})}
    assert before[user_id(4)] == {bi: frozenset(), e3: frozenset({sway, yammer})}
    assert before[user_id(5)] == {bi: frozenset()}
    assert before[user_id(6)] == {}

    # user 3 moves from Sales to Finance (a PATCH, as an HR feed would)
    httpx.patch(
        f"{graph.url}/users/{user_id(3)}", json={"department": "Finance"}
    ).raise_for_status()
    graph.stats.reset()
    second = sync(cfg)
    assert second.incremental
    assert graph.stats.count("GET /users/delta") == 1
    after = direct_licences(graph)
    assert after[user_id(3)] == {bi: frozenset()}
    assert {u: v for u, v in after.items() if u != user_id(3)} == {
        u: v for u, v in before.items() if u != user_id(3)
    }
    fresh = sync(cfg, dry_run=True, full=True)
    assert fresh.plan.changes == ()


def test_a_filter_on_a_property_the_view_lacks_reads_in_full(
    emulator_factory: Any, tmp_path: Path
) -> None:
    graph = emulator_factory(tenant())
    cfg = config(tmp_path, graph)
    assert not sync(cfg).incremental
    text = cfg.path.read_text(encoding="utf-8").replace(
        "user.employeeType", "user.extensionAttribute3"
    )
    cfg.path.write_text(text, encoding="utf-8")
    changed = parse_config(text, cfg.path)
    again = sync(changed)
    assert not again.incremental  # the cached view never read extensionAttribute3
    assert sync(changed).incremental


def _grants(snapshot: dict[str, Any], rules: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
    """What `rules` grant, computed here from the snapshot's own member lists (nested rules
    follow nested groups): (user, part number) → names of the plans off in every rule."""
    groups = {g["id"]: g for g in snapshot["groups"]}

    def users_of(group_id: str, nested: bool, seen: set[str]) -> set[str]:
        found = set()
        for m in groups[group_id]["members"]:
            if m["@odata.type"] == "#microsoft.graph.user":
                found.add(m["id"])
            elif nested and m["id"] not in seen and m["id"] in groups:
                seen.add(m["id"])
                found |= users_of(m["id"], nested, seen)
        return found

    grants: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        for uid in users_of(rule["group"], rule["nested"], {rule["group"]}):
            for lic in rule["licenses"]:
                key = (uid, lic["sku"])
                off = set(lic["disabled_plans"])
                grants[key] = grants[key] & off if key in grants else off
    return grants


def test_compare_on_the_demo_tenant_lists_exactly_who_changes(
    emulator_factory: Any, tmp_path: Path
) -> None:
    from licsync.cli import main
    from licsync.config import rules_toml
    from licsync.emulator.generate import generate_rules, generate_tenant

    snapshot = generate_tenant(users=400, groups=30, seed=5)
    graph = emulator_factory(snapshot)
    old = generate_rules(snapshot, 10, 5)
    new = [dict(r) for r in old]
    # one rule's disabled plans change, one rule moves to a group no rule uses
    sku = next(
        s for s in snapshot["subscribedSkus"] if s["skuPartNumber"] == old[0]["licenses"][0]["sku"]
    )
    plans = [p["servicePlanName"] for p in sku["servicePlans"]]
    changed = [p for p in plans if p not in old[0]["licenses"][0]["disabled_plans"]][:1]
    new[0] = {**old[0], "licenses": [{**old[0]["licenses"][0], "disabled_plans": changed}]}
    used = {r["group"] for r in old}
    spare = next(
        g["id"]
        for g in snapshot["groups"]
        if g["id"] not in used
        and g["securityEnabled"]
        and not g["assignedLicenses"]
        and g["members"]
    )
    new[1] = {**old[1], "group": spare}
    head = f'[graph]\nurl = "{graph.url}"\nauth = "none"\n[state]\nurl = "{tmp_path / "s.db"}"\n'
    old_path, new_path = tmp_path / "old.toml", tmp_path / "new.toml"
    old_path.write_text(head + rules_toml(old), encoding="utf-8")
    new_path.write_text(head + rules_toml(new), encoding="utf-8")
    out = tmp_path / "whatif.json"
    code = main(
        [
            "plan",
            "--config",
            str(new_path),
            "--compare",
            str(old_path),
            "--format",
            "json",
            "--output",
            str(out),
        ]
    )
    doc = json.loads(out.read_text(encoding="utf-8"))
    before, after = _grants(snapshot, old), _grants(snapshot, new)
    want = set()
    for key in before.keys() | after.keys():
        if key not in after:
            want.add((*key, "lose"))
        elif key not in before:
            want.add((*key, "gain"))
        elif before[key] != after[key]:
            want.add((*key, "plans"))
    got = {(c["userId"], c["skuPartNumber"], c["change"]) for c in doc["changes"]}
    assert got == want and want
    assert {c for _, _, c in want} >= {"plans", "gain"}
    assert code == (10 if any(c == "lose" for _, _, c in want) else 0)
    order = [c["change"] for c in doc["changes"]]
    assert order == sorted(order, key=["lose", "gain", "plans"].index)  # removals first
    assert (tmp_path / "s.db").exists() is False  # a what-if writes nothing


def test_sync_dry_run_compare_is_the_plan_compare_and_needs_dry_run(
    emulator_factory: Any, tmp_path: Path, capsys: Any
) -> None:
    from licsync.cli import main

    graph = emulator_factory(tenant())
    cfg = config(tmp_path, graph)
    old = tmp_path / "old.toml"
    old.write_text(cfg.path.read_text(encoding="utf-8").replace('"sales"', '"Finance"'))
    reports = []
    for command in (["plan"], ["sync", "--dry-run"]):
        out = tmp_path / f"{command[0]}.json"
        args = [*command, "--config", str(cfg.path), "--compare", str(old), "--format", "json"]
        assert main([*args, "--output", str(out)]) == 10  # Finance users lose E3
        reports.append(json.loads(out.read_text(encoding="utf-8")))
    assert reports[0] == reports[1] and reports[0]["summary"]["losses"] > 0
    assert main(["sync", "--config", str(cfg.path), "--compare", str(old)]) == 2
    assert "use it with --dry-run" in capsys.readouterr().err
    assert not (tmp_path / "state.db").exists()
