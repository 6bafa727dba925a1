"""Write throughput under injected faults: does a transient fault slow the writes down?

    .venv/bin/python benchmarks/write_faults.py [--writes 3050] [--quota 100] [--fault-rate 0.1]

`--writes` assignLicense writes through `send_licence_writes` ($batch of 20, write budget at
`--quota` writes/s) against the in-process emulator enforcing that quota, three times: no
faults, `--fault-rate` of 5xx and dropped connections, and the same rate with 429s among the
faults. Prints seconds, writes/s and the lowest rate the write budget fell to: 5xx and drops
are retried without cutting the rate; only a 429 cuts it, and it recovers.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time

import structlog

from licsync.connector.licence_writes import AssignLicense, send_licence_writes
from licsync.emulator.server import Emulator
from licsync.emulator.throttle import FaultConfig, ThrottleConfig
from licsync.graph import GraphClient, WriteBudget, load_graph_settings
from licsync.model import Assignment

WRITE_SKU = "FLOW_FREE"  # a self-service SKU with 1,000,000 seats: every write succeeds
KINDS = {
    "none": (),
    "5xx + drops": (500, 503, 504, "drop"),
    "5xx + drops + 429": (429, 500, 503, 504, "drop"),
}


class LowestRate(WriteBudget):
    """A write budget that remembers the lowest rate it ran at."""

    lowest = float("inf")

    def throttled(self, retry_after: float | None) -> None:
        super().throttled(retry_after)
        self.lowest = min(self.lowest, self.rate)


async def send(url: str, jobs: list[AssignLicense], quota: float) -> tuple[float, int, float]:
    settings = load_graph_settings({"url": url, "auth": "none"}, env={})
    budget = LowestRate(quota)
    async with GraphClient.from_settings(settings) as client:
        started = time.perf_counter()
        outcomes = await send_licence_writes(client, jobs, budget)
        elapsed = time.perf_counter() - started
    return elapsed, sum(o.ok for o in outcomes), min(budget.lowest, budget.rate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=3050)
    parser.add_argument("--quota", type=float, default=100.0, help="writes per second")
    parser.add_argument("--fault-rate", type=float, default=0.1)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    window = 15.0
    throttle = ThrottleConfig(
        enabled=True,
        resource_units=10_000_000,
        write_limit=int(args.quota * window),
        write_window=window,
    )
    print(f"{args.writes:,} assignLicense writes, quota {args.quota:g}/s, ideal "
          f"{args.writes / args.quota:.1f} s")  # fmt: skip
    print(f"  {'faults':<24}{'seconds':>9}{'writes/s':>10}{'lowest rate':>13}{'ok':>7}")
    for name, kinds in KINDS.items():
        faults = FaultConfig(rate=args.fault_rate if kinds else 0.0, kinds=kinds or (500,))
        users_needed = args.writes * 6 // 5  # some generated users have no usage location
        with Emulator(users=users_needed, groups=5, seed=3, throttle=throttle, faults=faults) as g:
            sku = next(s.id for s in g.tenant.skus.values() if s.part_number == WRITE_SKU)
            located = (uid for uid, u in sorted(g.tenant.users.items()) if u.usage_location)
            users = list(located)[: args.writes]
            jobs = [AssignLicense(u, (Assignment(sku, frozenset()),), ()) for u in users]
            elapsed, ok, lowest = asyncio.run(send(g.url, jobs, args.quota))
        label = f"{name} ({args.fault_rate:.0%})" if kinds else name
        print(f"  {label:<24}{elapsed:>9.1f}{ok / elapsed:>10.1f}{lowest:>13.1f}{ok:>7,}")


if __name__ == "__main__":
    main()
