"""From a tenant and a config to a plan: rules resolve first, the config's policy and the ledger
reach the engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from licsync.config import parse_config
from licsync.config.rules import resolve_rules
from licsync.connector.planning import make_plan
from licsync.errors import ConfigError
from licsync.model import Ownership
from tests.builders import TenantBuilder, object_id

E3 = "ENTERPRISEPACK"


def config(*groups: str, usage_location: str = "problem"):
    rules = "".join(
        f'[[group_licenses]]\ngroup = "{g}"\nlicenses = [{{ sku = "{E3}" }}]\n' for g in groups
    )
    text = f'[policy]\nusage_location = "{usage_location}"\n{rules}'
    return parse_config(text, Path("licsync.toml"))


def tenant() -> TenantBuilder:
    b = TenantBuilder(country="GB").sku(E3).user("ann").user("ben", location=None)
    return b.group("Sales", members=["ann", "ben"]).group("Support")


def test_a_rule_that_does_not_resolve_is_a_config_error_naming_every_one() -> None:
    with pytest.raises(ConfigError) as caught:
        make_plan(tenant().tenant(), config("Sales", "Marketing", "Finance"))
    problems = " ".join(caught.value.problems)
    assert "Marketing" in problems and "Finance" in problems and "Sales" not in problems


def test_rules_already_resolved_are_used_as_given() -> None:
    b = tenant()
    resolved = resolve_rules(b.tenant(), config("Support"))  # Support has no members
    plan = make_plan(b.tenant(), config("Marketing"), rules=resolved)  # not resolved again
    assert plan.changes == () and plan.problems == ()
    plan = make_plan(
        b.tenant(), config("Marketing"), rules=resolve_rules(b.tenant(), config("Sales"))
    )
    assert {c.user_id for c in plan.changes} == {object_id("ann")}


@pytest.mark.parametrize(("mode", "located"), [("problem", None), ("tenant", "GB"), ("FR", "FR")])
def test_the_configs_usage_location_policy_reaches_the_engine(
    mode: str, located: str | None
) -> None:
    plan = make_plan(tenant().tenant(), config("Sales", usage_location=mode))
    ben = next(u for u in plan.users if u.user_id == object_id("ben"))
    assert ben.usage_location == located
    assert bool(ben.add_licenses) is (located is not None)
    assert any(p.user_id == object_id("ben") for p in plan.problems) is (located is None)


def test_the_ledger_decides_which_licences_licsync_may_take_back() -> None:
    b = tenant()
    b.group("Sales", members=[])  # ann left the group; she holds E3 directly
    b.user("ann", direct={E3: []})
    ann, e3 = object_id("ann"), b.sku_id(E3)
    owned = {(ann, e3): Ownership(ann, e3, (object_id("Sales"),), None)}
    assert make_plan(b.tenant(), config("Sales")).changes == ()  # not licsync's: kept
    (change,) = make_plan(b.tenant(), config("Sales"), owned).changes
    assert change.user_id == ann and change.remove_licenses == (e3,)
