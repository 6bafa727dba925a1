"""`GraphClient`: every Graph request goes through the msgraph-sdk adapter and one retry policy.

The transport is the SDK's own (`GraphClientFactory` middleware: telemetry, URL decoding,
headers inspection) **without** kiota's `RetryHandler` (retries happen only in
`licsync.graph.retry`) and `RedirectHandler` (no redirect is followed: requests stay on the
configured host, `licsync.graph.urls`). Each attempt has a total deadline. Responses are read
natively (`NativeResponseHandler`) and parsed with orjson into plain dicts: bulk reads never
build SDK models.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx
import orjson
from azure.core.exceptions import AzureError
from kiota_abstractions.method import Method
from kiota_abstractions.native_response_handler import NativeResponseHandler
from kiota_abstractions.request_information import RequestInformation
from kiota_http.httpx_request_adapter import HttpxRequestAdapter
from kiota_http.kiota_client_factory import KiotaClientFactory
from kiota_http.middleware import RedirectHandler, RetryHandler
from kiota_http.middleware.middleware import BaseMiddleware
from kiota_http.middleware.options import ResponseHandlerOption
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_request_adapter import options as sdk_options
from msgraph_core import GraphClientFactory
from msgraph_core.middleware import GraphTelemetryHandler
from msgraph_core.middleware.options import GraphTelemetryHandlerOption

from licsync.graph.auth import (
    RenewingCredential,
    build_auth_provider,
    build_credential,
    credential_error,
)
from licsync.graph.classify import Action, Verdict, classify, classify_exception, to_error
from licsync.graph.errors import (
    GraphPagingError,
    GraphSecurityError,
)
from licsync.graph.paging import Paginator, describe_json
from licsync.graph.retry import RetryPolicy
from licsync.graph.settings import DEFAULT_REQUEST_DEADLINE
from licsync.graph.urls import pin, shown

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

    from licsync.graph.settings import GraphSettings

Params = Mapping[str, str | int]
Headers = Mapping[str, str]


def sdk_middleware() -> list[BaseMiddleware]:
    """The SDK's default middleware for Graph, minus `RetryHandler` (tenacity owns retries)
    and `RedirectHandler` (a redirect is never followed)."""
    middleware = [
        m
        for m in KiotaClientFactory.get_default_middleware(sdk_options)
        if not isinstance(m, RetryHandler | RedirectHandler)
    ]
    telemetry = sdk_options.get(GraphTelemetryHandlerOption.get_key())
    middleware.append(GraphTelemetryHandler(options=telemetry))
    return middleware


def build_http_client(
    base_url: str,
    transport: httpx.AsyncBaseTransport | None = None,
    ca_file: Path | None = None,
) -> httpx.AsyncClient:
    """An httpx client carrying the SDK middleware pipeline (no RetryHandler, no redirects);
    HTTP/2 as the SDK's default client, trusting `ca_file` (PEM) instead of the system's CAs
    when given."""
    if transport is None:
        client = KiotaClientFactory.get_default_client()
        if ca_file is not None:  # the SDK's client (timeouts, HTTP/2), trusting `ca_file`
            verify = ssl.create_default_context(cafile=str(ca_file.expanduser()))
            client = httpx.AsyncClient(timeout=client.timeout, http2=True, verify=verify)
    else:
        client = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(100, connect=30))
    client.follow_redirects = False
    client.base_url = httpx.URL(base_url)
    piped: httpx.AsyncClient = GraphClientFactory.create_with_custom_middleware(
        sdk_middleware(), client=client
    )
    return piped


async def close_http_client(client: httpx.AsyncClient) -> None:
    """Close `client` and its connection pools. msgraph-core's middleware transport
    (`AsyncGraphTransport`, 1.5) inherits httpx's no-op `aclose`, so closing the client alone
    leaves the pool it wraps, and its open connections, behind (kiota-python fixed its own
    wrapper the same way: microsoft/kiota-python#734)."""
    wrappers = [client._transport, *(t for t in client._mounts.values() if t is not None)]
    await client.aclose()
    for wrapper in wrappers:
        inner = getattr(wrapper, "transport", None)
        if isinstance(inner, httpx.AsyncBaseTransport):
            await inner.aclose()


class GraphClient:
    """Reads and writes against one Graph endpoint; build it with `GraphClient.from_settings`."""

    def __init__(
        self,
        adapter: HttpxRequestAdapter,
        *,
        base_url: str,
        policy: RetryPolicy | None = None,
        credential: AsyncTokenCredential | None = None,
        max_batches_in_flight: int | None = None,
        max_consecutive_denials: int = 25,
        settings: GraphSettings | None = None,
        request_deadline: float = DEFAULT_REQUEST_DEADLINE,
    ) -> None:
        self.adapter = adapter
        self.base_url = base_url.rstrip("/")
        self._base = httpx.URL(self.base_url)
        adapter.base_url = self.base_url
        self.request_deadline = request_deadline
        self.policy = policy or RetryPolicy()
        self.max_batches_in_flight = max_batches_in_flight
        self.max_consecutive_denials = max_consecutive_denials
        self.settings = settings
        self._credential = credential

    @classmethod
    def from_settings(
        cls,
        settings: GraphSettings,
        *,
        policy: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        credential: AsyncTokenCredential | None = None,
    ) -> GraphClient:
        """Client for `settings`; `transport` and `credential` are for tests and emulators."""
        if credential is None:
            credential = build_credential(settings)
        if credential is not None:
            credential = RenewingCredential(credential)
        auth = build_auth_provider(settings, credential)
        http_client = build_http_client(settings.url, transport, settings.ca_file)
        adapter = GraphRequestAdapter(auth, client=http_client)
        if policy is None:
            policy = RetryPolicy(
                max_attempts=settings.max_attempts,
                max_total_wait=settings.max_total_wait_seconds,
                replication_wait=settings.replication_wait_seconds,
            )
        return cls(
            adapter,
            base_url=settings.url,
            policy=policy,
            credential=credential,
            max_batches_in_flight=settings.max_batches_in_flight,
            max_consecutive_denials=settings.max_consecutive_denials,
            settings=settings,
            request_deadline=settings.request_deadline_seconds,
        )

    async def __aenter__(self) -> GraphClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await close_http_client(self.adapter._http_client)
        if self._credential is not None:
            await self._credential.close()

    def url_for(self, path_or_url: str, params: Params | None = None) -> str:
        """Absolute url: a relative `path` joins the base url; a next link is used as is.

        Raises `GraphSecurityError` for a url off the configured endpoint (`urls.pin`)."""
        if "://" in path_or_url:
            url = pin(path_or_url, self._base)
        else:
            url = pin(f"{self.base_url}/{path_or_url.lstrip('/')}", self._base)
        if params:
            url = url.copy_merge_params({k: str(v) for k, v in params.items()})
        return str(url)

    async def attempt_json(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Params | None = None,
        headers: Headers | None = None,
        json: Any = None,
        redirect: bool = False,
    ) -> Any:
        """One attempt through the SDK adapter; returns the parsed body on success, raises the
        verdict's GraphError otherwise: any exception out of the transport is classified
        (`classify_exception`), the request deadline is transient, a redirect is refused (with
        `redirect`, its target is returned instead, unfollowed), a token azure-identity cannot
        get is a `GraphCredentialError`, and after a 401 the next attempt asks for a new token."""
        what = _what(method, path_or_url)
        info = RequestInformation(Method[method.upper()])
        info.url = self.url_for(path_or_url, params)
        info.headers.try_add("Accept", "application/json")
        for name, value in (headers or {}).items():
            info.headers.add(name, value)
        if json is not None:
            info.content = orjson.dumps(json)
            info.headers.add("Content-Type", "application/json")
        info.add_request_options([ResponseHandlerOption(NativeResponseHandler())])
        try:
            async with asyncio.timeout(self.request_deadline):
                response: httpx.Response | None = await self.adapter.send_primitive_async(
                    info, "bytes", None
                )
        except AzureError as exc:  # from the credential, before anything was sent
            if self.settings is None:
                raise to_error(classify_exception(exc), what) from None
            raise credential_error(self.settings, exc, what) from None
        except TimeoutError:
            message = (
                f"no complete answer within {self.request_deadline:g} s "
                "(graph.request_deadline_seconds)"
            )
            verdict = Verdict(Action.RETRY, None, "Deadline", message, reason="request deadline")
            raise to_error(verdict, what) from None
        except Exception as exc:  # the transport: name the address it tried
            raise to_error(classify_exception(exc), _what(method, info.url)) from exc
        if response is None:  # the native response handler always returns the response
            raise to_error(classify_exception(RuntimeError("no response")), what)
        if response.is_redirect:
            target = response.headers.get("Location", "")
            if redirect and target:
                return str(response.url.join(target))
            raise GraphSecurityError(
                f"{what}: Graph answered {response.status_code} redirecting to "
                f"{shown(response.url.join(target))}; licsync follows no redirects"
            )
        body: Any = None
        if response.content:
            try:
                body = orjson.loads(response.content)
            except orjson.JSONDecodeError:
                if 200 <= response.status_code < 300:
                    verdict = Verdict(Action.RETRY, response.status_code, "InvalidJson", "")
                    raise to_error(verdict, what) from None
        verdict = classify(response.status_code, response.headers, body)
        if verdict.action is Action.AUTH and isinstance(self._credential, RenewingCredential):
            self._credential.renew()
        if verdict.action is not Action.SUCCESS:
            raise to_error(verdict, what)
        return body

    async def request_json(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Params | None = None,
        headers: Headers | None = None,
        json: Any = None,
    ) -> Any:
        """`attempt_json` under the retry policy."""

        async def attempt() -> Any:
            return await self.attempt_json(
                method, path_or_url, params=params, headers=headers, json=json
            )

        return await self.policy.call(attempt, what=_what(method, path_or_url))

    async def get_json(
        self, path: str, params: Params | None = None, headers: Headers | None = None
    ) -> dict[str, Any]:
        """GET one resource as a plain dict (retried and classified); a reply that is not a
        JSON object raises `GraphPagingError`."""
        body = await self.request_json("GET", path, params=params, headers=headers)
        if not isinstance(body, dict):
            raise GraphPagingError(
                f"GET {shown(path)}: the reply is {describe_json(body)}, not a Graph object"
            )
        return body

    async def download_report(self, path: str) -> bytes:
        """A Microsoft 365 usage report (`/reports/get…(period='D180')`): Graph answers 302 to
        a preauthenticated download url on another host, valid a few minutes; it is fetched
        without the token (it needs none, and it must not leave Graph's host), over https when
        Graph is reached over https."""
        what = _what("GET", path)

        async def locate() -> Any:
            return await self.attempt_json("GET", path, redirect=True)

        location = await self.policy.call(locate, what=what)
        if not isinstance(location, str):
            raise GraphPagingError(f"{what}: Graph answered with JSON, not a report download")
        target = httpx.URL(location)
        if target.scheme != self._base.scheme or target.userinfo:
            raise GraphSecurityError(f"{what}: refused the report download {shown(target)}")
        verify: Any = True
        if self.settings is not None and self.settings.ca_file is not None:
            verify = ssl.create_default_context(cafile=str(self.settings.ca_file.expanduser()))
        try:
            async with httpx.AsyncClient(verify=verify, timeout=self.request_deadline) as plain:
                response = await plain.get(target)
        except httpx.HTTPError as exc:
            raise to_error(classify_exception(exc), f"GET {shown(target)}") from None
        if response.status_code != 200:
            verdict = classify(response.status_code, response.headers, None)
            raise to_error(verdict, f"GET {shown(target)} (report download)")
        return response.content

    def iterate_pages(
        self,
        path_or_url: str,
        params: Params | None = None,
        headers: Headers | None = None,
    ) -> Paginator:
        """Async iterator of page dicts; `.delta_link` holds the final delta link at the end."""
        return Paginator(self, path_or_url, params=params, headers=headers)


def _what(method: str, path_or_url: str) -> str:
    """A request's name in errors and logs: method and url, without userinfo or query."""
    return f"{method.upper()} {shown(path_or_url)}"
