"""azure-identity (aio) credentials by kind, pointed at the national cloud of the Graph url.

Every credential is wrapped in `RenewingCredential`: after Graph refused a token (401),
`renew()` makes the next request ask Entra for a new token instead of azure-identity's cached
one. azure-identity errors become `GraphCredentialError` (exit 5, one line, no secret).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson
from azure.core.credentials import AccessToken
from azure.core.exceptions import AzureError, ClientAuthenticationError
from kiota_abstractions.authentication import (
    AnonymousAuthenticationProvider,
    AuthenticationProvider,
)
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)

from licsync.errors import ConfigError
from licsync.graph.classify import Action, Verdict
from licsync.graph.errors import GraphCredentialError
from licsync.graph.settings import AuthKind, GraphSettings
from licsync.redact import redact

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential


def build_credential(settings: GraphSettings) -> AsyncTokenCredential | None:
    """The async credential for `settings.auth`; None for `auth = "none"` (loopback only).

    Raises `ConfigError` when azure-identity finds the options incomplete (for example
    `workload_identity` without the AZURE_* variables its platform sets, or a certificate it
    cannot open with the configured password).
    """
    try:
        return _credential(settings)
    except ValueError as exc:  # azure-identity's messages name options, never secret values
        raise ConfigError(
            settings.source,
            [f"graph.auth: cannot build the '{settings.auth}' credential: {_said(exc, settings)}"],
        ) from None


def _credential(settings: GraphSettings) -> AsyncTokenCredential | None:
    from azure.identity import aio

    authority = settings.authority_host
    kind = settings.auth
    # azure-identity's own HTTP pipeline trusts the same CA file as Graph requests.
    options: dict[str, Any] = {}
    if settings.ca_file is not None:
        options["connection_verify"] = str(settings.ca_file.expanduser())
    if kind is AuthKind.NONE:
        return None
    if kind is AuthKind.CLIENT_SECRET:
        assert settings.tenant_id and settings.client_id and settings.client_secret
        return aio.ClientSecretCredential(
            settings.tenant_id,
            settings.client_id,
            settings.client_secret.get_secret_value(),
            authority=authority,
            **options,
        )
    if kind is AuthKind.CERTIFICATE:
        assert settings.tenant_id and settings.client_id and settings.certificate_path
        if settings.certificate_password is not None:
            options["password"] = settings.certificate_password.get_secret_value()
        return aio.CertificateCredential(
            settings.tenant_id,
            settings.client_id,
            str(settings.certificate_path.expanduser()),
            authority=authority,
            **options,
        )
    if kind is AuthKind.MANAGED_IDENTITY:
        # A client id selects a user-assigned identity; without one the system identity is used.
        if settings.client_id:
            options["client_id"] = settings.client_id
        return aio.ManagedIdentityCredential(**options)
    if kind is AuthKind.WORKLOAD_IDENTITY:
        # Missing ids and the token file come from AZURE_* variables set by the platform.
        return aio.WorkloadIdentityCredential(
            tenant_id=settings.tenant_id,
            client_id=settings.client_id,
            authority=authority,
            **options,
        )
    return aio.DefaultAzureCredential(authority=authority, **options)


class RenewingCredential:
    """An async credential whose next token, after `renew()`, is a new one.

    azure-identity answers `get_token` from its cache until the token is about to expire, so a
    token Graph refused (revoked, or issued before a policy change) would be sent again. After
    `renew()` the next call asks Entra with a claims request for a token issued from now on
    (`nbf`, the claim a CAE challenge names), which azure-identity never serves from its cache.
    A claims challenge from Graph (passed by the SDK adapter) is forwarded as is.
    """

    def __init__(self, inner: AsyncTokenCredential) -> None:
        self.inner = inner
        self._renew_from: int | None = None

    def renew(self) -> None:
        """The next token must be issued from now on."""
        self._renew_from = int(time.time())

    async def get_token(
        self, *scopes: str, claims: str | None = None, **kwargs: Any
    ) -> AccessToken:
        if claims is None and self._renew_from is not None:
            nbf = {"essential": True, "value": str(self._renew_from)}
            claims = orjson.dumps({"access_token": {"nbf": nbf}}).decode()
            self._renew_from = None
        return await self.inner.get_token(*scopes, claims=claims, **kwargs)

    async def close(self) -> None:
        await self.inner.close()

    async def __aenter__(self) -> RenewingCredential:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def credential_error(settings: GraphSettings, exc: AzureError, what: str) -> GraphCredentialError:
    """One line for a token azure-identity could not get: the credential, and what it said."""
    said = f"cannot get an access token ({settings.identity}): {type(exc).__name__}: "
    said += _said(exc, settings)
    verdict = Verdict(Action.FATAL, None, type(exc).__name__, said, reason="no access token")
    return GraphCredentialError(f"{what}: {said}", verdict)


def _said(exc: Exception, settings: GraphSettings) -> str:
    """`exc`'s message on one line, without any configured secret (azure-identity does not
    echo secrets; this makes sure)."""
    text = str(exc)
    for tail in ("\nContent:", "\nTo mitigate this issue"):  # the raw body, a docs link
        text = text.split(tail, 1)[0]
    text = " ".join(text.split())
    for secret in (settings.client_secret, settings.certificate_password):
        if secret is not None and secret.get_secret_value():
            text = text.replace(secret.get_secret_value(), "***")
    return redact(text)  # also the encoded spellings an echoed form post carries


def build_auth_provider(
    settings: GraphSettings, credential: AsyncTokenCredential | None
) -> AuthenticationProvider:
    """Kiota authentication for the SDK adapter: bearer tokens only for the configured host."""
    if credential is None:
        return AnonymousAuthenticationProvider()
    return AzureIdentityAuthenticationProvider(
        _Guarded(credential),  # type: ignore[arg-type]
        scopes=[settings.scope],
        allowed_hosts=[settings.host],
    )


class _Guarded:
    """`credential.get_token` whose failures are all `AzureError`s: a token endpoint answer
    azure-identity cannot read (an HTML page) otherwise escapes as a bare `TypeError`."""

    def __init__(self, credential: AsyncTokenCredential) -> None:
        self._credential = credential

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        try:
            return await self._credential.get_token(*scopes, **kwargs)
        except AzureError:
            raise
        except Exception as exc:
            message = f"the token endpoint's answer could not be used ({type(exc).__name__})"
            raise ClientAuthenticationError(message=message) from None
