"""Fixtures shared by every test level."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's LICSYNC_* or AZURE_* settings."""
    for name in list(os.environ):
        if name.startswith(("LICSYNC_", "AZURE_")) and name != "LICSYNC_TEST_POSTGRES_URL":
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """`licsync sync` and its siblings configure structlog globally: undo it for the tests
    that follow."""
    yield
    structlog.reset_defaults()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data`: Microsoft's catalogue, conflict tables and Graph samples."""
    path = SHARED / "data"
    if not path.is_dir():
        pytest.fail(f"{path} is missing: tests need the shared reference data beside the project")
    return path


@pytest.fixture
def emulator_factory():
    """Start in-process Graph emulators: `emulator_factory(snapshot=None, **Emulator kwargs)`.

    Each call returns a running `licsync.emulator.server.Emulator` (`.url` ends in /v1.0,
    `.tenant` is the live state, `.stats` the counters); all are stopped at teardown.
    """
    from licsync.emulator.server import Emulator

    started = []

    def start(snapshot=None, **kwargs):
        graph = Emulator(snapshot, **kwargs).start()
        started.append(graph)
        return graph

    yield start
    for graph in started:
        graph.stop()


@pytest.fixture
def emulator(emulator_factory):
    """A running emulator over a generated tenant (200 users, 20 groups, seed 0)."""
    return emulator_factory(users=200, groups=20, seed=0)


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(test CA certificate, server certificate chain with its key) for 127.0.0.1 and
    localhost, made at test time with trustme."""
    import trustme

    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(
        str(folder / "server.pem")
    )
    return folder / "ca.pem", folder / "server.pem"
