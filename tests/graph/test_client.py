"""The client sends through the SDK adapter, without the SDK's RetryHandler; tenacity retries."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from azure.core.credentials import AccessToken
from kiota_http.middleware import RetryHandler
from msgraph.graph_request_adapter import GraphRequestAdapter
from structlog.testing import capture_logs

from licsync.errors import ConfigError
from licsync.graph.client import GraphClient, sdk_middleware
from licsync.graph.errors import (
    GraphAuthError,
    GraphFatalError,
    GraphProblemError,
    GraphThrottledError,
    GraphTransientError,
)
from licsync.graph.retry import RetryPolicy
from licsync.graph.settings import load_graph_settings
from tests.graph.fakes import LOOPBACK, FakeClock


def middleware_chain(client: GraphClient) -> list[object]:
    transport = client.adapter._http_client._transport
    chain, node = [], transport.pipeline._first_middleware
    while node is not None:
        chain.append(node)
        node = getattr(node, "next", None)
    return chain


def sequence(*responses: httpx.Response | Exception) -> tuple[Callable, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, Exception):
            raise item
        return item

    return handler, seen


def test_pipeline_is_the_sdk_one_without_retry_or_redirect_handler(
    make_client: Callable[..., GraphClient],
) -> None:
    client = make_client(lambda r: httpx.Response(200, json={}))
    assert isinstance(client.adapter, GraphRequestAdapter)
    chain = middleware_chain(client)
    names = [type(m).__name__ for m in chain]
    assert not {"RetryHandler", "RedirectHandler"} & set(names)
    assert "GraphTelemetryHandler" in names
    assert not any(isinstance(m, RetryHandler) for m in sdk_middleware())
    assert client.adapter.base_url == LOOPBACK  # no trailing slash


def test_429_on_post_is_retried_by_the_policy_with_the_exact_wait(
    make_client: Callable[..., GraphClient], clock: FakeClock, samples: Callable[[str], Any]
) -> None:
    variant = samples("throttling_429.json")["variants"][1]  # Retry-After: 2.128
    handler, seen = sequence(
        httpx.Response(429, headers=variant["headers"], json=variant["body"]),
        httpx.Response(200, json={"id": "u1"}),
    )
    client = make_client(handler)
    with capture_logs() as logs:
        body = asyncio.run(
            client.request_json(
                "POST", "users/u1/assignLicense", json={"addLicenses": [], "removeLicenses": []}
            )
        )
    assert body == {"id": "u1"}
    assert len(seen) == 2  # the SDK did not retry by itself
    assert clock.sleeps == [2.128]  # tenacity waited exactly Retry-After, no jitter
    assert orjson.loads(seen[0].content) == {"addLicenses": [], "removeLicenses": []}
    retry_logs = [e for e in logs if e["event"] == "graph.retry"]
    assert retry_logs and retry_logs[0]["wait_seconds"] == 2.128
    assert retry_logs[0]["request_id"] == "94fb3b52-452a-4535-a601-69e0a90e3aa2"


def test_transient_errors_back_off_exponentially(
    make_client: Callable[..., GraphClient], clock: FakeClock
) -> None:
    handler, seen = sequence(
        httpx.Response(503),
        httpx.ConnectError("reset"),
        httpx.Response(504),
        httpx.Response(200, json={"value": []}),
    )
    client = make_client(handler)
    assert asyncio.run(client.get_json("users")) == {"value": []}
    assert len(seen) == 4
    assert clock.sleeps == [0.5, 1.0, 2.0]  # base 1 s, doubled, equal jitter (jitter 0 → half)


def test_jitter_never_goes_below_half_or_above_cap(clock: FakeClock) -> None:
    policy = RetryPolicy(
        max_attempts=12, max_total_wait=1e9, sleep=clock.sleep, jitter=lambda: 1.0, max_delay=8
    )

    async def fail() -> None:
        raise GraphTransientError("x")

    with pytest.raises(GraphTransientError):
        asyncio.run(policy.call(fail))
    assert clock.sleeps == [1, 2, 4, 8, 8, 8, 8, 8, 8, 8, 8]


def test_stop_after_attempts_reraises_the_graph_error(
    make_client: Callable[..., GraphClient], clock: FakeClock
) -> None:
    handler, seen = sequence(httpx.Response(503))
    with pytest.raises(GraphTransientError):
        asyncio.run(make_client(handler).get_json("users"))
    assert len(seen) == 5
    assert len(clock.sleeps) == 4


def test_stop_when_total_wait_would_exceed_budget(clock: FakeClock) -> None:
    policy = RetryPolicy(max_attempts=50, max_total_wait=15, sleep=clock.sleep)
    response = httpx.Response(
        429, headers={"Retry-After": "10"}, json={"error": {"code": "TooManyRequests"}}
    )
    handler, seen = sequence(response)
    settings = load_graph_settings({"url": LOOPBACK, "auth": "none"}, {})
    client = GraphClient.from_settings(
        settings, transport=httpx.MockTransport(handler), policy=policy
    )
    with pytest.raises(GraphThrottledError) as info:
        asyncio.run(client.get_json("users"))
    assert info.value.retry_after == 10
    assert clock.sleeps == [10]  # a second wait would have taken the total to 20 s > 15 s
    assert len(seen) == 2


def test_401_is_retried_once(make_client: Callable[..., GraphClient], clock: FakeClock) -> None:
    handler, seen = sequence(
        httpx.Response(401, json={"error": {"code": "InvalidAuthenticationToken"}})
    )
    with pytest.raises(GraphAuthError):
        asyncio.run(make_client(handler).get_json("users"))
    assert len(seen) == 2


@pytest.mark.parametrize(
    ("status", "error"),
    [(403, GraphFatalError), (400, GraphProblemError), (404, GraphProblemError)],
)
def test_permanent_errors_are_not_retried(
    make_client: Callable[..., GraphClient], clock: FakeClock, status: int, error: type
) -> None:
    handler, seen = sequence(httpx.Response(status, json={"error": {"code": "x", "message": "no"}}))
    with pytest.raises(error):
        asyncio.run(make_client(handler).get_json("users/u1"))
    assert len(seen) == 1
    assert clock.sleeps == []


def test_query_and_headers(make_client: Callable[..., GraphClient]) -> None:
    handler, seen = sequence(httpx.Response(200, json={"value": []}))
    client = make_client(handler)
    asyncio.run(
        client.get_json(
            "/users",
            {"$select": "id,assignedLicenses", "$top": 999},
            {"ConsistencyLevel": "eventual"},
        )
    )
    url = seen[0].url
    assert url.path == "/v1.0/users"
    assert url.params["$select"] == "id,assignedLicenses"
    assert url.params["$top"] == "999"
    assert seen[0].headers["ConsistencyLevel"] == "eventual"
    assert "authorization" not in seen[0].headers  # auth none


class FakeCredential:
    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []
        self.closed = False

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("tok-123", 9_999_999_999)

    async def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize(
    ("url", "scope"),
    [
        ("https://graph.microsoft.com/v1.0", "https://graph.microsoft.com/.default"),
        ("https://graph.microsoft.us/v1.0", "https://graph.microsoft.us/.default"),
    ],
)
def test_real_tenant_sends_bearer_token_for_the_cloud_scope(
    url: str, scope: str, policy: RetryPolicy
) -> None:
    handler, seen = sequence(httpx.Response(200, json={"value": []}))
    settings = load_graph_settings({"url": url, "auth": "managed_identity"}, {})
    credential = FakeCredential()

    async def run() -> None:
        async with GraphClient.from_settings(
            settings, transport=httpx.MockTransport(handler), policy=policy, credential=credential
        ) as client:
            await client.get_json("subscribedSkus")

    asyncio.run(run())
    assert seen[0].headers["Authorization"] == "Bearer tok-123"
    assert credential.scopes == [(scope,)]
    assert credential.closed
    assert str(seen[0].url) == f"{url}/subscribedSkus"


def test_the_replication_wait_comes_from_the_settings() -> None:
    settings = load_graph_settings(
        {"url": LOOPBACK, "auth": "none", "replication_wait_seconds": 4}, {}
    )
    assert GraphClient.from_settings(settings).policy.replication_wait == 4
    assert problems_of({"url": LOOPBACK, "auth": "none", "replication_wait_seconds": -1})


def problems_of(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_graph_settings(raw, {})
    return info.value.problems


def test_until_replicated_backs_off_within_the_wait(clock: FakeClock) -> None:
    policy = RetryPolicy(replication_wait=3, sleep=clock.sleep)
    answers = iter([False, False, True])

    async def check() -> bool:
        return next(answers)

    assert asyncio.run(policy.until_replicated(check, what="test"))
    assert clock.sleeps == [0.5, 1.0]
    clock.sleeps.clear()

    async def never() -> bool:
        return False

    assert not asyncio.run(policy.until_replicated(never, what="test", wait_first=True))
    assert clock.sleeps == [0.5, 1.0, 1.5] and sum(clock.sleeps) == 3
