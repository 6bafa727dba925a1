"""`licsync sync` under injected faults: 20 % of requests (reads, `$batch` envelopes and their
items) fail with a 429 carrying Retry-After, a 5xx or a dropped connection.

What a good connector must guarantee, and what is asserted: with retries sized for the fault rate,
one run reaches exactly the state that the same run reaches on a fault-free twin of the tenant
(same writes, same refusals by Graph), no licence a user held is lost unless the plan removed it,
no throttled request is retried before its Retry-After, and the next run has nothing to do but
the users Graph refuses for good.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog

from licsync.config import Config
from licsync.connector.sync import SyncResult, run_sync
from licsync.emulator.generate import generate_rules
from licsync.emulator.server import Emulator
from licsync.emulator.throttle import FaultConfig, ThrottleConfig
from licsync.graph import Action, GraphClient, RetryPolicy, WriteBudget, load_graph_settings
from tests.syncing import direct_licences, make_config

USERS, GROUPS, SEED, RULES = 3000, 200, 31, 5
FAULTS = FaultConfig(rate=0.2, seed=7, retry_after=0.2)
# Writes are limited to 4,000 per 15 emulated seconds (1.5 real s): the write budget below
# must keep the client under it, so a throttle block would only come from a misbehaving client.
THROTTLE = ThrottleConfig(enabled=True, write_limit=4000, write_window=15.0, time_scale=10.0)
# Short back-off (a Retry-After is still honoured exactly) and enough attempts that a request
# failing 20 % of the time, inside an envelope failing 20 % of the time, succeeds in one run.
POLICY = RetryPolicy(max_attempts=12, max_total_wait=120.0, base_delay=0.05, max_delay=0.4)
TRANSIENT = {Action.RETRY, Action.THROTTLED, Action.AUTH, Action.SKIPPED}


def held(graph: Emulator) -> set[tuple[str, str]]:
    """(user, sku) for every licence a user holds, from any source."""
    with graph.tenant.lock:
        return {(uid, sku) for uid, user in graph.tenant.users.items() for sku in user.held()}


def run(config: Config) -> SyncResult:
    """One sync through a client with `POLICY` and a budget under the emulator's write quota.

    The budget halves its rate once per throttling episode; injected 429s come at random, not
    from load, so `min_rate` stops it from creeping down to Graph's real 20 writes/s here.
    """
    raw = {**config.settings.graph, "max_batches_in_flight": 8}
    settings = load_graph_settings(raw, path=str(config.path))

    async def go() -> SyncResult:
        async with GraphClient.from_settings(settings, policy=POLICY) as client:
            budget = WriteBudget(2000, min_rate=200)
            return await run_sync(config, client=client, budget=budget, progress=False)

    return asyncio.run(go())


def start(factory: Any, **kwargs: Any) -> Emulator:
    graph = factory(users=USERS, groups=GROUPS, seed=SEED, throttle=THROTTLE, **kwargs)
    with graph.tenant.lock:  # the generator leaves most SKUs nearly full: buy seats
        for sku in graph.tenant.skus.values():
            sku.enabled += USERS
    return graph


def small_rules(graph: Emulator) -> list[dict[str, Any]]:
    """The `RULES` generated rules on the largest groups below 400 members (about 500 users)."""
    with graph.tenant.lock:
        size = {gid: len(g.members) for gid, g in graph.tenant.groups.items()}
    rules = generate_rules(graph.snapshot(), 40, SEED)
    return sorted((r for r in rules if size[r["group"]] <= 400), key=lambda r: -size[r["group"]])[
        :RULES
    ]


def leave_rule_groups(graph: Emulator, rules: list[dict[str, Any]], share: int) -> None:
    """Every `share`-th user member of each rule group leaves it (so the next run removes)."""
    for rule in rules:
        with graph.tenant.lock:
            members = sorted(graph.tenant.groups[rule["group"]].members.items())
        for member_id, kind in members[::share]:
            if kind == "user":
                graph.tenant.remove_member(rule["group"], member_id)


@pytest.mark.slow
def test_sync_converges_under_faults_like_a_fault_free_twin(
    emulator_factory: Any, tmp_path: Path
) -> None:
    faulty = start(emulator_factory, faults=FAULTS)
    twin = start(emulator_factory)
    rules = small_rules(faulty)
    assert rules == small_rules(twin)
    for name in ("faulty", "twin"):
        (tmp_path / name).mkdir()
    config = make_config(tmp_path / "faulty", faulty, rules)
    twin_config = make_config(tmp_path / "twin", twin, rules)

    for round_ in ("first", "after leaves"):
        before = held(faulty)
        result, reference = run(config), run(twin_config)
        assert result.plan.changes == reference.plan.changes
        assert len(result.outcomes) > (400 if round_ == "first" else 50), round_
        # converged in this one run: the same state as without faults, same users refused
        assert direct_licences(faulty) == direct_licences(twin), round_
        assert held(faulty) == held(twin), round_
        assert set(result.failed_users) == set(reference.failed_users), round_
        assert not [o for o in result.outcomes if o.action in TRANSIENT], round_
        # nothing lost: every licence held before is still held unless the plan removed it
        removed = {(c.user_id, sku) for c in result.plan.changes for sku in c.remove_licenses}
        assert before - removed <= held(faulty), round_
        if round_ == "first":
            leave_rule_groups(faulty, rules, 7)
            leave_rule_groups(twin, rules, 7)
            assert not removed
        else:
            assert len(removed) > 50

    again = run(config)  # nothing left to do but the users Graph refuses for good
    assert {c.user_id for c in again.plan.changes} == set(reference.failed_users)
    assert all(o.action is Action.PROBLEM for o in again.outcomes)
    assert direct_licences(faulty) == direct_licences(twin)

    stats = faulty.stats
    assert stats.early_retries == 0
    assert stats.count("POST /$batch", 0) > 0  # envelopes dropped
    assert stats.count("POST /$batch", 429) + stats.count("POST /$batch", 503) > 0
    for status in (429, 500, 503, 504):  # assignLicense items
        assert stats.count("POST /users/{id}/assignLicense", status) > 0, status
    for route in ("GET /users", "GET /groups/{id}/members"):  # paged reads
        failed = stats.count(route) - stats.count(route, 200)
        assert failed > 0 and stats.count(route, 0) + stats.count(route, 429) > 0, route
    assert twin.stats.faults == 0 and twin.stats.early_retries == 0


def test_the_emulator_counts_a_retry_before_an_injected_retry_after(emulator_factory: Any) -> None:
    """The early-retry counter is not blind to injected 429s (so `== 0` above can fail)."""
    graph = emulator_factory(users=50, groups=2, faults=FaultConfig(rate=1.0, kinds=(429,)))
    with httpx.Client() as http:
        first = http.get(f"{graph.url}/organization")
        again = http.get(f"{graph.url}/organization")
        other = http.get(f"{graph.url}/subscribedSkus")
    assert first.status_code == again.status_code == other.status_code == 429
    assert graph.stats.early_retries == 1  # another request is not a retry


@pytest.fixture(autouse=True)
def _quiet_structlog() -> Iterator[None]:
    """Sync logs every write and retry: thousands of lines under faults (restored after)."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    yield
    structlog.configure(**saved)
