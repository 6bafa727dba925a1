"""The full read overlaps its chains: member reads start as soon as the groups are known, while
the users' next links are still being followed; each delta link is taken just before its
resource's chain; the first failure stops the rest."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from licsync.connector.read_delta import latest_delta_link
from licsync.connector.read_full import gather_or_cancel, read_tenant
from licsync.graph.client import GraphClient
from licsync.graph.errors import GraphError
from tests.graph.fakes import LOOPBACK, FakeClock

USER_1 = "11111111-1111-1111-1111-111111111111"
USER_2 = "22222222-2222-2222-2222-222222222222"
GROUP = "33333333-3333-3333-3333-333333333333"
SKU = "c7df2760-2c81-4ef7-b578-5b5392b571df"


def user(uid: str) -> dict[str, Any]:
    return {
        "id": uid,
        "userPrincipalName": f"{uid[:4]}@contoso.com",
        "accountEnabled": True,
        "usageLocation": "GB",
        "userType": "Member",
        "assignedLicenses": [],
        "licenseAssignmentStates": [],
    }


class Tenant:
    """A two-page user chain whose second page is answered only once the members of the
    Entra-licensed group have been asked for (or after `patience` seconds: a 503)."""

    def __init__(
        self, patience: float = 5.0, users_page_2: int = 200, throttle_batch: bool = False
    ) -> None:
        self.patience = patience
        self.users_page_2 = users_page_2
        self.throttle_batch = throttle_batch
        self.malformed_batch = False
        self.members_asked = asyncio.Event()
        self.log: list[str] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/v1.0")
        self.log.append(path + ("?page=2" if "skiptoken" in str(request.url) else ""))
        if path == "/$batch":
            return await self.batch(json.loads(request.content))
        if path.endswith("/delta"):
            return httpx.Response(200, json={"value": [], "@odata.deltaLink": f"{request.url}&d"})
        if path == "/users" and "skiptoken" in str(request.url):
            try:
                await asyncio.wait_for(self.members_asked.wait(), self.patience)
            except TimeoutError:
                return httpx.Response(503, json={"error": {"code": "serviceUnavailable"}})
            self.log.append("/users?page=2 answered")
            if self.users_page_2 != 200:
                error = {"error": {"code": "Authorization_RequestDenied", "message": "denied"}}
                return httpx.Response(self.users_page_2, json=error)
            return httpx.Response(200, json={"value": [user(USER_2)]})
        if path == "/users":
            link = f"{LOOPBACK}/users?$skiptoken=next"
            return httpx.Response(200, json={"value": [user(USER_1)], "@odata.nextLink": link})
        if path == "/groups":
            group = {
                "id": GROUP,
                "displayName": "Licensed",
                "securityEnabled": True,
                "mailEnabled": False,
                "groupTypes": [],
                "assignedLicenses": [{"skuId": SKU, "disabledPlans": []}],
            }
            return httpx.Response(200, json={"value": [group]})
        if path == f"/groups/{GROUP}/members":
            self.members_asked.set()
            member = {"@odata.type": "#microsoft.graph.user", "id": USER_1}
            return httpx.Response(200, json={"value": [member]})
        if path == "/organization":
            return httpx.Response(200, json={"value": [{"countryLetterCode": "GB"}]})
        if path == "/subscribedSkus":
            return httpx.Response(200, json={"value": []})
        return httpx.Response(404, json={"error": {"code": "Request_ResourceNotFound"}})

    async def batch(self, body: dict[str, Any]) -> httpx.Response:
        """Inner GETs answered as if sent alone, or 429 with Retry-After when throttling."""
        answers = []
        for item in body["requests"]:
            if self.malformed_batch:
                self.log.append("malformed in $batch")
                answers.append({"id": "99", "status": 200, "body": {"value": []}})
                answers.append({"id": item["id"], "status": 200, "body": {"value": [{"x": 1}]}})
                continue
            if self.throttle_batch:
                self.log.append("throttled in $batch")
                answers.append({"id": item["id"], "status": 429, "headers": {"Retry-After": "2"}})
                continue
            inner = await self(httpx.Request(item["method"], LOOPBACK + item["url"]))
            answers.append({"id": item["id"], "status": inner.status_code, "body": inner.json()})
        return httpx.Response(200, json={"responses": answers})


def client_for(tenant: Tenant, make_client: Callable[..., GraphClient]) -> GraphClient:
    return make_client(tenant)  # type: ignore[arg-type]  # an async handler


def test_members_are_read_while_the_user_chain_is_still_paging(
    make_client: Callable[..., GraphClient],
) -> None:
    tenant = Tenant()

    async def main() -> Any:
        async with client_for(tenant, make_client) as client:
            return await read_tenant(client, progress=False)

    read = asyncio.run(main())
    assert set(read.users) == {USER_1, USER_2}
    assert tuple(read.groups[GROUP].member_users) == (USER_1,)
    assert tenant.log.index(f"/groups/{GROUP}/members") < tenant.log.index("/users?page=2 answered")


def test_members_throttled_in_the_batch_are_read_alone_after_the_retry_after(
    make_client: Callable[..., GraphClient], clock: FakeClock
) -> None:
    tenant = Tenant(throttle_batch=True)

    async def main() -> Any:
        async with client_for(tenant, make_client) as client:
            return await read_tenant(client, progress=False)

    read = asyncio.run(main())
    assert tuple(read.groups[GROUP].member_users) == (USER_1,)
    assert clock.sleeps == [2.0]
    assert tenant.log.index("throttled in $batch") < tenant.log.index(f"/groups/{GROUP}/members")


def test_a_malformed_or_unknown_batch_item_is_read_alone(
    make_client: Callable[..., GraphClient],
) -> None:
    tenant = Tenant()
    tenant.malformed_batch = True

    async def main() -> Any:
        async with client_for(tenant, make_client) as client:
            return await read_tenant(client, progress=False)

    read = asyncio.run(main())
    assert tuple(read.groups[GROUP].member_users) == (USER_1,)
    assert tenant.log.index("malformed in $batch") < tenant.log.index(f"/groups/{GROUP}/members")


def test_each_delta_link_is_taken_just_before_its_chain(
    make_client: Callable[..., GraphClient],
) -> None:
    tenant = Tenant()
    links: dict[str, str] = {}

    async def main() -> None:
        async with client_for(tenant, make_client) as client:

            async def take(resource: str) -> None:
                links[resource] = await latest_delta_link(client, resource)

            await read_tenant(client, progress=False, before_read=take)

    asyncio.run(main())
    assert set(links) == {"users", "groups"}
    assert "$deltatoken=latest" in links["users"].replace("%24", "$")
    assert tenant.log.index("/users/delta") < tenant.log.index("/users")
    assert tenant.log.index("/groups/delta") < tenant.log.index("/groups")


def test_a_refused_user_page_stops_the_read_with_the_graph_error(
    make_client: Callable[..., GraphClient],
) -> None:
    tenant = Tenant(users_page_2=403)

    async def main() -> None:
        async with client_for(tenant, make_client) as client:
            await read_tenant(client, progress=False)

    with pytest.raises(GraphError, match=r"403|denied"):
        asyncio.run(main())


def test_gather_or_cancel_cancels_the_others_on_the_first_failure() -> None:
    cancelled: list[str] = []

    async def slow() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append("slow")
            raise

    async def fail() -> None:
        await asyncio.sleep(0)
        raise ValueError("boom")

    async def quick() -> int:
        return 1

    async def main() -> list[Any]:
        return await gather_or_cancel(quick(), quick())

    assert asyncio.run(main()) == [1, 1]
    with pytest.raises(ValueError, match="boom"):
        asyncio.run(asyncio.wait_for(gather_or_cancel(slow(), fail()), 5))
    assert cancelled == ["slow"]
