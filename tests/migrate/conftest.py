"""Migration fixtures: an emulator tenant where some users hold licences both directly and
from Entra-licensed groups, and a config pointing at it (helpers: tests/migrate/helpers.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from licsync.config import Config
from licsync.emulator.server import Emulator
from tests.builders import small_snapshot
from tests.migrate.helpers import E3, license_group
from tests.syncing import make_config


@pytest.fixture
def entra(emulator_factory: Any) -> Emulator:
    """Users 1-4 hold SPE_E3 directly (user 2 with SWAY off, user 4 in no group); group 1
    (users 1, 2, 5) is licensed by Entra with every plan on; group 2 (user 3) with SWAY off."""
    snap = small_snapshot(
        users=6,
        members={1: [1, 2, 5], 2: [3]},
        direct={1: [(E3, [])], 2: [(E3, ["SWAY"])], 3: [(E3, [])], 4: [(E3, [])]},
    )
    graph = emulator_factory(snap)
    license_group(graph, 1, E3, [])
    license_group(graph, 2, E3, ["SWAY"])
    return graph


@pytest.fixture
def config(tmp_path: Path, entra: Emulator) -> Config:
    return make_config(tmp_path, entra, [])
