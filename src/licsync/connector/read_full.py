"""The full read: the tenant as Graph shows it now (plain JSON pages, no SDK models).

    tenant = await read_tenant(client, config)

`/organization` (tenant id, country), `/subscribedSkus`, every user and every group (with the
licence properties named in `$select`, following every next link), then the direct members of
each group a rule names or Entra licenses, in parallel with bounded concurrency. For `nested`
rules the member groups are read too, recursively and cycle-safe. Pages are parsed with the same
`licsync.graphjson.parse_*` functions as snapshots, so a read tenant and a snapshot of it are
equal.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable
from typing import Any

import structlog

from licsync.config import Config
from licsync.config.names import GroupNames
from licsync.connector.progress import Progress
from licsync.graph.client import GraphClient
from licsync.graph.errors import GraphPagingError
from licsync.graphjson import (
    Organization,
    ShapeError,
    parse_group,
    parse_organization,
    parse_sku,
    parse_user,
    split_members,
)
from licsync.model import Group, Tenant, User, guid

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


GROUP_KEYS = tuple(GROUP_SELECT.split(","))


def groups_to_read(groups: dict[str, Group], config: Config | None) -> tuple[set[str], set[str]]:
    """(groups whose members are needed, the subset whose nested groups must be followed).

    Rules name groups by id or display name; a name matching several groups selects them all
    (licsync.config.rules reports the ambiguity later). Entra-licensed groups are always needed.
    """
    names = GroupNames(groups)
    needed = {g.id for g in groups.values() if g.assigned_licenses}
    nested: set[str] = set()
    rules = config.settings.group_licenses if config is not None else ()
    for rule in rules:
        ids = [g.id for g in names.matching(rule.group)]
        needed.update(ids)
        if rule.nested:
            nested.update(ids)
    return needed, nested


async def read_members(client: GraphClient, group_id: str) -> list[Any]:
    """A group's direct members (ids and types), every page."""
    params: dict[str, str | int] = {"$select": "id", "$top": PAGE_SIZE}
    return await client.iterate_pages(f"/groups/{group_id}/members", params).collect()


async def read_org_and_skus(client: GraphClient) -> tuple[Organization, dict[str, Any]]:
    """The organization (tenant id, country) and the subscribed SKUs."""
    org, skus_read = await asyncio.gather(
        client.get_json("/organization"),
        client.iterate_pages("/subscribedSkus", {}).collect(parse_sku),
    )
    try:
        organization = parse_organization(org)
    except ShapeError as exc:
        raise GraphPagingError(f"GET /organization: not a Graph organization: {exc}") from None
    return organization, {s.id: s for s in skus_read}


def _with_shell(raw: dict[str, Any]) -> tuple[dict[str, Any], Group]:
    """A `/groups` item and its parsed shell (members are read separately)."""
    return raw, parse_group(raw)


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
    with Progress(show) as bar:
        users: dict[str, User] = {}

        async def read_users() -> None:
            params: dict[str, str | int] = {"$select": USER_SELECT, "$top": PAGE_SIZE}
            pager = client.iterate_pages("/users", params)
            async for page in pager:
                parsed = pager.parse(page, parse_user)  # while Graph prepares the next page
                users.update((u.id, u) for u in parsed)
                bar.advance("users", len(parsed))

        group_params: dict[str, str | int] = {"$select": GROUP_SELECT, "$top": PAGE_SIZE}
        groups_task = client.iterate_pages("/groups", group_params).collect(_with_shell)
        (org, skus), groups_read, _ = await asyncio.gather(
            read_org_and_skus(client), groups_task, read_users()
        )
        raw_by_id = {shell.id: raw for raw, shell in groups_read}
        shells = {shell.id: shell for _, shell in groups_read}

        needed, nested = groups_to_read(shells, config)
        needed.update(guid(g) for g in group_ids)
        if all_groups:
            needed.update(shells)
        members: dict[str, list[dict[str, Any]]] = {}
        semaphore = asyncio.Semaphore(max(1, concurrency))
        queued: set[str] = set()
        pending: set[asyncio.Task[None]] = set()

        async def read_group(group_id: str, follow: bool) -> None:
            async with semaphore:
                found = await read_members(client, group_id)
            members[group_id] = found
            bar.advance("group members", 1, total=len(queued))
            if follow:
                for child in split_members(found)[1]:
                    enqueue(child, True)

        def enqueue(group_id: str, follow: bool) -> None:
            if group_id in queued or group_id not in raw_by_id:
                return
            queued.add(group_id)
            pending.add(asyncio.ensure_future(read_group(group_id, follow)))

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
        country=org.country,
        skus=skus,
        users=users,
        groups=groups,
        tenant_id=org.tenant_id,
    )
