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
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

import structlog

from licsync.config import Config
from licsync.config.names import GroupNames
from licsync.connector.progress import Progress
from licsync.graph.batch import (
    MAX_BATCH_SIZE,
    BatchRequest,
    build_batch_body,
    parse_batch_response,
)
from licsync.graph.classify import parse_retry_after
from licsync.graph.errors import GraphError, GraphPagingError
from licsync.graph.paging import NEXT_LINK, page_problem
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

if TYPE_CHECKING:
    from licsync.graph.client import GraphClient

log = structlog.get_logger("licsync.reader")


USER_SELECT = (
    "id,userPrincipalName,accountEnabled,usageLocation,userType,"
    "assignedLicenses,licenseAssignmentStates"
)


def user_select(extra: Iterable[str] = (), base: str = USER_SELECT) -> str:
    """`base` with the user properties attribute filters read (`Config.filter_properties`)."""
    return ",".join([base, *extra])


GROUP_SELECT = "id,displayName,securityEnabled,mailEnabled,groupTypes,assignedLicenses"


# users/delta: only properties whose changes Graph tracks (not licenseAssignmentStates)
USER_DELTA_SELECT = "id,userPrincipalName,accountEnabled,usageLocation,userType,assignedLicenses"


GROUP_DELTA_SELECT = GROUP_SELECT + ",members"


DELTA_HEADERS = {"Prefer": "odata.maxpagesize=999"}


DELTA_RESOURCES = ("users", "groups")


PAGE_SIZE = 999


IDS_PER_FILTER = 15  # Graph's limit for `id in (…)`


DEFAULT_CONCURRENCY = 16  # member reads in flight: see docs/performance.md


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
        if rule.group is None:
            continue
        ids = [g.id for g in names.matching(rule.group)]
        needed.update(ids)
        if rule.nested:
            nested.update(ids)
    return needed, nested


def _members_url(group_id: str) -> str:
    return f"/groups/{group_id}/members?$select=id&$top={PAGE_SIZE}"


async def read_members(
    client: GraphClient, group_id: str, first: dict[str, Any] | None = None
) -> list[Any]:
    """A group's direct members (ids and types), every page; `first`: its first page, already
    read (then only its next links are followed)."""
    if first is None:
        params: dict[str, str | int] = {"$select": "id", "$top": PAGE_SIZE}
        return await client.iterate_pages(f"/groups/{group_id}/members", params).collect()
    found = list(first.get("value") or ())
    if first.get(NEXT_LINK):
        found.extend(await client.iterate_pages(first[NEXT_LINK]).collect())
    return found


async def first_member_pages(client: GraphClient, group_ids: list[str]) -> dict[str, Any]:
    """The first members page of up to 20 groups in one `$batch` round trip: one request
    instead of one per group, so that the next links of big groups start at once. Groups whose
    item did not answer 200 with a Graph page (throttled, failed, malformed) are left out: the
    caller reads them alone (where a malformed page is a GraphPagingError), under
    the retry policy, once the longest Retry-After of the items has passed. A failed envelope
    leaves them all out."""
    requests = [BatchRequest(str(i), "GET", _members_url(g)) for i, g in enumerate(group_ids)]
    try:
        answer = await client.request_json("POST", "$batch", json=build_batch_body(requests))
    except GraphError as exc:
        log.info("graph.members_batch_failed", groups=len(group_ids), error=str(exc))
        return {}
    items = parse_batch_response(answer)
    pages = {
        group_ids[int(i)]: item.body
        for i, item in items.items()
        if i.isdigit()
        and int(i) < len(group_ids)
        and item.status == 200
        and page_problem(item.body) is None
    }
    waits = [0.0]
    for i, item in items.items():
        if i.isdigit() and int(i) < len(group_ids) and group_ids[int(i)] not in pages:
            waits.append(parse_retry_after(item.headers.get("retry-after")) or 0.0)
            log.warning(  # counted like any other retry (monitoring.report.RunEvents)
                "graph.retry",
                request=f"GET /groups/{group_ids[int(i)]}/members (in $batch)",
                attempt=1,
                wait_seconds=waits[-1],
                action="read alone",
                status=item.status,
                request_id=item.headers.get("request-id"),
            )
    if max(waits) > 0:
        await client.policy.sleep(max(waits))
    return pages


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


async def gather_or_cancel(*aws: Awaitable[Any]) -> list[Any]:
    """`asyncio.gather`, except that the first failure cancels the others (and is raised once
    they have stopped) instead of leaving them running."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in tasks:  # the first failure in argument order
            error = task.exception() if task.done() and not task.cancelled() else None
            if error is not None:
                raise error
        return [task.result() for task in tasks]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _read_member_lists(
    client: GraphClient,
    raw_by_id: dict[str, dict[str, Any]],
    needed: set[str],
    nested: set[str],
    concurrency: int,
    bar: Progress,
) -> dict[str, list[Any]]:
    """The direct members of `needed` groups, `concurrency` at a time; for `nested` ones, of
    their member groups too (recursively, each group once)."""
    members: dict[str, list[Any]] = {}
    semaphore = asyncio.Semaphore(max(1, concurrency))
    queued: set[str] = set()
    pending: set[asyncio.Task[None]] = set()

    async def read_group(group_id: str, follow: bool, firsts: dict[str, Any] | None = None) -> None:
        first = (firsts or {}).get(group_id)
        if first is not None and not first.get(NEXT_LINK):
            found = list(first.get("value") or ())  # one page: nothing left to ask for
        else:
            async with semaphore:
                found = await read_members(client, group_id, first)
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

    async def read_group_batch(group_ids: list[str]) -> None:
        async with semaphore:
            pages = await first_member_pages(client, group_ids)
        for group_id in group_ids:
            pending.add(asyncio.ensure_future(read_group(group_id, group_id in nested, pages)))

    ordered = [g for g in sorted(needed) if g in raw_by_id]
    queued.update(ordered)
    for start in range(0, len(ordered), MAX_BATCH_SIZE):  # first pages: 20 groups a request
        pending.add(
            asyncio.ensure_future(read_group_batch(ordered[start : start + MAX_BATCH_SIZE]))
        )
    try:
        while pending:
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
            pending.difference_update(done)
            for task in done:
                task.result()  # re-raise the first Graph error
    finally:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    return members


async def read_tenant(
    client: GraphClient,
    config: Config | None = None,
    *,
    group_ids: Iterable[str] = (),
    all_groups: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: bool | None = None,
    before_read: Callable[[str], Awaitable[object]] | None = None,
) -> Tenant:
    """The tenant as Graph shows it now, with the memberships `config`'s rules need.

    `group_ids` adds groups whose direct members must be read as well; `all_groups` reads the
    members of every group (a complete snapshot). `progress` defaults to
    showing a progress bar only when stderr is a terminal. `before_read("users")` and
    `before_read("groups")` are awaited before the first request of that resource (delta links
    taken just before each chain). Three chains run side by side: the users' next links; the
    groups then, as soon as they are known, their members (`concurrency` at a time); the
    organization and subscribed SKUs. The first Graph error cancels the rest and propagates
    (GraphError).
    """
    show = sys.stderr.isatty() if progress is None else progress
    with Progress(show) as bar:
        users: dict[str, User] = {}

        async def read_users() -> None:
            if before_read is not None:
                await before_read("users")
            wanted = config.filter_properties() if config else ()
            params: dict[str, str | int] = {"$select": user_select(wanted), "$top": PAGE_SIZE}
            pager = client.iterate_pages("/users", params)
            parse = partial(parse_user, wanted=wanted)
            async for page in pager:
                parsed = pager.parse(page, parse)  # while Graph prepares the next page
                users.update((u.id, u) for u in parsed)
                bar.advance("users", len(parsed))

        async def read_groups() -> tuple[dict[str, dict[str, Any]], dict[str, list[Any]]]:
            if before_read is not None:
                await before_read("groups")
            params: dict[str, str | int] = {"$select": GROUP_SELECT, "$top": PAGE_SIZE}
            read = await client.iterate_pages("/groups", params).collect(_with_shell)
            raw = {shell.id: item for item, shell in read}
            needed, nested = groups_to_read({shell.id: shell for _, shell in read}, config)
            needed.update(guid(g) for g in group_ids)
            if all_groups:
                needed.update(raw)
            found = await _read_member_lists(client, raw, needed, nested, concurrency, bar)
            return raw, found

        (org, skus), (raw_by_id, members), _ = await gather_or_cancel(
            read_org_and_skus(client), read_groups(), read_users()
        )

    groups = {
        gid: parse_group({**raw, "members": members[gid]} if gid in members else raw)
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
