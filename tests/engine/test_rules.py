"""The rulebook's sections 1-3, one scenario each, on tenants built from the real catalogue."""

from __future__ import annotations

import pytest

from licsync.config.service_rules import load_plan_rules
from licsync.engine.service_plans import ServicePlanIndex
from licsync.model import LicenseError, Ownership, SourceKind
from tests.builders import TenantBuilder, catalogue_plan_id, object_id
from tests.engine.scenario import adds, apply_plan, errors, plan_for, removes, user_plan

E3 = "ENTERPRISEPACK"
EMS = "EMSPREMIUM"


def sales_rule(*licenses: str, group: str = "Sales", nested: bool = False) -> str:
    body = ", ".join(licenses)
    return f"""
[[group_licenses]]
group = "{group}"
nested = {str(nested).lower()}
licenses = [{body}]
"""


E3_RULE = sales_rule(f'{{ sku = "{E3}" }}')


def tenant() -> TenantBuilder:
    return TenantBuilder().sku(E3, enabled=20).sku(EMS, enabled=20)


# -- 1. who gets a group's licences ---------------------------------------------------------


def test_only_direct_members_are_licensed_by_default():
    b = tenant().user("ann").user("ben")
    b.group("Child", members=["ben"]).group("Sales", members=["ann"], groups=["Child"])
    plan = plan_for(b, E3_RULE)
    assert adds(plan, b, "ann") == {E3: set()}
    assert adds(plan, b, "ben") == {}


def test_nested_rule_licenses_members_of_nested_groups_and_survives_cycles():
    b = tenant().user("ann").user("ben").user("cat")
    b.group("Grandchild", members=["cat"], groups=["Sales"])  # a cycle back to the top
    b.group("Child", members=["ben"], groups=["Grandchild"])
    b.group("Sales", members=["ann"], groups=["Child"])
    plan = plan_for(b, sales_rule(f'{{ sku = "{E3}" }}', nested=True))
    assert {n for n in ("ann", "ben", "cat") if adds(plan, b, n)} == {"ann", "ben", "cat"}


def test_devices_and_other_members_are_ignored():
    b = tenant().user("ann").group("Sales", members=["ann"], devices=3)
    plan = plan_for(b, E3_RULE)
    assert len(plan.changes) == 1
    assert plan.problems == ()


def test_guests_and_disabled_accounts_are_licensed_like_anyone_by_default():
    b = tenant().user("guest", guest=True).user("off", enabled=False)
    b.group("Sales", members=["guest", "off"])
    plan = plan_for(b, E3_RULE)
    assert adds(plan, b, "guest") == adds(plan, b, "off") == {E3: set()}


def test_policy_can_exclude_guests_and_disabled_accounts():
    b = tenant().user("guest", guest=True).user("off", enabled=False).user("ann")
    b.group("Sales", members=["guest", "off", "ann"])
    policy = "[policy]\nlicense_guests = false\nlicense_disabled_accounts = false\n"
    plan = plan_for(b, E3_RULE + policy)
    assert [u.user_principal_name for u in plan.changes] == ["ann@contoso.example"]


# -- 2. combining sources ----------------------------------------------------------------------


def test_one_seat_per_sku_however_many_groups_grant_it():
    b = tenant().sku(E3, enabled=1, consumed=0).user("ann")
    b.group("Sales", members=["ann"]).group("Staff", members=["ann"])
    rules = E3_RULE + sales_rule(f'{{ sku = "{E3}" }}', group="Staff")
    plan = plan_for(b, rules)
    assert adds(plan, b, "ann") == {E3: set()}
    (e3,) = [s for s in plan.skus if s.part_number == E3]
    assert (e3.requested, e3.granted, e3.shortfall) == (1, 1, 0)


@pytest.mark.parametrize(
    ("sales_off", "staff_off", "expected_off"),
    [
        (["SWAY"], ["YAMMER_ENTERPRISE"], set()),
        (["SWAY", "YAMMER_ENTERPRISE"], ["SWAY"], {"SWAY"}),
        ([], ["SWAY"], set()),
    ],
)
def test_enabled_plans_are_the_union_over_groups(sales_off, staff_off, expected_off):
    b = tenant().user("ann")
    b.group("Sales", members=["ann"]).group("Staff", members=["ann"])
    rules = sales_rule(f'{{ sku = "{E3}", disabled_plans = {sales_off} }}') + sales_rule(
        f'{{ sku = "{E3}", disabled_plans = {staff_off} }}', group="Staff"
    )
    assert adds(plan_for(b, rules), b, "ann") == {E3: expected_off}


def test_a_direct_assignment_joins_the_union_and_is_remembered_as_prior():
    b = tenant().user("ann", direct={E3: ["SWAY", "FORMS_PLAN_E3"]})
    b.group("Sales", members=["ann"])
    plan = plan_for(b, sales_rule(f'{{ sku = "{E3}", disabled_plans = ["SWAY"] }}'))
    assert adds(plan, b, "ann") == {E3: {"SWAY"}}
    (entry,) = user_plan(plan, b, "ann").ownership
    assert entry.prior_direct == frozenset(b.plan_ids(E3, ["SWAY", "FORMS_PLAN_E3"]))


def test_later_plans_keep_the_prior_direct_of_the_first_take_over():
    """Once licsync owns the SKU, the direct assignment Graph shows is licsync's own: recording
    it as prior would lose the user's original one."""
    b = tenant().user("ann", direct={E3: ["SWAY", "FORMS_PLAN_E3"]})
    b.group("Sales", members=["ann"])
    rule = sales_rule(f'{{ sku = "{E3}", disabled_plans = ["SWAY"] }}')
    first = plan_for(b, rule)
    again = plan_for(apply_plan(b.tenant(), first), rule, first.ledger)
    assert again.changes == ()
    assert again.ledger == first.ledger
    (entry,) = again.ledger.values()
    assert entry.prior_direct == frozenset(b.plan_ids(E3, ["SWAY", "FORMS_PLAN_E3"]))


def test_states_list_every_source_of_a_sku():
    b = tenant().user("ann", direct={E3: []}).group("Sales", members=["ann"])
    plan = plan_for(b, E3_RULE)
    kinds = sorted((s.kind.value, s.group_id) for s in user_plan(plan, b, "ann").states)
    assert kinds == [("direct", None), ("rule", object_id("Sales"))]
    assert adds(plan, b, "ann") == {}  # the direct assignment already enables everything


def test_entra_groups_are_computed_but_never_pushed():
    b = tenant().user("ann", inherited=[("Licensed", E3, ["SWAY"])]).user("ben")
    b.group("Licensed", members=["ann", "ben"], entra={E3: ["SWAY"]})
    plan = plan_for(b, "")
    assert plan.changes == ()
    ben = user_plan(plan, b, "ben")
    assert [(s.kind, s.error) for s in ben.states] == [(SourceKind.ENTRA, None)]
    assert [a.sku_id for a in ben.assigned_licenses] == [b.sku_id(E3)]
    (e3,) = [s for s in plan.skus if s.part_number == E3]
    assert e3.granted == 1  # Entra's new member takes a seat the rules must share


def test_a_rule_on_a_sku_held_from_entra_needs_no_new_seat():
    b = tenant().sku(E3, enabled=1).user("ann", inherited=[("Licensed", E3, ["SWAY"])])
    b.group("Licensed", members=["ann"], entra={E3: ["SWAY"]}).group("Sales", members=["ann"])
    plan = plan_for(b, E3_RULE)
    assert adds(plan, b, "ann") == {E3: set()}
    assert plan.problems == ()


def test_leaver_loses_only_what_licsync_assigned():
    b = tenant().user("ann", direct={E3: [], EMS: []}).group("Sales", members=[])
    ledger = {
        (object_id("ann"), b.sku_id(E3)): Ownership(
            object_id("ann"), b.sku_id(E3), (object_id("Sales"),), None
        )
    }
    plan = plan_for(b, E3_RULE, ledger)
    assert removes(plan, b, "ann") == {E3}
    assert plan.ledger == {}
    assert [s.freed for s in plan.skus if s.part_number == E3] == [1]


def test_without_a_ledger_nothing_is_ever_removed():
    b = tenant().user("ann", direct={E3: [], EMS: []}).group("Sales", members=[])
    assert plan_for(b, E3_RULE).changes == ()


def test_leaver_gets_their_own_prior_direct_plans_back():
    b = tenant().user("ann", direct={E3: []}).group("Sales", members=[])
    prior = frozenset(b.plan_ids(E3, ["SWAY"]))
    ledger = {
        (object_id("ann"), b.sku_id(E3)): Ownership(
            object_id("ann"), b.sku_id(E3), (object_id("Sales"),), prior
        )
    }
    plan = plan_for(b, E3_RULE, ledger)
    assert adds(plan, b, "ann") == {E3: {"SWAY"}}
    assert removes(plan, b, "ann") == set()
    assert plan.ledger == {}


def test_ledger_entry_is_dropped_when_the_licence_vanished_outside_licsync():
    b = tenant().user("ann").group("Sales", members=[])
    ledger = {
        (object_id("ann"), b.sku_id(E3)): Ownership(
            object_id("ann"), b.sku_id(E3), (object_id("Sales"),), frozenset()
        )
    }
    plan = plan_for(b, E3_RULE, ledger)
    assert plan.changes == ()
    assert plan.ledger == {}


# -- 3. errors -------------------------------------------------------------------------------


def test_seats_go_to_holders_first_then_in_object_id_order():
    b = tenant().sku(E3, enabled=3, consumed=None)
    names = ["u1", "u2", "u3", "u4"]
    b.user("holder", direct={E3: []})
    for name in names:
        b.user(name)
    b.group("Sales", members=["holder", *names])
    ledger = {
        (object_id("holder"), b.sku_id(E3)): Ownership(
            object_id("holder"), b.sku_id(E3), (object_id("Sales"),), None
        )
    }
    plan = plan_for(b, E3_RULE, ledger)
    winners = sorted(names, key=object_id)[:2]
    assert {n for n in names if adds(plan, b, n)} == set(winners)
    for loser in set(names) - set(winners):
        assert errors(plan, b, loser) == {E3: "CountViolation"}
    assert errors(plan, b, "holder") == {}
    (e3,) = [s for s in plan.skus if s.part_number == E3]
    assert (e3.requested, e3.granted, e3.shortfall, e3.consumed_after) == (4, 2, 2, 3)


def test_seats_freed_by_leavers_are_given_to_joiners():
    b = tenant().sku(E3, enabled=1, consumed=None).user("leaver", direct={E3: []}).user("joiner")
    b.group("Sales", members=["joiner"])
    ledger = {
        (object_id("leaver"), b.sku_id(E3)): Ownership(
            object_id("leaver"), b.sku_id(E3), (object_id("Sales"),), None
        )
    }
    plan = plan_for(b, E3_RULE, ledger)
    assert removes(plan, b, "leaver") == {E3}
    assert adds(plan, b, "joiner") == {E3: set()}


def test_all_or_nothing_per_group_marks_the_other_licences_other():
    b = tenant().sku(EMS, enabled=0, consumed=0).user("ann").group("Sales", members=["ann"])
    plan = plan_for(b, sales_rule(f'{{ sku = "{E3}" }}', f'{{ sku = "{EMS}" }}'))
    assert adds(plan, b, "ann") == {}
    assert errors(plan, b, "ann") == {EMS: "CountViolation", E3: "Other"}


def test_all_or_nothing_leaves_other_groups_alone():
    b = tenant().sku(EMS, enabled=0, consumed=0).user("ann")
    b.group("Sales", members=["ann"]).group("Staff", members=["ann"])
    rules = sales_rule(f'{{ sku = "{E3}" }}', f'{{ sku = "{EMS}" }}') + sales_rule(
        f'{{ sku = "{E3}" }}', group="Staff"
    )
    plan = plan_for(b, rules)
    assert adds(plan, b, "ann") == {E3: set()}


def test_mutually_exclusive_plans_fail_the_group():
    b = tenant().sku("DESKLESSPACK").sku("EXCHANGESTANDARD")
    b.user("ann", direct={"EXCHANGESTANDARD": []}).group("Sales", members=["ann"])
    plan = plan_for(b, sales_rule('{ sku = "DESKLESSPACK" }'))
    assert errors(plan, b, "ann") == {"DESKLESSPACK": "MutuallyExclusiveViolation"}
    (problem,) = plan.problems
    assert "EXCHANGE_S_DESKLESS" in problem.message and "EXCHANGE_S_STANDARD" in problem.message


@pytest.mark.parametrize("rule_group", ["Frontline", "Shop floor"])  # sorts before / after
def test_a_held_entra_licence_wins_a_conflict_with_a_rule(rule_group):
    """The inherited licence is already on the user: Graph refuses the rule's direct add."""
    b = tenant().sku("DESKLESSPACK").sku("EXCHANGESTANDARD")
    b.user("ann", inherited=[("Licensed", "EXCHANGESTANDARD", [])])
    b.group("Licensed", members=["ann"], entra={"EXCHANGESTANDARD": []})
    b.group(rule_group, members=["ann"])
    plan = plan_for(b, sales_rule('{ sku = "DESKLESSPACK" }', group=rule_group))
    assert errors(plan, b, "ann") == {"DESKLESSPACK": "MutuallyExclusiveViolation"}
    assert adds(plan, b, "ann") == {}
    (problem,) = plan.problems
    assert problem.group_id == object_id(rule_group)


@pytest.mark.parametrize("order", [1, -1])
def test_a_conflict_with_any_held_plan_counts_whatever_the_order(order):
    """A user who already holds both SharePoint plans (an old tenant) clashes with a new
    SHAREPOINTENTERPRISE through SHAREPOINTSTANDARD, however the held plans are listed."""
    b = tenant().sku("STANDARDPACK")
    index = ServicePlanIndex(b.tenant(), load_plan_rules())
    enterprise = catalogue_plan_id(E3, "SHAREPOINTENTERPRISE")
    standard = catalogue_plan_id("STANDARDPACK", "SHAREPOINTSTANDARD")
    assert index.conflict([enterprise], [enterprise, standard][::order]) == (enterprise, standard)


def test_exchange_plan_1_and_plan_2_stack_since_2023():
    b = tenant().sku("EXCHANGEENTERPRISE").sku("EXCHANGESTANDARD")
    b.user("ann", direct={"EXCHANGESTANDARD": []}).group("Sales", members=["ann"])
    plan = plan_for(b, sales_rule('{ sku = "EXCHANGEENTERPRISE" }'))
    assert plan.problems == ()
    assert adds(plan, b, "ann") == {"EXCHANGEENTERPRISE": set()}


def test_conflict_table_is_data_a_custom_table_changes_the_verdict(tmp_path):
    custom = tmp_path / "conflicts.json"
    custom.write_text(
        '{"groups": [{"plans": {"EXCHANGE_S_STANDARD": "x", "EXCHANGE_S_ENTERPRISE": "y"}}]}'
    )
    b = tenant().sku("EXCHANGEENTERPRISE").sku("EXCHANGESTANDARD")
    b.user("ann", direct={"EXCHANGESTANDARD": []}).group("Sales", members=["ann"])
    toml = sales_rule('{ sku = "EXCHANGEENTERPRISE" }') + f'[policy]\nconflicts = "{custom}"\n'
    plan = plan_for(b, toml)
    assert errors(plan, b, "ann") == {"EXCHANGEENTERPRISE": "MutuallyExclusiveViolation"}


def test_removal_that_breaks_a_prerequisite_is_not_made():
    # Audio Conferencing (MCOMEETADV, held directly) needs Skype for Business Online Plan 2
    # (MCOSTANDARD), which ann only has through licsync's E3.
    b = tenant().sku("MCOMEETADV").user("ann", direct={E3: [], "MCOMEETADV": []})
    b.group("Sales", members=[])
    ledger = {
        (object_id("ann"), b.sku_id(E3)): Ownership(
            object_id("ann"), b.sku_id(E3), (object_id("Sales"),), None
        )
    }
    plan = plan_for(b, E3_RULE, ledger)
    assert removes(plan, b, "ann") == set()
    assert errors(plan, b, "ann") == {E3: "DependencyViolation"}
    assert (object_id("ann"), b.sku_id(E3)) in plan.ledger  # still licsync's
    assert [s.freed for s in plan.skus if s.part_number == E3] == [0]


def test_narrowing_that_breaks_a_prerequisite_is_not_made():
    b = tenant().sku("MCOMEETADV").user("ann", direct={E3: [], "MCOMEETADV": []})
    b.group("Sales", members=["ann"])
    ledger = {
        (object_id("ann"), b.sku_id(E3)): Ownership(
            object_id("ann"), b.sku_id(E3), (object_id("Sales"),), None
        )
    }
    plan = plan_for(b, sales_rule(f'{{ sku = "{E3}", disabled_plans = ["MCOSTANDARD"] }}'), ledger)
    assert adds(plan, b, "ann") == {}
    assert errors(plan, b, "ann") == {E3: "DependencyViolation"}


def test_adding_an_add_on_without_its_prerequisite_fails():
    b = tenant().sku("MCOMEETADV").user("ann").group("Sales", members=["ann"])
    plan = plan_for(b, sales_rule('{ sku = "MCOMEETADV" }'))
    assert errors(plan, b, "ann") == {"MCOMEETADV": "DependencyViolation"}


def test_add_on_with_its_prerequisite_in_the_same_group_is_fine():
    b = tenant().sku("MCOMEETADV").user("ann").group("Sales", members=["ann"])
    plan = plan_for(b, sales_rule('{ sku = "MCOMEETADV" }', f'{{ sku = "{E3}" }}'))
    assert plan.problems == ()
    assert set(adds(plan, b, "ann")) == {"MCOMEETADV", E3}


# Entra docs, "Identify and resolve license assignment problems for a group", products with
# prerequisites: Microsoft Workplace Analytics (an add-on) needs Exchange Online (Plan 1 or 2),
# and with group-based licensing the add-on and its prerequisite must be in the SAME group.
WPA = "WORKPLACE_ANALYTICS"


def test_add_on_in_a_group_without_its_base_fails_even_when_the_user_holds_the_base_directly():
    b = tenant().sku(WPA).user("ann", direct={E3: []}).group("Sales", members=["ann"])
    plan = plan_for(b, sales_rule(f'{{ sku = "{WPA}" }}', f'{{ sku = "{EMS}" }}'))
    assert errors(plan, b, "ann") == {WPA: "DependencyViolation", EMS: "Other"}
    assert adds(plan, b, "ann") == {}  # all or nothing: EMS is not given either
    (problem,) = [p for p in plan.problems if p.error is LicenseError.DEPENDENCY_VIOLATION]
    assert "same group" in problem.message and "WORKPLACE_ANALYTICS" in problem.message


def test_add_on_in_the_same_group_as_its_base_is_given():
    b = tenant().sku(WPA).user("ann").group("Sales", members=["ann"])
    plan = plan_for(b, sales_rule(f'{{ sku = "{WPA}" }}', f'{{ sku = "{E3}" }}'))
    assert plan.problems == ()
    assert set(adds(plan, b, "ann")) == {WPA, E3}


def test_prerequisite_disabled_in_the_group_fails_even_when_held_from_a_direct_licence():
    # E3's Audio Conferencing needs Skype for Business Online (Plan 2) from the same group
    b = tenant().sku("MCOMEETADV").user("ann", direct={E3: []}).group("Sales", members=["ann"])
    rule = sales_rule(
        '{ sku = "MCOMEETADV" }', f'{{ sku = "{E3}", disabled_plans = ["MCOSTANDARD"] }}'
    )
    plan = plan_for(b, rule)
    assert errors(plan, b, "ann") == {"MCOMEETADV": "DependencyViolation", E3: "Other"}
    assert adds(plan, b, "ann") == {}


def test_add_on_from_another_group_does_not_count_as_the_prerequisite():
    b = tenant().sku(WPA).user("ann")
    b.group("Base", members=["ann"]).group("Sales", members=["ann"])
    toml = sales_rule(f'{{ sku = "{WPA}" }}') + sales_rule(f'{{ sku = "{E3}" }}', group="Base")
    plan = plan_for(b, toml)
    assert errors(plan, b, "ann") == {WPA: "DependencyViolation"}
    assert set(adds(plan, b, "ann")) == {E3}


def test_entra_group_follows_the_same_group_rule():
    b = tenant().sku(WPA).user("ann", direct={E3: []})
    b.group("Licensed", members=["ann"], entra={WPA: []})
    assert errors(plan_for(b, ""), b, "ann") == {WPA: "DependencyViolation"}


@pytest.mark.parametrize(
    ("policy", "country", "location", "error"),
    [
        ('"problem"', "US", None, "ProhibitedInUsageLocationViolation"),
        ('"tenant"', "US", "US", None),
        ('"tenant"', None, None, "ProhibitedInUsageLocationViolation"),
        ('"gb"', "US", "GB", None),
    ],
)
def test_usage_location_policy(policy, country, location, error):
    b = TenantBuilder(country=country).sku(E3).user("ann", location=None)
    b.group("Sales", members=["ann"])
    plan = plan_for(b, E3_RULE + f"[policy]\nusage_location = {policy}\n")
    assert user_plan(plan, b, "ann").usage_location == location
    assert errors(plan, b, "ann") == ({E3: error} if error else {})


def test_entra_groups_do_not_need_a_usage_location():
    b = tenant().user("ann", location=None).group("Licensed", members=["ann"], entra={E3: []})
    assert plan_for(b, "").problems == ()


@pytest.mark.parametrize("status", ["Suspended", "LockedOut", "Deleted"])
def test_a_dead_subscription_gives_no_new_seats_but_holders_keep_theirs(status):
    b = tenant().sku(E3, enabled=10, status=status).user("holder", direct={E3: []}).user("new")
    b.group("Sales", members=["holder", "new"])
    plan = plan_for(b, E3_RULE)
    assert errors(plan, b, "new") == {E3: "CountViolation"}
    assert errors(plan, b, "holder") == {}


def test_a_failing_source_never_takes_away_a_held_licence():
    b = tenant().sku(EMS, enabled=0, consumed=0).user("ann", direct={E3: []})
    b.group("Sales", members=["ann"])
    ledger = {
        (object_id("ann"), b.sku_id(E3)): Ownership(
            object_id("ann"), b.sku_id(E3), (object_id("Sales"),), None
        )
    }
    plan = plan_for(b, sales_rule(f'{{ sku = "{E3}" }}', f'{{ sku = "{EMS}" }}'), ledger)
    assert plan.changes == ()
    assert errors(plan, b, "ann") == {EMS: "CountViolation", E3: "Other"}
    assert (object_id("ann"), b.sku_id(E3)) in plan.ledger


def test_problem_errors_use_graph_vocabulary():
    assert {e.value for e in LicenseError} >= {
        "CountViolation",
        "MutuallyExclusiveViolation",
        "DependencyViolation",
        "ProhibitedInUsageLocationViolation",
        "Other",
    }
