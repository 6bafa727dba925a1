"""Tenant snapshot files: one JSON object of Graph's own shapes (docs/snapshot.md).

    {"organization": {"countryLetterCode": "US", ...},
     "subscribedSkus": [subscribedSku, ...],
     "users": [user, ...],
     "groups": [group + {"members": [directoryObject, ...]}, ...]}

Every object is what Graph returns for it, so a real tenant's responses can be saved and
replayed; objects are read and written with `licsync.graphjson`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from licsync.errors import SnapshotError
from licsync.graphjson import (
    GROUP_TYPE,
    USER_TYPE,
    Organization,
    ShapeError,
    group_json,
    parse_group,
    parse_organization,
    parse_sku,
    parse_user,
    sku_json,
    user_json,
)
from licsync.jsonstream import JsonCursor
from licsync.model import Tenant
from licsync.validation import shown

MAX_LISTED = 50  # problems listed one by one; the rest are counted


class _Problems:
    """Every problem of one snapshot file, reported together at the end."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.found: list[str] = []

    def add(self, message: str) -> None:
        self.found.append(message)

    def raise_any(self) -> None:
        if not self.found:
            return
        listed = self.found[:MAX_LISTED]
        more = len(self.found) - len(listed)
        lines = "\n".join(f"  - {p}" for p in listed)
        tail = f"\n  - … and {more} more" if more else ""
        raise SnapshotError(
            f"{self.path}: {len(self.found)} problem(s); fix or remove those objects:\n"
            f"{lines}{tail}"
        )


def _ident(item: Any) -> str:
    ident = item.get("id") or item.get("skuId") if isinstance(item, dict) else None
    return f" (id {shown(ident)})" if ident else ""


def _parse_all(problems: _Problems, section: str, items: Any, parse: Any) -> dict[str, Any]:
    """Parse a section's objects (a list, or an iterator streaming them) keyed by id; a bad or
    repeated object is a problem, and the others are still checked."""
    if not isinstance(items, (list, Iterator)):
        problems.add(f"{section!r} must be a list of Graph objects")
        return {}
    parsed: dict[str, Any] = {}
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise ShapeError("is not a JSON object")
            obj = parse(item)
        except (ShapeError, AttributeError, TypeError, ValueError) as exc:
            problems.add(f"{section}[{index}]{_ident(item)}: {exc}")
            continue
        if obj.id in first:
            problems.add(f"{section}[{index}]: id {obj.id} is also {section}[{first[obj.id]}]")
            continue
        first[obj.id] = index
        parsed[obj.id] = obj
    return parsed


def tenant_json(tenant: Tenant) -> dict[str, Any]:
    """The whole tenant as a snapshot (docs/snapshot.md) that `load_snapshot` reads back."""
    return {
        "organization": {
            **({"id": tenant.tenant_id} if tenant.tenant_id else {}),
            "countryLetterCode": tenant.country,
        },
        "subscribedSkus": [sku_json(s) for s in tenant.skus.values()],
        "users": [user_json(u) for u in tenant.users.values()],
        "groups": [
            {
                **group_json(g),
                "members": [{"@odata.type": USER_TYPE, "id": m} for m in g.member_users]
                + [{"@odata.type": GROUP_TYPE, "id": m} for m in g.member_groups],
            }
            for g in tenant.groups.values()
        ],
    }


PARSERS = {"subscribedSkus": parse_sku, "users": parse_user, "groups": parse_group}


NOT_A_SNAPSHOT = "a snapshot is a JSON object with 'subscribedSkus', 'users' and 'groups'"


def _organization(problems: _Problems, organization: Any) -> Organization:
    """The organization's country and id (the tenant id, kept so a replay is the same tenant)."""
    try:
        return parse_organization(organization)
    except ShapeError as exc:
        problems.add(f"organization.{exc}")
        return Organization(None, None)


def _tenant(problems: _Problems, organization: Any, sections: dict[str, dict[str, Any]]) -> Tenant:
    missing = [k for k in PARSERS if k not in sections]
    if missing:
        problems.add(f"missing top-level key(s) {', '.join(missing)}")
    org = _organization(problems, organization)
    problems.raise_any()
    return Tenant(
        country=org.country,
        tenant_id=org.tenant_id,
        skus=sections["subscribedSkus"],
        users=sections["users"],
        groups=sections["groups"],
    )


def _parsers(user_properties: Iterable[str]) -> dict[str, Any]:
    wanted = tuple(user_properties)
    if not wanted:
        return PARSERS
    return {**PARSERS, "users": partial(parse_user, wanted=wanted)}


def tenant_from_json(
    data: Any, path: str = "<snapshot>", user_properties: Iterable[str] = ()
) -> Tenant:
    """Build a tenant from a decoded snapshot object; errors name `path` and the bad objects.
    `user_properties`: the filter properties to keep on users (`Config.filter_properties`)."""
    if not isinstance(data, dict):
        raise SnapshotError(f"{path}: {NOT_A_SNAPSHOT}")
    problems = _Problems(path)
    sections = {
        key: _parse_all(problems, key, data[key], parse)
        for key, parse in _parsers(user_properties).items()
        if key in data
    }
    return _tenant(problems, data.get("organization"), sections)


def load_snapshot(path: Path, user_properties: Iterable[str] = ()) -> Tenant:
    """Read a snapshot file; a missing file, bad JSON or bad objects raise SnapshotError
    listing every problem. `user_properties`: as for `tenant_from_json`.

    Users and groups are parsed one by one as the file is decoded, so a 100k-user snapshot
    never exists as dicts all at once."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot read snapshot: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise SnapshotError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    cursor = JsonCursor(text)
    if cursor.peek() != "{":
        raise SnapshotError(f"{path}: {NOT_A_SNAPSHOT}")
    problems = _Problems(str(path))
    organization: Any = None
    sections: dict[str, dict[str, Any]] = {}
    parsers = _parsers(user_properties)
    try:
        for key in cursor.members():
            if key in parsers:
                items = cursor.elements() if cursor.peek() == "[" else cursor.value()
                sections[key] = _parse_all(problems, key, items, parsers[key])
            elif key == "organization":
                organization = cursor.value()
            else:
                cursor.value()
        cursor.end()
    except json.JSONDecodeError as exc:
        raise SnapshotError(
            f"{path}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise SnapshotError(f"{path}: JSON nested too deeply to be a snapshot") from None
    return _tenant(problems, organization, sections)
