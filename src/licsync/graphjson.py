"""Graph's JSON shapes ↔ the tenant model: the codec the live reader, the cached tenant view
and snapshot files share.

The `parse_*` functions read what Graph returns for the properties licsync `$select`s; the
`*_json` functions write a model object back in the same shape, so `parse_*(*_json(x)) == x`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from licsync.model import (
    Assignment,
    AssignmentState,
    Group,
    LicenseError,
    ServicePlan,
    Sku,
    User,
    guid,
)

USER_TYPE = "#microsoft.graph.user"


GROUP_TYPE = "#microsoft.graph.group"


class ShapeError(ValueError):
    """A Graph object lacks a property licsync needs or has one of the wrong type."""


def _require(obj: Mapping[str, Any], key: str) -> Any:
    value = obj.get(key)
    if value is None:
        raise ShapeError(f"missing required property {key!r}")
    return value


@lru_cache(maxsize=65536)
def _plan_set(values: tuple[str, ...]) -> frozenset[str]:
    return frozenset(sys.intern(guid(v)) for v in values)


@lru_cache(maxsize=65536)
def _shared_id(value: str) -> str:
    """A SKU or group id that many users repeat, as one shared string."""
    return sys.intern(guid(value))


@lru_cache(maxsize=1024)
def _word(value: str) -> str:
    """A short repeated value (country, user type) as one shared string."""
    return sys.intern(value.strip())


@lru_cache(maxsize=65536)
def _assignment(sku: str, disabled: tuple[str, ...]) -> Assignment:
    return Assignment(_shared_id(sku), _plan_set(disabled) if disabled else frozenset())


@lru_cache(maxsize=65536)
def _state(
    sku: str, group: str | None, disabled: tuple[str, ...], state: str, error: str | None
) -> AssignmentState:
    return AssignmentState(
        sku_id=_shared_id(sku),
        assigned_by_group=_shared_id(group) if group else None,
        disabled_plans=_plan_set(disabled) if disabled else frozenset(),
        state=state.strip(),
        error=LicenseError.parse(error),
    )


def parse_assignment(obj: Mapping[str, Any]) -> Assignment:
    """One `assignedLicenses` entry; equal entries share one object (tenants repeat a few)."""
    return _assignment(_require(obj, "skuId"), tuple(obj.get("disabledPlans") or ()))


def parse_state(obj: Mapping[str, Any]) -> AssignmentState:
    """One `licenseAssignmentStates` entry, shared like `parse_assignment`'s."""
    return _state(
        _require(obj, "skuId"),
        obj.get("assignedByGroup") or None,
        tuple(obj.get("disabledPlans") or ()),
        obj.get("state") or "Active",
        obj.get("error"),
    )


def parse_user(obj: Mapping[str, Any]) -> User:
    states = obj.get("licenseAssignmentStates")
    location = obj.get("usageLocation")
    return User(
        id=guid(_require(obj, "id")),
        user_principal_name=obj.get("userPrincipalName") or obj["id"],
        account_enabled=obj.get("accountEnabled") is not False,
        usage_location=_word(location.upper()) if location and location.strip() else None,
        user_type=_word(obj.get("userType") or "Member"),
        assigned_licenses=tuple([parse_assignment(a) for a in obj.get("assignedLicenses") or ()]),
        license_assignment_states=None
        if states is None
        else tuple([parse_state(s) for s in states]),
    )


def split_members(members: Iterable[Mapping[str, Any]]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split directory objects into (user ids, group ids); devices and the rest are ignored."""
    users: list[str] = []
    groups: list[str] = []
    for member in members:
        kind = member.get("@odata.type", USER_TYPE)
        if kind == USER_TYPE:
            users.append(guid(_require(member, "id")))
        elif kind == GROUP_TYPE:
            groups.append(guid(_require(member, "id")))
    return tuple(users), tuple(groups)


def parse_group(obj: Mapping[str, Any]) -> Group:
    users, groups = split_members(obj.get("members") or ())
    return Group(
        id=guid(_require(obj, "id")),
        display_name=obj.get("displayName") or obj["id"],
        security_enabled=bool(obj.get("securityEnabled")),
        mail_enabled=bool(obj.get("mailEnabled")),
        group_types=tuple(obj.get("groupTypes") or ()),
        assigned_licenses=tuple(parse_assignment(a) for a in obj.get("assignedLicenses") or ()),
        member_users=users,
        member_groups=groups,
    )


def parse_sku(obj: Mapping[str, Any]) -> Sku:
    prepaid = obj.get("prepaidUnits") or {}
    return Sku(
        id=guid(_require(obj, "skuId")),
        part_number=_require(obj, "skuPartNumber").strip(),
        applies_to=obj.get("appliesTo") or "User",
        capability_status=obj.get("capabilityStatus") or "Enabled",
        enabled_units=int(prepaid.get("enabled") or 0),
        consumed_units=int(obj.get("consumedUnits") or 0),
        plans=tuple(
            ServicePlan(
                guid(_require(p, "servicePlanId")),
                _require(p, "servicePlanName"),
                p.get("appliesTo") or "User",
            )
            for p in obj.get("servicePlans") or ()
        ),
    )


def _licences_json(group_or_user: User | Group) -> list[dict[str, Any]]:
    return [
        {"skuId": a.sku_id, "disabledPlans": sorted(a.disabled_plans)}
        for a in group_or_user.assigned_licenses
    ]


def user_json(user: User) -> dict[str, Any]:
    """A user as Graph sends it to the reader's `$select`; `parse_user` reads it back."""
    data: dict[str, Any] = {
        "id": user.id,
        "userPrincipalName": user.user_principal_name,
        "accountEnabled": user.account_enabled,
        "usageLocation": user.usage_location,
        "userType": user.user_type,
        "assignedLicenses": _licences_json(user),
    }
    if user.license_assignment_states is not None:
        data["licenseAssignmentStates"] = [
            {
                "skuId": s.sku_id,
                "assignedByGroup": s.assigned_by_group,
                "disabledPlans": sorted(s.disabled_plans),
                "state": s.state,
                "error": s.error.value if s.error else "None",
            }
            for s in user.license_assignment_states
        ]
    return data


def group_json(group: Group) -> dict[str, Any]:
    """A group's shell as Graph sends it with the reader's `$select` (members are kept apart)."""
    return {
        "id": group.id,
        "displayName": group.display_name,
        "securityEnabled": group.security_enabled,
        "mailEnabled": group.mail_enabled,
        "groupTypes": list(group.group_types),
        "assignedLicenses": _licences_json(group),
    }


def sku_json(sku: Sku) -> dict[str, Any]:
    """A `subscribedSku` with the properties licsync reads."""
    return {
        "skuId": sku.id,
        "skuPartNumber": sku.part_number,
        "appliesTo": sku.applies_to,
        "capabilityStatus": sku.capability_status,
        "consumedUnits": sku.consumed_units,
        "prepaidUnits": {"enabled": sku.enabled_units, "suspended": 0, "warning": 0},
        "servicePlans": [
            {"servicePlanId": p.id, "servicePlanName": p.name, "appliesTo": p.applies_to}
            for p in sku.plans
        ],
    }
