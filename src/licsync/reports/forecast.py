"""The seat forecast per SKU, from the plan and the tenant as read.

Every user counted wants one seat of the SKU; the columns add up:

    wanted   = granted + short + blocked           (users who need a NEW seat)
    after    = in_use + granted - freed            (consumedUnits once the plan is applied)
    held     = kept + freed                        (users read holding a seat now)

`available` is the free seats before the run (`prepaidUnits.enabled - consumedUnits`); the run can
hand out those plus the ones it frees. `short` counts users refused with CountViolation for this
SKU (out of seats, or the subscription takes no new assignments); `blocked` the users a source
would give the SKU but who do not get it for another reason (usage location, a conflict, a
prerequisite, or all-or-nothing: another licence of the same group failed).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from licsync.model import LicenseError, Plan, SourceKind, Tenant


@dataclass(frozen=True, slots=True)
class SeatForecast:
    sku_id: str
    part_number: str
    enabled: int  # prepaidUnits.enabled
    in_use: int  # consumedUnits before the run
    kept: int  # users who hold a seat and keep it
    freed: int  # users who hold a seat and lose it
    wanted: int  # users a source gives the SKU who do not hold it yet
    granted: int  # of those, how many get a seat
    short: int  # of those, how many are refused with CountViolation
    blocked: int  # of those, how many are refused for another reason

    @property
    def available(self) -> int:
        """Free seats before the run."""
        return max(self.enabled - self.in_use, 0)

    @property
    def after(self) -> int:
        """Seats in use once the plan is applied."""
        return self.in_use + self.granted - self.freed

    @property
    def free_after(self) -> int:
        return max(self.enabled - self.after, 0)


def seat_forecast(plan: Plan, tenant: Tenant) -> list[SeatForecast]:
    """One row per subscribed SKU, in the plan's order (by part number)."""
    out_of_seats: dict[str, set[str]] = {}
    for p in plan.problems:
        if p.error is LicenseError.COUNT_VIOLATION:
            out_of_seats.setdefault(p.user_id, set()).add(p.sku_id)
    kept: Counter[str] = Counter()
    freed: Counter[str] = Counter()
    wanted: Counter[str] = Counter()
    granted: Counter[str] = Counter()
    short: Counter[str] = Counter()
    for user_plan in plan.users:
        user = tenant.users.get(user_plan.user_id)
        before = user.held_skus() if user is not None else frozenset()
        after = {a.sku_id for a in user_plan.assigned_licenses}
        for sku_id in before:
            (kept if sku_id in after else freed)[sku_id] += 1
        refused = out_of_seats.get(user_plan.user_id, ())
        asked = {s.sku_id for s in user_plan.states if s.kind is not SourceKind.DIRECT} - before
        for sku_id in asked:
            wanted[sku_id] += 1
            if sku_id in after:
                granted[sku_id] += 1
            elif sku_id in refused:
                short[sku_id] += 1
    return [
        SeatForecast(
            sku_id=f.sku_id,
            part_number=f.part_number,
            enabled=f.enabled,
            in_use=f.consumed,
            kept=kept[f.sku_id],
            freed=freed[f.sku_id],
            wanted=wanted[f.sku_id],
            granted=granted[f.sku_id],
            short=short[f.sku_id],
            blocked=wanted[f.sku_id] - granted[f.sku_id] - short[f.sku_id],
        )
        for f in plan.skus
    ]
