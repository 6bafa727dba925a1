"""A state store belongs to one tenant and its delta links to one Graph address (issue 11,
point 7), over real HTTP against the emulator."""

from __future__ import annotations

import copy
import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from licsync.cli import main
from licsync.exitcodes import ExitCode
from licsync.snapshot import load_snapshot
from licsync.store import open_store
from tests.builders import ORG_ID, small_snapshot
from tests.syncing import direct_licences, make_config, sync

OTHER_ORG = "0b5c3f8e-2d4a-4c61-9e7f-5a1b2c3d4e5f"
RULES = [{"group": "Group 1", "licenses": [{"sku": "SPE_E3"}]}]
MEMBERS = {"members": {1: [1, 2, 3]}}


def other_tenant() -> dict:
    snapshot = small_snapshot(**MEMBERS)
    snapshot["organization"] = {**snapshot["organization"], "id": OTHER_ORG}
    return snapshot


def test_the_first_sync_binds_the_store_to_the_tenant(emulator_factory, tmp_path: Path) -> None:
    graph = emulator_factory(small_snapshot(**MEMBERS))
    config = make_config(tmp_path, graph, RULES)
    sync(config)
    with open_store(str(tmp_path / "state.db")) as store:
        assert store.bound_tenant() == ORG_ID


def test_another_tenant_is_refused_with_exit_4_before_any_write(
    emulator_factory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = emulator_factory(small_snapshot(**MEMBERS))
    sync(make_config(tmp_path, first, RULES))
    other = emulator_factory(other_tenant())
    config = make_config(tmp_path, other, RULES)  # the same state.db, another tenant
    with open_store(str(tmp_path / "state.db")) as store:
        runs = store.list_runs()
    before = direct_licences(other)

    assert main(["sync", "--config", str(config.path)]) == ExitCode.STATE
    assert main(["sync", "--config", str(config.path), "--dry-run"]) == ExitCode.STATE
    err = capsys.readouterr().err
    assert f"belongs to tenant {ORG_ID}, but Graph answers for tenant {OTHER_ORG}" in err
    assert "Traceback" not in err
    assert direct_licences(other) == before  # nothing written to the tenant
    assert other.stats.writes == 0
    assert sum(other.stats.requests.values()) == 2  # each run read /organization, nothing else
    with open_store(str(tmp_path / "state.db")) as store:
        refused, *earlier = store.list_runs()
        assert earlier == runs  # nothing else in the store: only the refusal is recorded
        assert (refused.status, refused.exit_code, refused.phase) == ("failed", 4, "start")
        assert store.bound_tenant() == ORG_ID
        assert store.current_lease() is None


def test_the_same_tenant_at_a_new_address_drops_the_links_and_reads_in_full(
    emulator_factory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = emulator_factory(small_snapshot(**MEMBERS))
    config = make_config(tmp_path, first, RULES)
    sync(config)
    assert sync(config).incremental  # the links work at their own address
    moved = emulator_factory(copy.deepcopy(first.snapshot()))
    first.stop()  # the old address no longer answers
    config = make_config(tmp_path, moved, RULES)
    started = time.monotonic()
    result = sync(config)
    assert not result.incremental and not result.plan.changes
    assert time.monotonic() - started < 10  # no retries against the old port
    logged = capsys.readouterr()
    assert "state.delta_links_moved" in logged.out + logged.err
    with open_store(str(tmp_path / "state.db")) as store:
        assert store.delta_link("users").startswith(moved.url.rsplit("/v1.0", 1)[0])
    assert sync(config).incremental  # the new links are kept


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the emulator exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError("the emulator did not start")


def test_the_demo_tenant_replayed_on_another_port_syncs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 11's case: after `licsync demo`, its tenant served again by `licsync emulator
    --snapshot` on another port, `[graph] url` changed to it, `licsync sync` with the demo's
    store reads in full at the new address at once (it used to retry the old port's delta
    link for 27 s and exit 5)."""
    workdir = tmp_path / "demo"
    args = ["demo", "--workdir", str(workdir), "--users", "80", "--groups", "10", "--rules", "4"]
    assert main(args) in (ExitCode.OK, ExitCode.PROBLEMS)
    capsys.readouterr()
    port = _free_port()
    snapshot = str(workdir / "tenant-after.json")
    server = subprocess.Popen(
        [sys.executable, "-m", "licsync", "emulator", "--snapshot", snapshot, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(port, server)
        config = workdir / "licsync.toml"
        text = config.read_text(encoding="utf-8")
        new_url = f"http://127.0.0.1:{port}/v1.0"
        config.write_text(re.sub(r'(?m)^url = "http[^"]*"', f'url = "{new_url}"', text))
        started = time.monotonic()
        code = main(["sync", "--config", str(config), "--format", "json"])
        assert time.monotonic() - started < 20
        assert code in (ExitCode.OK, ExitCode.PROBLEMS)  # problems the demo tenant keeps
        out, err = capsys.readouterr()
        assert "state.delta_links_moved" in err
        assert json.loads(out)["run"]["read"] == "full"
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_a_snapshot_keeps_the_tenant_id(emulator_factory, tmp_path: Path) -> None:
    graph = emulator_factory(small_snapshot(**MEMBERS))
    config = make_config(tmp_path, graph, RULES)
    out = tmp_path / "tenant.json"
    assert main(["snapshot", "--config", str(config.path), "--output", str(out)]) == 0
    assert json.loads(out.read_text())["organization"]["id"] == ORG_ID
    assert load_snapshot(out).tenant_id == ORG_ID
