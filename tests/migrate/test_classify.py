"""Classification: each user and SKU lands in the right bucket with a reason an admin acts on."""

from __future__ import annotations

from licsync.config.service_rules import load_plan_rules
from licsync.engine import Policy, Rule
from licsync.migrate import Decision, MigrateAction, Target, classify
from licsync.model import Ownership, Tenant
from licsync.snapshot import tenant_from_json
from tests.builders import TenantBuilder, object_id

E3 = "ENTERPRISEPACK"


def _by_name(decisions: tuple[Decision, ...]) -> dict[tuple[str, str], Decision]:
    return {(d.user_principal_name.split("@")[0], d.sku_id): d for d in decisions}


def _rule(b: TenantBuilder, group: str, licences: dict[str, list[str]]) -> Rule:
    return Rule(
        object_id(group),
        tuple(sorted((b.sku_id(p), frozenset(b.plan_ids(p, d))) for p, d in licences.items())),
    )


def _rules_tenant() -> tuple[TenantBuilder, Tenant, list[Rule]]:
    b = TenantBuilder().sku(E3, 20).sku("EMSPREMIUM", 20).sku("POWER_BI_PRO", 1, consumed=1)
    b.user("ann", direct={E3: ["SWAY", "YAMMER_ENTERPRISE"]})
    b.user("bob", direct={E3: []})  # Sales and Marketing each switch a different plan off
    b.user("cal", direct={E3: []})  # only Sales, which switches SWAY off
    b.user("dan", direct={"EMSPREMIUM": []})
    b.user("eve")
    b.user("fay", direct={E3: []})  # Tools fails as a whole: POWER_BI_PRO has no seat
    b.user(
        "gus", direct={E3: []}
    )  # licsync took E3 over earlier; the prior direct is in the ledger
    b.user("hal", direct={E3: ["SWAY"]})  # already licsync's own
    b.user("ida", guest=True, direct={E3: []})
    b.group("Sales", members=["ann", "bob", "cal", "eve", "gus", "hal"])
    b.group("Marketing", members=["ann", "bob", "ida"])
    b.group("Tools", members=["fay"])
    rules = [
        _rule(b, "Sales", {E3: ["SWAY"]}),
        _rule(b, "Marketing", {E3: ["YAMMER_ENTERPRISE"]}),
        _rule(b, "Tools", {E3: [], "POWER_BI_PRO": []}),
    ]
    return b, b.tenant(), rules


def test_rules_target_buckets_and_reasons() -> None:
    b, tenant, rules = _rules_tenant()
    e3 = b.sku_id(E3)
    sway = b.plan_id(E3, "SWAY")
    ledger = {
        (object_id("gus"), e3): Ownership(
            object_id("gus"), e3, (object_id("Sales"),), frozenset({sway})
        ),
        (object_id("hal"), e3): Ownership(object_id("hal"), e3, (object_id("Sales"),), None),
    }
    policy = Policy(license_guests=False)
    got = _by_name(classify(tenant, Target.RULES, rules=rules, policy=policy, ledger=ledger))

    ann, bob = got[("ann", e3)], got[("bob", e3)]
    assert ann.action is MigrateAction.ADOPT and ann.reason is None
    assert set(ann.groups) == {object_id("Sales"), object_id("Marketing")}
    assert bob.action is MigrateAction.ADOPT
    assert got[("cal", e3)].action is MigrateAction.SKIP
    assert got[("cal", e3)].reason == (
        "direct assignment enables SWAY, which no group source enables"
    )
    assert got[("dan", b.sku_id("EMSPREMIUM"))].reason == (
        "not a member of any group that grants EMSPREMIUM"
    )
    assert got[("eve", e3)].reason == "no direct assignment"
    assert got[("fay", e3)].reason == "group source in error: Other (group Tools)"
    assert got[("fay", b.sku_id("POWER_BI_PRO"))].reason == "no direct assignment"
    gus = got[("gus", e3)]  # the prior direct (SWAY off) is what is checked and adopted
    assert gus.action is MigrateAction.ADOPT and gus.disabled_plans == frozenset({sway})
    assert got[("hal", e3)].reason == "already managed by licsync (rule groups: Sales)"
    assert got[("ida", e3)].reason.startswith("excluded by [policy] (guest)")


def test_adoption_covers_every_plan_the_direct_assignment_enables() -> None:
    """Checked independently of the classifier: each adopted assignment's enabled plans are
    inside the union of its groups' enabled plans, and each coverage skip really misses one."""
    _, tenant, rules = _rules_tenant()
    checked = 0
    for d in classify(tenant, Target.RULES, rules=rules):
        plans = {p.id for p in tenant.skus[d.sku_id].plans}
        granting = [
            dict(r.licenses)[d.sku_id]
            for r in rules
            if d.sku_id in dict(r.licenses) and d.user_id in tenant.groups[r.group_id].member_users
        ]
        union = set().union(*(plans - off for off in granting))
        if d.action is MigrateAction.ADOPT:
            assert plans - d.disabled_plans <= union
            checked += 1
        elif d.reason and d.reason.startswith("direct assignment enables"):
            assert not plans - d.disabled_plans <= union
            checked += 1
    assert checked >= 3


def _entra_tenant() -> tuple[TenantBuilder, Tenant]:
    b = TenantBuilder().sku(E3, 20).sku("EMSPREMIUM", 20)
    b.user(
        "ivy", direct={E3: []}, inherited=[("E1", E3, ["SWAY"]), ("E2", E3, ["YAMMER_ENTERPRISE"])]
    )
    b.user("jon", direct={E3: []}, inherited=[("E1", E3, ["SWAY", "SHAREPOINTWAC"])])
    b.user("kim", direct={E3: []}, inherited=[("E3", E3, [])])
    b.user("lee", direct={"EMSPREMIUM": []})
    b.user("mia", inherited=[("E1", E3, ["SWAY"])])
    b.user("ned", direct={E3: []})  # in E1, but Entra has not processed him yet
    b.user("oli", direct={E3: []}, inherited=[("E2", E3, [])])  # licsync's direct assignment
    b.group("E1", members=["ivy", "jon", "mia", "ned"], entra={E3: ["SWAY"]})
    b.group("E2", members=["ivy", "oli"], entra={E3: ["YAMMER_ENTERPRISE"]})
    b.group("E3", members=["kim"], entra={E3: []})
    snap = b.snapshot()
    kim = next(u for u in snap["users"] if u["userPrincipalName"].startswith("kim"))
    for state in kim["licenseAssignmentStates"]:
        if state["assignedByGroup"]:
            state.update(state="Error", error="CountViolation")
    return b, tenant_from_json(snap)


def test_entra_target_buckets_and_reasons() -> None:
    b, tenant = _entra_tenant()
    e3 = b.sku_id(E3)
    ledger = {(object_id("oli"), e3): Ownership(object_id("oli"), e3, (object_id("Sales"),), None)}
    got = _by_name(classify(tenant, Target.ENTRA, ledger=ledger))
    ivy = got[("ivy", e3)]
    assert ivy.action is MigrateAction.REMOVE_DIRECT
    assert set(ivy.groups) == {object_id("E1"), object_id("E2")}
    assert ivy.disabled_plans == frozenset()
    assert got[("jon", e3)].reason == (
        "direct assignment enables SHAREPOINTWAC, SWAY, which no group source enables"
    )
    assert got[("kim", e3)].reason == "group source in error: CountViolation (group E3)"
    assert got[("lee", b.sku_id("EMSPREMIUM"))].reason == (
        "not a member of any group that grants EMSPREMIUM"
    )
    assert got[("mia", e3)].reason == "no direct assignment"
    assert "Entra has not assigned it yet" in got[("ned", e3)].reason
    assert got[("oli", e3)].reason.startswith("the direct assignment is licsync's")
    assert all(d.action is not MigrateAction.ADOPT for d in got.values())


def test_entra_without_assignment_states_is_skipped() -> None:
    b, _ = _entra_tenant()
    snap = b.snapshot()
    for user in snap["users"]:
        user.pop("licenseAssignmentStates")
    decisions = classify(tenant_from_json(snap), Target.ENTRA)
    assert decisions and all(d.action is MigrateAction.SKIP for d in decisions)
    assert all("licenseAssignmentStates" in (d.reason or "") for d in decisions)


def test_rules_target_policy_exclusions_say_which_switch() -> None:
    b = TenantBuilder().sku(E3, 20)
    b.user("ada", enabled=False, direct={E3: []})
    b.user("ben", guest=True, direct={E3: []})
    b.user("cy", enabled=False, guest=True, direct={E3: []})
    b.group("Sales", members=["ada", "ben", "cy"])
    rules = [_rule(b, "Sales", {E3: []})]
    policy = Policy(license_disabled_accounts=False)
    got = _by_name(classify(b.tenant(), Target.RULES, rules=rules, policy=policy))
    e3 = b.sku_id(E3)
    assert got[("ada", e3)].reason == (
        f"excluded by [policy] (disabled account) from the rule groups that grant {E3}"
    )
    assert got[("ben", e3)].action is MigrateAction.ADOPT  # guests are licensed by this policy
    assert got[("cy", e3)].reason.startswith("excluded by [policy] (disabled account)")


def test_rules_target_without_assignment_states_adopts_no_entra_licence() -> None:
    """Without licenseAssignmentStates every licence looks direct: one an Entra group of the
    user grants may be inherited, and adopting it would let licsync remove it later."""
    b = TenantBuilder().sku(E3, 20).sku("EMSPREMIUM", 20)
    b.user("ivy", direct={E3: [], "EMSPREMIUM": []})
    b.group("Sales", members=["ivy"])
    b.group("E1", members=["ivy"], entra={E3: []})
    rules = [_rule(b, "Sales", {E3: [], "EMSPREMIUM": []})]
    snap = b.snapshot()
    for user in snap["users"]:
        user.pop("licenseAssignmentStates")
    got = _by_name(classify(tenant_from_json(snap), Target.RULES, rules=rules))
    assert "licenseAssignmentStates" in got[("ivy", b.sku_id(E3))].reason
    assert got[("ivy", b.sku_id("EMSPREMIUM"))].action is MigrateAction.ADOPT


def test_entra_target_one_source_in_error_blocks_the_removal() -> None:
    """Microsoft's step 5: no member in an error state, even when another source covers all."""
    b = TenantBuilder().sku(E3, 20)
    b.user("pam", direct={E3: []}, inherited=[("E1", E3, []), ("E2", E3, [])])
    b.group("E1", members=["pam"], entra={E3: []})
    b.group("E2", members=["pam"], entra={E3: []})
    snap = b.snapshot()
    for state in snap["users"][0]["licenseAssignmentStates"]:
        if state["assignedByGroup"] == object_id("E2"):
            state.update(state="Error", error="MutuallyExclusiveViolation")
    (pam,) = classify(tenant_from_json(snap), Target.ENTRA)
    assert pam.action is MigrateAction.SKIP
    assert pam.reason == "group source in error: MutuallyExclusiveViolation (group E2)"


WPA = "WORKPLACE_ANALYTICS"  # an add-on: needs Exchange Online from the same group (Entra docs)
SHIPPED = Policy(plan_rules=load_plan_rules())  # the prerequisites licsync ships


def test_rules_target_does_not_adopt_an_add_on_whose_base_comes_from_elsewhere() -> None:
    b = TenantBuilder().sku(E3, 20).sku(WPA, 20)
    b.user("ann", direct={E3: [], WPA: []})
    b.group("Sales", members=["ann"])
    rules = [_rule(b, "Sales", {WPA: []})]
    got = _by_name(classify(b.tenant(), Target.RULES, rules=rules, policy=SHIPPED))
    ann = got[("ann", b.sku_id(WPA))]
    assert ann.action is MigrateAction.SKIP
    assert ann.reason == "group source in error: DependencyViolation (group Sales)"


def test_entra_target_keeps_a_direct_add_on_whose_group_lacks_the_prerequisite() -> None:
    """The group's own E3 disables Exchange Online: the add-on's inherited source does not count
    even if Graph shows it Active, so removing the direct one would lose the service."""
    b = TenantBuilder().sku(E3, 20).sku(WPA, 20)
    off = ["EXCHANGE_S_ENTERPRISE"]
    b.user("ann", direct={WPA: []}, inherited=[("Addon", WPA, []), ("Addon", E3, off)])
    b.group("Addon", members=["ann"], entra={WPA: [], E3: off})
    got = _by_name(classify(b.tenant(), Target.ENTRA, policy=SHIPPED))
    ann = got[("ann", b.sku_id(WPA))]
    assert ann.action is MigrateAction.SKIP
    assert ann.reason.startswith("group source in error: DependencyViolation: WORKPLACE_ANALYTICS")
