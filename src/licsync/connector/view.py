"""The cached tenant view: what licsync remembers of the tenant between runs, as store rows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from licsync.config import Config
from licsync.connector.read_full import (
    groups_to_read,
)
from licsync.graphjson import (
    GROUP_TYPE,
    USER_TYPE,
    group_json,
    parse_group,
    parse_user,
    user_json,
)
from licsync.model import Group, Tenant
from licsync.store import CachedObjects, CacheRow, stale_rows

log = structlog.get_logger("licsync.reader")


VIEW_FORMAT = 1  # bump when the cached view's shape changes: older caches then read in full


def _members_json(members: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"@odata.type": kind, "id": mid} for mid, kind in members.items()]


def wanted_groups(
    shells: Mapping[str, Group], config: Config | None, members: Mapping[str, Mapping[str, str]]
) -> set[str]:
    """The groups whose direct members licsync needs: those rules name or Entra licenses, and
    for nested rules every group reachable through the memberships known in `members`."""
    needed, nested = groups_to_read(dict(shells), config)
    seen = {g for g in nested if g in shells}
    stack = list(seen)
    while stack:
        for child, kind in members.get(stack.pop(), {}).items():
            if kind == GROUP_TYPE and child in shells and child not in seen:
                seen.add(child)
                stack.append(child)
    return {g for g in needed if g in shells} | seen


def typed_members(users: Iterable[str], groups: Iterable[str]) -> dict[str, str]:
    """A group's user and group members as the view keeps them: id → `@odata.type`."""
    return {**dict.fromkeys(users, USER_TYPE), **dict.fromkeys(groups, GROUP_TYPE)}


@dataclass
class TenantView:
    """What licsync remembers of the tenant between runs (the state store's `tenant_cache`).

    `users` and `groups` hold Graph JSON (`USER_SELECT`, `GROUP_SELECT`); `members` the direct
    members (id → `@odata.type`) of the groups in `wanted_groups`; `stale` the users to re-read
    next run whatever the delta says (licsync wrote them: Graph does not report a change of
    `licenseAssignmentStates` alone).
    """

    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    members: dict[str, dict[str, str]] = field(default_factory=dict)
    stale: set[str] = field(default_factory=set)
    # the user properties attribute filters read, selected beyond USER_SELECT (Graph names)
    user_properties: tuple[str, ...] = ()

    @classmethod
    def from_tenant(cls, tenant: Tenant, config: Config | None) -> TenantView:
        """The view of a fully read tenant (whose member lists are those `read_tenant` read)."""
        view = cls(
            users={uid: user_json(u) for uid, u in tenant.users.items()},
            groups={gid: group_json(g) for gid, g in tenant.groups.items()},
            user_properties=config.filter_properties() if config else (),
        )
        known = {
            gid: typed_members(g.member_users, g.member_groups) for gid, g in tenant.groups.items()
        }
        view.members = {g: known[g] for g in wanted_groups(tenant.groups, config, known)}
        return view

    @classmethod
    def from_cache(cls, objects: CachedObjects) -> TenantView | None:
        """The view stored by an earlier run; None if there is none (or of an older format)."""
        meta = objects.get("meta", {}).get("view")
        if not meta or meta.get("format") != VIEW_FORMAT:
            return None
        groups = objects.get("group", {})
        return cls(
            users=dict(objects.get("user", {})),
            groups={
                gid: {k: v for k, v in g.items() if k != "members"} for gid, g in groups.items()
            },
            members={
                gid: {m["id"]: m["@odata.type"] for m in g["members"]}
                for gid, g in groups.items()
                if "members" in g
            },
            stale=set(objects.get("stale", {})),
            user_properties=tuple(meta.get("userProperties", ())),
        )

    def forget(self, object_ids: set[str]) -> None:
        """Drop deleted users or groups from every member list. Graph removes a deleted object
        from its groups without reporting that in `members@delta`, and a full read would not
        list it either."""
        if object_ids:
            for known in self.members.values():
                for oid in object_ids.intersection(known):
                    del known[oid]

    def rows(self, stale: Iterable[str] = ()) -> dict[tuple[str, str], dict[str, Any]]:
        """The view as state-store rows, keyed by (kind, id); `stale` adds users to re-read."""
        meta = {"format": VIEW_FORMAT, "userProperties": list(self.user_properties)}
        out: dict[tuple[str, str], dict[str, Any]] = {("meta", "view"): meta}
        out.update((("user", uid), u) for uid, u in self.users.items())
        for gid, g in self.groups.items():
            if gid in self.members:
                g = {**g, "members": _members_json(self.members[gid])}
            out[("group", gid)] = g
        out.update(((kind, uid), dict(row)) for kind, uid, row in stale_rows({*self.stale, *stale}))
        return out

    def tenant(
        self, country: str | None, skus: dict[str, Any], tenant_id: str | None = None
    ) -> Tenant:
        """The tenant model of the view, as a full read would return it."""
        groups = {}
        for gid, raw in self.groups.items():
            known = self.members.get(gid)
            if known:
                raw = {**raw, "members": _members_json(known)}
            groups[gid] = parse_group(raw)
        return Tenant(
            country=country,
            skus=skus,
            users={uid: parse_user(u, self.user_properties) for uid, u in self.users.items()},
            groups=groups,
            tenant_id=tenant_id,
        )


def diff_rows(
    old: Mapping[tuple[str, str], Any], new: Mapping[tuple[str, str], Any]
) -> tuple[list[CacheRow], list[tuple[str, str]]]:
    """(upserts, deletes) that turn the stored rows `old` into `new`."""
    upserts = [(k, i, d) for (k, i), d in new.items() if old.get((k, i)) != d]
    return upserts, [key for key in old if key not in new]


@dataclass
class TrackedRead:
    """One run's read: the tenant, the view to store, the new delta links, how it was read."""

    tenant: Tenant
    view: TenantView
    links: dict[str, str]
    incremental: bool
    stored_rows: dict[tuple[str, str], Any] = field(default_factory=dict)  # what it patched
