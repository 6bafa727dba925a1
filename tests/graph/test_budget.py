"""The write budget keeps the rate, slows down on 429 and recovers gradually."""

from __future__ import annotations

import asyncio

import pytest

from licsync.graph.budget import WriteBudget
from tests.graph.fakes import FakeClock


def budget(clock: FakeClock, rate: float = 20.0, **kwargs: float) -> WriteBudget:
    return WriteBudget(rate, clock=clock, sleep=clock.sleep, **kwargs)


def envelope_times(clock: FakeClock, envelopes: int) -> list[float]:
    """When each of `envelopes` full $batch (20 writes) may leave, at the default rate."""
    bucket = budget(clock)

    async def run() -> list[float]:
        times = []
        for _ in range(envelopes):
            await bucket.acquire(20)
            times.append(clock.now)
        return times

    return asyncio.run(run())


def test_keeps_the_rate(clock: FakeClock) -> None:
    times = envelope_times(clock, 50)
    assert times[0] == 0.0  # one full $batch goes at once
    # then 980 writes at 20/s less the share of Graph's 150 s window the bucket may hold
    assert times[-1] == pytest.approx(980 / (20 - 25 / 150))  # burst and lateness allowance
    for start in range(len(times)):
        for end in range(start + 1, len(times)):
            # any window holds at most rate * duration + one burst of writes
            assert (end - start + 1) * 20 <= 20 * (times[end] - times[start]) + 20 + 1e-9


def test_no_150_second_window_holds_more_than_the_quota(clock: FakeClock) -> None:
    """3,000 writes per 150 s: a burst on top of the average rate would be throttled."""
    times = envelope_times(clock, 400)
    for start, first in enumerate(times):
        inside = [t for t in times[start:] if t < first + 150]
        assert 20 * len(inside) <= 3000
    assert 20 * len([t for t in times if t < 150]) >= 2980  # and no more than a burst below it


def test_concurrent_callers_share_the_rate(clock: FakeClock) -> None:
    bucket = budget(clock, rate=10.0)

    async def run() -> None:
        await asyncio.gather(*(bucket.acquire(5) for _ in range(20)))

    asyncio.run(run())
    assert clock.now == pytest.approx((100 - 20) / (10 - 25 / 150))


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
    clock.now += 1.0
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
        clock.now += 1.0
    assert bucket.rate == 2.0


def test_one_slowdown_per_throttling_episode(clock: FakeClock) -> None:
    """A throttled envelope answers 20 items with 429: that is one slowdown, not twenty."""
    bucket = budget(clock, episode=1.0)
    for _ in range(20):
        bucket.throttled(2.5)
    assert bucket.rate == 10.0
    clock.now += 2.0  # still inside the episode: its Retry-After (2.5 s) outlasts `episode`
    bucket.throttled(0.1)
    assert bucket.rate == 10.0

    async def run() -> None:
        await bucket.acquire(1)

    asyncio.run(run())
    assert clock.now >= 2.5  # closed until the first Retry-After
    bucket.throttled(None)  # a new episode
    assert bucket.rate == 5.0


def test_refuses_more_than_a_burst(clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="cannot take 21"):
        asyncio.run(budget(clock).acquire(21))


@pytest.mark.parametrize(("rate", "burst"), [(20.0, 20.0), (1.0, 20.0), (0.1, 7.5), (0.02, 1.5)])
def test_burst_is_one_batch_or_half_a_window(clock: FakeClock, rate: float, burst: float) -> None:
    bucket = budget(clock, rate=rate)
    assert bucket.burst == pytest.approx(burst)
    assert bucket.burst + bucket.fill_rate * 150 <= rate * 150 + 1e-9


def test_a_late_wake_up_is_not_lost_but_never_beyond_the_window(clock: FakeClock) -> None:
    """A caller that waited for writes and woke up late keeps the lateness (up to a quarter of
    the burst) instead of losing it to the cap; the headroom keeps every window under the
    quota."""
    bucket = WriteBudget(20.0, clock=clock, sleep=clock.sleep)

    async def late_sleep(seconds: float) -> None:
        await clock.sleep(seconds + 0.1)  # every wake-up 0.1 s late: 2 writes' worth

    bucket._sleep = late_sleep

    async def run() -> list[float]:
        times = []
        for _ in range(200):
            await bucket.acquire(20)
            times.append(clock.now)
        return times

    times = asyncio.run(run())
    assert 20 * 199 / (times[-1] - times[0]) == pytest.approx(bucket.fill_rate, rel=0.02)
    for start, first in enumerate(times):
        assert 20 * len([t for t in times[start:] if t < first + 150]) <= 3000
