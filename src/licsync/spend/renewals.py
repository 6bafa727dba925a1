"""Seats at the next renewal, and seats about to stop working, from a SKU's subscriptions and
the seat forecast of a plan.

    needed     = after + short          (seats the plan hands out, plus users still waiting)
    bought     = Σ totalLicenses of the paid `Enabled` subscriptions (they renew)
    droppable  = max(bought - needed, 0) at the earliest of their nextLifecycleDateTime

A `Warning` or `Suspended` subscription, and a trial, end on their `nextLifecycleDateTime`
instead of renewing: when the seats left after that date are fewer than `needed`, that many
users lose the SKU then ("N users lose X on DATE").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from licsync.reports.forecast import SeatForecast
from licsync.spend.subscriptions import Subscription

ENDING = ("Warning", "Suspended")


@dataclass(frozen=True, slots=True)
class SeatLoss:
    """`users` holders of the SKU lose it when `subscription` ends on `date`."""

    subscription: Subscription
    users: int
    date: datetime | None


@dataclass(frozen=True, slots=True)
class Renewal:
    sku_id: str
    needed: int
    bought: int | None  # None: no paid subscription renews this SKU
    droppable: int | None
    date: datetime | None
    losses: tuple[SeatLoss, ...]


def _ends(sub: Subscription) -> bool:
    return sub.status in ENDING or (sub.is_trial and sub.status == "Enabled")


def renewal(f: SeatForecast, subscriptions: Sequence[Subscription]) -> Renewal:
    """The renewal facts of one SKU (`subscriptions`: its own, in date order)."""
    needed = f.after + f.short
    renewing = [s for s in subscriptions if s.renews]
    bought = sum(s.total_licenses for s in renewing) if renewing else None
    dates = [s.next_lifecycle for s in renewing if s.next_lifecycle is not None]
    live = [s for s in subscriptions if s.renews or _ends(s)]
    seats = sum(s.total_licenses for s in live)
    losses: list[SeatLoss] = []
    lost = 0
    for sub in (s for s in live if _ends(s)):
        seats -= sub.total_licenses
        short = max(needed - seats, 0) - lost
        if short > 0:
            losses.append(SeatLoss(sub, short, sub.next_lifecycle))
            lost += short
    return Renewal(
        sku_id=f.sku_id,
        needed=needed,
        bought=bought,
        droppable=None if bought is None else max(bought - needed, 0),
        date=min(dates) if dates else None,
        losses=tuple(losses),
    )
