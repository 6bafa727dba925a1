"""Read a tenant through Microsoft Graph into the tenant model (plain dicts, no SDK models).

    tenant = await read_tenant(client, config)                      # a full read
    links = await start_delta(client)                               # delta links from "now"
    read = await read_incremental(client, config, view, links)      # patch the last-known view

**Full read** (`read_tenant`): `/organization`, `/subscribedSkus`, every user and every group
(with the licence properties named in `$select`, following every next link), then the direct
members of each group a rule names or Entra licenses, in parallel with bounded concurrency. For
`nested` rules the member groups are read too, recursively and cycle-safe. Pages are parsed with
the same `licsync.snapshot.parse_*` functions as snapshots, so a read tenant and a snapshot of it
are equal.

**Incremental read** (`read_incremental`): a `TenantView` (the last-known users, group shells
and the memberships licsync needs, kept in the state store) is patched with one `users/delta`
and one `groups/delta` round from the stored delta links. Graph does not track changes of
`licenseAssignmentStates` in `users/delta`, so that round selects only tracked properties and
every user it reports (plus the users licsync wrote last run, `stale`) is re-read with
`$filter=id in (…)`, 15 ids a request, or by listing all users when that is cheaper. Groups that
become needed (a new rule, a newly nested group) have their members read in full; subscribed
SKUs and the organization are re-read every run. Deleted users and groups leave every cached
member list (Graph reports no `members@delta` for them). A link Graph refuses (400/404/410, e.g.
`syncStateNotFound` after 7 days) raises `DeltaRefused`: the caller falls back to a full read.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from licsync.config import Config
from licsync.graph.client import GraphClient
from licsync.graph.errors import GraphError, GraphPagingError
from licsync.model import Group, Tenant, User, guid
from licsync.snapshot import (
    GROUP_TYPE,
    USER_TYPE,
    group_json,
    parse_group,
    parse_sku,
    parse_user,
    split_members,
    user_json,
)
from licsync.store import CachedObjects, CacheRow

log = structlog.get_logger("licsync.reader")

USER_SELECT = (
    "id,userPrincipalName,accountEnabled,usageLocation,userType,"
    "assignedLicenses,licenseAssignmentStates"
)
GROUP_SELECT = "id,displayName,securityEnabled,mailEnabled,groupTypes,assignedLicenses"
# users/delta: only properties whose changes Graph tracks (not licenseAssignmentStates)
USER_DELTA_SELECT = "id,userPrincipalName,accountEnabled,usageLocation,userType,assignedLicenses"
GROUP_DELTA_SELECT = GROUP_SELECT + ",members"
DELTA_HEADERS = {"Prefer": "odata.maxpagesize=999"}
DELTA_RESOURCES = ("users", "groups")
PAGE_SIZE = 999
IDS_PER_FILTER = 15  # Graph's limit for `id in (…)`
DEFAULT_CONCURRENCY = 8
VIEW_FORMAT = 1  # bump when the cached view's shape changes: older caches then read in full
GROUP_KEYS = tuple(GROUP_SELECT.split(","))


class _Progress:
    """A rich progress display on a terminal; silent otherwise (logs, pipes, tests)."""

    def __init__(self, enabled: bool) -> None:
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}
        if enabled:
            from rich.console import Console
            from rich.progress import Progress

            self._progress = Progress(console=Console(file=sys.stderr), transient=True)

    def __enter__(self) -> _Progress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def advance(self, what: str, n: int = 1, total: int | None = None) -> None:
        if self._progress is None:
            return
        task = self._tasks.get(what)
        if task is None:
            task = self._tasks[what] = self._progress.add_task(what, total=total)
        elif total is not None:
            self._progress.update(task, total=total)
        self._progress.advance(task, n)


def groups_to_read(groups: dict[str, Group], config: Config | None) -> tuple[set[str], set[str]]:
    """(groups whose members are needed, the subset whose nested groups must be followed).

    Rules name groups by id or display name; a name matching several groups selects them all
    (licsync.resolve reports the ambiguity later). Entra-licensed groups are always needed.
    """
    by_name: dict[str, list[str]] = {}
    for group in groups.values():
        by_name.setdefault(group.display_name.casefold(), []).append(group.id)
    needed = {g.id for g in groups.values() if g.assigned_licenses}
    nested: set[str] = set()
    rules = config.settings.group_licenses if config is not None else ()
    for rule in rules:
        ids = [guid(rule.group)] if guid(rule.group) in groups else []
        ids = ids or by_name.get(rule.group.casefold(), [])
        needed.update(ids)
        if rule.nested:
            nested.update(ids)
    return needed, nested


async def _read_members(client: GraphClient, group_id: str) -> list[Any]:
    """A group's direct members (ids and types), every page."""
    params = {"$select": "id", "$top": PAGE_SIZE}
    return await client.iterate_pages(f"/groups/{group_id}/members", params).collect()


async def read_tenant(
    client: GraphClient,
    config: Config | None = None,
    *,
    group_ids: Iterable[str] = (),
    all_groups: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: bool | None = None,
) -> Tenant:
    """The tenant as Graph shows it now, with the memberships `config`'s rules need.

    `group_ids` adds groups whose direct members must be read as well; `all_groups` reads the
    members of every group (a complete snapshot). `progress` defaults to
    showing a progress bar only when stderr is a terminal. Graph errors propagate (GraphError).
    """
    show = sys.stderr.isatty() if progress is None else progress
    with _Progress(show) as bar:
        users: dict[str, User] = {}

        async def read_users() -> None:
            params = {"$select": USER_SELECT, "$top": PAGE_SIZE}
            async for page in client.iterate_pages("/users", params):
                value = page.get("value") or ()
                users.update((u.id, u) for u in map(parse_user, value))  # while Graph pages
                bar.advance("users", len(value))

        group_params = {"$select": GROUP_SELECT, "$top": PAGE_SIZE}
        groups_task = client.iterate_pages("/groups", group_params).collect()
        (country, skus), groups_raw, _ = await asyncio.gather(
            _read_org_and_skus(client), groups_task, read_users()
        )
        raw_by_id = {guid(g["id"]): g for g in groups_raw}
        shells = {g.id: g for g in map(parse_group, groups_raw)}

        needed, nested = groups_to_read(shells, config)
        needed.update(guid(g) for g in group_ids)
        if all_groups:
            needed.update(shells)
        members: dict[str, list[dict[str, Any]]] = {}
        semaphore = asyncio.Semaphore(max(1, concurrency))
        queued: set[str] = set()
        pending: set[asyncio.Task[None]] = set()

        async def read_members(group_id: str, follow: bool) -> None:
            async with semaphore:
                found = await _read_members(client, group_id)
            members[group_id] = found
            bar.advance("group members", 1, total=len(queued))
            if follow:
                for child in split_members(found)[1]:
                    enqueue(child, True)

        def enqueue(group_id: str, follow: bool) -> None:
            if group_id in queued or group_id not in raw_by_id:
                return
            queued.add(group_id)
            pending.add(asyncio.ensure_future(read_members(group_id, follow)))

        for group_id in sorted(needed):
            enqueue(group_id, group_id in nested)
        try:
            while pending:
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
                pending.difference_update(done)
                for task in done:
                    task.result()  # re-raise the first Graph error
        finally:
            for task in pending:
                task.cancel()

    groups = {
        gid: parse_group({**raw, "members": members[gid]}) if gid in members else shells[gid]
        for gid, raw in raw_by_id.items()
    }
    log.info(
        "graph.read",
        users=len(users),
        groups=len(groups),
        groups_with_members=len(members),
        skus=len(skus),
    )
    return Tenant(
        country=country,
        skus=skus,
        users=users,
        groups=groups,
    )


# --- incremental reads ---------------------------------------------------------------------------


class DeltaRefused(Exception):
    """Graph refused a stored delta link (expired or invalid): read everything again."""


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


def _typed(users: Iterable[str], groups: Iterable[str]) -> dict[str, str]:
    """A group's user and group members as the view keeps them: id → `@odata.type`."""
    return {**dict.fromkeys(users, USER_TYPE), **dict.fromkeys(groups, GROUP_TYPE)}


def stale_rows(user_ids: Iterable[str]) -> list[CacheRow]:
    """Cache rows marking users the next incremental read must re-read in full (Graph's
    users/delta does not report a change to licenseAssignmentStates alone)."""
    return [("stale", uid, {}) for uid in sorted(set(user_ids))]


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

    @classmethod
    def from_tenant(cls, tenant: Tenant, config: Config | None) -> TenantView:
        """The view of a fully read tenant (whose member lists are those `read_tenant` read)."""
        view = cls(
            users={uid: user_json(u) for uid, u in tenant.users.items()},
            groups={gid: group_json(g) for gid, g in tenant.groups.items()},
        )
        known = {gid: _typed(g.member_users, g.member_groups) for gid, g in tenant.groups.items()}
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
        out: dict[tuple[str, str], dict[str, Any]] = {("meta", "view"): {"format": VIEW_FORMAT}}
        out.update((("user", uid), u) for uid, u in self.users.items())
        for gid, g in self.groups.items():
            if gid in self.members:
                g = {**g, "members": _members_json(self.members[gid])}
            out[("group", gid)] = g
        out.update(((kind, uid), row) for kind, uid, row in stale_rows({*self.stale, *stale}))
        return out

    def tenant(self, country: str | None, skus: dict[str, Any]) -> Tenant:
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
            users={uid: parse_user(u) for uid, u in self.users.items()},
            groups=groups,
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


async def _delta_round(
    client: GraphClient, link: str, params: dict[str, str | int] | None = None
) -> tuple[list[dict[str, Any]], str]:
    """Every item of one delta round and the round's final delta link."""
    pager = client.iterate_pages(link, params, DELTA_HEADERS)
    items: list[dict[str, Any]] = []
    try:
        async for page in pager:
            items.extend(page.get("value") or ())
    except GraphError as exc:
        status = exc.verdict.status if exc.verdict else None
        if status in (400, 404, 410):
            raise DeltaRefused(str(exc)) from exc
        raise
    if not pager.delta_link:
        raise GraphPagingError(f"GET {link.split('?', 1)[0]}: the round ended without a deltaLink")
    return items, pager.delta_link


async def start_delta(client: GraphClient) -> dict[str, str]:
    """Delta links from now (`$deltatoken=latest`), taken BEFORE a full read: the next
    incremental run replays what changed during the read, which patching makes harmless."""
    (_, users), (_, groups) = await asyncio.gather(
        _delta_round(
            client, "/users/delta", {"$select": USER_DELTA_SELECT, "$deltatoken": "latest"}
        ),
        _delta_round(
            client, "/groups/delta", {"$select": GROUP_DELTA_SELECT, "$deltatoken": "latest"}
        ),
    )
    return {"users": users, "groups": groups}


async def _read_org_and_skus(client: GraphClient) -> tuple[str | None, dict[str, Any]]:
    org, skus_raw = await asyncio.gather(
        client.get_json("/organization"), client.iterate_pages("/subscribedSkus", {}).collect()
    )
    orgs = org.get("value") if "value" in org else [org]
    country = (orgs[0].get("countryLetterCode") if orgs else None) or None
    skus = {s.id: s for s in map(parse_sku, skus_raw)}
    return (country.strip().upper() if country else None), skus


async def _read_users(
    client: GraphClient, ids: set[str], known: int, concurrency: int
) -> tuple[dict[str, dict[str, Any]], bool]:
    """(users found by id, whether that is every user): 15 ids a request, or one listing of all
    users when that takes fewer requests."""
    if not ids:
        return {}, False
    params: dict[str, str | int] = {"$select": USER_SELECT, "$top": PAGE_SIZE}
    if len(ids) / IDS_PER_FILTER > known / PAGE_SIZE + 1:
        listed = await client.iterate_pages("/users", params).collect()
        return {guid(u["id"]): u for u in listed}, True
    semaphore = asyncio.Semaphore(max(1, concurrency))
    ordered = sorted(ids)

    async def chunk(part: list[str]) -> list[Any]:
        quoted = ",".join(f"'{i}'" for i in part)
        async with semaphore:
            query = {**params, "$filter": f"id in ({quoted})"}
            return await client.iterate_pages("/users", query).collect()

    parts = [ordered[i : i + IDS_PER_FILTER] for i in range(0, len(ordered), IDS_PER_FILTER)]
    found = await asyncio.gather(*(chunk(p) for p in parts))
    return {guid(u["id"]): u for page in found for u in page}, False


def _patch_groups(view: TenantView, items: list[dict[str, Any]]) -> None:
    """Apply a groups/delta round: shells merged, `@removed` groups (either reason: `changed`
    is a soft delete) dropped, also from the groups they were nested in, `members@delta` (a
    group may come several times, its member changes split) applied in order."""
    removed: set[str] = set()
    for item in items:
        gid = guid(item["id"])
        if "@removed" in item:
            view.groups.pop(gid, None)
            view.members.pop(gid, None)
            removed.add(gid)
            continue
        removed.discard(gid)  # restored later in the same round
        shell = {k: item[k] for k in GROUP_KEYS if k in item}
        view.groups[gid] = {**view.groups.get(gid, {}), **shell, "id": gid}
        known = view.members.get(gid)
        if known is None:
            continue  # members not needed, or read in full below
        for entry in item.get("members@delta") or ():
            mid = guid(entry["id"])
            kind = entry.get("@odata.type", USER_TYPE)
            if "@removed" in entry:
                known.pop(mid, None)
            elif kind in (USER_TYPE, GROUP_TYPE):  # devices and contacts are never licensed
                known.setdefault(mid, kind)
    view.forget(removed)


def _patch_users(view: TenantView, items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Apply a users/delta round's removals (either reason: `changed` is a soft delete), also
    to the cached member lists; returns the users it reports changed, by id."""
    changed: dict[str, dict[str, Any]] = {}
    removed: set[str] = set()
    for item in items:
        uid = guid(item["id"])
        if "@removed" in item:
            view.users.pop(uid, None)
            view.stale.discard(uid)
            changed.pop(uid, None)
            removed.add(uid)
        else:
            changed[uid] = item
            removed.discard(uid)  # restored later in the same round
    view.forget(removed)
    return changed


async def _refresh_users(
    client: GraphClient,
    view: TenantView,
    changed: Mapping[str, Mapping[str, Any]],
    concurrency: int,
) -> int:
    """Re-read the changed and `stale` users (`licenseAssignmentStates` is not in the delta).
    A user Graph does not return yet keeps its last complete entry (a new one stays out of
    the view: half-known users are never planned) and is re-read next run; an unknown id
    not found twice is dropped. Returns how many users were asked for."""
    reread = set(changed) | view.stale
    found, complete = await _read_users(client, reread, len(view.users), concurrency)
    if complete:
        view.users = found
    else:
        view.users.update(found)
    view.stale = {u for u in reread - set(found) if u in view.users or u in changed}
    return len(reread)


async def _complete_members(
    client: GraphClient, view: TenantView, config: Config | None, concurrency: int
) -> int:
    """Read in full the members of groups that became needed; forget the others. Returns the
    number of groups read."""
    semaphore = asyncio.Semaphore(max(1, concurrency))

    async def read(gid: str) -> tuple[str, list[Any]]:
        async with semaphore:
            return gid, await _read_members(client, gid)

    shells = {gid: parse_group(g) for gid, g in view.groups.items()}
    read_count = 0
    while True:
        wanted = wanted_groups(shells, config, view.members)
        missing = sorted(wanted - set(view.members))
        if not missing:
            break
        for gid, found in await asyncio.gather(*(read(g) for g in missing)):
            view.members[gid] = _typed(*split_members(found))
        read_count += len(missing)
    for gid in set(view.members) - wanted:
        del view.members[gid]
    return read_count


async def read_incremental(
    client: GraphClient,
    config: Config | None,
    view: TenantView,
    links: Mapping[str, str],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> TrackedRead:
    """Patch `view` (changed in place) with the delta rounds from `links`; raises DeltaRefused
    when Graph refuses a link, GraphError for anything else."""
    rounds = await asyncio.gather(
        _delta_round(client, links["users"]),
        _delta_round(client, links["groups"]),
        _read_org_and_skus(client),
        return_exceptions=True,
    )
    for outcome in rounds:
        if isinstance(outcome, BaseException):
            raise outcome
    (user_items, users_link), (group_items, groups_link), (country, skus) = rounds  # type: ignore[misc]
    changed = _patch_users(view, user_items)
    reread = await _refresh_users(client, view, changed, concurrency)
    _patch_groups(view, group_items)
    members_read = await _complete_members(client, view, config, concurrency)
    log.info(
        "graph.read",
        mode="incremental",
        users=len(view.users),
        users_changed=len(changed),
        users_reread=reread,
        groups_changed=len({guid(g["id"]) for g in group_items}),
        groups_members_read=members_read,
    )
    return TrackedRead(
        view.tenant(country, skus),
        view,
        {"users": users_link, "groups": groups_link},
        incremental=True,
    )
