"""Fixtures for the emulator tests: the tiny hand-made tenant (tests.builders.tiny_snapshot), a
generated tenant, Microsoft's samples (the SDK client: tests/emulator/sdk.py)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from licsync.emulator.server import Emulator
from tests.builders import tiny_snapshot


@pytest.fixture
def tiny() -> Iterator[Emulator]:
    """A fresh emulator over the tiny tenant, per test."""
    with Emulator(tiny_snapshot()) as graph:
        yield graph


@pytest.fixture(scope="module")
def generated() -> Iterator[Emulator]:
    """A generated tenant (read-only tests share it)."""
    with Emulator(users=420, groups=30, seed=11, member_chunk=40) as graph:
        yield graph


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


@pytest.fixture(scope="session")
def sample(shared_data: Path) -> Callable[[str], Any]:
    def load(name: str) -> Any:
        return json.loads((shared_data / "graph-samples" / name).read_text(encoding="utf-8"))

    return load
