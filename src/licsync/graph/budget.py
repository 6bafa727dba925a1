"""Client-side write budget: a token bucket that keeps the tenant under Graph's write quota.

Consulted before each `$batch` is sent (one token per write). On a 429 the rate halves and the
bucket is closed until Retry-After has passed; each successful write then recovers the rate a
little (additive increase, multiplicative decrease): a halved rate is back at the target after
`RECOVERY_WRITES / 2` successful writes, whatever the target. Only a 429 slows the writes: a
5xx or a dropped connection is retried by its item alone and leaves the rate as it is. The rate
halves once per throttling episode: the other 429s of that episode (the rest of the envelope,
the envelopes already in flight) answer writes sent before the slowdown and only extend the
closure. `clock` and `sleep` are injectable.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

import structlog

from licsync.graph.batch import MAX_BATCH_SIZE
from licsync.graph.settings import DEFAULT_WRITE_RATE

WRITE_WINDOW = 150.0  # Graph counts writes per app and tenant over 150 s
RECOVERY_WRITES = 200  # successful writes that add back the whole target rate

ENVELOPE_SECONDS = 2.0  # the slowest `$batch` answer the write quota must still be filled at

MIN_ENVELOPES = 4

log = structlog.get_logger("licsync.graph")


def default_burst(rate: float, window: float = WRITE_WINDOW) -> float:
    """One full `$batch`, but at most half of what `window` may hold (at least one write)."""
    return max(1.0, min(float(MAX_BATCH_SIZE), rate * window / 2))


def envelopes_to_fill(rate: float, seconds: float = ENVELOPE_SECONDS) -> int:
    """`$batch` envelopes in flight that keep `rate` writes/s going when each envelope takes
    `seconds` to answer (Little's law, plus one being prepared); at least `MIN_ENVELOPES`, at
    most 64. More senders never send faster than the budget: they only wait on it."""
    return max(MIN_ENVELOPES, min(64, math.ceil(rate * seconds / MAX_BATCH_SIZE) + 1))


class WriteBudget:
    """A token bucket of writes; `await acquire(n)` before sending `n` writes.

    `rate` is the quota's average (3,000 per 150 s: 20/s). The bucket holds one full `$batch`
    (`burst`, 20 writes; at most half a window's quota, so below 0.27 writes/s envelopes are
    smaller) and refills at `rate - (burst + late) / window`, so that no `window` ever holds
    more than `rate * window` writes, however the sends are spread. `late` (a quarter of the
    burst): a caller that waited for writes keeps what its wake-up came late by, up to that
    much beyond the burst, instead of losing it to the cap (at 200 writes/s a wake-up 5 ms
    late would otherwise cost 5 % of the rate).
    """

    def __init__(
        self,
        rate: float = DEFAULT_WRITE_RATE,
        *,
        burst: float | None = None,
        min_rate: float = 1.0,
        recovery_per_write: float | None = None,
        episode: float = 1.0,
        window: float = WRITE_WINDOW,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.target_rate = rate
        self.rate = rate
        self.burst = float(burst if burst is not None else default_burst(rate, window))
        self.late = self.burst / 4
        self.headroom = (self.burst + self.late) / window
        self.min_rate = min(min_rate, rate)
        self.recovery_per_write = (
            rate / RECOVERY_WRITES if recovery_per_write is None else recovery_per_write
        )
        self.episode = episode
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._updated = clock()
        self._closed_until = 0.0
        self._episode_until = float("-inf")
        self._lock = asyncio.Lock()

    @property
    def fill_rate(self) -> float:
        """Writes per second the bucket refills at: the rate minus the burst's share."""
        return max(self.rate - self.headroom, self.rate / 2)

    def _refill(self, ceiling: float | None = None) -> None:
        now = self._clock()
        top = self.burst if ceiling is None else ceiling
        self._tokens = min(top, self._tokens + (now - self._updated) * self.fill_rate)
        self._updated = now

    async def acquire(self, n: int = 1) -> None:
        """Wait until `n` writes may be sent (FIFO among callers)."""
        if n > self.burst:
            raise ValueError(f"cannot take {n} writes at once from a bucket of {self.burst:g}")
        async with self._lock:
            waited = False
            while True:  # re-checks after each sleep: a 429 may close the bucket meanwhile
                now = self._clock()
                if now < self._closed_until:
                    await self._sleep(self._closed_until - now)
                    continue
                self._refill(self.burst + self.late if waited else None)
                if self._tokens >= n - 1e-9:  # float rounding must not spin
                    self._tokens -= n
                    return
                await self._sleep((n - self._tokens) / self.fill_rate)
                waited = True

    async def wait_open(self) -> None:
        """Wait until no 429's Retry-After closes the bucket any more."""
        while (wait := self._closed_until - self._clock()) > 0:
            await self._sleep(wait)

    def throttled(self, retry_after: float | None) -> None:
        """Graph answered 429: send nothing before Retry-After; halve the rate unless this 429
        belongs to the episode (`episode` seconds, or the Retry-After) of the last slowdown."""
        self._refill()
        now = self._clock()
        self._tokens = min(self._tokens, 0.0)
        if retry_after:
            self._closed_until = max(self._closed_until, now + retry_after)
        if now < self._episode_until:
            return
        self._episode_until = now + max(self.episode, retry_after or 0.0)
        self.rate = max(self.min_rate, self.rate / 2)
        log.warning("graph.budget.slowdown", rate=round(self.rate, 2), retry_after=retry_after)

    def succeeded(self, n: int = 1) -> None:
        """`n` writes went through: recover the rate gradually towards the target."""
        if self.rate < self.target_rate:
            self._refill()
            self.rate = min(self.target_rate, self.rate + n * self.recovery_per_write)
