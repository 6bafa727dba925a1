"""The emulator's recycle bin (soft delete, `/directory/deletedItems/{id}/restore`, memberOf)
and its replication lag, over real HTTP (docs/emulator.md)."""

from __future__ import annotations

from typing import Any

import httpx

from licsync.emulator.server import Emulator
from tests.builders import catalogue_sku_id as sku_id
from tests.builders import group_id, small_snapshot, user_id

E3 = "SPE_E3"


def _tenant(emulator_factory: Any, **kw: Any) -> Emulator:
    snapshot = small_snapshot(users=3, members={1: [1, 2], 2: [1]}, direct={1: [(E3, [])]})
    return emulator_factory(snapshot, **kw)


def _delta(url: str) -> tuple[list[dict[str, Any]], str]:
    items: list[dict[str, Any]] = []
    while True:
        page = httpx.get(url).json()
        items += page["value"]
        if "@odata.deltaLink" in page:
            return items, page["@odata.deltaLink"]
        url = page["@odata.nextLink"]


def test_a_restored_user_comes_back_with_its_licences_and_groups(emulator_factory: Any) -> None:
    graph = _tenant(emulator_factory)
    url, uid, e3 = graph.url, user_id(1), sku_id(E3)
    _, users_link = _delta(f"{url}/users/delta?$select=displayName")
    _, groups_link = _delta(f"{url}/groups/delta?$select=displayName,members")
    seats = graph.tenant.skus[e3].consumed
    httpx.delete(f"{url}/users/{uid}").raise_for_status()
    assert httpx.get(f"{url}/users/{uid}").status_code == 404
    assert graph.tenant.skus[e3].consumed == seats - 1
    items, users_link = _delta(users_link)
    assert {"id": uid, "@removed": {"reason": "changed"}} in items

    reply = httpx.post(f"{url}/directory/deletedItems/{uid}/restore")
    assert reply.status_code == 200
    assert reply.json()["@odata.type"] == "#microsoft.graph.user" and reply.json()["id"] == uid
    user = httpx.get(f"{url}/users/{uid}?$select=assignedLicenses").json()
    assert [a["skuId"] for a in user["assignedLicenses"]] == [e3]
    assert graph.tenant.skus[e3].consumed == seats
    members = httpx.get(f"{url}/groups/{group_id(1)}/members").json()["value"]
    assert uid in {m["id"] for m in members}
    items, _ = _delta(users_link)
    assert [i["id"] for i in items] == [uid] and "@removed" not in items[0]
    items, _ = _delta(groups_link)  # Graph reports no members@delta for a restore
    assert all(m["id"] != uid for g in items for m in g.get("members@delta", ()))
    groups = httpx.get(f"{url}/users/{uid}/memberOf/microsoft.graph.group?$select=id").json()
    assert {g["id"] for g in groups["value"]} == {group_id(1), group_id(2)}
    assert httpx.post(f"{url}/directory/deletedItems/{uid}/restore").status_code == 404


class Clock:
    """The emulator tenant's monotonic clock, moved by hand (no test waits on the wall clock)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _lagging(emulator_factory: Any, lag: float) -> tuple[Emulator, Clock]:
    graph, clock = _tenant(emulator_factory, replication_lag=lag), Clock()
    graph.tenant.monotonic = clock
    return graph, clock


def test_reads_lag_behind_writes_by_the_replication_lag(emulator_factory: Any) -> None:
    graph, clock = _lagging(emulator_factory, lag=1.0)
    url, uid = graph.url, user_id(2)
    httpx.patch(f"{url}/users/{uid}", json={"displayName": "Renamed"}).raise_for_status()
    clock.now += 0.99
    assert httpx.get(f"{url}/users/{uid}").json()["displayName"] != "Renamed"
    listed = httpx.get(f"{url}/users", params={"$filter": f"id in ('{uid}')"}).json()["value"]
    assert listed[0]["displayName"] != "Renamed"
    clock.now += 0.02
    assert httpx.get(f"{url}/users/{uid}").json()["displayName"] == "Renamed"


def test_assign_license_is_refused_while_a_new_usage_location_replicates(
    emulator_factory: Any,
) -> None:
    graph, clock = _lagging(emulator_factory, lag=1.0)
    url, uid = graph.url, user_id(3)
    body = {"addLicenses": [{"skuId": sku_id(E3), "disabledPlans": []}], "removeLicenses": []}
    httpx.patch(f"{url}/users/{uid}", json={"usageLocation": "FR"}).raise_for_status()
    clock.now += 0.99
    refused = httpx.post(f"{url}/users/{uid}/assignLicense", json=body)
    assert refused.status_code == 400
    assert "invalid usage location" in refused.json()["error"]["message"]
    httpx.patch(f"{url}/users/{uid}", json={"usageLocation": "FR"}).raise_for_status()  # same
    clock.now += 0.02
    assert httpx.post(f"{url}/users/{uid}/assignLicense", json=body).status_code == 200
