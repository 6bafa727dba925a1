"""Properties that must hold for every tenant: checked on random small tenants."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from licsync.reports.json_report import plan_document
from licsync.reports.names import Names
from tests.builders import TenantBuilder
from tests.engine.scenario import apply_plan, plan_for

SKUS = {
    "ENTERPRISEPACK": ["SWAY", "YAMMER_ENTERPRISE", "MCOSTANDARD", "EXCHANGE_S_ENTERPRISE"],
    "EMSPREMIUM": ["INTUNE_A", "AAD_PREMIUM_P2"],
    "MCOMEETADV": [],
    "DESKLESSPACK": ["SWAY"],
    "EXCHANGESTANDARD": [],
}
GROUPS = ["G1", "G2", "G3", "G4"]


@st.composite
def tenants(draw):
    """A random tenant and a random set of rules over it, as TOML."""
    b = TenantBuilder()
    parts = list(SKUS)
    for part in parts:
        b.sku(part, enabled=draw(st.integers(0, 6)), consumed=None)
    users = [f"u{i}" for i in range(draw(st.integers(1, 10)))]
    for name in users:
        direct = {
            p: draw(st.lists(st.sampled_from(SKUS[p]), unique=True)) if SKUS[p] else []
            for p in draw(st.lists(st.sampled_from(parts), unique=True, max_size=2))
        }
        b.user(
            name,
            location=draw(st.sampled_from(["US", "US", None])),
            guest=draw(st.booleans()),
            direct=direct,
        )
    for group in GROUPS:
        b.group(
            group,
            members=draw(st.lists(st.sampled_from(users), unique=True)),
            groups=draw(st.lists(st.sampled_from(GROUPS), unique=True, max_size=1)),
        )
    rules = []
    for group in draw(st.lists(st.sampled_from(GROUPS), unique=True, min_size=1)):
        licenses = []
        for part in draw(st.lists(st.sampled_from(parts), unique=True, min_size=1, max_size=2)):
            off = draw(st.lists(st.sampled_from(SKUS[part]), unique=True)) if SKUS[part] else []
            licenses.append(f'{{ sku = "{part}", disabled_plans = {off} }}')
        nested = str(draw(st.booleans())).lower()
        rules.append(
            f'[[group_licenses]]\ngroup = "{group}"\nnested = {nested}\n'
            f"licenses = [{', '.join(licenses)}]\n"
        )
    policy = draw(st.sampled_from(["", '[policy]\nusage_location = "tenant"\n']))
    return b, rules, policy


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(tenants())
def test_seats_are_never_over_allocated(case):
    b, rules, policy = case
    tenant = b.tenant()
    plan = plan_for(tenant, "".join(rules) + policy)
    for forecast in plan.skus:
        assert forecast.granted <= forecast.available
    after = apply_plan(tenant, plan)
    for sku_id, sku in after.skus.items():
        before = tenant.skus[sku_id]
        assert sku.consumed_units <= max(before.enabled_units, before.consumed_units)


@SETTINGS
@given(tenants(), st.randoms(use_true_random=False))
def test_rule_order_is_irrelevant(case, random):
    b, rules, policy = case
    tenant = b.tenant()
    shuffled = list(rules)
    random.shuffle(shuffled)
    first = plan_for(tenant, "".join(rules) + policy)
    second = plan_for(tenant, "".join(shuffled) + policy)
    names = Names(tenant)
    assert plan_document(first, names) == plan_document(second, names)


@SETTINGS
@given(tenants())
def test_applying_a_plan_then_planning_again_changes_nothing(case):
    b, rules, policy = case
    toml = "".join(rules) + policy
    tenant = b.tenant()
    plan = plan_for(tenant, toml)
    after = apply_plan(tenant, plan)
    again = plan_for(after, toml, plan.ledger)
    assert again.changes == ()
    assert again.ledger == plan.ledger
