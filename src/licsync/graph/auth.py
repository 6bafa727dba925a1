"""azure-identity (aio) credentials by kind, pointed at the national cloud of the Graph url."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kiota_abstractions.authentication import (
    AnonymousAuthenticationProvider,
    AuthenticationProvider,
)
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)

from licsync.errors import ConfigError
from licsync.graph.settings import AuthKind, GraphSettings

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential


def build_credential(settings: GraphSettings) -> AsyncTokenCredential | None:
    """The async credential for `settings.auth`; None for `auth = "none"` (loopback only).

    Raises `ConfigError` when azure-identity finds the options incomplete (for example
    `workload_identity` without the AZURE_* variables its platform sets).
    """
    try:
        return _credential(settings)
    except ValueError as exc:  # azure-identity's messages name options, never secret values
        raise ConfigError(
            settings.source, [f"graph.auth: cannot build the '{settings.auth}' credential: {exc}"]
        ) from None


def _credential(settings: GraphSettings) -> AsyncTokenCredential | None:
    from azure.identity import aio

    authority = settings.authority_host
    kind = settings.auth
    if kind is AuthKind.NONE:
        return None
    if kind is AuthKind.CLIENT_SECRET:
        assert settings.tenant_id and settings.client_id and settings.client_secret
        return aio.ClientSecretCredential(
            settings.tenant_id,
            settings.client_id,
            settings.client_secret.get_secret_value(),
            authority=authority,
        )
    if kind is AuthKind.CERTIFICATE:
        assert settings.tenant_id and settings.client_id and settings.certificate_path
        return aio.CertificateCredential(
            settings.tenant_id,
            settings.client_id,
            str(settings.certificate_path.expanduser()),
            authority=authority,
        )
    if kind is AuthKind.MANAGED_IDENTITY:
        # A client id selects a user-assigned identity; without one the system identity is used.
        if settings.client_id:
            return aio.ManagedIdentityCredential(client_id=settings.client_id)
        return aio.ManagedIdentityCredential()
    if kind is AuthKind.WORKLOAD_IDENTITY:
        # Missing ids and the token file come from AZURE_* variables set by the platform.
        return aio.WorkloadIdentityCredential(
            tenant_id=settings.tenant_id, client_id=settings.client_id, authority=authority
        )
    return aio.DefaultAzureCredential(authority=authority)


def build_auth_provider(
    settings: GraphSettings, credential: AsyncTokenCredential | None
) -> AuthenticationProvider:
    """Kiota authentication for the SDK adapter: bearer tokens only for the configured host."""
    if credential is None:
        return AnonymousAuthenticationProvider()
    return AzureIdentityAuthenticationProvider(
        credential, scopes=[settings.scope], allowed_hosts=[settings.host]
    )
