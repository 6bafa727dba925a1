"""Test doubles for the Graph client tests."""

from __future__ import annotations

LOOPBACK = "http://127.0.0.1:8765/v1.0"


class FakeClock:
    """A monotonic clock that only moves when `sleep` is awaited; records every sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
