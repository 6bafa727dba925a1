"""The commercial subscriptions behind the SKUs (`GET /directory/subscriptions`).

Graph's companySubscription (https://learn.microsoft.com/graph/api/resources/companysubscription):
one per purchase, with its `status` (`Enabled`, `Warning`, `Suspended`, `Deleted`,
`LockedOut`), `isTrial`, `totalLicenses` and `nextLifecycleDateTime`; a SKU's
`prepaidUnits.enabled`, `.warning` and `.suspended` are the totals of its subscriptions in each
status. A snapshot may carry them (`"subscriptions"`, in Graph's shape); one without them gets
one subscription per status with seats, derived from the SKUs.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

GraphJSON = dict[str, Any]
TRIAL_SEATS = 25
STATUS_UNITS = (("Enabled", "enabled"), ("Warning", "warning"), ("Suspended", "suspended"))


def _id(*parts: str) -> str:
    """A stable GUID for the same SKU and role."""
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def _date(*parts: str) -> str:
    """A renewal date within the year after today (the same all day for the same SKU)."""
    days = int.from_bytes(hashlib.sha256("/".join(parts).encode()).digest()[:2], "big") % 365
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (today + timedelta(days=days + 1)).strftime("%Y-%m-%dT%H:%M:%SZ")


def subscription(
    tenant_id: str, sku: Any, status: str, seats: int, *, trial: bool = False
) -> GraphJSON:
    """One companySubscription of `sku` (an emulator SkuRecord)."""
    role = f"{status}-trial" if trial else status
    return {
        "commerceSubscriptionId": _id("commerce", sku.id, role),
        "createdDateTime": "2025-01-01T00:00:00Z",
        "id": _id("subscription", sku.id, role),
        "isTrial": trial,
        "nextLifecycleDateTime": _date(sku.id, role),
        "ownerId": None,
        "ownerTenantId": tenant_id,
        "ownerType": None,
        "serviceStatus": [dict(p) for p in sku.plans],
        "skuId": sku.id,
        "skuPartNumber": sku.part_number,
        "status": status,
        "totalLicenses": seats,
    }


def derive_subscriptions(
    tenant_id: str, skus: Iterable[Any], trial_sku: str | None = None
) -> list[GraphJSON]:
    """One subscription per SKU and status with seats; `trial_sku`'s enabled seats are split
    into a paid subscription and a trial of up to TRIAL_SEATS seats."""
    found = []
    for sku in skus:
        for status, units in STATUS_UNITS:
            seats = int(getattr(sku, units))
            if seats <= 0:
                continue
            if status == "Enabled" and sku.id == trial_sku and seats > 1:
                trial = min(TRIAL_SEATS, seats // 2)
                found.append(subscription(tenant_id, sku, status, trial, trial=True))
                seats -= trial
            found.append(subscription(tenant_id, sku, status, seats))
    return found
