"""The subscriptions behind each SKU: `GET /directory/subscriptions` (companySubscription).

A SKU's seats (`subscribedSku.prepaidUnits`) are the sum of its subscriptions' `totalLicenses`
by status: `Enabled` seats renew on `nextLifecycleDateTime`; a `Warning` subscription's seats
still work until that date, then go `Suspended`; a trial (`isTrial`) ends instead of renewing.
Reading them needs `Organization.Read.All`, which licsync already asks for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from licsync.graphjson import ShapeError
from licsync.model import guid
from licsync.validation import shown

if TYPE_CHECKING:
    from licsync.graph.client import GraphClient

SUBSCRIPTIONS_PATH = "/directory/subscriptions"
STATUSES = ("Enabled", "Warning", "Suspended", "Deleted", "LockedOut")


@dataclass(frozen=True, slots=True)
class Subscription:
    """One companySubscription, with the properties licsync reports."""

    id: str
    sku_id: str
    status: str
    is_trial: bool
    total_licenses: int
    next_lifecycle: datetime | None

    @property
    def renews(self) -> bool:
        """A paid subscription whose seats are live and renew on `next_lifecycle`."""
        return self.status == "Enabled" and not self.is_trial

    def to_json(self) -> dict[str, Any]:
        """The report's shape: Graph's property names."""
        return {
            "id": self.id,
            "status": self.status,
            "isTrial": self.is_trial,
            "totalLicenses": self.total_licenses,
            "nextLifecycleDateTime": iso(self.next_lifecycle),
        }


def iso(moment: datetime | None) -> str | None:
    """A UTC time as Graph writes it (`2027-01-01T00:00:00Z`)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any, key: str) -> datetime | None:
    """A DateTimeOffset property (None when null); ShapeError when it is not one."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ShapeError(f"{key!r} must be a date and time, got {shown(value)}")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ShapeError(f"{key!r} must be an ISO 8601 date and time, got {shown(value)}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_subscription(obj: Mapping[str, Any]) -> Subscription:
    """A companySubscription as Graph sends it; ShapeError names the bad property."""
    sub_id, sku_id, status = obj.get("id"), obj.get("skuId"), obj.get("status")
    for key, value in (("id", sub_id), ("skuId", sku_id), ("status", status)):
        if not isinstance(value, str) or not value.strip():
            raise ShapeError(f"{key!r} must be a non-empty string, got {shown(value)}")
    trial, total = obj.get("isTrial", False), obj.get("totalLicenses", 0)
    if not isinstance(trial, bool):
        raise ShapeError(f"'isTrial' must be true or false, got {shown(trial)}")
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise ShapeError(f"'totalLicenses' must be a whole number, got {shown(total)}")
    assert isinstance(sub_id, str) and isinstance(sku_id, str) and isinstance(status, str)
    return Subscription(
        id=guid(sub_id),
        sku_id=guid(sku_id),
        status=status.strip(),
        is_trial=trial,
        total_licenses=total,
        next_lifecycle=parse_time(obj.get("nextLifecycleDateTime"), "nextLifecycleDateTime"),
    )


def by_sku(subscriptions: Iterable[Subscription]) -> dict[str, tuple[Subscription, ...]]:
    """Subscriptions grouped by skuId, each group by date (no date last), then id."""
    found: dict[str, list[Subscription]] = {}
    for sub in subscriptions:
        found.setdefault(sub.sku_id, []).append(sub)
    last = datetime.max.replace(tzinfo=UTC)
    return {
        sku: tuple(sorted(subs, key=lambda s: (s.next_lifecycle or last, s.id)))
        for sku, subs in found.items()
    }


async def read_subscriptions(client: GraphClient) -> list[Subscription]:
    """Every subscription of the tenant (all pages)."""
    return await client.iterate_pages(SUBSCRIPTIONS_PATH).collect(parse_subscription)
