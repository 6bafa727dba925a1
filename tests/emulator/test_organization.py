"""GET /organization serves the tenant id: generated, kept from a snapshot, or derived."""

from __future__ import annotations

import httpx

from tests.builders import ORG_ID, small_snapshot


def _org(url: str) -> dict:
    return httpx.get(f"{url}/organization").raise_for_status().json()["value"][0]


def test_generated_and_snapshot_tenants_serve_their_id(emulator_factory):
    generated = emulator_factory(users=5, groups=2, seed=7)
    again = emulator_factory(users=5, groups=2, seed=7)
    assert _org(generated.url)["id"] == _org(again.url)["id"]  # the same seed, the same tenant
    assert _org(emulator_factory(small_snapshot()).url)["id"] == ORG_ID


def test_a_snapshot_without_an_id_gets_a_stable_one_that_its_save_keeps(emulator_factory, tmp_path):
    snapshot = small_snapshot()
    snapshot["organization"].pop("id")
    first = emulator_factory(snapshot)
    derived = _org(first.url)["id"]
    assert len(derived) == 36 and derived != ORG_ID
    assert _org(emulator_factory(small_snapshot() | {"organization": {}}).url)["id"] == derived
    first.save(tmp_path / "saved.json")
    assert _org(emulator_factory(tmp_path / "saved.json").url)["id"] == derived
