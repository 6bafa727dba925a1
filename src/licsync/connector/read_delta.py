"""The incremental read: patch the last-known tenant view with Graph's delta rounds.

    link = await latest_delta_link(client, "users")                 # a delta link from "now"
    read = await read_incremental(client, config, view, links)      # patch the last-known view

A `TenantView` (the last-known users, group shells and the memberships licsync needs, kept in
the state store) is patched with one `users/delta` and one `groups/delta` round from the stored
delta links. Graph does not track changes of `licenseAssignmentStates` in `users/delta`, so that
round selects only tracked properties and every user it reports (plus the users licsync wrote
last run, `stale`) is re-read with `$filter=id in (…)`, 15 ids a request, or by listing all
users when that is cheaper. Groups that become needed (a new rule, a newly nested group) have
their members read in full; subscribed SKUs and the organization are re-read every run. Deleted
users and groups leave every cached member list (Graph reports no `members@delta` for them). A
link Graph refuses (400/404/410, e.g. `syncStateNotFound` after 7 days) raises `DeltaRefused`:
the caller falls back to a full read. Users new to the view (a user restored from the recycle
bin keeps its groups, without `members@delta`) have their groups read with `memberOf`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import structlog

from licsync.config import Config
from licsync.connector.read_full import (
    DEFAULT_CONCURRENCY,
    DELTA_HEADERS,
    GROUP_DELTA_SELECT,
    GROUP_KEYS,
    IDS_PER_FILTER,
    PAGE_SIZE,
    USER_DELTA_SELECT,
    USER_SELECT,
    gather_or_cancel,
    read_members,
    read_org_and_skus,
    user_select,
)
from licsync.connector.view import (
    TenantView,
    TrackedRead,
    typed_members,
    wanted_groups,
)
from licsync.graph.errors import GraphError, GraphFatalError, GraphPagingError
from licsync.graphjson import (
    GROUP_TYPE,
    USER_TYPE,
    parse_group,
    parse_user,
    split_members,
)
from licsync.model import guid

if TYPE_CHECKING:
    from licsync.graph.client import GraphClient

log = structlog.get_logger("licsync.reader")


class DeltaRefused(Exception):
    """Graph refused a stored delta link (expired or invalid): read everything again."""


def _checked_user(raw: dict[str, Any]) -> dict[str, Any]:
    """`raw` if it parses as a user (the view keeps raw items and parses them later)."""
    if "@removed" not in raw:
        parse_user(raw)
    return raw


def _checked_group(raw: dict[str, Any]) -> dict[str, Any]:
    """`raw` if it parses as a group, its `members@delta` included."""
    if "@removed" not in raw:
        parse_group({**raw, "members": raw.get("members@delta") or ()})
    return raw


async def _delta_round(
    client: GraphClient,
    link: str,
    check: Callable[[dict[str, Any]], dict[str, Any]],
    params: dict[str, str | int] | None = None,
) -> tuple[list[dict[str, Any]], str]:
    """Every item of one delta round (each passed through `check`) and the round's final
    delta link."""
    pager = client.iterate_pages(link, params, DELTA_HEADERS)
    items: list[dict[str, Any]] = []
    try:
        async for page in pager:
            items.extend(pager.parse(page, check))
    except GraphError as exc:
        status = exc.verdict.status if exc.verdict else None
        if status in (400, 404, 410):
            raise DeltaRefused(str(exc)) from exc
        raise
    if not pager.delta_link:
        raise GraphPagingError(f"GET {link.split('?', 1)[0]}: the round ended without a deltaLink")
    return items, pager.delta_link


_LATEST = {
    "users": (_checked_user, {"$select": USER_DELTA_SELECT, "$deltatoken": "latest"}),
    "groups": (_checked_group, {"$select": GROUP_DELTA_SELECT, "$deltatoken": "latest"}),
}


async def latest_delta_link(
    client: GraphClient, resource: str, user_properties: Iterable[str] = ()
) -> str:
    """A delta link from now (`$deltatoken=latest`) for `users` or `groups`, taken just BEFORE
    that resource's full read (`read_tenant(before_read=...)`): the next incremental run replays
    what changed during the read, which patching makes harmless. Graph refusing to start it is
    a `GraphFatalError` saying so (nothing is written)."""
    check, params = _LATEST[resource]
    if resource == "users":
        params = {**params, "$select": user_select(user_properties, USER_DELTA_SELECT)}
    try:
        _, link = await _delta_round(client, f"/{resource}/delta", check, dict(params))
    except DeltaRefused as exc:
        raise GraphFatalError(
            f"Graph refused to start change tracking ($deltatoken=latest): {exc}; "
            "licsync needs users/delta and groups/delta for a sync (a dry run reads "
            "without them)"
        ) from None
    return link


async def _read_users(
    client: GraphClient, ids: set[str], known: int, concurrency: int, select: str = USER_SELECT
) -> tuple[dict[str, dict[str, Any]], bool]:
    """(users found by id, whether that is every user): 15 ids a request, or one listing of all
    users when that takes fewer requests."""
    if not ids:
        return {}, False
    params: dict[str, str | int] = {"$select": select, "$top": PAGE_SIZE}
    if len(ids) / IDS_PER_FILTER > known / PAGE_SIZE + 1:
        listed = await client.iterate_pages("/users", params).collect(_checked_user)
        return {guid(u["id"]): u for u in listed}, True
    semaphore = asyncio.Semaphore(max(1, concurrency))
    ordered = sorted(ids)

    async def chunk(part: list[str]) -> list[Any]:
        quoted = ",".join(f"'{i}'" for i in part)
        async with semaphore:
            query = {**params, "$filter": f"id in ({quoted})"}
            return await client.iterate_pages("/users", query).collect(_checked_user)

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
    select = user_select(view.user_properties)
    found, complete = await _read_users(client, reread, len(view.users), concurrency, select)
    if complete:
        view.users = found
    else:
        view.users.update(found)
    view.stale = {u for u in reread - set(found) if u in view.users or u in changed}
    return len(reread)


async def _returning_members(
    client: GraphClient, view: TenantView, arrived: set[str], concurrency: int
) -> int:
    """Users new to the view may be users restored from the recycle bin: they come back with
    their group memberships, which Graph reports in no `members@delta`. Their direct groups are
    read (`GET /users/{id}/memberOf`) and the cached member lists set to match, as a full read
    would. Returns the number of users read."""
    arrived &= set(view.users)
    if not arrived or not view.members:
        return 0
    semaphore = asyncio.Semaphore(max(1, concurrency))

    async def groups_of(uid: str) -> tuple[str, set[str]]:
        async with semaphore:
            path = f"/users/{uid}/memberOf/microsoft.graph.group"
            found = await client.iterate_pages(path, {"$select": "id", "$top": PAGE_SIZE}).collect()
        return uid, {guid(g["id"]) for g in found}

    for uid, groups in await asyncio.gather(*(groups_of(u) for u in sorted(arrived))):
        for gid, members in view.members.items():
            if gid in groups:
                members[uid] = USER_TYPE
            else:
                members.pop(uid, None)
    return len(arrived)


async def _complete_members(
    client: GraphClient, view: TenantView, config: Config | None, concurrency: int
) -> int:
    """Read in full the members of groups that became needed; forget the others. Returns the
    number of groups read."""
    semaphore = asyncio.Semaphore(max(1, concurrency))

    async def read(gid: str) -> tuple[str, list[Any]]:
        async with semaphore:
            return gid, await read_members(client, gid)

    shells = {gid: parse_group(g) for gid, g in view.groups.items()}
    read_count = 0
    while True:
        wanted = wanted_groups(shells, config, view.members)
        missing = sorted(wanted - set(view.members))
        if not missing:
            break
        for gid, found in await asyncio.gather(*(read(g) for g in missing)):
            view.members[gid] = typed_members(*split_members(found))
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
        _delta_round(client, links["users"], _checked_user),
        _delta_round(client, links["groups"], _checked_group),
        read_org_and_skus(client),
        return_exceptions=True,
    )
    for outcome in rounds:
        if isinstance(outcome, BaseException):
            raise outcome
    (user_items, users_link), (group_items, groups_link), (org, skus) = rounds
    known = set(view.users)
    changed = _patch_users(view, user_items)
    _patch_groups(view, group_items)

    async def refresh_users() -> tuple[int, int]:
        reread = await _refresh_users(client, view, changed, concurrency)
        return reread, await _returning_members(client, view, set(changed) - known, concurrency)

    # the users' re-read and the member lists that became needed do not wait for each other
    (reread, returned), members_read = await gather_or_cancel(
        refresh_users(), _complete_members(client, view, config, concurrency)
    )
    log.info(
        "graph.read",
        mode="incremental",
        users=len(view.users),
        users_changed=len(changed),
        users_reread=reread,
        groups_changed=len({guid(g["id"]) for g in group_items}),
        groups_members_read=members_read,
        users_memberships_read=returned,
    )
    return TrackedRead(
        view.tenant(org.country, skus, org.tenant_id),
        view,
        {"users": users_link, "groups": groups_link},
        incremental=True,
    )
