"""A store licsync may only read: read-only commands read it, a sync stops with exit 4."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from licsync.cli import main
from licsync.config import load_config
from licsync.emulator.server import Emulator
from licsync.exitcodes import ExitCode
from tests.builders import small_snapshot
from tests.syncing import direct_licences, make_config, sync

RULES = [{"group": "Group 1", "licenses": [{"sku": "POWER_BI_PRO"}]}]


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """`path` (a file or a folder) unwritable for this process: chmod, and for root (who
    ignores modes) the immutable attribute."""
    mode = path.stat().st_mode
    path.chmod(0o555 if path.is_dir() else 0o444)
    immutable = os.geteuid() == 0
    if immutable:
        if shutil.which("chattr") is None:
            path.chmod(mode)
            pytest.skip("running as root without chattr: nothing is read-only to root")
        done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
        if done.returncode != 0:
            path.chmod(mode)
            pytest.skip(f"chattr +i refused: {done.stderr.decode().strip()}")
    try:
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        path.chmod(mode)


@pytest.fixture
def synced(emulator_factory: Callable[..., Emulator], tmp_path: Path):
    """A store one sync wrote (one CountViolation recorded) in its own folder."""
    graph = emulator_factory(small_snapshot(seats={"POWER_BI_PRO": 1}, members={1: [1, 2]}))
    folder = tmp_path / "state"
    folder.mkdir()
    config = make_config(tmp_path, graph, RULES)
    text = config.path.read_text().replace(str(tmp_path / "state.db"), str(folder / "state.db"))
    config.path.write_text(text)
    sync(load_config(config.path))
    return graph, config.path, folder


def test_problems_and_runs_read_a_store_in_a_read_only_folder(synced, capsys) -> None:
    _, config, folder = synced
    capsys.readouterr()
    before = sorted(p.name for p in folder.iterdir())
    with read_only(folder):
        assert main(["problems", "--config", str(config), "--format", "json"]) == 10
        (row,) = orjson.loads(capsys.readouterr().out)
        assert row["error"] == "CountViolation"
        assert main(["runs", "--config", str(config), "--format", "json"]) == 0
        assert [r["kind"] for r in orjson.loads(capsys.readouterr().out)] == ["sync"]
    assert sorted(p.name for p in folder.iterdir()) == before


def test_a_sync_against_a_read_only_store_file_is_exit_4_and_writes_nothing(synced, capsys) -> None:
    graph, config, folder = synced
    with graph.tenant.lock:
        for sku in graph.tenant.skus.values():
            sku.enabled += 5  # the next sync would license user 2
    before = direct_licences(graph)
    capsys.readouterr()
    with read_only(folder / "state.db"):
        assert main(["sync", "--config", str(config)]) == ExitCode.STATE
    err = capsys.readouterr().err
    assert "state.db" in err and "read-only" in err and "Traceback" not in err
    assert direct_licences(graph) == before
