"""`Paginator`: follows `@odata.nextLink` to the end and keeps the final `@odata.deltaLink`.

Pages may be empty and still carry a next link; headers such as `ConsistencyLevel` are sent
again on every page (Graph does not carry them over); a next link seen twice raises
`GraphPagingError` instead of looping. Every page goes through the client's retry policy.

A page is never trusted: a reply that is not a JSON object with a `value` list of objects that
each have a string `id` (an error object, `[]`, an empty body, `value: "x"` …) raises
`GraphPagingError` naming the url (without its query), never reads as "no items". Items the
caller converts with `parse()` / `collect(parse)` raise it too when they have the wrong shape.

The next page is requested before the current one is handed out, so whatever the caller does
with a page (parsing it into models) overlaps with Graph preparing the next one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol, TypeVar

from licsync.graph.errors import GraphPagingError
from licsync.graph.urls import shown

T = TypeVar("T")

NEXT_LINK = "@odata.nextLink"
DELTA_LINK = "@odata.deltaLink"
# What a converter raises for an item of the wrong shape (graphjson.ShapeError is a ValueError).
SHAPE_ERRORS = (ValueError, TypeError, KeyError, AttributeError)


def describe_json(body: Any) -> str:
    """What a reply body is, for messages: "an empty body", "a JSON list" …"""
    if body is None:
        return "an empty body"
    if isinstance(body, dict):
        return "a Graph error" if "error" in body else "a JSON object"
    return f"a JSON {type(body).__name__.replace('str', 'string')}"


def page_problem(page: Any) -> str | None:
    """Why `page` is not a Graph collection page; None when it is one."""
    if not isinstance(page, dict) or "error" in page:
        return f"the reply is {describe_json(page)}"
    value = page.get("value")
    if not isinstance(value, list):
        return "it has no 'value' list" if value is None else f"'value' is {describe_json(value)}"
    for position, item in enumerate(value):
        if not isinstance(item, dict):
            return f"item {position} is {describe_json(item)}, not an object"
        if not isinstance(item.get("id"), str) or not item["id"].strip():
            return f"item {position} has no 'id'"
    for link in (NEXT_LINK, DELTA_LINK):
        if link in page and not isinstance(page[link], str):
            return f"'{link}' is {describe_json(page[link])}"
    return None


class _JsonRequester(Protocol):
    async def request_json(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, str | int] | None = ...,
        headers: Mapping[str, str] | None = ...,
        json: Any = ...,
    ) -> Any: ...


class Paginator:
    """`async for page in Paginator(client, "users", params)`; then read `delta_link`."""

    def __init__(
        self,
        client: _JsonRequester,
        path_or_url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._client = client
        self._start = path_or_url
        self._params = dict(params or {})
        self._headers = dict(headers or {})
        self.delta_link: str | None = None
        self.pages = 0
        self.items = 0
        self.finished = False
        self.where = f"GET {shown(path_or_url)}"  # the page last handed out, for messages

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._pages()

    async def _get(self, link: str, params: Mapping[str, str | int] | None) -> dict[str, Any]:
        page = await self._client.request_json("GET", link, params=params, headers=self._headers)
        problem = page_problem(page)
        if problem is not None:
            raise GraphPagingError(
                f"GET {shown(link)}: not a Graph page: {problem}; stopping without using it"
            )
        return page  # type: ignore[no-any-return]

    def parse(self, page: Mapping[str, Any], convert: Callable[[dict[str, Any]], T]) -> list[T]:
        """`convert` applied to each item of `page` (the page last handed out); an item it
        rejects raises `GraphPagingError` naming the page's url and the item."""
        converted = []
        for position, item in enumerate(page["value"]):
            try:
                converted.append(convert(item))
            except SHAPE_ERRORS as exc:
                raise GraphPagingError(
                    f"{self.where}: item {position} (id {item['id']!r}) has an unexpected "
                    f"shape: {exc}"
                ) from None
        return converted

    async def _pages(self) -> AsyncIterator[dict[str, Any]]:
        seen: set[str] = set()
        link = self._start
        fetch: asyncio.Future[dict[str, Any]] | None = asyncio.ensure_future(
            self._get(link, self._params)
        )
        try:
            while fetch is not None:
                page, fetch = await fetch, None
                self.pages += 1
                self.items += len(page["value"])
                self.where = f"GET {shown(link)} (page {self.pages})"
                next_link = page.get(NEXT_LINK)
                if DELTA_LINK in page:
                    self.delta_link = page[DELTA_LINK]
                if next_link is not None:
                    if next_link in seen or next_link == self._start:
                        raise GraphPagingError(
                            f"GET {shown(self._start)}: Graph returned the same "
                            f"@odata.nextLink twice (page {self.pages}); stopping instead of "
                            "looping"
                        )
                    seen.add(next_link)
                    # a next link already carries the query: no params
                    fetch = asyncio.ensure_future(self._get(next_link, None))
                yield page
                link = next_link or link
            self.finished = True
        finally:
            if fetch is not None:  # the caller stopped early or failed: drop the prefetch
                fetch.cancel()
                await asyncio.gather(fetch, return_exceptions=True)

    async def collect(self, convert: Callable[[dict[str, Any]], T] | None = None) -> list[Any]:
        """All items of all pages (for small collections such as subscribedSkus), each through
        `convert` when given (see `parse`)."""
        if convert is None:
            return [item async for page in self for item in page["value"]]
        return [item async for page in self for item in self.parse(page, convert)]
