"""Reclaim plan: users holding licences who have not been active for N days.

A user is listed when their last activity (last successful sign-in, or last activity in the
usage report) is older than `inactive_days`, or they never had any, and their account is older
than that. Excluded, and listed with the reason: accounts created within `inactive_days`, and
accounts licsync cannot tell about (no activity record at all). Each licence says how to take it
back, by the path it comes by: a direct assignment is removed from the user; a licsync rule's
or an Entra group's comes back until the user leaves the group, so the action names the group.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from licsync.model import Ledger, Tenant, User
from licsync.spend.inventory import DIRECT, ENTRA_GROUP, RULE, Path, licence_paths

NEW_ACCOUNT = "new account"
UNKNOWN = "no activity record"


@dataclass(frozen=True, slots=True)
class ReclaimLicence:
    sku_id: str
    paths: tuple[Path, ...]
    monthly_cost: Decimal | None

    def actions(self, group_name: Callable[[str | None], str]) -> list[str]:
        """How to take it back, one step per path."""
        steps = []
        for p in self.paths:
            if p.kind == DIRECT:
                steps.append("remove the direct assignment")
            elif p.kind == RULE:
                steps.append(f"remove from rule group {group_name(p.group_id)}")
            elif p.kind == ENTRA_GROUP:
                steps.append(f"remove from group {group_name(p.group_id)}")
        return steps


@dataclass(frozen=True, slots=True)
class Candidate:
    user: User
    last_activity: date | None
    licences: tuple[ReclaimLicence, ...]

    @property
    def monthly_cost(self) -> Decimal | None:
        priced = [lic.monthly_cost for lic in self.licences if lic.monthly_cost is not None]
        return sum(priced, Decimal(0)) if priced else None


@dataclass(frozen=True, slots=True)
class Excluded:
    user: User
    reason: str


@dataclass(frozen=True, slots=True)
class ReclaimPlan:
    inactive_days: int
    source: str
    cutoff: date
    candidates: tuple[Candidate, ...]
    excluded: tuple[Excluded, ...]


def plan_reclaim(
    tenant: Tenant,
    ledger: Ledger,
    *,
    activity: Mapping[str, date | None],
    created: Mapping[str, date | None],
    inactive_days: int,
    source: str,
    today: date,
    skus: frozenset[str] | None = None,
    prices: Mapping[str, Decimal] | None = None,
) -> ReclaimPlan:
    """The reclaim plan. `activity`: last activity by user id (None: never; a user missing is
    one licsync cannot tell about); `created`: account creation dates by user id; `skus`: only
    these skuIds (None: every licence)."""
    cutoff = today - timedelta(days=inactive_days)
    candidates: list[Candidate] = []
    excluded: list[Excluded] = []
    users = sorted(tenant.users.values(), key=lambda u: (u.user_principal_name.casefold(), u.id))
    for user in users:
        held = sorted(a.sku_id for a in user.assigned_licenses if skus is None or a.sku_id in skus)
        if not held:
            continue
        made = created.get(user.id)
        if made is not None and made > cutoff:
            excluded.append(Excluded(user, f"{NEW_ACCOUNT} (created {made.isoformat()})"))
            continue
        if user.id not in activity:
            excluded.append(Excluded(user, UNKNOWN))
            continue
        last = activity[user.id]
        if last is not None and last >= cutoff:
            continue
        licences = tuple(
            ReclaimLicence(s, licence_paths(user, s, ledger), (prices or {}).get(s)) for s in held
        )
        candidates.append(Candidate(user, last, licences))
    return ReclaimPlan(inactive_days, source, cutoff, tuple(candidates), tuple(excluded))
