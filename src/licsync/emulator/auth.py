"""The emulator's Entra side: a client-credentials token endpoint and the bearer check.

    issuer = TokenIssuer(tenant_id, client_id, secret, lifetime=3600)
    Emulator(..., tls=..., auth=issuer)     # every /v1.0 request then needs a bearer token

`POST /{tenant}/oauth2/v2.0/token` answers as Entra's v2.0 endpoint does for
`grant_type=client_credentials` (what azure-identity's `ClientSecretCredential` sends), with
Entra's AADSTS errors for an unknown tenant, an unknown client or a wrong secret. Tokens are
opaque, expire after `lifetime` seconds, and `revoke()` invalidates every token issued so far:
plainly (401 InvalidAuthenticationToken) or, with `challenge=True`, as continuous access
evaluation does (401 with a `WWW-Authenticate` claims challenge).
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import orjson

from licsync.emulator.routes import Reply, error_reply

TOKEN_PATH_SUFFIX = "/oauth2/v2.0/token"


@dataclass
class _Token:
    expires: float
    generation: int


@dataclass
class TokenIssuer:
    """Issues and checks bearer tokens for one app registration of one tenant."""

    tenant_id: str
    client_id: str
    client_secret: str
    lifetime: float = 3600.0
    clock: Callable[[], float] = time.monotonic
    token_requests: int = 0
    claims: list[Any] = field(default_factory=list)  # the claims parameter of each request
    refused: int = 0  # Graph requests answered 401
    _tokens: dict[str, _Token] = field(default_factory=dict)
    _generation: int = 0
    _challenge: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def revoke(self, *, challenge: bool = False) -> None:
        """Refuse every token issued so far; `challenge`: answer with a CAE claims challenge."""
        with self._lock:
            self._generation += 1
            self._challenge = challenge

    def token_reply(self, path: str, body: bytes) -> Reply:
        """`POST /{tenant}/oauth2/v2.0/token` (form-encoded client credentials)."""
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        tenant = path[1 : -len(TOKEN_PATH_SUFFIX)]
        with self._lock:
            self.token_requests += 1
            if "claims" in form:
                self.claims.append(orjson.loads(form["claims"]))
            if tenant.lower() != self.tenant_id.lower():
                return _aad_error(
                    400,
                    "invalid_request",
                    90002,
                    f"Tenant '{tenant}' not found. Check to make "
                    "sure you have the correct tenant ID and are signing into the correct cloud.",
                )
            if form.get("client_id") != self.client_id:
                return _aad_error(
                    400,
                    "unauthorized_client",
                    700016,
                    f"Application with identifier '{form.get('client_id')}' was not found in "
                    f"the directory '{tenant}'.",
                )
            if not secrets.compare_digest(form.get("client_secret", ""), self.client_secret):
                return _aad_error(
                    401,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request "
                    "is the client secret value, not the client secret ID, for a secret added "
                    f"to app '{self.client_id}'.",
                )
            token = secrets.token_urlsafe(32)
            self._tokens[token] = _Token(self.clock() + self.lifetime, self._generation)
        seconds = int(self.lifetime)
        payload = {
            "token_type": "Bearer",
            "expires_in": seconds,
            "ext_expires_in": seconds,
            "access_token": token,
        }
        return Reply(200, payload, {"Content-Type": "application/json; charset=utf-8"})

    def check(self, headers: dict[str, str], request_id: str) -> Reply | None:
        """None if the request carries a valid bearer token; otherwise Graph's 401."""
        scheme, _, token = headers.get("authorization", "").partition(" ")
        with self._lock:
            found = self._tokens.get(token) if scheme.lower() == "bearer" else None
            if found is None:
                message = "Access token is empty." if not token else "Invalid access token."
                reply = error_reply(401, "InvalidAuthenticationToken", message, request_id)
            elif found.expires <= self.clock():
                message = "Lifetime validation failed, the token is expired."
                reply = error_reply(401, "InvalidAuthenticationToken", message, request_id)
            elif found.generation < self._generation:
                reply = self._revoked(request_id)
            else:
                return None
            self.refused += 1
        reply.headers["WWW-Authenticate"] = reply.headers.get(
            "WWW-Authenticate",
            'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/'
            'oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"',
        )
        return reply

    def _revoked(self, request_id: str) -> Reply:
        if not self._challenge:
            return error_reply(
                401, "InvalidAuthenticationToken", "Access token validation failure.", request_id
            )
        reply = error_reply(
            401,
            "InvalidAuthenticationToken",
            "Continuous access evaluation resulted in challenge with result: InteractionRequired "
            "and code: TokenIssuedBeforeRevocationTimestamp",
            request_id,
        )
        nbf = {"essential": True, "value": str(int(time.time()))}
        claims = base64.b64encode(orjson.dumps({"access_token": {"nbf": nbf}})).decode()
        reply.headers["WWW-Authenticate"] = (
            'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/'
            'authorize", client_id="00000003-0000-0000-c000-000000000000", '
            f'error="insufficient_claims", claims="{claims}"'
        )
        return reply


def _aad_error(status: int, error: str, code: int, text: str) -> Reply:
    """Entra's OAuth error body (`error`, `error_description` starting with AADSTS…)."""
    trace, correlation = uuid.uuid4(), uuid.uuid4()
    stamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
    description = (
        f"AADSTS{code}: {text} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {stamp}"
    )
    body: dict[str, Any] = {
        "error": error,
        "error_description": description,
        "error_codes": [code],
        "timestamp": stamp,
        "trace_id": str(trace),
        "correlation_id": str(correlation),
    }
    return Reply(status, body, {"Content-Type": "application/json; charset=utf-8"})
