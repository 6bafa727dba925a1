"""A real `licsync sync` process sent SIGTERM or SIGINT in the middle of its writes: it stops
gracefully (exit 143 or 130), records the run `stopped` with what it applied, frees the lease at
once, logs one `licence.write` line per write Graph applied, and a rerun converges to the same
tenant and ledger as an uninterrupted control. A second signal stops it at once."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from licsync.emulator.throttle import FaultConfig
from licsync.outcomes import RunStatus
from licsync.store import open_store
from tests.e2e.test_crash import (
    LEAVERS,
    assert_same,
    config_for,
    move_members,
    snapshot,
    start_sync,
    unlock_dead,
    wait_for_writes,
)
from tests.syncing import sync


def log_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if '"event": ' in line:  # a log line (the report's JSON has no such key)
            lines.append(json.loads(line))
    return lines


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_mid_write_stops_gracefully(
    emulator_factory: Any, tmp_path: Path, signum: int, code: int
) -> None:
    stopped, control = emulator_factory(snapshot()), emulator_factory(snapshot())
    s_config = config_for(stopped, tmp_path / "stopped", write_rate=20)
    c_config = config_for(control, tmp_path / "control")
    log = tmp_path / "stopped.log"

    proc = start_sync(s_config, log)
    wait_for_writes(stopped, proc, 40)
    signalled = time.monotonic()
    proc.send_signal(signum)
    proc.wait(60)
    took = time.monotonic() - signalled
    text = log.read_text(encoding="utf-8")
    assert proc.returncode == code, text
    assert took < 30  # [graph] request_deadline_seconds
    assert "Traceback" not in text

    applied = stopped.stats.applied
    assert 40 <= len(applied) < 150  # 150 users to license: the run stopped early
    writes = [e for e in log_lines(log) if e.get("event") == "licence.write"]
    assert sorted(e["request_id"] for e in writes) == sorted(rid for _, rid in applied)
    assert any(e.get("event") == "run.stopping" for e in log_lines(log))

    with open_store(str(s_config.path.parent / "state.db")) as store:
        assert store.current_lease() is None
        assert store.pending_intents() == []  # the unsent writes' intents are cleared
        [run] = store.list_runs()
        assert (run.status, run.exit_code, run.phase) == (RunStatus.STOPPED, code, "record")
        assert run.error is not None and signal.Signals(signum).name in run.error
        assert store.count_writes([run.id])[run.id] == (len(applied), 0)
        assert store.list_problems() == []  # the unsent writes are nobody's problem

    rerun = sync(s_config)  # at once: the lease is free
    assert rerun.failed_users == ()
    sync(c_config)
    assert_same((stopped, s_config), (control, c_config))
    for graph in (stopped, control):
        move_members(graph, 1, remove=LEAVERS)
    sync(s_config)
    sync(c_config)
    assert_same((stopped, s_config), (control, c_config))


def test_a_second_signal_stops_at_once(emulator_factory: Any, tmp_path: Path) -> None:
    """With Graph answering slowly, the first SIGTERM waits for the envelope in flight; a
    second one ends the process at once. The journal lets the next run finish the work."""
    graph, control = emulator_factory(snapshot()), emulator_factory(snapshot())
    config = config_for(graph, tmp_path / "a")
    log = tmp_path / "a.log"
    proc = start_sync(config, log)
    wait_for_writes(graph, proc, 5)
    deadline = time.monotonic() + 30
    while '"licence.write"' not in log.read_text(encoding="utf-8"):  # an answer has arrived
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    graph.app.fault_config = FaultConfig(latency=10.0)  # every answer from now on takes 10 s
    proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    while '"run.stopping"' not in log.read_text(encoding="utf-8"):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    signalled = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    assert proc.returncode == -signal.SIGTERM  # the signal's own ending: 143 in a shell
    assert time.monotonic() - signalled < 5  # not waiting for the 10 s answer
    graph.app.fault_config = FaultConfig()
    # the writes answered before the kill are in the log: each line is written as its outcome
    # arrives, not at the end of the run
    logged = [e["request_id"] for e in log_lines(log) if e.get("event") == "licence.write"]
    assert logged and set(logged) <= {rid for _, rid in graph.stats.applied}

    unlock_dead(config)
    sync(config)
    sync(config_for(control, tmp_path / "control"))
    assert_same((graph, config), (control, config_for(control, tmp_path / "control")))
