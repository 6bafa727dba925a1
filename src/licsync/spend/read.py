"""Reading what spend reports need beside the tenant: the subscriptions and each user's value
of the `[prices] group_by` attribute, from Graph or from a snapshot file."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from licsync.config import Config
from licsync.errors import SnapshotError
from licsync.model import Ledger, Tenant, guid
from licsync.spend.costs import Spend
from licsync.spend.prices import PriceList
from licsync.spend.subscriptions import (
    Subscription,
    by_sku,
    parse_subscription,
    read_subscriptions,
)

if TYPE_CHECKING:
    from licsync.graph.client import GraphClient

PAGE_SIZE = 999
T = TypeVar("T")


def _value(raw: Any) -> str | None:
    """An attribute's value as a report groups it (numbers and flags as text)."""
    if raw is None or raw == "":
        return None
    return raw if isinstance(raw, str) else orjson.dumps(raw).decode()


async def read_attribute(client: GraphClient, name: str) -> dict[str, str]:
    """Every user's value of the user property `name` (users without one are left out)."""
    params: dict[str, str | int] = {"$select": f"id,{name}", "$top": PAGE_SIZE}
    users = await client.iterate_pages("/users", params).collect()
    return {
        guid(u["id"]): value
        for u in users
        if isinstance(u.get("id"), str) and (value := _value(u.get(name))) is not None
    }


@dataclass(frozen=True, slots=True)
class SpendReads:
    """What was read beside the tenant: subscriptions by skuId (None: the snapshot has none)
    and each user's value of the `group_by` attribute."""

    subscriptions: Mapping[str, tuple[Subscription, ...]] | None
    attributes: Mapping[str, str]


def make_spend(
    tenant: Tenant, prices: PriceList | None, group_by: str | None, reads: SpendReads
) -> Spend:
    """The facts a report shows spend from; prices resolved against the tenant's SKUs."""
    return Spend(
        currency=prices.currency if prices is not None else None,
        prices=prices.for_tenant(tenant) if prices is not None else {},
        subscriptions=reads.subscriptions,
        group_by=group_by,
        attributes=reads.attributes,
    )


async def read_spend(client: GraphClient, group_by: str | None) -> SpendReads:
    """The subscriptions and, with `group_by`, every user's value of it, through Graph."""
    attributes: dict[str, str] = {}
    if group_by is None:
        subscriptions = await read_subscriptions(client)
    else:
        subscriptions, attributes = await asyncio.gather(
            read_subscriptions(client), read_attribute(client, group_by)
        )
    return SpendReads(by_sku(subscriptions), attributes)


def snapshot_spend(path: Path, group_by: str | None) -> SpendReads:
    """The same from a snapshot file: its `subscriptions` list (in Graph's shape, as the
    emulator saves it; None when the file has none) and the users' attribute."""
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:  # load_snapshot read it a moment ago
        raise SnapshotError(f"{path}: cannot read the snapshot again: {exc}") from None
    if not isinstance(data, dict):
        raise SnapshotError(f"{path}: not a snapshot")
    raw = data.get("subscriptions")
    subscriptions = None
    if isinstance(raw, list):
        try:
            subscriptions = by_sku(parse_subscription(s) for s in raw)
        except (ValueError, TypeError, AttributeError) as exc:
            raise SnapshotError(f"{path}: subscriptions: {exc}") from None
    attributes: dict[str, str] = {}
    if group_by is not None:
        for user in data.get("users") or []:
            value = _value(user.get(group_by)) if isinstance(user, dict) else None
            if value is not None and isinstance(user.get("id"), str):
                attributes[guid(user["id"])] = value
    return SpendReads(subscriptions, attributes)


def through_graph(config: Config, read: Callable[[GraphClient], Awaitable[T]]) -> T:
    """`read` with a Graph client of the config's `[graph]`, closed afterwards."""
    from licsync.runtime import graph_client

    async def run() -> T:
        async with graph_client(config) as client:
            return await read(client)

    return asyncio.run(run())


def gather_spend(
    config: Config, snapshot: Path | None, *, always: bool = False
) -> SpendReads | None:
    """What the reports need beside the tenant, from `snapshot` or through Graph; None when
    the config has no `[prices]` (unless `always`: `licsync seats` reads subscriptions anyway)."""
    prices = config.settings.prices
    if prices is None and not always:
        return None
    group_by = prices.group_by if prices is not None else None
    if snapshot is not None:
        return snapshot_spend(snapshot, group_by)
    return through_graph(config, lambda client: read_spend(client, group_by))


def config_spend(config: Config, tenant: Tenant, reads: SpendReads | None) -> Spend | None:
    """The report's spend facts (None when nothing was read)."""
    if reads is None:
        return None
    prices = config.settings.prices
    return make_spend(tenant, config.prices(), prices.group_by if prices else None, reads)


def read_ledger(config: Config) -> Ledger:
    """licsync's ledger when the state store exists (opened read-only), else empty."""
    from licsync.runtime import open_state

    store, _ = open_state(config, read_only=True)
    if store is None:
        return {}
    try:
        return store.load_ledger()
    finally:
        store.close()
