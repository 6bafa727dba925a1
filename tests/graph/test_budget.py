"""The write budget keeps the rate, slows down on 429 and recovers gradually."""

from __future__ import annotations

import asyncio

import pytest

from licsync.graph.budget import WriteBudget
from tests.graph.fakes import FakeClock


def budget(clock: FakeClock, rate: float = 20.0, **kwargs: float) -> WriteBudget:
    return WriteBudget(rate, clock=clock, sleep=clock.sleep, **kwargs)


def test_keeps_the_rate(clock: FakeClock) -> None:
    bucket = budget(clock)

    async def run() -> list[float]:
        times = []
        for _ in range(50):
            await bucket.acquire(20)
            times.append(clock.now)
        return times

    times = asyncio.run(run())
    assert times[0] == 0.0  # the first second's burst goes at once
    assert times[-1] == pytest.approx(49.0)  # 1,000 writes at 20/s after a 20-write burst
    for start in range(len(times)):
        for end in range(start + 1, len(times)):
            # any window holds at most rate * duration + one burst of writes
            assert (end - start + 1) * 20 <= 20 * (times[end] - times[start]) + 20 + 1e-9


def test_concurrent_callers_share_the_rate(clock: FakeClock) -> None:
    bucket = budget(clock, rate=10.0)

    async def run() -> None:
        await asyncio.gather(*(bucket.acquire(5) for _ in range(20)))

    asyncio.run(run())
    assert clock.now == pytest.approx((100 - 10) / 10)


def test_429_closes_the_bucket_for_retry_after_and_halves_the_rate(clock: FakeClock) -> None:
    bucket = budget(clock)

    async def run() -> None:
        await bucket.acquire(20)
        bucket.throttled(7.5)
        await bucket.acquire(1)

    asyncio.run(run())
    assert bucket.rate == 10.0
    assert clock.now >= 7.5


def test_recovers_gradually(clock: FakeClock) -> None:
    bucket = budget(clock, recovery_per_write=0.1)
    bucket.throttled(None)
    bucket.throttled(None)
    assert bucket.rate == 5.0
    bucket.succeeded(50)
    assert bucket.rate == pytest.approx(10.0)
    bucket.succeeded(1000)
    assert bucket.rate == 20.0  # never above the configured rate


def test_rate_never_below_minimum(clock: FakeClock) -> None:
    bucket = budget(clock, min_rate=2.0)
    for _ in range(10):
        bucket.throttled(None)
    assert bucket.rate == 2.0


def test_refuses_more_than_a_burst(clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="cannot take 21"):
        asyncio.run(budget(clock).acquire(21))
