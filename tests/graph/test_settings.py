from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from licsync.errors import ConfigError
from licsync.graph.auth import build_credential
from licsync.graph.settings import AuthKind, load_graph_settings

SECRET = "s3cr3t-Value~xyz"
TENANT = "0785ef7c-2d7a-4542-b048-95bcab406e0b"
APP = "9a3d526c-b3c1-4479-ba74-197b5c5751ae"


def problems(raw: dict, env: dict | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_graph_settings(raw, env or {})
    return info.value.problems


def test_defaults_and_derived_values() -> None:
    s = load_graph_settings(
        {"tenant_id": TENANT, "client_id": APP}, {"LICSYNC_GRAPH_CLIENT_SECRET": "x"}
    )
    assert s.url == "https://graph.microsoft.com/v1.0"
    assert s.auth is AuthKind.CLIENT_SECRET
    assert s.write_rate == 20.0
    assert s.scope == "https://graph.microsoft.com/.default"
    assert s.authority_host == "login.microsoftonline.com"


@pytest.mark.parametrize(
    ("url", "scope", "authority"),
    [
        (
            "https://graph.microsoft.us/v1.0",
            "https://graph.microsoft.us/.default",
            "login.microsoftonline.us",
        ),
        (
            "https://dod-graph.microsoft.us/v1.0/",
            "https://dod-graph.microsoft.us/.default",
            "login.microsoftonline.us",
        ),
        (
            "https://microsoftgraph.chinacloudapi.cn/v1.0",
            "https://microsoftgraph.chinacloudapi.cn/.default",
            "login.chinacloudapi.cn",
        ),
    ],
)
def test_national_clouds(url: str, scope: str, authority: str) -> None:
    s = load_graph_settings({"url": url, "auth": "managed_identity"}, {})
    assert s.scope == scope
    assert s.authority_host == authority
    assert not s.url.endswith("/")


def test_explicit_authority_wins() -> None:
    s = load_graph_settings(
        {
            "url": "https://graph.microsoft.us/v1.0",
            "auth": "default",
            "authority": "https://login.example.us/",
        },
        {},
    )
    assert s.authority_host == "login.example.us"


def test_env_overrides_file() -> None:
    env = {
        "LICSYNC_GRAPH_URL": "http://localhost:9000/v1.0",
        "LICSYNC_GRAPH_AUTH": "none",
        "LICSYNC_GRAPH_TENANT_ID": TENANT,
        "LICSYNC_GRAPH_CLIENT_ID": APP,
    }
    s = load_graph_settings(
        {"url": "https://graph.microsoft.com/v1.0", "auth": "client_secret"}, env
    )
    assert (s.url, s.auth, s.tenant_id, s.client_id) == (
        "http://localhost:9000/v1.0",
        AuthKind.NONE,
        TENANT,
        APP,
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/v1.0",
        "http://127.9.9.9/v1.0",
        "http://[::1]:80/v1.0",
        "http://localhost/v1.0",
    ],
)
def test_auth_none_on_loopback(url: str) -> None:
    assert load_graph_settings({"url": url, "auth": "none"}, {}).auth is AuthKind.NONE


def test_auth_none_refused_elsewhere() -> None:
    assert problems({"auth": "none"}) == [
        "graph.auth: 'none' is only allowed for a loopback url (127.0.0.0/8, ::1, localhost), "
        "got https://graph.microsoft.com/v1.0"
    ]
    found = problems({"auth": "none", "url": "https://10.0.0.5/v1.0"})
    assert found[0].startswith("graph.auth: 'none' is only allowed for a loopback url")


def test_plain_http_refused_off_loopback() -> None:
    assert problems({"url": "http://graph.example.com/v1.0", "auth": "default"})[0].startswith(
        "graph.url:"
    )


def test_errors_name_the_key() -> None:
    found = problems({"auth": "password", "max_batches_in_flight": 0, "colour": "blue"})
    assert any(p.startswith("graph.auth:") for p in found)
    assert any(p.startswith("graph.max_batches_in_flight:") for p in found)
    assert any(p.startswith("graph.colour:") for p in found)


def test_client_secret_requirements() -> None:
    found = problems({"auth": "client_secret"})
    assert "graph.tenant_id: required when auth = 'client_secret'" in found
    assert "graph.client_id: required when auth = 'client_secret'" in found
    assert any(
        p.startswith("graph.client_secret: required") and "LICSYNC_GRAPH_CLIENT_SECRET" in p
        for p in found
    )


def test_certificate_must_exist(tmp_path: Path) -> None:
    raw = {
        "auth": "certificate",
        "tenant_id": TENANT,
        "client_id": APP,
        "certificate_path": str(tmp_path / "no.pem"),
    }
    assert problems(raw) == [f"graph.certificate_path: no such file {tmp_path / 'no.pem'}"]


def test_secret_from_env_and_file(tmp_path: Path) -> None:
    base = {"tenant_id": TENANT, "client_id": APP}
    s = load_graph_settings(base, {"LICSYNC_GRAPH_CLIENT_SECRET": SECRET})
    assert s.client_secret is not None and s.client_secret.get_secret_value() == SECRET
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    s = load_graph_settings({**base, "client_secret_file": str(secret_file)}, {})
    assert s.client_secret is not None and s.client_secret.get_secret_value() == SECRET
    missing = problems({**base, "client_secret_file": str(tmp_path / "nope")})
    assert missing[0].startswith("graph.client_secret_file: cannot read")


def test_secret_refused_in_file_and_never_shown() -> None:
    found = problems({"client_secret": SECRET, "tenant_id": TENANT, "client_id": APP})
    assert found[0].startswith("graph.client_secret: secrets are not read from licsync.toml")
    assert all(SECRET not in p for p in found)


def test_secret_never_in_repr_str_errors_or_logs() -> None:
    env = {"LICSYNC_GRAPH_CLIENT_SECRET": SECRET}
    s = load_graph_settings({"tenant_id": TENANT, "client_id": APP}, env)
    assert SECRET not in repr(s)
    assert SECRET not in str(s)
    assert SECRET not in s.model_dump_json()
    # An invalid config with the secret set: the error text never carries it.
    with pytest.raises(ConfigError) as info:
        load_graph_settings({"tenant_id": TENANT, "client_id": APP, "max_attempts": "x"}, env)
    assert SECRET not in str(info.value)
    with capture_logs() as logs:
        build_credential(s)
    assert SECRET not in repr(logs)


def test_credential_kinds(tmp_path: Path) -> None:
    from azure.identity import aio

    base = {"tenant_id": TENANT, "client_id": APP}
    cert = tmp_path / "cert.pem"
    cert.write_text("not used")
    assert (
        build_credential(load_graph_settings({"auth": "none", "url": "http://127.0.0.1/v1.0"}, {}))
        is None
    )
    kinds = {
        "client_secret": (aio.ClientSecretCredential, {"LICSYNC_GRAPH_CLIENT_SECRET": SECRET}),
        "managed_identity": (aio.ManagedIdentityCredential, {}),
        "default": (aio.DefaultAzureCredential, {}),
    }
    for kind, (cls, env) in kinds.items():
        assert isinstance(build_credential(load_graph_settings({**base, "auth": kind}, env)), cls)


def test_incomplete_workload_identity_is_a_config_error() -> None:
    settings = load_graph_settings({"auth": "workload_identity"}, {})
    with pytest.raises(ConfigError) as info:
        build_credential(settings)
    assert info.value.problems[0].startswith("graph.auth: cannot build the 'workload_identity'")
