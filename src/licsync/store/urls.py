"""State URLs: which backend a `[state] url` names, and how to show it without its password."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from licsync.errors import StateError

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
_SECRET_KEYS = frozenset({"password", "sslpassword"})
MASK = "***"


@dataclass(frozen=True, slots=True)
class StateTarget:
    """A parsed state URL: the backend and what to hand to its driver."""

    backend: Literal["sqlite", "postgresql"]
    location: str  # a file path for SQLite, a libpq connection URL for PostgreSQL

    def __repr__(self) -> str:
        return f"StateTarget(backend={self.backend!r}, location={redact_url(self.location)!r})"


def _home(path: str) -> str:
    """A SQLite path with a leading `~` expanded, once, for every user of the target."""
    return str(Path(path).expanduser()) if path.startswith("~") else path


def parse_state_url(url: str) -> StateTarget:
    """`path`, `sqlite:///relative.db`, `sqlite:////absolute.db` → SQLite;
    `postgresql://…` or `postgres://…` → PostgreSQL. Anything else raises StateError."""
    text = url.strip()
    if not text:
        raise StateError("the state url is empty: give a file path or a postgresql:// url")
    match = _SCHEME.match(text)
    if match is None:
        return StateTarget("sqlite", _home(text))
    scheme = match.group(1).lower()
    if scheme == "sqlite":
        path = text[len("sqlite:///") :] if text.lower().startswith("sqlite:///") else ""
        if not path:
            raise StateError(
                f"state url {redact_url(text)!r}: write sqlite:///relative/path.db "
                "or sqlite:////absolute/path.db"
            )
        return StateTarget("sqlite", _home(path))
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        return StateTarget("postgresql", "postgresql://" + text[match.end() :])
    raise StateError(
        f"state url {redact_url(text)!r}: unknown scheme {scheme!r}; "
        "use a file path, sqlite:///path or postgresql://…"
    )


def resolve_state_url(url: str, base_dir: str | Path) -> str:
    """A relative SQLite path (plain or `sqlite:///relative.db`) made absolute against `base_dir`
    (the configuration file's directory); absolute paths and server urls are returned as given."""
    target = parse_state_url(url)
    if target.backend != "sqlite" or target.location == ":memory:":
        return url
    path = Path(target.location)
    return url if path.is_absolute() else str(Path(base_dir) / path)


def redact_url(url: str) -> str:
    """The url with any password (in the authority or the query) replaced by `***`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        if ":" in userinfo:
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:{MASK}@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in _SECRET_KEYS for k, _ in pairs):
            query = urlencode(
                [(k, MASK if k.lower() in _SECRET_KEYS else v) for k, v in pairs],
                safe="*",
                quote_via=quote,
            )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def url_secrets(url: str) -> list[str]:
    """The secret strings in a url (raw and percent-decoded), for scrubbing driver messages."""
    secrets: list[str] = []
    try:
        parts = urlsplit(url)
    except ValueError:
        return secrets
    if parts.password:
        secrets.append(parts.password)
    raw_userinfo = parts.netloc.rpartition("@")[0]
    if ":" in raw_userinfo:
        secrets.append(raw_userinfo.split(":", 1)[1])
    secrets.extend(v for k, v in parse_qsl(parts.query) if k.lower() in _SECRET_KEYS)
    secrets.extend([unquote(s) for s in secrets])
    return sorted({s for s in secrets if s}, key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """`text` with every secret of `url` masked."""
    for secret in url_secrets(url):
        text = text.replace(secret, MASK)
    return text
