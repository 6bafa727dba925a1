"""`licsync verify` on a generated tenant: the read of the Entra-licensed groups and the comparison.

    .venv/bin/python benchmarks/verify_emulator.py [--users 30000] [--groups 600] [--seed 7]
        [--repeat 2]

The emulator runs in its own process (no latency added). Best of `--repeat`, it prints the time
of `read_entra_groups` (SKUs, every group with its processing state, the user members of each
Entra-licensed group with their licenseAssignmentStates) and of `compare` (the engine over that
tenant, then one finding per user x SKU x group), with the counts. A generated tenant's states
come from the emulator's own processing, so nearly every finding is `ok`; the figure is the cost
of checking them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time

import structlog
from sync_emulator import client_for, free_port, start_emulator

from licsync.config.service_rules import load_plan_rules
from licsync.connector.verify import read_entra_groups
from licsync.engine.inputs import Policy
from licsync.verification import compare


async def read(base: str) -> tuple[float, tuple]:
    started = time.perf_counter()
    async with client_for(base) as client:
        found = await read_entra_groups(client)
    return time.perf_counter() - started, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=30_000)
    parser.add_argument("--groups", type=int, default=600)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    args.quota, args.window = 1_000_000, 1.0  # no write limit: verify only reads
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    port = free_port()
    process = start_emulator(args, port)
    base = f"http://127.0.0.1:{port}/v1.0"
    try:
        reads, compares = [], []
        policy = Policy(plan_rules=load_plan_rules(None, None))  # the shipped tables
        for _ in range(args.repeat):
            seconds, (tenant, groups, stamps) = asyncio.run(read(base))
            reads.append(seconds)
            started = time.perf_counter()
            verification = compare(tenant, groups, stamps, policy)
            compares.append(time.perf_counter() - started)
        members = sum(len(g.member_users) for g in tenant.groups.values())
        print(
            f"users {args.users}, groups {args.groups}: {len(groups)} Entra-licensed groups, "
            f"{members} user members, {len(verification.findings)} findings"
        )
        print(f"summary: {verification.summary()}")
        print(f"read    best {min(reads):.2f} s  ({', '.join(f'{s:.2f}' for s in reads)})")
        print(f"compare best {min(compares):.2f} s  ({', '.join(f'{s:.2f}' for s in compares)})")
    finally:
        process.terminate()
        process.wait(timeout=30)


if __name__ == "__main__":
    main()
