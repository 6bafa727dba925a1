"""The emulator as Entra and Graph see an app: HTTPS with HTTP/2, a client-credentials token
endpoint with Entra's errors, bearer tokens that expire and can be revoked (plainly or with a
continuous-access-evaluation claims challenge), and users the app may not change
(restricted management administrative units: 403 Authorization_RequestDenied)."""

from __future__ import annotations

import base64
import json
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest

from licsync.emulator.generate import build_tenant
from licsync.emulator.server import Emulator
from licsync.emulator.state import Tenant
from tests.secure import CLIENT_ID, SECRET, secure_emulator


def token(graph: Emulator, client: httpx.Client, **form: str) -> httpx.Response:
    fields = {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "scope": "https://127.0.0.1/.default",
        **form,
    }
    return client.post(
        f"https://{graph.authority}/{graph.tenant.tenant_id}/oauth2/v2.0/token", data=fields
    )


@pytest.fixture
def secure(emulator_factory: Any, tls_files: tuple[Path, Path]) -> Emulator:
    return secure_emulator(emulator_factory, tls_files, users=30, groups=3, seed=2)


@pytest.fixture
def https(tls_files: tuple[Path, Path]) -> httpx.Client:
    with httpx.Client(verify=ssl.create_default_context(cafile=tls_files[0]), http2=True) as client:
        yield client


def test_https_speaks_http2_and_checks_the_bearer_token(
    secure: Emulator, https: httpx.Client
) -> None:
    refused = https.get(f"{secure.url}/organization")
    assert refused.http_version == "HTTP/2" and refused.status_code == 401
    assert refused.json()["error"]["code"] == "InvalidAuthenticationToken"
    answer = token(secure, https).json()
    assert answer["token_type"] == "Bearer" and answer["expires_in"] == 3600
    headers = {"Authorization": f"Bearer {answer['access_token']}"}
    org = https.get(f"{secure.url}/organization", headers=headers)
    assert org.status_code == 200 and org.json()["value"][0]["id"] == secure.tenant.tenant_id
    assert org.json()["@odata.context"].startswith("https://")  # links keep the scheme
    assert secure.stats.http2 == 3
    wrong = https.get(f"{secure.url}/users", headers={"Authorization": "Bearer forged"})
    assert wrong.status_code == 401


@pytest.mark.parametrize(
    ("form", "status", "error", "code"),
    [
        ({"client_secret": "wrong"}, 401, "invalid_client", 7000215),
        ({"client_id": "00000000-0000-0000-0000-000000000001"}, 400, "unauthorized_client", 700016),
    ],
)
def test_token_endpoint_answers_entra_errors(
    secure: Emulator, https: httpx.Client, form: dict[str, str], status: int, error: str, code: int
) -> None:
    answer = token(secure, https, **form)
    body = answer.json()
    assert answer.status_code == status and body["error"] == error
    assert body["error_codes"] == [code] and body["error_description"].startswith(f"AADSTS{code}:")


def test_unknown_tenant_is_refused(secure: Emulator, https: httpx.Client) -> None:
    url = f"https://{secure.authority}/contoso.example/oauth2/v2.0/token"
    answer = https.post(url, data={"client_id": CLIENT_ID, "client_secret": SECRET})
    assert answer.status_code == 400 and answer.json()["error_codes"] == [90002]


def test_tokens_expire(emulator_factory: Any, tls_files: tuple[Path, Path]) -> None:
    graph = secure_emulator(emulator_factory, tls_files, users=5, groups=1, token_lifetime=60)
    clock = [0.0]
    graph.app.auth.clock = lambda: clock[0]
    with httpx.Client(verify=ssl.create_default_context(cafile=tls_files[0]), http2=True) as https:
        headers = {"Authorization": f"Bearer {token(graph, https).json()['access_token']}"}
        assert https.get(f"{graph.url}/organization", headers=headers).status_code == 200
        clock[0] = 61.0
        expired = https.get(f"{graph.url}/organization", headers=headers)
    assert expired.status_code == 401
    assert expired.json()["error"]["message"] == "Lifetime validation failed, the token is expired."


def test_revoked_tokens_are_refused_with_or_without_a_claims_challenge(
    secure: Emulator, https: httpx.Client
) -> None:
    headers = {"Authorization": f"Bearer {token(secure, https).json()['access_token']}"}
    secure.app.auth.revoke()
    plain = https.get(f"{secure.url}/organization", headers=headers)
    assert (
        plain.status_code == 401 and "insufficient_claims" not in plain.headers["www-authenticate"]
    )
    secure.app.auth.revoke(challenge=True)
    challenged = https.get(f"{secure.url}/organization", headers=headers)
    assert challenged.status_code == 401
    header = challenged.headers["www-authenticate"]
    assert 'error="insufficient_claims"' in header
    claims = json.loads(base64.b64decode(header.split('claims="')[1].split('"')[0]))
    assert claims["access_token"]["nbf"]["essential"] is True
    fresh = {"Authorization": f"Bearer {token(secure, https).json()['access_token']}"}
    assert https.get(f"{secure.url}/organization", headers=fresh).status_code == 200


# --- restricted management administrative units ----------------------------------------------


def test_writes_to_a_restricted_user_are_refused_as_graph_does(emulator_factory: Any) -> None:
    graph = emulator_factory(users=40, groups=3, seed=3, restricted=0.1)
    restricted = [u for u in graph.tenant.users.values() if u.management_restricted]
    assert len(restricted) == 4
    user = restricted[0]
    before = user.usage_location
    body = {"addLicenses": [], "removeLicenses": []}
    with httpx.Client(base_url=graph.url) as client:
        for answer in (
            client.post(f"/users/{user.id}/assignLicense", json=body),
            client.patch(
                f"/users/{user.id}", json={"usageLocation": "NZ" if before != "NZ" else "JP"}
            ),
        ):
            assert answer.status_code == 403
            error = answer.json()["error"]
            assert error["code"] == "Authorization_RequestDenied"
            assert error["message"] == "Insufficient privileges to complete the operation."
            assert error["innerError"]["request-id"] == answer.headers["request-id"]
        assert client.get(f"/users/{user.id}").status_code == 200  # reads are allowed
    assert user.usage_location == before


def test_restricted_share_leaves_the_rest_of_the_tenant_alone() -> None:
    plain, marked = build_tenant(300, 10, 5), build_tenant(300, 10, 5, restricted=0.01)
    assert sum(u.management_restricted for u in marked.users.values()) == 3
    assert plain.to_snapshot()["groups"] == marked.to_snapshot()["groups"]
    assert [u.id for u in plain.users.values()] == [u.id for u in marked.users.values()]


def test_snapshots_keep_the_restriction() -> None:
    snapshot = build_tenant(50, 3, 1, restricted=0.1).to_snapshot()
    flagged = [u["id"] for u in snapshot["users"] if u.get("isManagementRestricted")]
    assert len(flagged) == 5
    again = Tenant.from_snapshot(snapshot)
    assert sorted(u.id for u in again.users.values() if u.management_restricted) == sorted(flagged)
