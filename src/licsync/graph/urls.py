"""Host pinning: every request licsync sends stays on the configured Graph endpoint.

Next links, delta links (also stored ones) and redirect targets come from outside; a url is
sent only when its scheme, host and port are the configured Graph base's and it carries no
userinfo (`http://graph-host@other-host/…` goes to `other-host`). Urls in messages are shown
without their query, which may carry skip or delta tokens.
"""

from __future__ import annotations

import httpx

from licsync.graph.errors import GraphSecurityError

_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in."""
    scheme = url.scheme.lower()
    return scheme, url.host.lower(), url.port or _DEFAULT_PORTS.get(scheme)


def shown(url: str | httpx.URL) -> str:
    """`url` for messages and logs: no userinfo, no query, no fragment."""
    try:
        parsed = httpx.URL(str(url))
    except httpx.InvalidURL:
        return "(an invalid url)"
    if not parsed.is_absolute_url:
        return parsed.path
    return str(parsed.copy_with(userinfo=b"", query=None, fragment=None))


def pin(url: str, base: httpx.URL) -> httpx.URL:
    """`url` parsed, if it may be sent: same scheme, host and port as `base`, no userinfo.

    Raises `GraphSecurityError` naming the refused url (without its query) otherwise."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise GraphSecurityError(f"refused an invalid url {shown(url)!r}: {exc}") from None
    if parsed.userinfo:
        raise GraphSecurityError(
            f"refused {shown(parsed)}: the url carries userinfo (user@host), which licsync "
            "never sends; a next or delta link must not contain one"
        )
    if origin(parsed) != origin(base):
        scheme, host, port = origin(base)
        raise GraphSecurityError(
            f"refused {shown(parsed)}: it is not on the configured Graph endpoint "
            f"{scheme}://{host}:{port} (graph.url); licsync sends requests nowhere else"
        )
    return parsed
