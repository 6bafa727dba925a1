"""Files licsync creates hold user names: each is 0600, whatever the umask lets through."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from licsync.cli import main
from licsync.migrate.rollbackfile import write_rollback
from licsync.reports.output import emit
from licsync.store import open_store
from tests.test_cli import files  # noqa: F401 (fixture)


@pytest.fixture(autouse=True)
def _open_umask() -> Iterator[None]:
    old = os.umask(0o022)  # a default that would make new files 0644
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_sqlite_state_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = open_store(str(path))  # creates the schema: the WAL files exist while it is open
    try:
        created = {p.name: mode(p) for p in tmp_path.iterdir()}
    finally:
        store.close()
    assert created == {"state.db": 0o600, "state.db-wal": 0o600, "state.db-shm": 0o600}


@pytest.mark.parametrize("fmt", ["json", "table"])
def test_report_output_is_private(files: tuple[Path, Path, Path], fmt: str) -> None:  # noqa: F811
    snapshot, config, tmp = files
    out = tmp / f"plan.{fmt}"
    out.write_text("an older report")
    out.chmod(0o644)
    main(["plan", "--snapshot", str(snapshot), "--config", str(config), "--format", fmt,
          "--output", str(out)])  # fmt: skip
    assert mode(out) == 0o600 and "an older report" not in out.read_text()


def test_snapshots_and_rollback_files_are_private(tmp_path: Path) -> None:
    emit(b"{}\n", tmp_path / "tenant.json")  # what `licsync snapshot --output` writes with
    write_rollback(tmp_path / "rollback.json", "run-1", "rules", [], new=True)
    assert mode(tmp_path / "tenant.json") == 0o600
    assert mode(tmp_path / "rollback.json") == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rollback.json", "tenant.json"]
