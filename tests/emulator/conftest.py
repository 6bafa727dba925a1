"""Fixtures for the emulator tests: a tiny hand-made tenant over real catalogue SKUs, a generated
tenant, Microsoft's samples, and the real msgraph-sdk client pointed at the emulator."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from kiota_abstractions.authentication import AnonymousAuthenticationProvider
from msgraph import GraphRequestAdapter, GraphServiceClient

from licsync.emulator.server import Emulator
from tests.builders import catalogue_sku_id as sku_id
from tests.builders import subscribed_sku_json

T = TypeVar("T")
ORG_ID = "9a3d526c-b3c1-4479-ba74-197b5c5751ae"
SEATS = {
    "SPE_E3": ("User", 3),
    "STANDARDPACK": ("User", 5),
    "MCOMEETADV": ("User", 5),
    "EMS": ("User", 2),
    "WORKPLACE_ANALYTICS": ("User", 5),
    "POWER_BI_PRO": ("User", 10),
    "SHAREPOINTSTORAGE": ("Company", 10),
}
IDS = {
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


def _user(name: str, location: str | None, direct: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "id": IDS[name],
        "userPrincipalName": f"{name}@contoso.com",
        "accountEnabled": extra.pop("enabled", True),
        "usageLocation": location,
        "userType": extra.pop("user_type", "Member"),
        "assignedLicenses": [{"skuId": sku_id(p), "disabledPlans": []} for p in direct],
        "licenseAssignmentStates": [
            {
                "skuId": sku_id(p),
                "disabledPlans": [],
                "assignedByGroup": None,
                "state": "Active",
                "error": "None",
            }
            for p in direct
        ],
    }


def tiny_snapshot() -> dict[str, Any]:
    """Six users, four groups, seven real SKUs (E3 has 3 seats, EMS 2)."""
    users = [
        _user("alice", "US", ["SPE_E3"]),
        _user("bob", "GB", []),
        _user("carol", None, []),
        _user("dave", "US", ["SPE_E3", "MCOMEETADV"]),
        _user("erin", None, [], user_type="Guest"),
        _user("frank", "DE", [], enabled=False),
    ]
    consumed = {"SPE_E3": 2, "MCOMEETADV": 1}

    def group(name: str, members: list[str], security: bool = True) -> dict[str, Any]:
        return {
            "id": IDS[name],
            "displayName": name.title(),
            "securityEnabled": security,
            "mailEnabled": not security,
            "groupTypes": [],
            "assignedLicenses": [],
            "members": [
                {
                    "@odata.type": "#microsoft.graph.group"
                    if m in ("sales",)
                    else "#microsoft.graph.user",
                    "id": IDS[m],
                }
                for m in members
            ],
        }

    return {
        "organization": {"id": ORG_ID, "displayName": "Contoso", "countryLetterCode": "US"},
        "subscribedSkus": [
            subscribed_sku_json(ORG_ID, p, n, consumed.get(p, 0), a) for p, (a, n) in SEATS.items()
        ],
        "users": users,
        "groups": [
            group("licensed", ["bob", "carol", "erin"]),
            group("sales", ["alice", "frank"]),
            group("parent", ["sales", "bob"]),
            group("dist", ["alice"], security=False),
        ],
    }


@pytest.fixture
def tiny() -> Iterator[Emulator]:
    """A fresh emulator over the tiny tenant, per test."""
    with Emulator(tiny_snapshot()) as graph:
        yield graph


@pytest.fixture(scope="module")
def generated() -> Iterator[Emulator]:
    """A generated tenant (read-only tests share it)."""
    with Emulator(users=420, groups=30, seed=11, member_chunk=40) as graph:
        yield graph


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


@pytest.fixture(scope="session")
def sample(shared_data: Path) -> Callable[[str], Any]:
    def load(name: str) -> Any:
        return json.loads((shared_data / "graph-samples" / name).read_text(encoding="utf-8"))

    return load


def sdk_client(url: str) -> GraphServiceClient:
    """The real msgraph-sdk client, anonymous, with the emulator as its base URL."""
    adapter = GraphRequestAdapter(AnonymousAuthenticationProvider())
    adapter.base_url = url.rstrip("/")
    return GraphServiceClient(request_adapter=adapter)


def run(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run one SDK coroutine to completion (the SDK's httpx client is built per loop)."""
    return asyncio.run(factory())
