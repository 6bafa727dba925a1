"""Benchmark licsync's Graph connector against the emulator running in its own process.

    .venv/bin/python benchmarks/sync_emulator.py [--users 100000] [--groups 2000] [--rules 50]
        [--writes 4000] [--quota 200] [--window 15] [--repeat 2]

1. Full read: `licsync.reader.read_tenant` (organization, subscribedSkus, users and groups with
   the licence properties, then the members of `--rules` rule groups and the Entra-licensed groups,
   16 at a time) next to the same requests made with plain httpx + orjson (no SDK, no retry
   policy, no model), in the same run; best of `--repeat`.
2. Writes: `--writes` assignLicense writes through `send_licence_writes` ($batch of 20, write
   budget at the quota) against an emulator that enforces `--quota` writes/s as a sliding window of
   `--window` seconds (Graph: 3,000 per 150 s = 20/s); throughput as a share of the quota.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import subprocess
import sys
import time
from typing import Any

import httpx
import orjson
import structlog

from licsync.connector.licence_writes import AssignLicense, send_licence_writes
from licsync.connector.read_full import (
    DEFAULT_CONCURRENCY,
    GROUP_SELECT,
    PAGE_SIZE,
    USER_SELECT,
    read_tenant,
)
from licsync.graph import GraphClient, WriteBudget, load_graph_settings
from licsync.model import Assignment

WRITE_SKU = "FLOW_FREE"  # a self-service SKU with 1,000,000 seats: every write succeeds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_emulator(args: argparse.Namespace, port: int, *extra: str) -> subprocess.Popen[bytes]:
    """`licsync emulator` in a child process (its own GIL), with `extra` flags; returns once it
    answers."""
    command = [
        sys.executable, "-m", "licsync", "emulator",
        "--users", str(args.users), "--groups", str(args.groups), "--seed", str(args.seed),
        "--port", str(port), "--throttle", "--resource-units", "10000000",
        "--write-limit", str(int(args.quota * args.window)), "--write-window", str(args.window),
        *extra,
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"the emulator exited with {process.returncode}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/_emulator/stats", timeout=1).raise_for_status()
            return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    sys.exit("the emulator did not start within 300 s")


async def raw_pages(http: httpx.AsyncClient, url: str) -> list[Any]:
    """Every item of a paged collection: plain GETs, orjson, follow the next links."""
    items: list[Any] = []
    next_url: str | None = url
    while next_url:
        response = await http.get(next_url)
        response.raise_for_status()
        page = orjson.loads(response.content)
        items.extend(page.get("value") or ())
        next_url = page.get("@odata.nextLink")
    return items


async def raw_read(base: str, group_ids: list[str]) -> int:
    """The reader's requests with httpx + orjson only; returns the users and members read."""
    async with httpx.AsyncClient(timeout=120) as http:
        org, skus, groups, users = await asyncio.gather(
            raw_pages(http, f"{base}/organization"),
            raw_pages(http, f"{base}/subscribedSkus"),
            raw_pages(http, f"{base}/groups?$select={GROUP_SELECT}&$top={PAGE_SIZE}"),
            raw_pages(http, f"{base}/users?$select={USER_SELECT}&$top={PAGE_SIZE}"),
        )
        semaphore = asyncio.Semaphore(DEFAULT_CONCURRENCY)

        async def members(group_id: str) -> int:
            async with semaphore:
                url = f"{base}/groups/{group_id}/members?$select=id&$top={PAGE_SIZE}"
                return len(await raw_pages(http, url))

        counts = await asyncio.gather(*(members(g) for g in group_ids))
    del org, skus, groups
    return len(users) + sum(counts)


def client_for(base: str, in_flight: int | None = None) -> GraphClient:
    settings = {"url": base, "auth": "none", "max_batches_in_flight": in_flight}
    return GraphClient.from_settings(load_graph_settings(settings, env={}))


async def licsync_read(base: str, group_ids: list[str]) -> tuple[int, Any]:
    async with client_for(base) as client:
        tenant = await read_tenant(client, group_ids=group_ids, progress=False)
    members = sum(len(g.member_users) + len(g.member_groups) for g in tenant.groups.values())
    return len(tenant.users) + members, tenant


async def rule_groups(base: str, count: int) -> tuple[list[str], list[str]]:
    """(`count` security groups standing for rule groups, the Entra-licensed groups)."""
    async with httpx.AsyncClient(timeout=120) as http:
        select = "id,securityEnabled,assignedLicenses"
        groups = await raw_pages(http, f"{base}/groups?$select={select}&$top={PAGE_SIZE}")
    licensed = [g["id"] for g in groups if g.get("assignedLicenses")]
    rules = [g["id"] for g in groups if g.get("securityEnabled") and g["id"] not in licensed]
    return rules[:count], licensed


async def write(base: str, tenant: Any, args: argparse.Namespace) -> tuple[float, int]:
    """Time `--writes` assignLicense writes at the quota; returns (seconds, successes)."""
    sku = next(s.id for s in tenant.skus.values() if s.part_number == WRITE_SKU)
    users = [u.id for u in tenant.users.values() if u.usage_location][: args.writes]
    jobs = [AssignLicense(u, (Assignment(sku),)) for u in users]
    budget = WriteBudget(args.quota, window=args.window)
    async with client_for(base, args.in_flight) as client:
        started = time.perf_counter()
        outcomes = await send_licence_writes(client, jobs, budget)
        elapsed = time.perf_counter() - started
    return elapsed, sum(o.ok for o in outcomes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rules", type=int, default=50, help="rule groups whose members to read")
    parser.add_argument("--writes", type=int, default=4_000, help="assignLicense writes to time")
    parser.add_argument("--quota", type=float, default=200.0, help="emulator's writes per second")
    parser.add_argument("--window", type=float, default=15.0, help="quota window in seconds")
    parser.add_argument("--in-flight", type=int, help="$batch envelopes in flight (default: auto)")
    parser.add_argument("--repeat", type=int, default=2, help="reads of each kind (best kept)")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    port = free_port()
    started = time.perf_counter()
    emulator = start_emulator(args, port)
    base = f"http://127.0.0.1:{port}/v1.0"
    try:
        print(f"emulator: {args.users:,} users, {args.groups:,} groups, separate process, "
              f"up in {time.perf_counter() - started:.1f} s")  # fmt: skip
        rules, licensed = asyncio.run(rule_groups(base, args.rules))
        group_ids = rules + licensed
        raw_times, lic_times = [], []
        for _ in range(args.repeat):
            mark = time.perf_counter()
            raw_items = asyncio.run(raw_read(base, group_ids))
            raw_times.append(time.perf_counter() - mark)
            mark = time.perf_counter()
            lic_items, tenant = asyncio.run(licsync_read(base, group_ids))
            lic_times.append(time.perf_counter() - mark)
        elapsed, ok = asyncio.run(write(base, tenant, args))
        stats = httpx.get(f"http://127.0.0.1:{port}/_emulator/stats").json()
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)

    raw, lic = min(raw_times), min(lic_times)
    rate = ok / elapsed
    assign = stats["requests"].get("POST /users/{id}/assignLicense", {})
    print(f"read: users, groups, members of {len(rules)} rule + {len(licensed)} licensed groups")
    print(f"  {'':<34}{'seconds':>9}{'objects':>10}{'objects/s':>10}")
    print(
        f"  {'raw httpx + orjson paging':<34}{raw:>9.2f}{raw_items:>10,}{raw_items / raw:>10,.0f}"
    )
    print(f"  {'licsync read_tenant':<34}{lic:>9.2f}{lic_items:>10,}{lic_items / lic:>10,.0f}")
    print(f"  {'read_tenant / raw':<34}{lic / raw:>9.2f}")
    print(f"writes: {args.writes:,} assignLicense, quota {args.quota:g}/s "
          f"({int(args.quota * args.window):,} per {args.window:g} s)")  # fmt: skip
    print(f"  {'succeeded':<34}{ok:>9,}")
    print(f"  {'seconds':<34}{elapsed:>9.2f}")
    print(f"  {'writes/s':<34}{rate:>9.1f}")
    print(f"  {'share of the quota':<34}{rate / args.quota:>9.1%}")
    print(
        f"  {'429 answers, early retries':<34}{assign.get('429', 0):>9}{stats['early_retries']:>10}"
    )


if __name__ == "__main__":
    main()
