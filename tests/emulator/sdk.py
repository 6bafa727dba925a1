"""The real msgraph-sdk client pointed at the emulator, one coroutine at a time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from kiota_abstractions.authentication import AnonymousAuthenticationProvider
from msgraph import GraphRequestAdapter, GraphServiceClient

from licsync.graph.client import close_http_client

T = TypeVar("T")
_made: list[GraphRequestAdapter] = []  # the clients `run`'s coroutine made: closed when it ends


def sdk_client(url: str) -> GraphServiceClient:
    """The real msgraph-sdk client, anonymous, with the emulator as its base URL (call it
    inside `run`, which closes it)."""
    adapter = GraphRequestAdapter(AnonymousAuthenticationProvider())
    adapter.base_url = url.rstrip("/")
    _made.append(adapter)
    return GraphServiceClient(request_adapter=adapter)


def run(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run one SDK coroutine to completion (the SDK's httpx client is built per loop), then
    close the clients it made."""

    async def main() -> T:
        try:
            return await factory()
        finally:
            while _made:
                await close_http_client(_made.pop()._http_client)

    return asyncio.run(main())
