"""Client-side write budget: a token bucket that keeps the tenant under Graph's write quota.

Consulted before each `$batch` is sent (one token per write). On a 429 the rate halves and the
bucket is closed until Retry-After has passed; each successful write then recovers the rate a
little (additive increase, multiplicative decrease). `clock` and `sleep` are injectable.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog

from licsync.graph.settings import DEFAULT_WRITE_RATE

log = structlog.get_logger("licsync.graph")


class WriteBudget:
    """A token bucket of writes; `await acquire(n)` before sending `n` writes."""

    def __init__(
        self,
        rate: float = DEFAULT_WRITE_RATE,
        *,
        burst: float | None = None,
        min_rate: float = 1.0,
        recovery_per_write: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.target_rate = rate
        self.rate = rate
        self.burst = burst if burst is not None else max(rate, 1.0)
        self.min_rate = min(min_rate, rate)
        self.recovery_per_write = recovery_per_write
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._updated = clock()
        self._closed_until = 0.0
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    async def acquire(self, n: int = 1) -> None:
        """Wait until `n` writes may be sent (FIFO among callers)."""
        if n > self.burst:
            raise ValueError(f"cannot take {n} writes at once from a bucket of {self.burst:g}")
        async with self._lock:
            while True:  # re-checks after each sleep: a 429 may close the bucket meanwhile
                now = self._clock()
                if now < self._closed_until:
                    await self._sleep(self._closed_until - now)
                    continue
                self._refill()
                if self._tokens >= n:
                    self._tokens -= n
                    return
                await self._sleep((n - self._tokens) / self.rate)

    def throttled(self, retry_after: float | None) -> None:
        """Graph answered 429: halve the rate and send nothing before Retry-After."""
        self._refill()
        self.rate = max(self.min_rate, self.rate / 2)
        self._tokens = min(self._tokens, 0.0)
        if retry_after:
            self._closed_until = max(self._closed_until, self._clock() + retry_after)
        log.warning("graph.budget.slowdown", rate=round(self.rate, 2), retry_after=retry_after)

    def succeeded(self, n: int = 1) -> None:
        """`n` writes went through: recover the rate gradually towards the target."""
        if self.rate < self.target_rate:
            self._refill()
            self.rate = min(self.target_rate, self.rate + n * self.recovery_per_write)
