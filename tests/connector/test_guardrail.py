"""The guardrail's verdict: how many removals a run may make, and rule groups that read empty."""

from __future__ import annotations

from licsync.config.settings import GuardrailSettings
from licsync.connector.guardrail import check_guardrail, emptied_rule_groups, licensed_users
from licsync.engine.inputs import Rule
from licsync.errors import GuardrailError
from licsync.model import Ownership
from tests.builders import TenantBuilder, object_id

E3 = "ENTERPRISEPACK"


def limits(count: int = 50, percent: float = 5.0) -> GuardrailSettings:
    return GuardrailSettings(max_removals=count, max_removal_percent=percent)


def test_the_limit_is_the_lower_of_the_count_and_the_share() -> None:
    # 1,000 licensed users at 5 %: 50, above the count of 30
    assert not check_guardrail(limits(30), removals=30, licensed=1000).tripped
    assert check_guardrail(limits(30), removals=31, licensed=1000).tripped
    # 200 licensed users at 5 %: 10, below the count
    assert not check_guardrail(limits(30), removals=10, licensed=200).tripped
    assert check_guardrail(limits(30), removals=11, licensed=200).tripped


def test_the_share_rounds_down_to_whole_removals() -> None:
    assert not check_guardrail(limits(), removals=9, licensed=199).tripped  # 9.95 → 9
    assert check_guardrail(limits(), removals=10, licensed=199).tripped


def test_a_tenant_without_licensed_users_allows_no_removal() -> None:
    assert not check_guardrail(limits(), removals=0, licensed=0).tripped
    assert check_guardrail(limits(), removals=1, licensed=0).tripped


def test_the_reason_names_both_settings_and_the_base() -> None:
    verdict = check_guardrail(limits(30, 2.5), removals=40, licensed=1000)
    assert verdict.removals == 40
    assert verdict.reasons == (
        "the plan removes 40 licence(s); the guardrail allows 25 (max_removals = 30, "
        "max_removal_percent = 2.5% of 1000 licensed users)",
    )


def test_allow_removals_approves_that_many_and_no_more() -> None:
    over = {"removals": 40, "licensed": 1000}
    approved = check_guardrail(limits(30), allow_removals=40, **over)
    assert not approved.tripped and approved.reasons  # the reason stays, for the report
    assert not check_guardrail(limits(30), allow_removals=400, **over).tripped
    assert check_guardrail(limits(30), allow_removals=39, **over).tripped


def test_a_rule_group_read_empty_trips_it_without_any_removal() -> None:
    verdict = check_guardrail(
        limits(), removals=0, licensed=10, emptied_groups=[("g-1", "Sales"), ("g-2", "Support")]
    )
    assert verdict.tripped
    assert verdict.reasons == (
        "rule group 'Sales' (g-1) reads empty, but licsync licensed members through it before",
        "rule group 'Support' (g-2) reads empty, but licsync licensed members through it before",
    )


def test_the_error_lists_every_reason_then_the_advice() -> None:
    verdict = check_guardrail(limits(0), removals=2, licensed=10, emptied_groups=[("g-1", "Sales")])
    error = verdict.error("Run again with --allow-removals 2.")
    assert isinstance(error, GuardrailError)
    assert str(error) == (
        "guardrail: nothing was written.\n"
        f"  - {verdict.reasons[0]}\n"
        f"  - {verdict.reasons[1]}\n"
        "Run again with --allow-removals 2."
    )


def _groups_tenant() -> TenantBuilder:
    b = TenantBuilder().sku(E3).user("ann", direct={E3: []}).user("ben").user("cat")
    b.group("Emptied").group("Kept", members=["ann"]).group("Never")
    b.group("Child", members=["ben"]).group("Parent", groups=["Child"])
    return b


def _owned(*groups: str) -> dict[tuple[str, str], Ownership]:
    """A ledger where licsync licensed ann through each of `groups` (one SKU per group)."""
    user = object_id("ann")
    return {(user, f"sku-{g}"): Ownership(user, f"sku-{g}", (object_id(g),), None) for g in groups}


def test_emptied_rule_groups_are_those_licsync_licensed_through() -> None:
    tenant = _groups_tenant().tenant()
    rules = [Rule(object_id(g), ()) for g in ("Emptied", "Kept", "Never")]
    ledger = _owned("Emptied", "Kept")
    assert emptied_rule_groups(tenant, rules, ledger) == ((object_id("Emptied"), "Emptied"),)
    assert emptied_rule_groups(tenant, rules, {}) == ()  # nothing licensed yet: nothing lost


def test_a_nested_rule_group_with_members_only_below_is_not_empty() -> None:
    tenant = _groups_tenant().tenant()
    ledger = _owned("Parent")
    nested = [Rule(object_id("Parent"), (), nested=True)]
    direct = [Rule(object_id("Parent"), (), nested=False)]
    assert emptied_rule_groups(tenant, nested, ledger) == ()
    assert emptied_rule_groups(tenant, direct, ledger) == ((object_id("Parent"), "Parent"),)


def test_licensed_users_counts_holders_of_any_licence_from_any_source() -> None:
    b = TenantBuilder().sku(E3).user("ann", direct={E3: []}).user("ben").user("cat")
    b.users["cat"]["assignedLicenses"] = [{"skuId": b.sku_id(E3), "disabledPlans": []}]
    b.users["cat"]["licenseAssignmentStates"] = [
        {
            "skuId": b.sku_id(E3),
            "disabledPlans": [],
            "assignedByGroup": object_id("Entra"),
            "state": "Active",
            "error": None,
        }
    ]
    assert licensed_users(b.tenant()) == 2  # ann directly, cat through a group; not ben
