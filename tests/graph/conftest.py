"""Fixtures for the Graph client tests: real samples, a recording sleep, a fake clock."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from licsync.graph.client import GraphClient
from licsync.graph.retry import RetryPolicy
from licsync.graph.settings import GraphSettings
from tests.graph.fakes import LOOPBACK, FakeClock


@pytest.fixture(scope="session")
def samples(shared_data: Path) -> Callable[[str], Any]:
    def load(name: str) -> Any:
        return json.loads((shared_data / "graph-samples" / name).read_text(encoding="utf-8"))

    return load


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def policy(clock: FakeClock) -> RetryPolicy:
    """Retries with the fake clock's sleep and a fixed jitter (no real waiting)."""
    return RetryPolicy(max_attempts=5, max_total_wait=60.0, sleep=clock.sleep, jitter=lambda: 0.0)


Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def make_client(policy: RetryPolicy) -> Callable[..., GraphClient]:
    """A GraphClient for `url` (loopback by default) with auth none whose transport is
    `handler`; other urls skip the loopback check, for samples that link to Graph itself."""

    def make(handler: Handler, url: str = LOOPBACK, **kwargs: Any) -> GraphClient:
        settings = GraphSettings.model_validate({"url": url, "auth": "none"})
        return GraphClient.from_settings(
            settings, transport=httpx.MockTransport(handler), policy=kwargs.pop("policy", policy)
        )

    return make
