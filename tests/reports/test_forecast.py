"""The seat forecast adds up for every SKU, and agrees with the engine's own seat counters."""

from __future__ import annotations

from licsync.model import LicenseError
from licsync.reports.forecast import seat_forecast


def test_the_seat_forecast_adds_up_for_every_sku(generated) -> None:
    tenant, plan = generated.tenant, generated.plan
    forecast = seat_forecast(plan, tenant)
    engine = {f.sku_id: f for f in plan.skus}
    assert len(forecast) == len(tenant.skus)
    for f in forecast:
        holders = sum(1 for u in tenant.users.values() if f.sku_id in u.held_skus())
        assert f.kept + f.freed == holders, f.part_number
        assert f.granted + f.short + f.blocked == f.wanted, f.part_number
        assert min(f.granted, f.short, f.blocked) >= 0, f.part_number
        assert f.after == f.in_use + f.granted - f.freed, f.part_number
        assert f.granted <= f.available + f.freed, f.part_number
        assert f.granted == engine[f.sku_id].granted, f.part_number
        assert f.freed == engine[f.sku_id].freed, f.part_number
        sku = tenant.skus[f.sku_id]
        if f.short and sku.assignable:  # out of seats: every seat there was went to someone
            assert f.granted == f.available + f.freed, f.part_number
    assert any(f.short for f in forecast) and any(f.blocked for f in forecast)


def test_short_counts_the_users_refused_with_count_violation(generated) -> None:
    plan = generated.plan
    refused: dict[str, set[str]] = {}
    for p in plan.problems:
        if p.error is LicenseError.COUNT_VIOLATION:
            refused.setdefault(p.sku_id, set()).add(p.user_id)
    for f in seat_forecast(plan, generated.tenant):
        assert f.short == len(refused.get(f.sku_id, ())), f.part_number
