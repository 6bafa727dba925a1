"""Throttling (resource units, writes, early retries), fault injection, latency and counters."""

from __future__ import annotations

import time

import httpx
import pytest

from licsync.emulator.server import Emulator
from licsync.emulator.throttle import FaultConfig, ThrottleConfig, request_cost
from tests.builders import TINY_IDS as IDS
from tests.builders import tiny_snapshot


def test_request_costs_follow_the_published_table():
    assert request_cost("GET", "/users", {}) == 2
    assert request_cost("GET", "/users", {"$select": "id"}) == 1
    assert request_cost("GET", "/groups/x/transitiveMembers", {}) == 5
    assert request_cost("GET", "/groups/x/members", {"$expand": "x"}) == 4
    assert request_cost("GET", "/subscribedSkus", {}) == 3
    assert request_cost("GET", "/organization", {"$select": "id"}) == 1


def test_429_with_fractional_retry_after_and_early_retries(http, sample):
    config = ThrottleConfig(enabled=True, resource_units=10, window=10, time_scale=4)
    with Emulator(tiny_snapshot(), throttle=config) as graph:
        statuses = [http.get(f"{graph.url}/users").status_code for _ in range(6)]
        assert statuses == [200] * 5 + [429]
        throttled = http.get(f"{graph.url}/users")  # retried at once: too early
        assert throttled.status_code == 429
        retry_after = float(throttled.headers["Retry-After"])
        assert 0 < retry_after < 2 and "." in throttled.headers["Retry-After"]
        assert throttled.headers["x-ms-throttle-information"] == "ResourceUnitLimitExceeded"
        reference = sample("throttling_429.json")["variants"][1]["body"]["error"]
        body = throttled.json()["error"]
        assert body["code"] == reference["code"] and body["message"] == reference["message"]
        assert set(reference["innerError"]) <= set(body["innerError"])
        assert graph.stats.early_retries == 1 and graph.stats.throttled == 2
        time.sleep(retry_after + 0.05)
        assert http.get(f"{graph.url}/users").status_code == 200
        stats = http.get(graph.url.removesuffix("/v1.0") + "/_emulator/stats").json()
        assert stats["early_retries"] == 1
        assert stats["requests"]["GET /users"] == {"200": 6, "429": 2}


def test_write_quota(http):
    config = ThrottleConfig(enabled=True, write_limit=3, write_window=150, time_scale=300)
    with Emulator(tiny_snapshot(), throttle=config) as graph:
        url = f"{graph.url}/users/{IDS['bob']}"
        codes = [http.patch(url, json={"usageLocation": "FR"}).status_code for _ in range(4)]
        assert codes == [204, 204, 204, 429]
        assert http.get(url).status_code == 200  # reads are not write-limited
        response = http.patch(url, json={"usageLocation": "FR"})
        assert response.headers["x-ms-throttle-information"] == "WriteLimitExceeded"
        time.sleep(float(response.headers["Retry-After"]) + 0.05)
        assert http.patch(url, json={"usageLocation": "FR"}).status_code == 204
        assert graph.stats.writes == 4 and graph.stats.early_retries == 1


def test_faults_are_seeded(http):
    def statuses(seed: int) -> list[int]:
        faults = FaultConfig(rate=0.5, kinds=(429, 500, 503, 504), seed=seed)
        with Emulator(tiny_snapshot(), faults=faults) as graph:
            return [http.get(f"{graph.url}/organization").status_code for _ in range(20)]

    first = statuses(4)
    assert first == statuses(4)
    assert set(first) - {200} and 200 in first
    assert set(first) <= {200, 429, 500, 503, 504}


def test_dropped_connections_and_latency():
    faults = FaultConfig(rate=1.0, kinds=("drop",), latency=0.1)
    with Emulator(tiny_snapshot(), faults=faults) as graph, httpx.Client() as client:
        started = time.perf_counter()
        with pytest.raises(httpx.TransportError):
            client.get(f"{graph.url}/organization")
        assert time.perf_counter() - started >= 0.1
        assert graph.stats.dropped == 1
