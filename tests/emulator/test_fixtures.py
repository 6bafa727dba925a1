"""The shared fixtures other test levels use to get a running emulator."""

from __future__ import annotations

import httpx

from tests.builders import tiny_snapshot


def test_emulator_fixture(emulator):
    assert emulator.url.startswith("http://127.0.0.1:") and emulator.url.endswith("/v1.0")
    response = httpx.get(f"{emulator.url}/users?$top=999")
    assert len(response.json()["value"]) == len(emulator.tenant.users) == 200
    assert emulator.stats.count("GET /users", 200) == 1


def test_emulator_factory(emulator_factory):
    graph = emulator_factory(tiny_snapshot())
    assert len(graph.tenant.users) == 6
