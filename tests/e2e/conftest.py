"""End-to-end fixtures: a fresh emulator over a small tenant (helpers: tests/syncing.py)."""

from __future__ import annotations

from typing import Any

import pytest

from licsync.emulator.server import Emulator
from tests.builders import small_snapshot


@pytest.fixture
def small(request: pytest.FixtureRequest, emulator_factory: Any) -> Emulator:
    """A fresh emulator over `small_snapshot(**params)` (indirect parametrisation) per test."""
    params = getattr(request, "param", {})
    return emulator_factory(small_snapshot(**params))
