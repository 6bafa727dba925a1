"""The client against real sockets on loopback: a total deadline per request, links pinned to
the configured endpoint, replies that are not Graph objects refused."""

from __future__ import annotations

import asyncio
import gc
import time
import warnings

import httpx
import pytest

from licsync.errors import ConfigError
from licsync.graph import GraphClient, GraphPagingError, GraphTransientError, RetryPolicy
from licsync.graph.errors import GraphSecurityError
from licsync.graph.settings import load_graph_settings
from licsync.graph.urls import pin, shown
from tests.loopback import Reply, serve


def client_for(port: int, **graph: object) -> GraphClient:
    settings = load_graph_settings(
        {"url": f"http://127.0.0.1:{port}/v1.0", "auth": "none", **graph}, env={}
    )
    return GraphClient.from_settings(settings, policy=RetryPolicy(max_attempts=1))


async def get(client: GraphClient, path: str) -> object:
    async with client:
        return await asyncio.wait_for(client.get_json(path), timeout=10)


def test_a_trickling_answer_ends_at_the_request_deadline() -> None:
    """One byte every 0.2 s keeps httpx's read timeout happy; the deadline ends it."""
    body = b'{"id": "' + b"x" * 200 + b'"}'
    with serve(lambda seen: Reply(200, body, trickle=0.2)) as server:
        client = client_for(server.port, request_deadline_seconds=1)
        started = time.monotonic()
        with pytest.raises(GraphTransientError, match=r"no complete answer within 1 s"):
            asyncio.run(get(client, "/organization"))
    assert time.monotonic() - started < 5


def test_the_deadline_is_a_graph_setting() -> None:
    emulator = {"url": "http://127.0.0.1:1/v1.0", "auth": "none"}
    assert load_graph_settings(emulator, env={}).request_deadline_seconds == 120
    with pytest.raises(ConfigError, match=r"graph\.request_deadline_seconds"):
        load_graph_settings({**emulator, "request_deadline_seconds": 0}, env={})


@pytest.mark.parametrize("body", [b"[]", b'"x"', b""])
def test_a_reply_that_is_not_an_object_is_an_error(body: bytes) -> None:
    with (
        serve(lambda seen: Reply(200, body)) as server,
        pytest.raises(GraphPagingError, match=r"GET /organization: the reply is"),
    ):
        asyncio.run(get(client_for(server.port), "/organization"))


@pytest.mark.parametrize(
    "link",
    [
        "http://127.0.0.1:{other}/v1.0/users/delta?$deltatoken=secret",  # another port
        "https://127.0.0.1:{port}/v1.0/users/delta?$deltatoken=secret",  # another scheme
        "http://localhost:{port}/v1.0/users/delta?$deltatoken=secret",  # another host name
        "http://127.0.0.1:{port}@127.0.0.1:{other}/v1.0/users/delta?$deltatoken=secret",
    ],
)
def test_a_stored_delta_link_off_the_endpoint_is_never_requested(link: str) -> None:
    with serve(lambda seen: Reply(200, b'{"value": []}')) as other:
        with serve(lambda seen: Reply(200, b'{"value": []}')) as graph:
            url = link.format(port=graph.port, other=other.port)

            async def read() -> None:
                async with client_for(graph.port) as client:
                    async for _ in client.iterate_pages(url):
                        pass

            with pytest.raises(GraphSecurityError, match="refused") as caught:
                asyncio.run(read())
        assert other.seen == [] and graph.seen == []
    assert "secret" not in str(caught.value)


def test_a_url_with_userinfo_is_not_a_graph_url() -> None:
    with pytest.raises(ConfigError, match="no user or password"):
        load_graph_settings({"url": "http://graph@127.0.0.1:1/v1.0", "auth": "none"}, env={})


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:pw@graph.microsoft.com/v1.0/users?$skiptoken=x#f", "https://graph.microsoft.com/v1.0/users"),
        ("/users/delta?$deltatoken=x", "/users/delta"),
        ("http://[::1", "(an invalid url)"),
    ],
)  # fmt: skip
def test_urls_are_shown_without_userinfo_or_query(url: str, expected: str) -> None:
    assert shown(url) == expected


def test_an_invalid_link_is_refused() -> None:
    with pytest.raises(GraphSecurityError, match="refused an invalid url"):
        pin("http://[::1/v1.0/users", httpx.URL("http://127.0.0.1:1/v1.0"))


def test_a_closed_client_leaves_no_connection_open(emulator_factory) -> None:
    """msgraph-core's transport does not close the pool it wraps: the client closes it."""
    graph = emulator_factory()

    async def read() -> None:
        settings = load_graph_settings({"url": graph.url, "auth": "none"}, env={})
        async with GraphClient.from_settings(settings) as client:
            await client.get_json("/organization")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(read())
        gc.collect()
    assert [str(w.message) for w in caught if w.category is ResourceWarning] == []
