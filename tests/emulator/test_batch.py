"""JSON batching over httpx: envelope rules, dependsOn, out-of-order answers, inner throttling."""

from __future__ import annotations

from licsync.emulator.server import Emulator
from licsync.emulator.throttle import ThrottleConfig
from tests.builders import TINY_IDS as IDS
from tests.builders import catalogue_sku_id as sku_id
from tests.builders import tiny_snapshot


def batch(http, graph, requests: list[dict]):
    return http.post(f"{graph.url}/$batch", json={"requests": requests})


def assign_item(item_id: str, who: str, sku: str, **extra) -> dict:
    return {
        "id": item_id,
        "method": "POST",
        "url": f"/users/{IDS[who]}/assignLicense",
        "headers": {"Content-Type": "application/json"},
        "body": {"addLicenses": [{"skuId": sku, "disabledPlans": []}], "removeLicenses": []},
        **extra,
    }


def test_batch_envelope_is_200_with_per_item_results(tiny, http, sample):
    pbi = sku_id("POWER_BI_PRO")
    requests = [assign_item(str(i), who, pbi) for i, who in enumerate(["bob", "carol", "dave"], 1)]
    requests.append(
        {"id": "4", "method": "GET", "url": f"users/{IDS['bob']}?$select=id,assignedLicenses"}
    )
    requests.append({"id": "5", "method": "GET", "url": "https://graph.microsoft.com/v1.0/users"})
    response = batch(http, tiny, requests)
    assert response.status_code == 200
    items = {r["id"]: r for r in response.json()["responses"]}
    assert {k: items[k]["status"] for k in items} == {
        "1": 200,
        "2": 400,
        "3": 200,
        "4": 200,
        "5": 400,
    }
    assert "usage location" in items["2"]["body"]["error"]["message"]
    reference = sample("json_batch.json")["response"]["body"]["responses"][0]
    assert set(items["1"]) == set(reference)
    assert items["1"]["headers"]["Content-Type"].startswith("application/json")


def test_batch_limits_and_unique_ids(tiny, http):
    many = [{"id": str(i), "method": "GET", "url": "/organization"} for i in range(21)]
    assert batch(http, tiny, many).status_code == 400
    assert batch(http, tiny, many[:20]).status_code == 200
    dup = [{"id": "1", "method": "GET", "url": "/organization"}] * 2
    assert batch(http, tiny, dup).status_code == 400


def test_depends_on_failure_gives_424(tiny, http):
    company = sku_id("SHAREPOINTSTORAGE")
    requests = [
        assign_item("a", "bob", company),
        assign_item("b", "dave", sku_id("POWER_BI_PRO"), dependsOn=["a"]),
        {"id": "c", "method": "GET", "url": "/organization", "dependsOn": ["a"]},
    ]
    items = {r["id"]: r for r in batch(http, tiny, requests).json()["responses"]}
    assert [items[k]["status"] for k in "abc"] == [400, 424, 424]
    assert tiny.tenant.skus[sku_id("POWER_BI_PRO")].consumed == 0


def test_responses_come_out_of_order(tiny, http):
    requests = [{"id": str(i), "method": "GET", "url": "/organization"} for i in range(20)]
    orders = {
        tuple(r["id"] for r in batch(http, tiny, requests).json()["responses"]) for _ in range(3)
    }
    assert any(order != tuple(str(i) for i in range(20)) for order in orders)


def test_inner_requests_are_throttled_one_by_one(http):
    config = ThrottleConfig(enabled=True, resource_units=6, time_scale=0.01)
    with Emulator(tiny_snapshot(), throttle=config) as graph:
        requests = [{"id": str(i), "method": "GET", "url": "/users"} for i in range(5)]
        response = batch(http, graph, requests)
        assert response.status_code == 200
        statuses = sorted(r["status"] for r in response.json()["responses"])
        assert statuses == [200, 200, 200, 429, 429]
        throttled = next(r for r in response.json()["responses"] if r["status"] == 429)
        assert float(throttled["headers"]["Retry-After"]) > 0
        assert throttled["body"]["error"]["code"] == "TooManyRequests"
