"""What a real tenant does that a plain emulator did not: HTTPS with HTTP/2 and checked bearer
tokens, tokens revoked mid-run (plainly or by a CAE claims challenge), token failures, users
Graph will not let the app change (403), an app that lacks a permission, an untrusted
certificate. Every test runs `licsync sync` against the emulator over real HTTP."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from licsync.cli import main
from licsync.emulator.server import Emulator
from licsync.exitcodes import ExitCode
from licsync.model import LicenseError
from licsync.outcomes import RunStatus, WriteOutcome
from licsync.store import open_store
from tests.builders import catalogue_sku_id as sku_id
from tests.builders import small_snapshot, user_id
from tests.secure import SECRET, graph_table, secure_emulator
from tests.syncing import direct_licences, make_config, sync

E3 = "SPE_E3"
RULES = [{"group": "Group 1", "licenses": [{"sku": E3}]}]


def licensed_group(users: int, restricted: tuple[int, ...] = ()) -> dict[str, Any]:
    """`users` users, all in Group 1 (licensed E3 by RULES); `restricted` are in a restricted
    management administrative unit."""
    snapshot = small_snapshot(users=users, members={1: list(range(1, users + 1))})
    for user in snapshot["users"]:
        if int(user["id"][-12:]) in restricted:
            user["isManagementRestricted"] = True
    return snapshot


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("LICSYNC_GRAPH_CLIENT_SECRET", SECRET)
    return SECRET


def holders(graph: Emulator) -> set[str]:
    return {uid for uid, skus in direct_licences(graph).items() if sku_id(E3) in skus}


def runs(tmp_path: Path) -> list[RunStatus]:
    with open_store(str(tmp_path / "state.db")) as store:
        return [r.status for r in store.list_runs()]


def on_first_envelope(graph: Emulator, act: Any) -> None:
    """Call `act()` when the first `$batch` of writes arrives (after its own token was accepted;
    the read's `$batch` of member pages comes before)."""
    original = graph.app._batch
    calls = []

    def batch(body: Any, base: str) -> Any:
        writes = any(r.get("method") != "GET" for r in body.get("requests", ()))
        if writes and not calls:
            act()
        if writes:
            calls.append(1)
        return original(body, base)

    graph.app._batch = batch  # type: ignore[method-assign]


# --- HTTPS, HTTP/2, tokens -----------------------------------------------------------------


def test_full_sync_over_https_and_http2_with_a_checked_bearer_token(
    emulator_factory: Any, tls_files: tuple[Path, Path], tmp_path: Path, secret: str
) -> None:
    graph = secure_emulator(emulator_factory, tls_files, licensed_group(30))
    config = make_config(tmp_path, graph, RULES, graph=graph_table(graph, tls_files))
    result = sync(config)
    assert result.exit_code is ExitCode.OK and len(result.succeeded_users) == 30
    assert holders(graph) == {user_id(n) for n in range(1, 31)}
    issuer = graph.app.auth
    assert issuer.token_requests >= 1 and issuer.refused == 0
    # $batch items, not requests of their own: the writes and the group's one members page
    inner = graph.stats.count("POST /users/") + graph.stats.count("GET /groups/{id}/members")
    assert graph.stats.http2 == graph.stats.count() - inner > 0  # all over HTTP/2
    again = sync(config)
    assert again.incremental and again.plan.changes == ()


@pytest.mark.parametrize("challenge", [False, True], ids=["revoked", "cae-challenge"])
def test_a_token_revoked_mid_run_is_renewed(
    emulator_factory: Any,
    tls_files: tuple[Path, Path],
    tmp_path: Path,
    secret: str,
    challenge: bool,
) -> None:
    """The token is revoked while the writes run: the next request is refused with 401 (and, as
    continuous access evaluation does, a claims challenge); licsync gets a new token instead of
    sending the cached one again, and every write lands."""
    graph = secure_emulator(emulator_factory, tls_files, licensed_group(45))
    table = {**graph_table(graph, tls_files), "max_batches_in_flight": 1}
    config = make_config(tmp_path, graph, RULES, graph=table)
    issuer = graph.app.auth
    on_first_envelope(graph, lambda: issuer.revoke(challenge=challenge))
    result = sync(config)
    assert result.exit_code is ExitCode.OK and len(result.succeeded_users) == 45
    assert issuer.refused == 1  # one 401, then a new token
    renewal = issuer.claims[-1]["access_token"]
    assert renewal["nbf"]["essential"] is True


def test_a_token_failure_mid_run_stops_the_writes_and_records_the_run(
    emulator_factory: Any,
    tls_files: tuple[Path, Path],
    tmp_path: Path,
    secret: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The app's secret is rotated and its token revoked during the writes: the envelope in
    flight lands, nothing more is sent, the run is recorded (failed, delta links not advanced)
    and `licsync sync` exits 5 with one line naming the credential and Entra's answer."""
    graph = secure_emulator(emulator_factory, tls_files, licensed_group(45))
    table = {**graph_table(graph, tls_files), "max_batches_in_flight": 1}
    make_config(tmp_path, graph, RULES, graph=table)
    issuer = graph.app.auth

    def rotate() -> None:
        issuer.client_secret = "rotated"
        issuer.revoke()

    on_first_envelope(graph, rotate)
    code = main(["sync", "--config", str(tmp_path / "licsync.toml"), "--format", "json"])
    err = capsys.readouterr().err
    assert code == ExitCode.GRAPH
    assert len(holders(graph)) == 20  # the first envelope
    assert runs(tmp_path) == [RunStatus.FAILED]
    [line] = [ln for ln in err.splitlines() if ln.startswith("licsync: error:")]
    assert "cannot get an access token (auth = client_secret" in line
    assert graph.tenant.tenant_id in line and "AADSTS7000215" in line
    assert SECRET not in err and "Traceback" not in err


@pytest.mark.slow
@pytest.mark.parametrize(
    ("secret_value", "authority", "said"),
    [
        ("wrong-secret", None, "ClientAuthenticationError: "),
        (SECRET, "127.0.0.1:9", "ServiceRequestError: "),  # nothing listens on port 9
    ],
    ids=["wrong-secret", "login-unreachable"],
)
def test_a_token_failure_at_start_exits_5_with_one_message(
    emulator_factory: Any,
    tls_files: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    secret_value: str,
    authority: str | None,
    said: str,
) -> None:
    monkeypatch.setenv("LICSYNC_GRAPH_CLIENT_SECRET", secret_value)
    graph = secure_emulator(emulator_factory, tls_files, licensed_group(3))
    table = graph_table(graph, tls_files)
    if authority:
        table["authority"] = authority
    make_config(tmp_path, graph, RULES, graph=table)
    command = [sys.executable, "-m", "licsync", "plan", "--config", str(tmp_path / "licsync.toml")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    err = done.stderr
    assert done.returncode == ExitCode.GRAPH
    assert err.count("\n") == 1 and err.startswith("licsync: error: ")
    assert f"auth = client_secret, tenant {graph.tenant.tenant_id}, client " in err
    assert said in err and secret_value not in err


def test_an_untrusted_certificate_is_one_clear_error(
    emulator_factory: Any,
    tls_files: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    graph = emulator_factory(licensed_group(3), tls=(tls_files[1], tls_files[1]))
    make_config(tmp_path, graph, RULES)  # no ca_file: the test CA is not trusted
    code = main(["plan", "--config", str(tmp_path / "licsync.toml")])
    err = capsys.readouterr().err
    assert code == ExitCode.GRAPH and err.count("\n") == 1
    assert "CERTIFICATE_VERIFY_FAILED" in err and "ca_file" in err
    assert graph.stats.count() == 0


# --- 403 on one user, and on every user --------------------------------------------------------


def test_users_graph_will_not_let_the_app_change_are_problems_and_the_run_goes_on(
    emulator_factory: Any, tmp_path: Path
) -> None:
    graph = emulator_factory(licensed_group(30, restricted=(4, 17)))
    config = make_config(tmp_path, graph, RULES)
    result = sync(config)
    assert result.exit_code is ExitCode.PROBLEMS and not result.fatal
    assert set(result.failed_users) == {user_id(4), user_id(17)}
    assert holders(graph) == {user_id(n) for n in range(1, 31)} - {user_id(4), user_id(17)}
    denied = [p for p in result.problems if p.error is LicenseError.ACCESS_DENIED]
    assert {p.user_id for p in denied} == {user_id(4), user_id(17)}
    assert {p.message for p in denied} == {"Insufficient privileges to complete the operation."}
    with open_store(str(tmp_path / "state.db")) as store:
        changes = {c.user_id: c for c in store.list_changes()}
        assert changes[user_id(4)].outcome is WriteOutcome.FAILED
        assert changes[user_id(4)].request_id  # Graph's request id, for a support case
        assert store.delta_link("users")  # the run advanced: the next one is incremental
    assert sync(config).incremental


def test_an_app_refused_on_every_user_stops_writing_and_names_the_permission(
    emulator_factory: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    graph = emulator_factory(licensed_group(60, restricted=tuple(range(1, 61))))
    make_config(tmp_path, graph, RULES)
    path = tmp_path / "licsync.toml"
    path.write_text(
        path.read_text()
        .replace("write_rate = 100", "write_rate = 100\nmax_consecutive_denials = 5")
        .replace('auth = "none"', 'auth = "none"\nmax_batches_in_flight = 1')
    )
    code = main(["sync", "--config", str(path), "--format", "json"])
    err = capsys.readouterr().err
    assert code == ExitCode.GRAPH
    # the read's $batch of member pages, then nothing sent after the fatal envelope of writes
    assert graph.stats.count("POST /$batch") == 2
    assert graph.stats.count("POST /users/") == 20
    [line] = [ln for ln in err.splitlines() if ln.startswith("licsync: error:")]
    assert "5 writes to distinct users refused with 403 in a row" in line
    assert "grant the app the LicenseAssignment.ReadWrite.All application permission" in line
    assert runs(tmp_path) == [RunStatus.FAILED]
