"""Run the engine the way the CLI does (TOML rules resolved against the tenant), and apply plans."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from licsync.config import parse_config
from licsync.connector.planning import make_plan
from licsync.model import Assignment, AssignmentState, Ledger, Plan, Tenant, UserPlan
from tests.builders import TenantBuilder


def plan_for(builder: TenantBuilder | Tenant, toml: str, ledger: Ledger | None = None) -> Plan:
    tenant = builder.tenant() if isinstance(builder, TenantBuilder) else builder
    return make_plan(tenant, parse_config(toml, Path("licsync.toml")), ledger)


def user_plan(plan: Plan, builder: TenantBuilder, name: str) -> UserPlan:
    """The user's entry; a user with no licence, rule or problem is not listed: an empty one."""
    user_id = builder.users[name]["id"]
    found = [u for u in plan.users if u.user_id == user_id]
    assert len(found) <= 1
    return found[0] if found else UserPlan(user_id, name, (), ())


def adds(plan: Plan, builder: TenantBuilder, name: str) -> dict[str, set[str]]:
    """part number → disabled plan names, for the user's addLicenses."""
    parts = {s["skuId"]: p for p, s in builder.skus.items()}
    names = {
        pl["servicePlanId"]: pl["servicePlanName"]
        for s in builder.skus.values()
        for pl in s["servicePlans"]
    }
    return {
        parts[a.sku_id]: {names[p] for p in a.disabled_plans}
        for a in user_plan(plan, builder, name).add_licenses
    }


def removes(plan: Plan, builder: TenantBuilder, name: str) -> set[str]:
    parts = {s["skuId"]: p for p, s in builder.skus.items()}
    return {parts[s] for s in user_plan(plan, builder, name).remove_licenses}


def errors(plan: Plan, builder: TenantBuilder, name: str) -> dict[str, str]:
    """part number → error, for the user's problems."""
    parts = {s["skuId"]: p for p, s in builder.skus.items()}
    user_id = builder.users[name]["id"]
    return {parts[p.sku_id]: p.error.value for p in plan.problems if p.user_id == user_id}


def apply_plan(tenant: Tenant, plan: Plan) -> Tenant:
    """What the tenant looks like once licsync's writes are made and Entra has processed."""
    users = dict(tenant.users)
    holders: dict[str, int] = {}
    for up in plan.users:
        user = users[up.user_id]
        direct = user.direct_licenses()
        for sku_id in up.remove_licenses:
            direct.pop(sku_id, None)
        for a in up.add_licenses:
            direct[a.sku_id] = a.disabled_plans
        states = [AssignmentState(s, None, d) for s, d in direct.items()] + [
            AssignmentState(s.sku_id, s.group_id, s.disabled_plans)
            for s in up.states
            if s.kind.value == "entra" and s.error is None
        ]
        combined: dict[str, frozenset[str]] = {}
        for state in states:
            previous = combined.get(state.sku_id)
            combined[state.sku_id] = (
                state.disabled_plans if previous is None else previous & state.disabled_plans
            )
        users[up.user_id] = replace(
            user,
            usage_location=up.usage_location or user.usage_location,
            assigned_licenses=tuple(Assignment(s, d) for s, d in combined.items()),
            license_assignment_states=tuple(states),
        )
    for user in users.values():
        for sku_id in user.held_skus():
            holders[sku_id] = holders.get(sku_id, 0) + 1
    skus = {
        sku_id: replace(sku, consumed_units=holders.get(sku_id, 0))
        for sku_id, sku in tenant.skus.items()
    }
    return replace(tenant, users=users, skus=skus)
