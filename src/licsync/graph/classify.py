"""The one error-classification table: (HTTP status, Graph error code, message) → action.

Every Graph answer, whether a top-level response or one item of a `$batch` envelope, goes
through `classify()`; transport exceptions go through `classify_exception()`. The first row
that matches wins: a caller's own rows (`extra`, e.g. the connector's assignLicense refusals,
which name an Entra error type) before the generic `RULES`.
"""

from __future__ import annotations

import math
import re
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum, StrEnum
from typing import Any

import h2.exceptions
import httpx

from licsync.graph.errors import (
    GraphAuthError,
    GraphError,
    GraphFatalError,
    GraphProblemError,
    GraphThrottledError,
    GraphTransientError,
)
from licsync.graph.permissions import missing_permission_hint


class Action(StrEnum):
    SUCCESS = "success"
    RETRY = "retry"  # transient: back off exponentially (or Retry-After when sent)
    THROTTLED = "throttled"  # 429: wait at least Retry-After
    AUTH = "auth"  # 401: refresh the token once
    PROBLEM = "problem"  # per-object refusal: becomes a problem record
    FATAL = "fatal"  # retrying cannot help: stop the run
    SKIPPED = "skipped"  # never sent (the run stopped first); used by writes only


@dataclass(frozen=True, slots=True)
class Rule:
    """One row: statuses (empty: any), Graph error code (None: any), message regex (None: any)."""

    statuses: frozenset[int]
    code: str | None
    pattern: re.Pattern[str] | None
    action: Action
    error_type: Enum | None = None  # what a per-object refusal is recorded as (caller's vocabulary)
    reason: str = ""

    def matches(self, status: int, code: str, message: str) -> bool:
        if self.statuses and status not in self.statuses:
            return False
        if self.code is not None and self.code.lower() != code.lower():
            return False
        return self.pattern is None or self.pattern.search(message) is not None


def rule(
    statuses: Any,
    action: Action,
    *,
    code: str | None = None,
    pattern: str | None = None,
    error: Enum | None = None,
    reason: str = "",
) -> Rule:
    """A table row: `statuses` is one status, a tuple or a range (empty tuple: any status)."""
    codes = frozenset(statuses if isinstance(statuses, range | tuple) else (statuses,))
    regex = re.compile(pattern, re.IGNORECASE) if pattern else None
    return Rule(codes, code, regex, action, error, reason)


_SUCCESS = range(200, 300)

RULES: tuple[Rule, ...] = (
    rule(_SUCCESS, Action.SUCCESS),
    rule(429, Action.THROTTLED, reason="throttled by Graph"),
    # Reads and writes that set state: a 5xx is retried (writes.py reads back a refused retry).
    rule((500, 502, 503, 504), Action.RETRY, reason="Graph is temporarily unavailable"),
    rule(401, Action.AUTH, reason="access token refused"),
    rule(403, Action.FATAL, reason="permission missing (see docs/graph.md)"),
    rule(400, Action.PROBLEM, reason="Graph refused the request for this object"),
    rule(404, Action.PROBLEM, reason="the object no longer exists"),
    rule(424, Action.PROBLEM, reason="a request this one depended on failed"),
    rule((), Action.FATAL, reason="unexpected answer from Graph"),
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a Graph answer means for the caller."""

    action: Action
    status: int | None
    code: str = ""
    message: str = ""
    request_id: str | None = None
    retry_after: float | None = None
    error_type: Enum | None = None
    reason: str = ""

    def describe(self) -> str:
        status = self.status if self.status is not None else "no response"
        text = f"{status} {self.code}: {self.message}".strip()
        return f"{text} (request-id {self.request_id})" if self.request_id else text


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After in seconds; Graph sends fractions ("2.128"); an HTTP date is accepted too."""
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def classify(
    status: int, headers: Mapping[str, str], body: Any, extra: Sequence[Rule] = ()
) -> Verdict:
    """Classify one Graph answer (top-level or a `$batch` item); `body` is the parsed JSON;
    `extra` rows are tried before the generic table."""
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    code = str(error.get("code") or "")
    message = str(error.get("message") or "")
    inner = error.get("innerError") or error.get("innererror") or {}
    request_id = _header(headers, "request-id") or (
        inner.get("request-id") if isinstance(inner, dict) else None
    )
    row = next(r for r in (*extra, *RULES) if r.matches(status, code, message))
    retry_after = None
    if row.action in (Action.THROTTLED, Action.RETRY):
        retry_after = parse_retry_after(_header(headers, "Retry-After"))
    return Verdict(
        action=row.action,
        status=status,
        code=code,
        message=message,
        request_id=request_id,
        retry_after=retry_after,
        error_type=row.error_type,
        reason=row.reason,
    )


# Packages of the HTTP stack under httpx: an exception raised inside them (a bare KeyError or
# ProtocolError from the HTTP/2 state machine, a closed stream) is a broken connection.
_TRANSPORT_PACKAGES = frozenset({"httpcore", "h2", "hpack", "hyperframe", "h11", "anyio"})


def _untrusted(exc: BaseException) -> bool:
    """Whether a TLS certificate could not be verified (anywhere in the cause chain)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _from_transport(exc: BaseException) -> bool:
    """Whether `exc` was raised inside the HTTP stack (by its innermost frame's package)."""
    tb = exc.__traceback__
    package = ""
    while tb is not None:
        package = tb.tb_frame.f_globals.get("__name__", "").split(".", 1)[0]
        tb = tb.tb_next
    return package in _TRANSPORT_PACKAGES


def classify_exception(exc: BaseException) -> Verdict:
    """Transport failures (timeouts, resets, HTTP/2 protocol errors) are transient, except an
    untrusted TLS certificate; anything else is fatal."""
    name, text = type(exc).__name__, str(exc) or type(exc).__name__
    if _untrusted(exc):
        reason = (
            "the server's TLS certificate is not trusted (set [graph] ca_file for a private CA)"
        )
        return Verdict(Action.FATAL, None, name, text, reason=reason)
    if isinstance(exc, httpx.TransportError | h2.exceptions.H2Error) or _from_transport(exc):
        return Verdict(Action.RETRY, None, name, text, reason="transport error")
    return Verdict(Action.FATAL, None, name, text, reason="unexpected error")


_ERRORS: dict[Action, type[GraphError]] = {
    Action.RETRY: GraphTransientError,
    Action.THROTTLED: GraphThrottledError,
    Action.AUTH: GraphAuthError,
    Action.PROBLEM: GraphProblemError,
    Action.FATAL: GraphFatalError,
}


def to_error(verdict: Verdict, what: str) -> GraphError:
    """The exception a failed verdict raises; `what` names the request (method and path)."""
    kind = _ERRORS.get(verdict.action, GraphFatalError)
    text = f"{what}: {verdict.describe()}"
    if verdict.action is Action.FATAL and verdict.status == 403:
        text += f"; {missing_permission_hint(what)}"
    elif verdict.action is Action.FATAL and verdict.status is None and verdict.reason:
        text += f"; {verdict.reason}"
    return kind(text, verdict)
