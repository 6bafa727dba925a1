"""Which tenant and which Graph address a state store belongs to.

A store records the tenant id (Graph's `/organization` id) of its first run that writes; a run
against another tenant is refused before it reads or writes anything else (StateError, exit 4),
so one tenant's ledger is never applied to another. Delta links are tied to the address that
issued them: links from another scheme, host or port than `[graph] url` (a rehearsal moved to
production, the emulator on a new port) are dropped, and the run reads in full.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import structlog

from licsync.errors import StateError
from licsync.graph.errors import GraphFatalError
from licsync.graphjson import ShapeError, parse_organization
from licsync.store import StateStore
from licsync.store.sqlstore import tenant_mismatch

if TYPE_CHECKING:
    from licsync.graph.client import GraphClient

log = structlog.get_logger("licsync.sync")


async def check_tenant(client: GraphClient, store: StateStore | None) -> str:
    """The id of the tenant Graph answers for; StateError when the store belongs to another."""
    try:
        tenant_id = parse_organization(await client.get_json("/organization")).tenant_id
    except ShapeError as exc:
        raise GraphFatalError(f"Graph's GET /organization: {exc}") from None
    if tenant_id is None:
        raise GraphFatalError("Graph's GET /organization returned no organization id")
    bound = store.bound_tenant() if store is not None else None
    if store is not None and bound is not None and bound != tenant_id:
        raise StateError(tenant_mismatch(store.describe(), bound, tenant_id))
    return tenant_id


def bind_tenant(store: StateStore, holder: str, tenant_id: str, run_id: str) -> None:
    """Record the store's tenant, once (checked again inside the transaction, under the lease)."""
    if store.bound_tenant() == tenant_id:
        return
    with store.transaction(holder=holder) as tx:
        tx.bind_tenant(tenant_id, run_id)
    log.info("state.tenant_bound", tenant_id=tenant_id, run_id=run_id)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or {"https": 443}.get(scheme, 80)


def links_for_address(links: dict[str, str] | None, base_url: str) -> dict[str, str] | None:
    """`links`, or None (read in full) when any was issued by another address than `base_url`."""
    if links is None:
        return None
    moved = sorted(r for r, link in links.items() if _origin(link) != _origin(base_url))
    if moved:
        log.warning(
            "state.delta_links_moved", graph_url=base_url, resources=moved, fallback="full read"
        )
        return None
    return links
