"""Graph's JSON shapes ↔ the tenant model: the codec the live reader, the cached tenant view
and snapshot files share.

The `parse_*` functions read what Graph returns for the properties licsync `$select`s; the
`*_json` functions write a model object back in the same shape, so `parse_*(*_json(x)) == x`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from licsync.engine.filters import (
    CORE_GRAPH_PROPERTIES,
    PROPERTIES,
    AttributeValue,
    PropertyType,
)
from licsync.model import (
    Assignment,
    AssignmentState,
    Group,
    LicenseError,
    ServicePlan,
    Sku,
    User,
)
from licsync.validation import shown

USER_TYPE = "#microsoft.graph.user"


GROUP_TYPE = "#microsoft.graph.group"


class ShapeError(ValueError):
    """A Graph object lacks a property licsync needs or has one of the wrong type."""


_GUID = re.compile(r"\s*[0-9A-Fa-f]{8}-(?:[0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}\s*")
_GUID_MATCH = _GUID.fullmatch
MAX_UNITS = 2**31 - 1  # prepaidUnits and consumedUnits are Int32 in Graph's schema
GUID_EXAMPLE = "6fd2c87f-b296-42f0-b197-1e91e994b900"


def _require(obj: Mapping[str, Any], key: str) -> Any:
    value = obj.get(key)
    if value is None:
        raise ShapeError(f"missing required property {key!r}")
    return value


def _text(obj: Mapping[str, Any], key: str, *, required: bool = False) -> str | None:
    """A string property (None when absent and not required)."""
    value = _require(obj, key) if required else obj.get(key)
    if value is not None and not isinstance(value, str):
        raise ShapeError(f"{key!r} must be a string, got {shown(value)}")
    return value


def _id(value: Any, key: str) -> str:
    """A Graph object id: a GUID in any case, returned in licsync's canonical form."""
    if type(value) is not str or _GUID_MATCH(value) is None:
        raise ShapeError(f"{key!r} must be a GUID such as {GUID_EXAMPLE}, got {shown(value)}")
    return value.strip().lower()  # guid()


@dataclass(frozen=True, slots=True)
class Organization:
    """What licsync takes from `GET /organization`: the tenant id and the tenant's country."""

    tenant_id: str | None
    country: str | None


def parse_organization(body: Any) -> Organization:
    """The organization of a `GET /organization` reply (a collection) or a snapshot (an object
    or a list of one); a missing property is None, one of the wrong shape raises ShapeError."""
    if isinstance(body, dict) and "value" in body:
        body = body["value"]
        if not isinstance(body, list):
            raise ShapeError(f"value must be a list, got {shown(body)}")
    if isinstance(body, list):
        body = body[0] if body else {}
    org = body if isinstance(body, dict) else {}
    tenant_id, country = org.get("id"), org.get("countryLetterCode")
    if tenant_id is not None and (type(tenant_id) is not str or _GUID_MATCH(tenant_id) is None):
        raise ShapeError(f"id must be a GUID such as {GUID_EXAMPLE}, got {shown(tenant_id)}")
    if country is not None and not isinstance(country, str):
        raise ShapeError(f"countryLetterCode must be a string, got {shown(country)}")
    return Organization(
        None if tenant_id is None else tenant_id.strip().lower(),
        country.strip().upper() if country and country.strip() else None,
    )


def _list(obj: Mapping[str, Any], key: str) -> list[Any]:
    """A list property (empty when absent); a string is refused, not split into characters."""
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ShapeError(f"{key!r} must be a list, got {shown(value)}")
    return value


def _texts(obj: Mapping[str, Any], key: str) -> tuple[str, ...]:
    values = tuple(_list(obj, key))
    for value in values:
        if not isinstance(value, str):
            raise ShapeError(f"{key!r} must list strings, got {shown(value)}")
    return values


def _flag(obj: Mapping[str, Any], key: str, default: bool) -> bool:
    value = obj.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ShapeError(f"{key!r} must be true or false, got {shown(value)}")
    return value


def _units(obj: Mapping[str, Any], key: str) -> int:
    value = obj.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_UNITS:
        raise ShapeError(
            f"{key!r} must be a whole number from 0 to {MAX_UNITS}, got {shown(value)}"
        )
    return value


def _object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ShapeError(f"{what} must be a JSON object, got {shown(value)}")
    return value


@lru_cache(maxsize=65536)
def _plan_set(values: tuple[str, ...]) -> frozenset[str]:
    return frozenset(sys.intern(_id(v, "disabledPlans")) for v in values)


@lru_cache(maxsize=65536)
def _shared_id(value: str, key: str = "skuId") -> str:
    """A SKU or group id that many users repeat, as one shared string."""
    return sys.intern(_id(value, key))


@lru_cache(maxsize=1024)
def _word(value: str) -> str:
    """A short repeated value (country, user type) as one shared string."""
    return sys.intern(value.strip())


@lru_cache(maxsize=65536)
def _assignment(sku: Any, disabled: tuple[Any, ...]) -> Assignment:
    return Assignment(_shared_id(_string(sku, "skuId")), _plans(disabled))


@lru_cache(maxsize=65536)
def _state(
    sku: Any, group: Any, disabled: tuple[Any, ...], state: Any, error: Any
) -> AssignmentState:
    group = _string(group, "assignedByGroup", optional=True)
    return AssignmentState(
        sku_id=_shared_id(_string(sku, "skuId")),
        assigned_by_group=_shared_id(group, "assignedByGroup") if group else None,
        disabled_plans=_plans(disabled),
        state=(_string(state, "state", optional=True) or "Active").strip(),
        error=LicenseError.parse(_string(error, "error", optional=True)),
    )


def _string(value: Any, key: str, *, optional: bool = False) -> Any:
    if value is None and not optional:
        raise ShapeError(f"missing required property {key!r}")
    if value is not None and type(value) is not str:
        raise ShapeError(f"{key!r} must be a string, got {shown(value)}")
    return value


def _plans(disabled: tuple[Any, ...]) -> frozenset[str]:
    for value in disabled:
        if type(value) is not str:
            raise ShapeError(f"'disabledPlans' must list plan ids, got {shown(value)}")
    return _plan_set(disabled) if disabled else frozenset()


def _disabled(obj: Mapping[str, Any]) -> tuple[Any, ...]:
    disabled = obj.get("disabledPlans")
    if not disabled:
        return ()
    if type(disabled) is not list:
        raise ShapeError(f"'disabledPlans' must be a list, got {shown(disabled)}")
    return tuple(disabled)


def _cached(make: Any, *args: Any) -> Any:
    """`make(*args)` through its cache; a value that cannot be a cache key (a list or an
    object where a string belongs) is refused like any other wrong type."""
    try:
        return make(*args)
    except TypeError:
        raise ShapeError(
            "skuId, assignedByGroup, disabledPlans, state and error must be strings"
        ) from None


def parse_assignment(obj: Mapping[str, Any]) -> Assignment:
    """One `assignedLicenses` entry; equal entries share one object (tenants repeat a few)."""
    if type(obj) is not dict:
        raise ShapeError(f"an assignedLicenses entry must be a JSON object, got {shown(obj)}")
    return _cached(_assignment, obj.get("skuId"), _disabled(obj))


def parse_state(obj: Mapping[str, Any]) -> AssignmentState:
    """One `licenseAssignmentStates` entry, shared like `parse_assignment`'s."""
    if type(obj) is not dict:
        raise ShapeError(f"a licenseAssignmentStates entry must be a JSON object, got {shown(obj)}")
    get = obj.get
    return _cached(
        _state, get("skuId"), get("assignedByGroup"), _disabled(obj), get("state"), get("error")
    )


@lru_cache(maxsize=1024)
def _location(location: str) -> str | None:
    """A usage location as one shared upper-case string; None for an empty one."""
    code = location.strip()
    if not code:
        return None
    if len(code) != 2 or not code.isalpha():
        raise ShapeError(f"'usageLocation' must be a two-letter country code, got {shown(code)}")
    return sys.intern(code.upper())


# Properties a filter may read that the User model does not already carry, by Graph name.
_EXTRA = {
    p.graph: p for p in PROPERTIES.values() if p.graph not in CORE_GRAPH_PROPERTIES and not p.key
}
_EXTENSIONS = {p.key: p.name for p in PROPERTIES.values() if p.key}
EXTENSIONS = "onPremisesExtensionAttributes"


def _texts_of(name: str, value: Any) -> tuple[str, ...]:
    if type(value) is not list or not all(type(v) is str for v in value):
        raise ShapeError(f"{shown(name)} must be a list of strings, got {shown(value)}")
    return tuple([sys.intern(v) for v in value])


def _text_of(name: str, value: Any) -> str:
    if type(value) is not str:
        raise ShapeError(f"{shown(name)} must be a string, got {shown(value)}")
    return sys.intern(value)


@lru_cache(maxsize=16)
def _reading(wanted: tuple[str, ...]) -> tuple[tuple[tuple[str, str, bool], ...], bool]:
    """For `wanted` Graph names: (Graph name, rule name, is a collection) of each plain
    property, and whether the extension attributes are wanted."""
    fields = tuple(
        (g, _EXTRA[g].name, _EXTRA[g].type is PropertyType.COLLECTION)
        for g in wanted
        if g in _EXTRA
    )
    return fields, EXTENSIONS in wanted


@lru_cache(maxsize=65536)
def _shared(attributes: tuple[tuple[str, AttributeValue], ...]) -> Any:
    return attributes


def parse_attributes(
    obj: Mapping[str, Any], wanted: tuple[str, ...]
) -> tuple[tuple[str, AttributeValue], ...]:
    """The `wanted` filter properties (Graph names beyond the core ones) of `obj`, by rule
    name, sorted; unset ones (null, absent, empty) are left out. Equal tuples are one object."""
    fields, with_extensions = _reading(wanted)
    found: list[tuple[str, AttributeValue]] = []
    get = obj.get
    intern = sys.intern
    for graph_name, name, collection in fields:
        value = get(graph_name)
        if value is None:
            continue
        if type(value) is str and not collection:
            found.append((name, intern(value)))
        elif collection:
            if value != []:
                found.append((name, _texts_of(graph_name, value)))
        else:
            found.append((name, _text_of(graph_name, value)))
    extensions = get(EXTENSIONS) if with_extensions else None
    if extensions is not None:
        for key, value in _object(extensions, "'onPremisesExtensionAttributes'").items():
            if value is not None and key in _EXTENSIONS:
                found.append((_EXTENSIONS[key], _text_of(key, value)))
    if not found:
        return ()
    found.sort()
    return _cached(_shared, tuple(found))


def attributes_json(user: User) -> dict[str, Any]:
    """`user.attributes` as Graph's properties (`parse_attributes` reads them back)."""
    data: dict[str, Any] = {}
    extensions: dict[str, Any] = {}
    for name, value in user.attributes:
        prop = PROPERTIES[name.casefold()]
        if prop.key:
            extensions[prop.key] = value
        else:
            data[prop.graph] = list(value) if isinstance(value, tuple) else value
    if extensions:
        data[EXTENSIONS] = extensions
    return data


def parse_user(obj: Mapping[str, Any], wanted: tuple[str, ...] = ()) -> User:
    """A user from Graph JSON; `wanted`: the filter properties to keep (Graph names)."""
    get = obj.get
    user_id = _id(_require(obj, "id"), "id")
    upn, location, kind = get("userPrincipalName"), get("usageLocation"), get("userType")
    if type(upn) is not str:
        upn = _text(obj, "userPrincipalName") or user_id
    if location is not None and type(location) is not str:
        _text(obj, "usageLocation")
    if kind is not None and type(kind) is not str:
        _text(obj, "userType")
    enabled = get("accountEnabled")
    assigned = get("assignedLicenses")
    states = get("licenseAssignmentStates")
    return User(
        id=user_id,
        user_principal_name=upn or user_id,
        account_enabled=True if enabled is None else _flag(obj, "accountEnabled", True),
        usage_location=_location(location) if location else None,
        user_type=_word(kind or "Member"),
        assigned_licenses=tuple([parse_assignment(a) for a in assigned])
        if type(assigned) is list
        else tuple(_list(obj, "assignedLicenses")),
        license_assignment_states=None
        if states is None
        else tuple([parse_state(s) for s in _list(obj, "licenseAssignmentStates")]),
        attributes=parse_attributes(obj, wanted) if wanted else (),
    )


def split_members(members: Iterable[Mapping[str, Any]]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split directory objects into (user ids, group ids); devices and the rest are ignored."""
    users: list[str] = []
    groups: list[str] = []
    for member in members:
        if type(member) is not dict:
            raise ShapeError(f"a member must be a JSON object, got {shown(member)}")
        kind = member.get("@odata.type", USER_TYPE)
        if kind == USER_TYPE:
            users.append(_id(member.get("id"), "members[].id"))
        elif kind == GROUP_TYPE:
            groups.append(_id(member.get("id"), "members[].id"))
    return tuple(users), tuple(groups)


def parse_group(obj: Mapping[str, Any]) -> Group:
    group_id = _id(_require(obj, "id"), "id")
    users, groups = split_members(_list(obj, "members"))
    return Group(
        id=group_id,
        display_name=_text(obj, "displayName") or group_id,
        security_enabled=_flag(obj, "securityEnabled", False),
        mail_enabled=_flag(obj, "mailEnabled", False),
        group_types=_texts(obj, "groupTypes"),
        assigned_licenses=tuple(parse_assignment(a) for a in _list(obj, "assignedLicenses")),
        member_users=users,
        member_groups=groups,
    )


def _plan(obj: Any) -> ServicePlan:
    obj = _object(obj, "a servicePlans entry")
    return ServicePlan(
        _id(_require(obj, "servicePlanId"), "servicePlanId"),
        _text(obj, "servicePlanName", required=True),  # type: ignore[arg-type]
        _text(obj, "appliesTo") or "User",
    )


def parse_sku(obj: Mapping[str, Any]) -> Sku:
    prepaid = _object(obj.get("prepaidUnits") or {}, "'prepaidUnits'")
    return Sku(
        id=_id(_require(obj, "skuId"), "skuId"),
        part_number=_text(obj, "skuPartNumber", required=True).strip(),  # type: ignore[union-attr]
        applies_to=_text(obj, "appliesTo") or "User",
        capability_status=_text(obj, "capabilityStatus") or "Enabled",
        enabled_units=_units(prepaid, "enabled"),
        consumed_units=_units(obj, "consumedUnits"),
        plans=tuple(_plan(p) for p in _list(obj, "servicePlans")),
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
    if user.attributes:
        data.update(attributes_json(user))
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
