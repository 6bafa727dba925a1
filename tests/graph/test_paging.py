"""Paging: follow every next link, survive empty pages, keep the delta link, refuse loops."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from licsync.graph.client import GraphClient
from licsync.graph.errors import GraphPagingError
from licsync.graph.paging import Paginator
from tests.graph.fakes import LOOPBACK, FakeClock


def serve(pages: list[dict[str, Any]]) -> tuple[Callable, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=pages[len(seen) - 1])

    return handler, seen


async def drain(paginator: Paginator) -> list[dict[str, Any]]:
    return [page async for page in paginator]


def test_group_delta_round_sample(
    samples: Callable[[str], Any], make_client: Callable[..., GraphClient]
) -> None:
    exchanges = samples("group_delta_round.json")["exchanges"][:3]  # initial → next → delta link
    handler, seen = serve([e["response"]["body"] for e in exchanges])
    client = make_client(handler, url="https://graph.microsoft.com/v1.0")  # the sample's host
    paginator = client.iterate_pages(
        "groups/delta", {"$select": "displayName,description", "$expand": "members"}
    )
    pages = asyncio.run(drain(paginator))
    assert len(pages) == 3
    assert paginator.finished
    assert paginator.delta_link == exchanges[2]["response"]["body"]["@odata.deltaLink"]
    # Each following request is exactly the previous page's next link (query included).
    assert str(seen[1].url) == exchanges[0]["response"]["body"]["@odata.nextLink"]
    assert str(seen[2].url) == exchanges[1]["response"]["body"]["@odata.nextLink"]
    assert seen[0].url.params["$expand"] == "members"
    assert paginator.items == sum(len(p["value"]) for p in pages)


def test_empty_pages_with_next_link_and_headers_on_every_page(
    make_client: Callable[..., GraphClient],
) -> None:
    pages = [
        {
            "@odata.count": 3,
            "value": [{"id": "1"}],
            "@odata.nextLink": f"{LOOPBACK}/users?$skiptoken=a",
        },
        {"value": [], "@odata.nextLink": f"{LOOPBACK}/users?$skiptoken=b"},
        {"value": [], "@odata.nextLink": f"{LOOPBACK}/users?$skiptoken=c"},
        {"value": [{"id": "2"}, {"id": "3"}]},
    ]
    handler, seen = serve(pages)
    client = make_client(handler)
    paginator = client.iterate_pages(
        "users", {"$count": "true", "$top": 999}, {"ConsistencyLevel": "eventual"}
    )
    items = asyncio.run(paginator.collect())
    assert [i["id"] for i in items] == ["1", "2", "3"]
    assert len(seen) == 4
    assert all(r.headers["ConsistencyLevel"] == "eventual" for r in seen)
    assert seen[0].url.params["$top"] == "999"
    assert "$top" not in seen[1].url.params  # the next link carries its own query
    assert paginator.delta_link is None


def test_repeated_next_link_raises(make_client: Callable[..., GraphClient]) -> None:
    loop_link = f"{LOOPBACK}/users?$skiptoken=same"
    handler, seen = serve([{"value": [], "@odata.nextLink": loop_link}] * 5)
    with pytest.raises(GraphPagingError, match=r"same @odata\.nextLink twice"):
        asyncio.run(drain(make_client(handler).iterate_pages("users")))
    assert len(seen) == 2


def test_each_page_is_retried(make_client: Callable[..., GraphClient], clock: FakeClock) -> None:
    responses = [
        httpx.Response(
            200, json={"value": [{"id": "1"}], "@odata.nextLink": f"{LOOPBACK}/users?$skiptoken=a"}
        ),
        httpx.Response(429, headers={"Retry-After": "3"}),
        httpx.Response(
            200,
            json={
                "value": [{"id": "2"}],
                "@odata.deltaLink": f"{LOOPBACK}/users/delta?$deltatoken=z",
            },
        ),
    ]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return responses[len(seen) - 1]

    paginator = make_client(handler).iterate_pages("users/delta")
    items = asyncio.run(paginator.collect())
    assert [i["id"] for i in items] == ["1", "2"]
    assert clock.sleeps == [3.0]
    assert seen[1].url == seen[2].url
    assert paginator.delta_link == f"{LOOPBACK}/users/delta?$deltatoken=z"


def test_next_page_is_requested_while_the_caller_handles_the_current_one(
    make_client: Callable[..., GraphClient],
) -> None:
    pages = [
        {"value": [{"id": "1"}], "@odata.nextLink": f"{LOOPBACK}/users?$skiptoken=2"},
        {"value": [{"id": "2"}]},
    ]
    requested: list[str] = []
    second_requested = asyncio.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        requested.append(str(request.url))
        if len(requested) == 2:
            second_requested.set()
        return httpx.Response(200, json=pages[len(requested) - 1])

    async def consume() -> list[str]:
        ids = []
        async for page in make_client(handler).iterate_pages("users"):
            if page is not pages[-1] and page.get("@odata.nextLink"):
                # still busy with page 1: page 2 is already on its way
                await asyncio.wait_for(second_requested.wait(), timeout=5)
            ids += [item["id"] for item in page["value"]]
        return ids

    assert asyncio.run(consume()) == ["1", "2"]
    assert requested[1] == pages[0]["@odata.nextLink"]


def test_stopping_early_cancels_the_prefetch(make_client: Callable[..., GraphClient]) -> None:
    next_link = f"{LOOPBACK}/users?$skiptoken=2"
    handler, seen = serve([{"value": [], "@odata.nextLink": next_link}, {"value": []}])

    async def first_only() -> Paginator:
        paginator = make_client(handler).iterate_pages("users")
        pages = paginator.__aiter__()
        await anext(pages)
        await pages.aclose()  # type: ignore[attr-defined]
        return paginator

    paginator = asyncio.run(first_only())
    assert paginator.pages == 1 and not paginator.finished
    assert len(seen) <= 2
