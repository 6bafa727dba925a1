"""Typed inputs of the engine: resolved rules, policy and service-plan compatibility tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from licsync.engine.filters import Expr

RULE_SOURCE = "rule:"  # the source id of a rule with no group: "rule:" + its name


@dataclass(frozen=True, slots=True)
class Rule:
    """A licsync rule resolved against the tenant: the members of a group, the users a filter
    selects, or the members a filter selects in a group, get SKUs with plans disabled."""

    group_id: str | None
    licenses: tuple[tuple[str, frozenset[str]], ...]  # (sku id, disabled plan ids)
    nested: bool = False
    filter: Expr | None = None
    name: str | None = None

    @property
    def source_id(self) -> str:
        """The id its licences are recorded under: the group's, or "rule:" + the rule's name."""
        return self.group_id if self.group_id is not None else RULE_SOURCE + (self.name or "")


@dataclass(frozen=True, slots=True)
class PlanRules:
    """Which service plans cannot be held together, and which need another plan (by plan name)."""

    conflicts: tuple[frozenset[str], ...] = ()
    dependencies: dict[str, frozenset[str]] = field(default_factory=dict)


class UsageLocationMode(StrEnum):
    PROBLEM = "problem"  # record a problem, give no licence (default)
    TENANT = "tenant"  # set the tenant's country on the user first
    FIXED = "fixed"  # set a fixed two-letter code first


@dataclass(frozen=True, slots=True)
class Policy:
    usage_location: UsageLocationMode = UsageLocationMode.PROBLEM
    usage_location_code: str | None = None  # with FIXED
    license_disabled_accounts: bool = True
    license_guests: bool = True
    plan_rules: PlanRules = field(default_factory=PlanRules)
