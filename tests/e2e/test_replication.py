"""Entra's replication lag against the emulator over real HTTP (docs/graph.md, "Real Graph"):
reads of a user lag behind writes to it, and an assignLicense right after the usageLocation
PATCH is refused. licsync converges in one run and records no false failure."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from licsync.emulator.server import Emulator
from tests.builders import catalogue_sku_id as sku_id
from tests.builders import group_id, small_snapshot, user_id
from tests.syncing import direct_licences, make_config, sync

LAG = 1.5
RULES = [{"group": "Group 1", "licenses": [{"sku": "SPE_E3"}]}]
ASSIGN = "POST /users/{id}/assignLicense"


def test_a_licence_refused_while_the_new_usage_location_replicates_is_sent_again(
    emulator_factory: Any, tmp_path: Path
) -> None:
    snapshot = small_snapshot(users=3, members={1: [1, 2]})
    snapshot["users"][0]["usageLocation"] = None  # licsync sets it (policy: tenant's country)
    graph = emulator_factory(snapshot, replication_lag=LAG)
    config = make_config(tmp_path, graph, RULES, usage_location="tenant")

    started = time.monotonic()
    result = sync(config)

    assert result.failed_users == () and result.problems == ()
    assert sku_id("SPE_E3") in direct_licences(graph)[user_id(1)]
    assert graph.tenant.users[user_id(1)].usage_location == "US"
    assert graph.stats.count(ASSIGN, 400) >= 1  # the lag was met: refused at least once
    assert LAG <= time.monotonic() - started < LAG + 10


@pytest.mark.parametrize("small", [{"members": {1: [1, 2]}}], indirect=True)
def test_a_read_back_after_a_lost_answer_waits_for_the_replicas(
    small: Emulator, tmp_path: Path
) -> None:
    """The $batch removing user 2's licence is applied but its answer lost; the retry is
    refused (no such licence any more) and the read-back first sees the old version."""
    config = make_config(tmp_path, small, RULES)
    sync(config)
    member = f"{small.url}/groups/{group_id(1)}/members/{user_id(2)}/$ref"
    httpx.delete(member).raise_for_status()
    small.tenant.replication_lag = 2.0
    real, lost = small.app._batch, []

    def lose_first_answer(body: Any, base: str) -> Any:
        reply = real(body, base)
        if not lost:
            lost.append(reply)
            return None  # applied, then the connection drops
        return reply

    small.app._batch = lose_first_answer  # type: ignore[method-assign]
    result = sync(config)

    assert lost and lost[0].body["responses"][0]["status"] == 200
    assert small.stats.count(ASSIGN, 400) == 1  # the retry, refused: nothing left to remove
    assert result.failed_users == () and result.problems == ()
    assert result.succeeded_users == (user_id(2),)
    assert sku_id("SPE_E3") not in direct_licences(small)[user_id(2)]
