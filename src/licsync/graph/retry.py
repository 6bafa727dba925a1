"""The only place licsync retries: a tenacity policy with explicit stop, wait and reraise.

- retried: `GraphTransientError`, `GraphThrottledError`, and `GraphAuthError` once;
- wait: `Retry-After` exactly when Graph sent one (never jittered below it), otherwise
  jittered exponential back-off;
- stop: after `max_attempts` attempts, or when the next wait would take the total past
  `max_total_wait` (the caller then gets the last error and keeps its progress);
- `reraise=True`: callers see the Graph error itself, never `tenacity.RetryError`;
- `until_replicated`: waiting out Entra's replication (eventual consistency) for a check that
  reads what a write should have changed, backing off up to `replication_wait` seconds;
- a structlog line before each sleep; `sleep` and `jitter` are injectable for tests.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import structlog
from tenacity import AsyncRetrying, RetryCallState

from licsync.graph.errors import (
    GraphAuthError,
    GraphError,
    GraphThrottledError,
    GraphTransientError,
)

T = TypeVar("T")
log = structlog.get_logger("licsync.graph")

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry one Graph request (or one `$batch` item)."""

    max_attempts: int = 6
    max_total_wait: float = 900.0
    base_delay: float = 1.0
    max_delay: float = 60.0
    max_auth_retries: int = 1
    replication_wait: float = 30.0
    sleep: Sleep = field(default=asyncio.sleep, repr=False)
    jitter: Callable[[], float] = field(default=random.random, repr=False)

    def wait_for(self, retry_state: RetryCallState) -> float:
        """Seconds to wait before the next attempt."""
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, GraphError) and exc.retry_after is not None:
            return float(exc.retry_after)
        backoff = min(self.max_delay, self.base_delay * 2.0 ** (retry_state.attempt_number - 1))
        return float(backoff * (0.5 + 0.5 * self.jitter()))  # "equal jitter": never below half

    def _should_retry(self, exc: BaseException | None, state: RetryCallState) -> bool:
        if isinstance(exc, GraphThrottledError | GraphTransientError):
            return True
        if isinstance(exc, GraphAuthError):
            auth_failures = int(state.retry_object.statistics.get("licsync_auth_failures", 0)) + 1
            state.retry_object.statistics["licsync_auth_failures"] = auth_failures
            return auth_failures <= self.max_auth_retries
        return False

    def _stop(self, state: RetryCallState) -> bool:
        if state.attempt_number >= self.max_attempts:
            return True
        return state.idle_for + state.upcoming_sleep > self.max_total_wait

    def retrying(self, *, what: str = "graph request") -> AsyncRetrying:
        """A fresh tenacity controller for one logical request."""

        def retry(state: RetryCallState) -> bool:
            outcome = state.outcome
            if outcome is None or not outcome.failed:
                return False
            return self._should_retry(outcome.exception(), state)

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            verdict = getattr(exc, "verdict", None)
            log.warning(
                "graph.retry",
                request=what,
                attempt=state.attempt_number,
                wait_seconds=round(state.upcoming_sleep, 3),
                action=str(verdict.action) if verdict else type(exc).__name__,
                status=verdict.status if verdict else None,
                request_id=verdict.request_id if verdict else None,
            )

        return AsyncRetrying(
            sleep=self.sleep,
            stop=self._stop,
            wait=self.wait_for,
            retry=retry,
            reraise=True,
            before_sleep=before_sleep,
        )

    async def call(
        self,
        attempt: Callable[[], Awaitable[T]],
        *,
        what: str = "graph request",
    ) -> T:
        """Run `attempt()` until it succeeds or the policy gives up (then its error is raised)."""
        async for trial in self.retrying(what=what):
            with trial:
                return await attempt()
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    async def until_replicated(
        self, check: Callable[[], Awaitable[bool]], *, what: str, wait_first: bool = False
    ) -> bool:
        """Run `check()` until it returns True, backing off (0.5 s, doubling, at most
        `max_delay`) for at most `replication_wait` seconds in all: Entra replicates writes
        asynchronously, so a read (or a write depending on one) right after a write may see the
        previous version. False when the time is up; `wait_first`: wait before the first
        check. Graph errors of `check` propagate."""
        waited, delay = 0.0, 0.5
        while True:
            if not wait_first and await check():
                return True
            wait_first = False
            if waited >= self.replication_wait:
                return False
            pause = min(delay, self.max_delay, self.replication_wait - waited)
            log.info("graph.replication_wait", request=what, wait_seconds=round(pause, 3))
            await self.sleep(pause)
            waited += pause
            delay *= 2


__all__ = ["RetryPolicy"]
