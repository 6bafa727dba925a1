"""The versioned JSON report of a plan (format documented in docs/report-format.md)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import orjson

from licsync.model import Assignment, Plan, Problem, SkuForecast, SourceState, Tenant, UserPlan
from licsync.reports.forecast import SeatForecast, seat_forecast
from licsync.reports.names import Names
from licsync.reports.spend import SpendView, costs_json, sku_json, spend_view, summary_cost
from licsync.reports.writes import WriteRow
from licsync.spend.costs import Spend

REPORT_VERSION = 1


def _assignments(assignments: Iterable[Assignment]) -> list[dict[str, Any]]:
    return [
        {"skuId": a.sku_id, "disabledPlans": sorted(a.disabled_plans)}
        for a in sorted(assignments, key=lambda a: a.sku_id)
    ]


def _states(states: Iterable[SourceState]) -> list[dict[str, Any]]:
    return [
        {
            "skuId": s.sku_id,
            "assignedByGroup": s.group_id,
            "source": s.kind.value,
            "disabledPlans": sorted(s.disabled_plans),
            "state": s.state,
            "error": s.error.value if s.error else None,
        }
        for s in sorted(states, key=lambda s: (s.sku_id, s.group_id or ""))
    ]


class _Shared:
    """JSON fragments built once per distinct tuple: the engine hands users with the same
    decisions the same tuples, so most of a large report is a few thousand shared lists."""

    def __init__(self) -> None:
        self._built: dict[int, tuple[object, list[dict[str, Any]]]] = {}

    def __call__(self, build: Callable[[Any], list[dict[str, Any]]], items: tuple) -> Any:
        found = self._built.get(id(items))
        if found is None or found[0] is not items:
            found = self._built[id(items)] = (items, build(items))
        return found[1]


def _user(u: UserPlan, shared: _Shared) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": u.user_id,
        "userPrincipalName": u.user_principal_name,
        "assignedLicenses": shared(_assignments, u.assigned_licenses),
        "licenseAssignmentStates": shared(_states, u.states),
        "addLicenses": shared(_assignments, u.add_licenses),
        "removeLicenses": sorted(u.remove_licenses),
    }
    if u.usage_location:
        entry["usageLocation"] = u.usage_location
    return entry


def summary(
    plan: Plan,
    tenant: Tenant,
    forecast: Sequence[SeatForecast] | None = None,
    spend: SpendView | None = None,
) -> dict[str, Any]:
    """The report's headline numbers (`forecast`: the plan's seat forecast, if already made);
    with prices, `cost` too."""
    changes = plan.changes
    updated = 0
    for u in changes:
        if u.add_licenses:
            current = tenant.users[u.user_id].direct_licenses()
            updated += sum(1 for a in u.add_licenses if a.sku_id in current)
    added = sum(len(u.add_licenses) for u in changes)
    seats = seat_forecast(plan, tenant) if forecast is None else forecast
    facts: dict[str, Any] = {
        "users": len(plan.users),
        "usersWithChanges": len(changes),
        "addLicenses": added,
        "newLicenses": added - updated,
        "updatedLicenses": updated,
        "removeLicenses": sum(len(u.remove_licenses) for u in changes),
        "usageLocations": sum(1 for u in changes if u.usage_location),
        "problems": len(plan.problems),
        "usersWithProblems": len({p.user_id for p in plan.problems}),
        "skusShort": sum(1 for f in seats if f.short),
    }
    if spend is not None and spend.spend.priced:
        facts["cost"] = summary_cost(spend)
    return facts


def _sku(
    f: SkuForecast, seats: SeatForecast, names: Names, spend: SpendView | None
) -> dict[str, Any]:
    entry = {
        "skuId": f.sku_id,
        "skuPartNumber": f.part_number,
        "productName": names.product(f.sku_id),
        "enabled": f.enabled,
        "consumed": f.consumed,
        "available": f.available,
        "requested": f.requested,
        "granted": f.granted,
        "freed": f.freed,
        "shortfall": f.shortfall,
        "consumedAfter": f.consumed_after,
        "kept": seats.kept,
        "wanted": seats.wanted,
        "short": seats.short,
        "blocked": seats.blocked,
    }
    if spend is not None:
        entry.update(sku_json(spend, f.sku_id))
    return entry


def _problem(p: Problem, names: Names) -> dict[str, Any]:
    return {
        "userId": p.user_id,
        "userPrincipalName": p.user_principal_name,
        "skuId": p.sku_id,
        "skuPartNumber": names.part_number(p.sku_id),
        "groupId": p.group_id,
        "error": p.error.value,
        "message": p.message,
    }


def _sections(
    plan: Plan, names: Names, forecast: Sequence[SeatForecast], spend: SpendView | None
) -> Iterator[tuple[str, Iterable[Any]]]:
    """The report's lists in order, each produced lazily."""
    shared = _Shared()
    skus = zip(plan.skus, forecast, strict=True)
    yield "skus", (_sku(f, s, names, spend) for f, s in skus)
    users = sorted(plan.users, key=lambda u: u.user_id)
    yield "users", (_user(u, shared) for u in users)
    problems = sorted(plan.problems, key=lambda p: (p.user_id, p.sku_id, p.group_id or "", p.error))
    yield "problems", (_problem(p, names) for p in problems)


def _spend(
    plan: Plan, names: Names, forecast: Sequence[SeatForecast], spend: Spend | None
) -> SpendView | None:
    return None if spend is None else spend_view(plan, names.tenant, forecast, spend)


def plan_document(plan: Plan, names: Names, spend: Spend | None = None) -> dict[str, Any]:
    """The report as a JSON-ready dict: GUIDs lower case, lists sorted, stable across runs."""
    forecast = seat_forecast(plan, names.tenant)
    view = _spend(plan, names, forecast, spend)
    document: dict[str, Any] = {"version": REPORT_VERSION}
    sections = _sections(plan, names, forecast, view)
    document.update((name, list(items)) for name, items in sections)
    if view is not None and view.spend.priced:
        document["costs"] = costs_json(view, names)
    document["summary"] = summary(plan, names.tenant, forecast, view)
    return document


def _write(w: WriteRow) -> dict[str, Any]:
    return {
        "userId": w.user_id,
        "userPrincipalName": w.user_principal_name,
        "write": w.write,
        "outcome": w.outcome,
        "httpStatus": int(w.status) if w.status else None,
        "requestId": w.request_id or None,
        "error": w.error or None,
        "message": w.message or None,
    }


def write_plan_json(
    plan: Plan,
    names: Names,
    write: Callable[[bytes], object],
    writes: Sequence[WriteRow] | None = None,
    run: Mapping[str, Any] | None = None,
    spend: Spend | None = None,
) -> None:
    """Write the same document as `plan_document` piece by piece, one list entry per line, so
    a 100k-user report never sits in memory whole. A sync that wrote adds `writes` (one entry
    per write, in the order sent) and `run` (its counters); `spend` adds cost and renewals."""
    forecast = seat_forecast(plan, names.tenant)
    view = _spend(plan, names, forecast, spend)
    write(b'{"version":%d' % REPORT_VERSION)
    sections = _sections(plan, names, forecast, view)
    if writes is not None:
        sections = itertools.chain(sections, [("writes", map(_write, writes))])
    for name, items in sections:
        write(b',\n"%s":[' % name.encode())
        separator = b"\n"
        for item in items:
            write(separator + orjson.dumps(item))
            separator = b",\n"
        write(b"\n]")
    if run is not None:
        write(b',\n"run":' + orjson.dumps(dict(run)))
    if view is not None and view.spend.priced:
        write(b',\n"costs":' + orjson.dumps(costs_json(view, names)))
    facts = summary(plan, names.tenant, forecast, view)
    write(b',\n"summary":' + orjson.dumps(facts) + b"}\n")
