"""Read a tenant through Microsoft Graph into the tenant model (full reads, plain dicts).

    tenant = await read_tenant(client, config)

Reads `/organization`, `/subscribedSkus`, every user and every group (with the licence
properties named in `$select`, following every next link), then the direct members of each group
a rule names or Entra licenses, in parallel with bounded concurrency. For `nested` rules the
member groups are read too, recursively and cycle-safe. Pages are parsed with the same
`licsync.snapshot.parse_*` functions as snapshots, so a read tenant and a snapshot of it are equal.

Every run reads everything (no delta queries yet).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable
from typing import Any

import structlog

from licsync.config import Config
from licsync.graph.client import GraphClient
from licsync.model import Group, Tenant, guid
from licsync.snapshot import parse_group, parse_sku, parse_user, split_members

log = structlog.get_logger("licsync.reader")

USER_SELECT = (
    "id,userPrincipalName,accountEnabled,usageLocation,userType,"
    "assignedLicenses,licenseAssignmentStates"
)
GROUP_SELECT = "id,displayName,securityEnabled,mailEnabled,groupTypes,assignedLicenses"
PAGE_SIZE = 999
DEFAULT_CONCURRENCY = 8


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


async def _collect(client: GraphClient, path: str, params: dict[str, str | int]) -> list[Any]:
    items: list[Any] = []
    async for page in client.iterate_pages(path, params):
        items.extend(page.get("value") or ())
    return items


async def read_tenant(
    client: GraphClient,
    config: Config | None = None,
    *,
    group_ids: Iterable[str] = (),
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: bool | None = None,
) -> Tenant:
    """The tenant as Graph shows it now, with the memberships `config`'s rules need.

    `group_ids` adds groups whose direct members must be read as well. `progress` defaults to
    showing a progress bar only when stderr is a terminal. Graph errors propagate (GraphError).
    """
    show = sys.stderr.isatty() if progress is None else progress
    with _Progress(show) as bar:
        users_raw: list[dict[str, Any]] = []

        async def read_users() -> None:
            params = {"$select": USER_SELECT, "$top": PAGE_SIZE}
            async for page in client.iterate_pages("/users", params):
                value = page.get("value") or ()
                users_raw.extend(value)
                bar.advance("users", len(value))

        org_task = client.get_json("/organization")
        skus_task = _collect(client, "/subscribedSkus", {})
        groups_task = _collect(client, "/groups", {"$select": GROUP_SELECT, "$top": PAGE_SIZE})
        org, skus_raw, groups_raw, _ = await asyncio.gather(
            org_task, skus_task, groups_task, read_users()
        )

        orgs = org.get("value") if "value" in org else [org]
        country = (orgs[0].get("countryLetterCode") if orgs else None) or None
        skus = {s.id: s for s in map(parse_sku, skus_raw)}
        users = {u.id: u for u in map(parse_user, users_raw)}
        raw_by_id = {guid(g["id"]): g for g in groups_raw}
        shells = {g.id: g for g in map(parse_group, groups_raw)}

        needed, nested = groups_to_read(shells, config)
        needed.update(guid(g) for g in group_ids)
        members: dict[str, list[dict[str, Any]]] = {}
        semaphore = asyncio.Semaphore(max(1, concurrency))
        queued: set[str] = set()
        pending: set[asyncio.Task[None]] = set()

        async def read_members(group_id: str, follow: bool) -> None:
            async with semaphore:
                found = await _collect(
                    client, f"/groups/{group_id}/members", {"$select": "id", "$top": PAGE_SIZE}
                )
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
        country=country.strip().upper() if country else None,
        skus=skus,
        users=users,
        groups=groups,
    )
