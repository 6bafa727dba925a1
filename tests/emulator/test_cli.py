"""`licsync emulator` on the command line: serves, and saves the tenant on exit."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time

import httpx
import pytest

from licsync.cli import build_parser, main
from licsync.emulator.cli import limits


def test_subcommand_is_registered():
    args = build_parser().parse_args(["emulator", "--users", "5", "--port", "0"])
    assert args.command == "emulator" and callable(args.handler) and args.host == "127.0.0.1"


def test_throttling_and_fault_options():
    options = "--throttle --time-scale 10 --fault-rate 0.2 --fault-seed 7"
    options += " --fault-retry-after 0.25 --latency 0.01"
    args = build_parser().parse_args(["emulator", *options.split()])
    throttle, faults = limits(args)
    assert throttle.enabled and throttle.time_scale == 10 and throttle.write_limit == 3000
    assert (faults.rate, faults.seed, faults.retry_after, faults.latency) == (0.2, 7, 0.25, 0.01)


@pytest.mark.slow
def test_serves_and_saves_on_exit(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    saved = tmp_path / "out.json"
    cmd = [
        sys.executable,
        "-m",
        "licsync",
        "emulator",
        "--users",
        "40",
        "--groups",
        "4",
        "--port",
        str(port),
        "--save",
        str(saved),
        "--replication-lag",
        "60",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/v1.0/users?$top=5")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
        assert response.status_code == 200 and len(response.json()["value"]) == 5
        user = f"http://127.0.0.1:{port}/v1.0/users/{response.json()['value'][0]['id']}"
        httpx.patch(user, json={"displayName": "Renamed"}).raise_for_status()
        assert httpx.get(user).json()["displayName"] != "Renamed"  # a lagging replica
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)  # reads and closes its pipes
    assert proc.returncode == 0
    snapshot = json.loads(saved.read_text())
    assert len(snapshot["users"]) == 40 and len(snapshot["groups"]) == 4


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot read the snapshot"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "not a tenant snapshot (docs/snapshot.md): the file is not a JSON object"),
        (b'{"users": [{"userPrincipalName": "a@b"}]}', "an object lacks 'id'"),
        (b'{"subscribedSkus": "E3"}', "not a tenant snapshot"),
    ],
)
def test_a_bad_snapshot_is_exit_3_naming_the_file(tmp_path, capsys, content, expected):
    path = tmp_path / "tenant.json"
    if content is not None:
        path.write_bytes(content)
    assert main(["emulator", "--snapshot", str(path), "--port", "0"]) == 3
    err = capsys.readouterr().err
    assert str(path) in err and expected in err and "Traceback" not in err


@pytest.mark.slow
def test_serves_https_with_tokens_and_restricted_users(tmp_path, tls_files):
    """`--tls-cert` serves HTTPS (HTTP/2), `--require-token` checks bearer tokens issued by its
    token endpoint, `--restricted-share` marks users whose writes are refused."""
    ca, server = tls_files
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    saved = tmp_path / "out.json"
    cmd = [sys.executable, "-m", "licsync", "emulator", "--users", "50", "--groups", "3"]
    cmd += ["--port", str(port), "--tls-cert", str(server), "--require-token", "app-1"]
    cmd += ["--restricted-share", "0.1", "--save", str(saved)]
    env = {**os.environ, "LICSYNC_EMULATOR_CLIENT_SECRET": "cli-secret"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    base = f"https://127.0.0.1:{port}"
    try:
        with httpx.Client(verify=ssl.create_default_context(cafile=ca), http2=True) as client:
            deadline = time.monotonic() + 20
            while True:
                try:
                    refused = client.get(f"{base}/v1.0/organization")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline and proc.poll() is None
                    time.sleep(0.1)
            assert refused.status_code == 401 and refused.http_version == "HTTP/2"
            assert refused.json()["error"]["code"] == "InvalidAuthenticationToken"
            assert client.get(f"{base}/_emulator/stats").json()["http2"] >= 2
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    assert proc.returncode == 0
    snapshot = json.loads(saved.read_text())
    assert sum(1 for u in snapshot["users"] if u.get("isManagementRestricted")) == 5


def test_require_token_needs_the_secret_in_the_environment(capsys):
    args = build_parser().parse_args(["emulator", "--require-token", "app-1"])
    assert args.handler(args) == 2
    assert "LICSYNC_EMULATOR_CLIENT_SECRET" in capsys.readouterr().err
