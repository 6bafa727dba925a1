"""`Paginator`: follows `@odata.nextLink` to the end and keeps the final `@odata.deltaLink`.

Pages may be empty and still carry a next link; headers such as `ConsistencyLevel` are sent
again on every page (Graph does not carry them over); a next link seen twice raises
`GraphPagingError` instead of looping. Every page goes through the client's retry policy.

The next page is requested before the current one is handed out, so whatever the caller does
with a page (parsing it into models) overlaps with Graph preparing the next one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

from licsync.graph.errors import GraphPagingError

NEXT_LINK = "@odata.nextLink"
DELTA_LINK = "@odata.deltaLink"


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

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._pages()

    async def _get(self, link: str, params: Mapping[str, str | int] | None) -> dict[str, Any]:
        page = await self._client.request_json("GET", link, params=params, headers=self._headers)
        return page if isinstance(page, dict) else {}

    async def _pages(self) -> AsyncIterator[dict[str, Any]]:
        seen: set[str] = set()
        fetch: asyncio.Future[dict[str, Any]] | None = asyncio.ensure_future(
            self._get(self._start, self._params)
        )
        try:
            while fetch is not None:
                page, fetch = await fetch, None
                self.pages += 1
                self.items += len(page.get("value") or ())
                next_link = page.get(NEXT_LINK)
                if DELTA_LINK in page:
                    self.delta_link = page[DELTA_LINK]
                if next_link is not None:
                    if next_link in seen or next_link == self._start:
                        raise GraphPagingError(
                            f"GET {self._start.split('?', 1)[0]}: Graph returned the same "
                            f"@odata.nextLink twice (page {self.pages}); stopping instead of "
                            "looping"
                        )
                    seen.add(next_link)
                    # a next link already carries the query: no params
                    fetch = asyncio.ensure_future(self._get(next_link, None))
                yield page
            self.finished = True
        finally:
            if fetch is not None:  # the caller stopped early or failed: drop the prefetch
                fetch.cancel()
                await asyncio.gather(fetch, return_exceptions=True)

    async def collect(self) -> list[dict[str, Any]]:
        """All items of all pages (for small collections such as subscribedSkus)."""
        return [item async for page in self for item in page.get("value") or ()]
