"""From a tenant and a validated config to a plan: resolve the rules, then run the engine."""

from __future__ import annotations

from collections.abc import Sequence

from licsync.config import Config
from licsync.config.rules import resolve_rules
from licsync.engine import compute_plan
from licsync.engine.inputs import Rule
from licsync.model import Ledger, Plan, Tenant


def make_plan(
    tenant: Tenant,
    config: Config,
    ledger: Ledger | None = None,
    rules: Sequence[Rule] | None = None,
) -> Plan:
    """Raise ConfigError before computing anything if a rule does not resolve. `rules`: the
    config's rules already resolved against `tenant`."""
    if rules is None:
        rules = resolve_rules(tenant, config)
    return compute_plan(tenant, rules, config.policy(), ledger)
