"""Entra's licensing rules as data: conflicting plans, plan prerequisites and Graph's error texts.

Read from licsync's shipped data files (never from the engine), so the emulator stays an
independent second implementation of the rulebook.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True, slots=True)
class RuleTables:
    """Plan-name based rule tables: conflict groups and prerequisites."""

    conflict_groups: tuple[frozenset[str], ...]
    dependencies: dict[str, frozenset[str]]  # plan name -> any-of prerequisite plan names

    def conflicts(self, enabled: set[str]) -> list[tuple[str, str]]:
        """Pairs of enabled plan names that cannot be assigned together."""
        pairs: list[tuple[str, str]] = []
        for group in self.conflict_groups:
            hit = sorted(group & enabled)
            pairs.extend((hit[0], other) for other in hit[1:])
        return pairs

    def missing_prerequisites(self, enabled: set[str]) -> list[tuple[str, frozenset[str]]]:
        """Enabled plans none of whose prerequisites is enabled."""
        return [
            (plan, needs)
            for plan, needs in self.dependencies.items()
            if plan in enabled and not needs & enabled
        ]


def _read(name: str) -> dict:
    return json.loads((resources.files("licsync") / "data" / name).read_text(encoding="utf-8"))


@cache
def default_rules() -> RuleTables:
    """The conflict and dependency tables shipped in licsync/data."""
    conflicts = tuple(
        frozenset(group["plans"])
        for group in _read("mutually_exclusive_service_plans.json")["groups"]
    )
    deps = {
        d["plan"]: frozenset(d["requires_any_of"])
        for d in _read("service_plan_dependencies.json")["dependencies"]
    }
    return RuleTables(conflicts, deps)


# Graph's messages for assignLicense failures (rulebook section 4).
MSG_USAGE_LOCATION = "License assignment cannot be done for user with invalid usage location."
MSG_NO_SEATS = "Subscription with SKU {sku} does not have any available licenses."
MSG_EXCLUSIVE = "License assignment failed because service plans {a},{b} are mutually exclusive."
MSG_DEPENDENCY = (
    "License assignment failed because service plan {plan} depends on the service plan(s) {needs}."
)
MSG_UNKNOWN_SKU = "License {sku} does not correspond to a valid company License."
MSG_COMPANY_SKU = "License {sku} cannot be assigned to a user."
MSG_INHERITED = (
    "User license is inherited from a group membership and it cannot be removed directly from the "
    "user."
)
MSG_NOT_ASSIGNED = "User does not have a corresponding license."
# Entra docs, "When a licensed group is deleted": licences must be removed from a group first
# no published sample: the emulator's wording of Entra's refusal (docs/emulator.md)
MSG_ROLE_ASSIGNABLE = "Licenses cannot be assigned to a group that is assignable to roles."
MSG_DELETE_LICENSED_GROUP = (
    "You must remove all licenses assigned to a group before you can delete the group."
)
MSG_MISSING_PARAMS = (
    "One or more parameters of the operation 'assignLicense' are missing from the request payload. "
    "The missing parameters are: {names}."
)
MSG_BAD_PARAM = (
    "The parameter '{name}' in the request payload is not a valid parameter for the operation "
    "'assignLicense'."
)
MSG_NOT_FOUND = (
    "Resource '{id}' does not exist or one of its queried reference-property objects are not "
    "present."
)
