"""A real `licsync sync` process killed (SIGKILL) or paused (SIGSTOP) in the middle of its writes.

Each trial runs two copies of one tenant in two emulators: one whose sync is killed after a
number of writes reached Graph and then rerun, and an uninterrupted control. Both then see
the same leavers and sync again. Every user's direct assignments, and licsync's ledger, must end
the same in both: a licence written before the kill is licsync's (a leaver loses it), and an
administrator's own assignment that licsync widened is restored exactly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from licsync.config import Config, parse_config
from licsync.emulator.server import Emulator
from licsync.outcomes import RunStatus
from licsync.store import open_store
from tests.builders import group_id, small_snapshot, user_id
from tests.syncing import config_text, direct_licences, sync

E3 = "SPE_E3"
ADMIN_OFF = ["SWAY", "YAMMER_ENTERPRISE", "WHITEBOARD_PLAN2"]
RULES = [{"group": "Group 1", "licenses": [{"sku": E3, "disabled_plans": ["SWAY"]}]}]
USERS = 200
MEMBERS = list(range(1, 151))  # 1-30 hold the administrator's own E3, which licsync widens
ADMINS = list(range(1, 31)) + list(range(151, 161))  # 151-160: admin E3, not members
LEAVERS = (*range(1, 21), *range(31, 71))
NEWCOMERS = tuple(range(151, 201))  # the incremental run's members (10 admins, 40 new)

pytestmark = [pytest.mark.slow, pytest.mark.skipif(os.name != "posix", reason="signals")]


def snapshot() -> dict[str, Any]:
    return small_snapshot(
        users=USERS,
        seats={E3: 1000},
        members={1: MEMBERS},
        direct={n: [(E3, ADMIN_OFF)] for n in ADMINS},
    )


def config_for(graph: Emulator, home: Path, *, write_rate: int = 30, ttl: float = 60) -> Config:
    home.mkdir(parents=True, exist_ok=True)
    text = config_text(graph, home / "state.db", RULES).replace(
        "write_rate = 100", f"write_rate = {write_rate}"
    )
    text = text.replace("[state]\n", f"[state]\nlease_ttl_seconds = {ttl}\n")
    path = home / "licsync.toml"
    path.write_text(text, encoding="utf-8")
    return parse_config(text, path)


def start_sync(config: Config, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LICSYNC_", "AZURE_"))}
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "licsync", "sync", "--config", str(config.path)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


def wait_for_writes(graph: Emulator, proc: subprocess.Popen[bytes], count: int) -> None:
    """Until `count` writes reached the emulator (or the run ended first)."""
    deadline = time.monotonic() + 60
    while graph.stats.writes < count and proc.poll() is None:
        assert time.monotonic() < deadline, "the sync never reached its writes"
        time.sleep(0.002)


def move_members(
    graph: Emulator, group: int, add: tuple[int, ...] = (), remove: tuple[int, ...] = ()
) -> None:
    """Membership changes made in Entra (by an administrator, between syncs)."""
    with graph.tenant.lock:
        for n in add:
            graph.tenant.add_member(group_id(group), user_id(n))
        for n in remove:
            graph.tenant.remove_member(group_id(group), user_id(n))


def unlock_dead(config: Config) -> str:
    """What an operator does after a crash: `licsync unlock` (the killed process holds the
    lease until its TTL; it no longer runs, so the lease may go at once)."""
    result = subprocess.run(
        [sys.executable, "-m", "licsync", "unlock", "--config", str(config.path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def ledger(config: Config) -> dict[Any, Any]:
    with open_store(str(config.path.parent / "state.db")) as store:
        return store.load_ledger()


def runs(config: Config) -> list[RunStatus]:
    with open_store(str(config.path.parent / "state.db")) as store:
        return [r.status for r in store.list_runs(100)]


def assert_same(killed: tuple[Emulator, Config], control: tuple[Emulator, Config]) -> None:
    assert direct_licences(killed[0]) == direct_licences(control[0])
    assert ledger(killed[1]) == ledger(control[1])


@pytest.mark.parametrize("after_writes", [1, 60, 120, 150])
def test_a_first_run_killed_mid_write_loses_nothing(
    emulator_factory: Any, tmp_path: Path, after_writes: int
) -> None:
    killed, control = emulator_factory(snapshot()), emulator_factory(snapshot())
    k_config = config_for(killed, tmp_path / "killed")
    c_config = config_for(control, tmp_path / "control")
    admin_before = direct_licences(killed)  # the administrators' own assignments

    proc = start_sync(k_config, tmp_path / "killed.log")
    wait_for_writes(killed, proc, after_writes)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    if after_writes < 150:  # the early points always hit a run still writing
        assert proc.returncode == -signal.SIGKILL
        assert killed.stats.writes < 150
    if proc.returncode == -signal.SIGKILL:
        assert "released the lease" in unlock_dead(k_config)

    rerun = sync(k_config)
    assert rerun.failed_users == ()
    sync(c_config)
    assert_same((killed, k_config), (control, c_config))
    if proc.returncode == -signal.SIGKILL and after_writes < 150:
        assert RunStatus.INTERRUPTED in runs(k_config)

    for graph in (killed, control):
        move_members(graph, 1, remove=LEAVERS)
    sync(k_config)
    sync(c_config)
    assert_same((killed, k_config), (control, c_config))
    held = direct_licences(killed)
    for n in LEAVERS:
        # an administrator's own assignment exactly as it was; licsync's licence (written
        # before the kill or after it) removed
        assert held[user_id(n)] == admin_before[user_id(n)]
        assert (held[user_id(n)] != {}) == (n in ADMINS)


@pytest.mark.parametrize("after_writes", [5, 30])
def test_an_incremental_run_killed_mid_write_loses_nothing(
    emulator_factory: Any, tmp_path: Path, after_writes: int
) -> None:
    killed, control = emulator_factory(snapshot()), emulator_factory(snapshot())
    k_config = config_for(killed, tmp_path / "killed", write_rate=15)
    c_config = config_for(control, tmp_path / "control")
    sync(k_config)
    sync(c_config)
    before = killed.stats.writes
    for graph in (killed, control):
        move_members(graph, 1, add=NEWCOMERS)

    proc = start_sync(k_config, tmp_path / "killed.log")
    wait_for_writes(killed, proc, before + after_writes)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    unlock_dead(k_config)

    assert sync(k_config).incremental
    sync(c_config)
    assert_same((killed, k_config), (control, c_config))
    for graph in (killed, control):
        move_members(graph, 1, remove=(*NEWCOMERS, *LEAVERS))
    sync(k_config)
    sync(c_config)
    assert_same((killed, k_config), (control, c_config))
    held = direct_licences(killed)
    assert all(held[user_id(n)] == {} for n in NEWCOMERS if n not in ADMINS)
    assert all(len(held[user_id(n)]) == 1 for n in ADMINS)


def test_a_run_paused_past_its_lease_sends_nothing_stale(
    emulator_factory: Any, tmp_path: Path
) -> None:
    """SIGSTOP a run past its lease TTL; another run takes over and finishes; the paused run,
    resumed, sends no further write, commits nothing and exits 4."""
    graph, control = emulator_factory(snapshot()), emulator_factory(snapshot())
    slow = config_for(graph, tmp_path / "a", write_rate=10, ttl=2)
    proc = start_sync(slow, tmp_path / "a.log")
    wait_for_writes(graph, proc, 20)
    proc.send_signal(signal.SIGSTOP)
    try:
        time.sleep(3)  # past the TTL: the lease has expired
        other = config_for(graph, tmp_path / "a", ttl=60)  # the same state store
        takeover = sync(other)
        assert takeover.failed_users == ()
        writes_done = graph.stats.writes
    finally:
        proc.send_signal(signal.SIGCONT)
    proc.wait(60)
    log = (tmp_path / "a.log").read_text()
    assert graph.stats.writes == writes_done, log  # not one write after resuming
    assert proc.returncode == 4, log
    assert "lease" in log
    sync(config_for(control, tmp_path / "control"))
    assert direct_licences(graph) == direct_licences(control)
    assert ledger(other) == ledger(config_for(control, tmp_path / "control"))
