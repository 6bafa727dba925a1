"""The inventory: every licence every user holds, with the path it comes by.

A licence comes by one or more paths: a licsync rule (licsync assigned it, as the ledger
records, for these rule groups), an Entra group (Entra's own group licensing, with the group),
or direct (assigned on the user by an admin; for a licence licsync took over, the admin's own
assignment it keeps). "Several" is any licence with more than one path.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from licsync.model import Ledger, Tenant, User

RULE, ENTRA_GROUP, DIRECT = "rule", "entraGroup", "direct"


@dataclass(frozen=True, slots=True)
class Path:
    kind: str  # rule | entraGroup | direct
    group_id: str | None = None


@dataclass(frozen=True, slots=True)
class InventoryRow:
    user: User
    sku_id: str
    paths: tuple[Path, ...]
    disabled_plans: frozenset[str]
    last_sign_in: datetime | None
    monthly_cost: Decimal | None


def licence_paths(user: User, sku_id: str, ledger: Ledger) -> tuple[Path, ...]:
    """The paths by which `user` holds `sku_id`: rule groups first, then Entra groups, then
    direct."""
    states = user.license_assignment_states
    direct = sku_id in user.direct_licenses()
    entra = sorted(
        s.assigned_by_group
        for s in states or ()
        if s.sku_id == sku_id and s.assigned_by_group is not None
    )
    paths: list[Path] = []
    owned = ledger.get((user.id, sku_id))
    if direct and owned is not None:
        paths.extend(Path(RULE, g) for g in owned.groups)
        direct = owned.prior_direct is not None
    paths.extend(Path(ENTRA_GROUP, g) for g in entra)
    if direct:
        paths.append(Path(DIRECT))
    return tuple(paths)


def inventory_rows(
    tenant: Tenant,
    ledger: Ledger,
    prices: Mapping[str, Decimal],
    sign_ins: Mapping[str, datetime | None],
) -> Iterator[InventoryRow]:
    """One row per user and SKU held, users by user principal name."""
    users = sorted(tenant.users.values(), key=lambda u: (u.user_principal_name.casefold(), u.id))
    for user in users:
        for assignment in sorted(user.assigned_licenses, key=lambda a: a.sku_id):
            sku_id = assignment.sku_id
            yield InventoryRow(
                user=user,
                sku_id=sku_id,
                paths=licence_paths(user, sku_id, ledger),
                disabled_plans=assignment.disabled_plans,
                last_sign_in=sign_ins.get(user.id),
                monthly_cost=prices.get(sku_id),
            )
