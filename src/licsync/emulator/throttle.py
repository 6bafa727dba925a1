"""Graph's identity-and-access throttling (rulebook section 5), fault injection and counters.

A token bucket of resource units per app and tenant (refilled over `window` seconds) and a sliding
window of writes (3,000 per 150 s). `time_scale` > 1 makes emulated time run faster so tests see
the same behaviour in a fraction of the wall time; Retry-After is reported in real seconds.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ThrottleConfig:
    """Limits. `resource_units=None`: Graph's figure for the tenant size (3,500/5,000/8,000)."""

    enabled: bool = False
    resource_units: int | None = None
    window: float = 10.0
    write_limit: int = 3000
    write_window: float = 150.0
    time_scale: float = 1.0


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """Random failures: a `rate` of requests fail with one of `kinds` ("drop" hangs up); an
    injected 429 asks for `retry_after` seconds."""

    rate: float = 0.0
    kinds: tuple[int | str, ...] = (429, 500, 503, 504, "drop")
    latency: float = 0.0
    seed: int = 0
    retry_after: float = 1.0


def tenant_resource_units(users: int) -> int:
    """Graph's resource units per 10 s for a tenant of this size."""
    if users < 50:
        return 3500
    if users <= 500:
        return 5000
    return 8000


_COSTS = (
    (re.compile(r"^/groups/[^/]+/transitiveMembers"), 5),
    (re.compile(r"^/groups/[^/]+/members"), 3),
    (re.compile(r"^/subscribedSkus"), 3),
    (re.compile(r"^/users"), 2),
)


def request_cost(method: str, path: str, query: dict[str, str]) -> int:
    """Resource units of one request (Graph's published base costs and modifiers)."""
    if method != "GET":
        return 1
    cost = next((c for pattern, c in _COSTS if pattern.match(path)), 1)
    if "$select" in query:
        cost -= 1
    if "$expand" in query:
        cost += 1
    top = query.get("$top", "")
    if top.isdigit() and int(top) < 20:
        cost -= 1
    return max(cost, 1)


@dataclass(slots=True)
class Verdict:
    """A throttling decision: `retry_after` is None when the request may proceed."""

    cost: int
    retry_after: float | None = None
    information: str = ""
    early: bool = False


class Throttle:
    """Token bucket plus write window. Thread-safe."""

    def __init__(
        self, config: ThrottleConfig, users: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config
        self.capacity = float(config.resource_units or tenant_resource_units(users))
        self.tokens = self.capacity
        self.clock = clock
        self.updated = clock()
        self.writes: deque[float] = deque()
        self.blocked_until = 0.0
        self.writes_blocked_until = 0.0
        self.lock = threading.Lock()

    def _refill(self, now: float) -> None:
        scale = self.config.time_scale
        rate = self.capacity / (self.config.window / scale)
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * rate)
        self.updated = now

    def check(self, cost: int, write: bool) -> Verdict:
        """Admit or throttle one request; requests inside a throttle window are early retries."""
        if not self.config.enabled:
            return Verdict(cost)
        with self.lock:
            now = self.clock()
            self._refill(now)
            blocked = max(self.blocked_until, self.writes_blocked_until if write else 0.0)
            rate = self.capacity / (self.config.window / self.config.time_scale)
            if now < blocked:
                # An early retry still costs: the bucket sinks and the wait grows.
                info = "WriteLimitExceeded" if blocked == self.writes_blocked_until else ""
                self.tokens = max(-self.capacity, self.tokens - cost)
                if not info:
                    self.blocked_until = max(blocked, now + (cost - self.tokens) / rate)
                    blocked = self.blocked_until
                return Verdict(cost, blocked - now, info or "ResourceUnitLimitExceeded", True)
            if self.tokens < cost:
                wait = (cost - self.tokens) / rate
                self.blocked_until = now + wait
                return Verdict(cost, wait, "ResourceUnitLimitExceeded")
            if write:
                span = self.config.write_window / self.config.time_scale
                while self.writes and self.writes[0] <= now - span:
                    self.writes.popleft()
                if len(self.writes) >= self.config.write_limit:
                    wait = self.writes[0] + span - now
                    self.writes_blocked_until = now + wait
                    return Verdict(cost, wait, "WriteLimitExceeded")
                self.writes.append(now)
            self.tokens -= cost
            return Verdict(cost)


class Faults:
    """Seeded random faults: the same seed and request order give the same failures."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.lock = threading.Lock()

    def draw(self, allow_drop: bool = True) -> int | str | None:
        if self.config.rate <= 0:
            return None
        with self.lock:
            if self.rng.random() >= self.config.rate:
                return None
            kinds = [k for k in self.config.kinds if allow_drop or k != "drop"]
            return self.rng.choice(kinds) if kinds else None


_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def route_name(method: str, path: str) -> str:
    """`GET /users/{id}` style name of a request, for the counters."""
    return f"{method} {_GUID.sub('{id}', path)}"


@dataclass
class Stats:
    """Counters readable in-process (`Emulator.stats`) and at GET /_emulator/stats."""

    requests: Counter[tuple[str, int]] = field(default_factory=Counter)
    early_retries: int = 0
    throttled: int = 0
    writes: int = 0
    faults: int = 0
    dropped: int = 0
    http2: int = 0  # requests that arrived over HTTP/2
    applied: list[tuple[str, str]] = field(
        default_factory=list
    )  # (route, request id) of 2xx writes
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, route: str, status: int) -> None:
        with self.lock:
            self.requests[(route, status)] += 1

    def applied_write(self, route: str, request_id: str) -> None:
        with self.lock:
            self.applied.append((route, request_id))

    def count(self, route_prefix: str = "", status: int | None = None) -> int:
        """Requests whose route starts with `route_prefix` (and with that status, if given)."""
        with self.lock:
            return sum(
                n
                for (route, code), n in self.requests.items()
                if route.startswith(route_prefix) and (status is None or code == status)
            )

    def add(self, name: str, n: int = 1) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + n)

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.early_retries = self.throttled = self.writes = self.faults = self.dropped = 0
            self.http2 = 0
            self.applied.clear()

    def to_json(self) -> dict[str, Any]:
        with self.lock:
            by_route: dict[str, dict[str, int]] = {}
            for (route, status), n in sorted(self.requests.items()):
                by_route.setdefault(route, {})[str(status)] = n
            return {
                "requests": by_route,
                "total": sum(self.requests.values()),
                "early_retries": self.early_retries,
                "throttled": self.throttled,
                "writes": self.writes,
                "faults": self.faults,
                "dropped": self.dropped,
                "http2": self.http2,
            }


def format_retry_after(seconds: float) -> str:
    """Retry-After as Graph sends it: whole or fractional seconds ("10", "2.128")."""
    text = f"{max(seconds, 0.001):.3f}".rstrip("0").rstrip(".")
    return text or "0.001"
