"""Small tenants in Graph's own JSON shapes, built from Microsoft's real licensing catalogue."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from licsync.catalogue import Catalogue, default_catalogue, parse_catalogue
from licsync.model import Tenant
from licsync.snapshot import tenant_from_json

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CATALOGUE_CSV = SHARED / "data" / "licensing" / "product_names_service_plan_ids_2026-06.csv"
_catalogue: Catalogue | None = None


def catalogue() -> Catalogue:
    global _catalogue
    if _catalogue is None:
        _catalogue = parse_catalogue(CATALOGUE_CSV)
    return _catalogue


def catalogue_sku_id(part: str) -> str:
    """The real SKU id of a part number in Microsoft's shipped catalogue."""
    return default_catalogue().by_part_number()[part][0].id


def catalogue_plan_id(part: str, name: str) -> str:
    """The real id of service plan `name` inside SKU `part`."""
    sku = default_catalogue().by_part_number()[part][0]
    return next(p.id for p in sku.plans if p.name == name)


def subscribed_sku_json(
    org_id: str, part: str, seats: int, consumed: int, applies: str = "User"
) -> dict[str, Any]:
    """One `subscribedSku` as Graph sends it (mixed-case skuId), from the real catalogue."""
    sku = default_catalogue().by_part_number()[part][0]
    return {
        "accountName": "Contoso",
        "accountId": org_id,
        "appliesTo": applies,
        "capabilityStatus": "Enabled",
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
    """Declare SKUs, users and groups by name; get a snapshot dict or a Tenant."""

    def __init__(self, country: str | None = "US") -> None:
        self.country = country
        self.skus: dict[str, dict[str, Any]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, dict[str, Any]] = {}

    def sku_id(self, part: str) -> str:
        return self.skus[part]["skuId"]

    def plan_id(self, part: str, plan_name: str) -> str:
        for plan in self.skus[part]["servicePlans"]:
            if plan["servicePlanName"] == plan_name:
                return plan["servicePlanId"]
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
        (found,) = catalogue().by_part_number()[part]
        self.skus[part] = {
            "skuId": found.id,
            "skuPartNumber": part,
            "appliesTo": applies_to,
            "capabilityStatus": status,
            "consumedUnits": consumed,
            "prepaidUnits": {"enabled": enabled, "suspended": 0, "warning": 0, "lockedOut": 0},
            "servicePlans": [
                {
                    "servicePlanId": p.id,
                    "servicePlanName": p.name,
                    "provisioningStatus": "Success",
                    "appliesTo": "User",
                }
                for p in found.plans
            ],
        }
        return self

    def user(
        self,
        name: str,
        location: str | None = "US",
        enabled: bool = True,
        guest: bool = False,
        direct: dict[str, list[str]] | None = None,
        inherited: list[tuple[str, str, list[str]]] | None = None,
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
                "assignedByGroup": object_id(g),
                "state": "Active",
                "error": None,
            }
            for g, p, d in (inherited or [])
        ]
        combined: dict[str, set[str]] = {}
        for state in states:
            disabled = set(state["disabledPlans"])
            combined[state["skuId"]] = combined.get(state["skuId"], disabled) & disabled
        self.users[name] = {
            "id": object_id(name),
            "userPrincipalName": f"{name}@contoso.example",
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
        members: list[str] = (),
        groups: list[str] = (),
        security: bool = True,
        entra: dict[str, list[str]] | None = None,
        devices: int = 0,
    ) -> TenantBuilder:
        self.groups[name] = {
            "id": object_id(name),
            "displayName": name,
            "securityEnabled": security,
            "mailEnabled": not security,
            "groupTypes": [],
            "assignedLicenses": [
                {"skuId": self.sku_id(p), "disabledPlans": self.plan_ids(p, d)}
                for p, d in (entra or {}).items()
            ],
            "members": (
                [{"@odata.type": "#microsoft.graph.user", "id": object_id(m)} for m in members]
                + [{"@odata.type": "#microsoft.graph.group", "id": object_id(g)} for g in groups]
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
                sku["consumedUnits"] = sum(
                    any(a["skuId"] == sku["skuId"] for a in u["assignedLicenses"])
                    for u in self.users.values()
                )
            skus.append(sku)
        return {
            "organization": {"id": object_id("org"), "countryLetterCode": self.country},
            "subscribedSkus": skus,
            "users": list(self.users.values()),
            "groups": list(self.groups.values()),
        }

    def tenant(self, user_properties: tuple[str, ...] = ()) -> Tenant:
        return tenant_from_json(self.snapshot(), user_properties=user_properties)
