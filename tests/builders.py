"""Small tenants in Graph's own JSON shapes, built from Microsoft's real licensing catalogue."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from licsync.catalogue import default_catalogue
from licsync.model import Tenant
from licsync.snapshot import tenant_from_json


def catalogue_sku_id(part: str) -> str:
    """The real SKU id of a part number in Microsoft's shipped catalogue."""
    return default_catalogue().by_part_number()[part][0].id


def catalogue_plan_id(part: str, name: str) -> str:
    """The real id of service plan `name` inside SKU `part`."""
    sku = default_catalogue().by_part_number()[part][0]
    return next(p.id for p in sku.plans if p.name == name)


def subscribed_sku_json(
    org_id: str,
    part: str,
    seats: int,
    consumed: int | None,
    applies: str = "User",
    status: str = "Enabled",
) -> dict[str, Any]:
    """One `subscribedSku` as Graph sends it (mixed-case skuId), from the real catalogue."""
    sku = default_catalogue().by_part_number()[part][0]
    return {
        "accountName": "Contoso",
        "accountId": org_id,
        "appliesTo": applies,
        "capabilityStatus": status,
        "consumedUnits": consumed,
        "id": f"{org_id}_{sku.id}",
        "prepaidUnits": {"enabled": seats, "lockedOut": 0, "suspended": 0, "warning": 0},
        "servicePlans": [
            {
                "servicePlanId": p.id,
                "servicePlanName": p.name,
                "provisioningStatus": "Success",
                "appliesTo": applies,
            }
            for p in sku.plans
        ],
        "skuId": sku.id.upper(),
        "skuPartNumber": part,
        "subscriptionIds": ["43d26afe-cb98-48b9-acc4-ae3ef2ac6c51"],
    }


def object_id(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"licsync-test/{name}"))


class TenantBuilder:
    """Declare SKUs, users and groups by name; get a snapshot dict or a Tenant.

    Objects get ids made from their names unless given one (`id=`); members name users and
    groups declared before them. SKUs are `subscribedSku`s as Graph sends them; `graph_case`
    keeps Graph's upper-case skuId in them (users' licences always use the lower-case id).
    """

    def __init__(
        self,
        country: str | None = "US",
        *,
        org_id: str | None = None,
        org_name: str | None = None,
        graph_case: bool = False,
    ) -> None:
        self.organization: dict[str, Any] = {
            "id": org_id or object_id("org"),
            **({"displayName": org_name} if org_name else {}),
            "countryLetterCode": country,
        }
        self.graph_case = graph_case
        self.skus: dict[str, dict[str, Any]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, dict[str, Any]] = {}
        self._ids: dict[str, str] = {}

    def id_of(self, name: str) -> str:
        return self._ids.get(name) or object_id(name)

    def sku_id(self, part: str) -> str:
        return str(self.skus[part]["skuId"]).lower()

    def plan_id(self, part: str, plan_name: str) -> str:
        for plan in self.skus[part]["servicePlans"]:
            if plan["servicePlanName"] == plan_name:
                return str(plan["servicePlanId"])
        raise KeyError(f"{plan_name} not in {part}")

    def plan_ids(self, part: str, names: list[str]) -> list[str]:
        return [self.plan_id(part, n) for n in names]

    def sku(
        self,
        part: str,
        enabled: int = 10,
        consumed: int | None = None,
        status: str = "Enabled",
        applies_to: str = "User",
    ) -> TenantBuilder:
        """`consumed`: None counts the users holding it."""
        sku = subscribed_sku_json(
            self.organization["id"], part, enabled, consumed, applies_to, status
        )
        if not self.graph_case:
            sku["skuId"] = sku["skuId"].lower()
        self.skus[part] = sku
        return self

    def user(
        self,
        name: str,
        location: str | None = "US",
        enabled: bool = True,
        guest: bool = False,
        direct: dict[str, list[str]] | None = None,
        inherited: list[tuple[str, str, list[str]]] | None = None,
        *,
        id: str | None = None,
        upn: str | None = None,
        **attributes: Any,
    ) -> TenantBuilder:
        """`direct`: part → disabled plan names; `inherited`: (group, part, disabled names);
        `attributes`: other Graph properties (department="Sales", otherMails=[…])."""
        states = [
            {
                "skuId": self.sku_id(p),
                "disabledPlans": self.plan_ids(p, d),
                "assignedByGroup": None,
                "state": "Active",
                "error": "None",
            }
            for p, d in (direct or {}).items()
        ] + [
            {
                "skuId": self.sku_id(p),
                "disabledPlans": self.plan_ids(p, d),
                "assignedByGroup": self.id_of(g),
                "state": "Active",
                "error": None,
            }
            for g, p, d in (inherited or [])
        ]
        combined: dict[str, set[str]] = {}
        for state in states:
            disabled = set(state["disabledPlans"])
            combined[state["skuId"]] = combined.get(state["skuId"], disabled) & disabled
        self._ids[name] = id or object_id(name)
        self.users[name] = {
            "id": self._ids[name],
            "userPrincipalName": upn or f"{name}@contoso.example",
            "accountEnabled": enabled,
            "usageLocation": location,
            "userType": "Guest" if guest else "Member",
            "assignedLicenses": [
                {"skuId": s, "disabledPlans": sorted(d)} for s, d in combined.items()
            ],
            "licenseAssignmentStates": states,
            **attributes,
        }
        return self

    def group(
        self,
        name: str,
        members: Sequence[str] = (),
        groups: Sequence[str] = (),
        security: bool = True,
        entra: dict[str, list[str]] | None = None,
        devices: int = 0,
        *,
        id: str | None = None,
        display_name: str | None = None,
    ) -> TenantBuilder:
        self._ids[name] = id or object_id(name)
        self.groups[name] = {
            "id": self._ids[name],
            "displayName": display_name or name,
            "securityEnabled": security,
            "mailEnabled": not security,
            "groupTypes": [],
            "assignedLicenses": [
                {"skuId": self.sku_id(p), "disabledPlans": self.plan_ids(p, d)}
                for p, d in (entra or {}).items()
            ],
            "members": (
                [{"@odata.type": "#microsoft.graph.user", "id": self.id_of(m)} for m in members]
                + [{"@odata.type": "#microsoft.graph.group", "id": self.id_of(g)} for g in groups]
                + [
                    {"@odata.type": "#microsoft.graph.device", "id": object_id(f"dev{i}")}
                    for i in range(devices)
                ]
            ),
        }
        return self

    def snapshot(self) -> dict[str, Any]:
        skus = []
        for sku in self.skus.values():
            sku = dict(sku)
            if sku["consumedUnits"] is None:
                held = str(sku["skuId"]).lower()
                sku["consumedUnits"] = sum(
                    any(a["skuId"] == held for a in u["assignedLicenses"])
                    for u in self.users.values()
                )
            skus.append(sku)
        return {
            "organization": dict(self.organization),
            "subscribedSkus": skus,
            "users": list(self.users.values()),
            "groups": list(self.groups.values()),
        }

    def tenant(self, user_properties: tuple[str, ...] = ()) -> Tenant:
        return tenant_from_json(self.snapshot(), user_properties=user_properties)


# -- the tenants the end-to-end and emulator tests share --------------------------------------

ORG_ID = "7f3d526c-b3c1-4479-ba74-197b5c5751ae"


def user_id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def group_id(n: int) -> str:
    return f"99999999-0000-4000-8000-{n:012d}"


def small_snapshot(
    *,
    users: int = 10,
    seats: dict[str, int] | None = None,
    members: dict[int, list[int]] | None = None,
    direct: dict[int, list[tuple[str, list[str]]]] | None = None,
) -> dict[str, Any]:
    """`users` users (`user{n}`, all located in US), groups 1..3 (`Group {g}`) with the given
    user members, and the SKUs in `seats` (Graph's upper-case skuIds). `direct` gives users
    direct licences: part number and disabled plan names."""
    b = TenantBuilder(org_id=ORG_ID, org_name="Contoso", graph_case=True)
    for part, count in (
        seats if seats is not None else {"SPE_E3": 100, "POWER_BI_PRO": 100}
    ).items():
        b.sku(part, count)
    for n in range(1, users + 1):
        b.user(
            f"user{n}",
            direct=dict((direct or {}).get(n, [])),
            id=user_id(n),
            upn=f"user{n}@contoso.com",
        )
    for g in (1, 2, 3):
        names = [f"user{m}" for m in (members or {}).get(g, [])]
        b.group(f"Group {g}", names, id=group_id(g))
    return b.snapshot()


TINY_ORG_ID = "9a3d526c-b3c1-4479-ba74-197b5c5751ae"
TINY_SEATS = {
    "SPE_E3": ("User", 3),
    "STANDARDPACK": ("User", 5),
    "MCOMEETADV": ("User", 5),
    "EMS": ("User", 2),
    "WORKPLACE_ANALYTICS": ("User", 5),
    "POWER_BI_PRO": ("User", 10),
    "SHAREPOINTSTORAGE": ("Company", 10),
}
TINY_IDS = {
    "alice": "a0000000-0000-4000-8000-000000000001",
    "bob": "b0000000-0000-4000-8000-000000000002",
    "carol": "c0000000-0000-4000-8000-000000000003",
    "dave": "d0000000-0000-4000-8000-000000000004",
    "erin": "e0000000-0000-4000-8000-000000000005",
    "frank": "f0000000-0000-4000-8000-000000000006",
    "licensed": "1a000000-0000-4000-8000-0000000000aa",
    "sales": "1b000000-0000-4000-8000-0000000000bb",
    "parent": "1c000000-0000-4000-8000-0000000000cc",
    "dist": "1d000000-0000-4000-8000-0000000000dd",
}


def tiny_snapshot() -> dict[str, Any]:
    """Six users, four groups, seven real SKUs (E3 has 3 seats, EMS 2)."""
    b = TenantBuilder(org_id=TINY_ORG_ID, org_name="Contoso", graph_case=True)
    for part, (applies, seats) in TINY_SEATS.items():
        b.sku(part, seats, applies_to=applies)

    def user(name: str, location: str | None, direct: list[str], **kw: Any) -> None:
        d = {p: [] for p in direct}
        b.user(name, location, direct=d, id=TINY_IDS[name], upn=f"{name}@contoso.com", **kw)

    user("alice", "US", ["SPE_E3"])
    user("bob", "GB", [])
    user("carol", None, [])
    user("dave", "US", ["SPE_E3", "MCOMEETADV"])
    user("erin", None, [], guest=True)
    user("frank", "DE", [], enabled=False)

    def group(name: str, members: list[str], groups: list[str] = (), security: bool = True) -> None:
        b.group(name, members, groups, security, id=TINY_IDS[name], display_name=name.title())

    group("licensed", ["bob", "carol", "erin"])
    group("sales", ["alice", "frank"])
    group("parent", ["bob"], ["sales"])
    group("dist", ["alice"], security=False)
    return b.snapshot()
