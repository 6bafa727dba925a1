"""Failures from outside licsync become one classified error, never a traceback: every
azure-identity error class (at the first request and mid-run), any exception out of the
transport (HTTP/2 protocol errors included), a 403 on a read (naming the permission to grant),
a refused `$deltatoken=latest`; and the credential options behind them (certificate password,
CA file)."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h2.exceptions
import httpx
import pytest
import respx
from azure.core.credentials import AccessToken
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.identity import AuthenticationRequiredError, CredentialUnavailableError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from licsync.connector.read_delta import latest_delta_link
from licsync.emulator.server import Emulator
from licsync.errors import ConfigError
from licsync.exitcodes import ExitCode
from licsync.graph.auth import build_credential
from licsync.graph.classify import Action, classify_exception
from licsync.graph.client import GraphClient
from licsync.graph.errors import (
    GraphCredentialError,
    GraphFatalError,
    GraphTransientError,
)
from licsync.graph.retry import RetryPolicy
from licsync.graph.settings import load_graph_settings
from tests.graph.fakes import LOOPBACK

TENANT = "0785ef7c-2d7a-4542-b048-95bcab406e0b"
APP = "9a3d526c-b3c1-4479-ba74-197b5c5751ae"
SECRET = "s3cr3t-Value~xyz"


class FailingCredential:
    """Hands out `good` tokens, then raises `error` (as azure-identity raises it)."""

    def __init__(self, error: Exception, good: int = 0) -> None:
        self.error, self.good = error, good

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        if self.good <= 0:
            raise self.error
        self.good -= 1
        return AccessToken("tok", 4102444800)

    async def close(self) -> None:
        pass


def client_for(url: str, credential: Any, policy: RetryPolicy) -> GraphClient:
    settings = load_graph_settings(
        {"url": url, "tenant_id": TENANT, "client_id": APP},
        {"LICSYNC_GRAPH_CLIENT_SECRET": SECRET},
    )
    return GraphClient.from_settings(settings, credential=credential, policy=policy)


ERRORS = [
    ClientAuthenticationError("AADSTS7000215: Invalid client secret provided."),
    CredentialUnavailableError("ManagedIdentityCredential authentication unavailable."),
    AuthenticationRequiredError(("https://graph.microsoft.com/.default",), message="sign in"),
    ServiceRequestError("Cannot connect to host login.microsoftonline.com:443"),
    ServiceResponseError("Connection reset by peer"),
    HttpResponseError("503 from the token endpoint"),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("good", [0, 1], ids=["at-start", "mid-run"])
def test_every_azure_identity_error_is_one_credential_error(
    emulator: Emulator, policy: RetryPolicy, error: Exception, good: int
) -> None:
    """Against the emulator over HTTP: the first request (or the second, mid-run) cannot get
    a token; the error names the credential and what azure-identity said, exit code 5."""

    async def run() -> None:
        async with client_for(emulator.url, FailingCredential(error, good), policy) as client:
            await client.get_json("/organization")
            await client.get_json("/subscribedSkus")

    with pytest.raises(GraphCredentialError) as info:
        asyncio.run(run())
    text = str(info.value)
    assert info.value.exit_code == ExitCode.GRAPH
    assert f"auth = client_secret, tenant {TENANT}, client {APP}" in text
    assert f"{type(error).__name__}: " in text and str(error).split()[0] in text
    assert "\n" not in text and SECRET not in text
    assert emulator.stats.count() == good  # nothing was sent without a token


def test_a_secret_in_azure_identitys_message_is_masked(
    emulator: Emulator, policy: RetryPolicy
) -> None:
    error = ClientAuthenticationError(f"refused secret {SECRET}\nContent: {{raw body}}")

    async def run() -> None:
        async with client_for(emulator.url, FailingCredential(error), policy) as client:
            await client.get_json("/organization")

    with pytest.raises(GraphCredentialError) as info:
        asyncio.run(run())
    assert SECRET not in str(info.value) and "refused secret ***" in str(info.value)
    assert "raw body" not in str(info.value)


# --- exceptions out of the transport -----------------------------------------------------------


def raised_in(module: str, error: BaseException) -> Callable[[httpx.Request], httpx.Response]:
    """A transport handler raising `error` from a function of `module` (as httpcore's HTTP/2
    code raises a bare KeyError)."""
    namespace: dict[str, Any] = {"__name__": module, "error": error}
    exec("def handler(request):\n    raise error\n", namespace)
    return namespace["handler"]


@pytest.mark.parametrize(
    "handler",
    [
        raised_in("httpcore._async.http2", KeyError(3)),
        raised_in("tests.graph.test_failures", h2.exceptions.ProtocolError("Invalid input")),
        raised_in("h2.connection", h2.exceptions.StreamClosedError(5)),
    ],
    ids=["bare-KeyError-in-httpcore", "h2-ProtocolError", "h2-StreamClosedError"],
)
def test_http2_errors_out_of_the_transport_are_transient(
    make_client: Callable[..., GraphClient], handler: Callable[..., httpx.Response]
) -> None:
    async def run() -> None:
        async with make_client(handler) as client:
            await client.get_json("/users")

    with pytest.raises(GraphTransientError) as info:
        asyncio.run(run())
    assert info.value.verdict is not None and info.value.verdict.action is Action.RETRY


def test_an_unknown_exception_out_of_the_transport_is_fatal_not_a_traceback(
    make_client: Callable[..., GraphClient],
) -> None:
    async def run() -> None:
        async with make_client(raised_in("somewhere.else", RuntimeError("odd"))) as client:
            await client.get_json("/users")

    with pytest.raises(
        GraphFatalError,
        match=r"GET http://127\.0\.0\.1:8765/v1\.0/users: no response RuntimeError: odd",
    ):
        asyncio.run(run())


def test_a_bare_error_raised_outside_the_http_stack_stays_fatal() -> None:
    assert classify_exception(KeyError("x")).action is Action.FATAL


# --- 403 on a read, a refused $deltatoken=latest ---------------------------------------------

DENIED = {
    "error": {
        "code": "Authorization_RequestDenied",
        "message": "Insufficient privileges to complete the operation.",
    }
}


@pytest.mark.parametrize(
    ("path", "permission"),
    [
        ("/groups/g1/members", "GroupMember.Read.All (and Member.Read.Hidden"),
        ("/users", "User.Read.All"),
        ("/subscribedSkus", "Organization.Read.All"),
    ],
)
def test_a_403_on_a_read_stops_the_run_naming_the_permission(
    make_client: Callable[..., GraphClient], path: str, permission: str
) -> None:
    router = respx.Router(base_url=LOOPBACK)
    router.get(path).mock(return_value=httpx.Response(403, json=DENIED))

    async def run() -> None:
        async with make_client(router.handler) as client:
            await client.get_json(path)

    with pytest.raises(GraphFatalError) as info:
        asyncio.run(run())
    assert f"grant the app the {permission}" in str(info.value)
    assert "Insufficient privileges to complete the operation." in str(info.value)


def test_a_400_on_the_first_deltatoken_latest_is_one_clear_error(
    make_client: Callable[..., GraphClient],
) -> None:
    router = respx.Router(base_url=LOOPBACK)
    refused = {"error": {"code": "Request_UnsupportedQuery", "message": "Unsupported query."}}
    router.get("/users/delta").mock(return_value=httpx.Response(400, json=refused))
    link = {"value": [], "@odata.deltaLink": f"{LOOPBACK}/groups/delta?$deltatoken=x"}
    router.get("/groups/delta").mock(return_value=httpx.Response(200, json=link))

    async def run() -> None:
        async with make_client(router.handler) as client:
            await latest_delta_link(client, "users")

    with pytest.raises(GraphFatalError) as info:
        asyncio.run(run())
    assert str(info.value).startswith(
        "Graph refused to start change tracking ($deltatoken=latest): "
        "GET /users/delta: 400 Request_UnsupportedQuery: Unsupported query."
    )
    assert info.value.exit_code == ExitCode.GRAPH


# --- certificate password, CA file -------------------------------------------------------------


def encrypted_certificate(path: Path, password: bytes) -> Path:
    """A self-signed certificate and its private key, encrypted with `password`, in one PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "licsync-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    encryption = serialization.BestAvailableEncryption(password)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    path.write_bytes(pem + cert.public_bytes(serialization.Encoding.PEM))
    return path


def certificate_settings(tmp_path: Path, env: dict[str, str], **raw: Any) -> Any:
    table = {
        "auth": "certificate",
        "tenant_id": TENANT,
        "client_id": APP,
        "certificate_path": str(encrypted_certificate(tmp_path / "app.pem", b"pem-pass-1")),
        **raw,
    }
    return load_graph_settings(table, env)


def test_a_password_protected_certificate_opens_with_its_password(tmp_path: Path) -> None:
    (tmp_path / "password").write_text("pem-pass-1\n")
    settings = certificate_settings(
        tmp_path, {}, certificate_password_file=str(tmp_path / "password")
    )
    assert "pem-pass-1" not in repr(settings)
    credential = build_credential(settings)
    assert type(credential).__name__ == "CertificateCredential"
    asyncio.run(credential.close())


def test_a_wrong_certificate_password_is_a_config_error_without_the_password(
    tmp_path: Path,
) -> None:
    settings = certificate_settings(
        tmp_path, {"LICSYNC_GRAPH_CERTIFICATE_PASSWORD": "not-the-password"}
    )
    with pytest.raises(ConfigError) as info:
        build_credential(settings)
    assert "graph.auth: cannot build the 'certificate' credential" in str(info.value)
    assert "not-the-password" not in str(info.value)


def test_the_certificate_password_is_never_read_from_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        certificate_settings(tmp_path, {}, certificate_password="pem-pass-1")
    [problem] = info.value.problems
    assert problem.startswith("graph.certificate_password: secrets are not read from")
    assert "LICSYNC_GRAPH_CERTIFICATE_PASSWORD" in problem and "pem-pass-1" not in problem


def test_a_missing_ca_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_graph_settings({"auth": "none", "url": LOOPBACK, "ca_file": str(tmp_path / "x")}, {})
    assert info.value.problems == [f"graph.ca_file: no such file {tmp_path / 'x'}"]
