"""Full read under Graph-like latency: licsync's read next to the longest chain it cannot avoid.

    .venv/bin/python benchmarks/read_latency.py [--users 30000] [--groups 600] [--rules 50]
        [--latency 0.1] [--repeat 2]

The emulator runs in its own process and delays every request by `--latency` seconds. In one
run, best of `--repeat`:

- users chain: the `/users` next-link chain followed sequentially (plain httpx + orjson, the
  reader's `$select` and `$top`): a chain no client can shorten;
- members: `/groups`, then the members of `--rules` rule groups and the Entra-licensed groups,
  `DEFAULT_CONCURRENCY` at a time (plain httpx): the other chain a full read needs;
- raw, both at once: the two above side by side (what the emulator, one process on this
  machine, can serve when both chains compete for it; real Graph serves them apart);
- licsync: `read_tenant` as `licsync sync --full` runs it (delta links with `$deltatoken=latest`
  first, organization, subscribed SKUs, users, groups, members; models built).

The ratio `licsync / max(users chain, members)` is goal 1 of docs/performance.md (<= 1.15).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time

import httpx
import structlog
from sync_emulator import client_for, free_port, raw_pages, rule_groups, start_emulator

from licsync.connector.read_delta import latest_delta_link
from licsync.connector.read_full import DEFAULT_CONCURRENCY, PAGE_SIZE, USER_SELECT, read_tenant


async def users_chain(base: str) -> int:
    async with httpx.AsyncClient(timeout=120) as http:
        return len(await raw_pages(http, f"{base}/users?$select={USER_SELECT}&$top={PAGE_SIZE}"))


async def member_reads(base: str, group_ids: list[str]) -> int:
    async with httpx.AsyncClient(timeout=120) as http:
        await raw_pages(http, f"{base}/groups?$select=id,displayName&$top={PAGE_SIZE}")
        semaphore = asyncio.Semaphore(DEFAULT_CONCURRENCY)

        async def members(group_id: str) -> int:
            async with semaphore:
                url = f"{base}/groups/{group_id}/members?$select=id&$top={PAGE_SIZE}"
                return len(await raw_pages(http, url))

        return sum(await asyncio.gather(*(members(g) for g in group_ids)))


async def both_at_once(base: str, group_ids: list[str]) -> None:
    await asyncio.gather(users_chain(base), member_reads(base, group_ids))


async def licsync_read(base: str, group_ids: list[str]) -> tuple[int, int]:
    links: dict[str, str] = {}
    async with client_for(base) as client:

        async def take_link(resource: str) -> None:
            links[resource] = await latest_delta_link(client, resource)

        tenant = await read_tenant(
            client, group_ids=group_ids, progress=False, before_read=take_link
        )
    assert set(links) == {"users", "groups"}
    members = sum(len(g.member_users) + len(g.member_groups) for g in tenant.groups.values())
    return len(tenant.users), members


def timed(coroutine: object) -> tuple[float, object]:
    mark = time.perf_counter()
    result = asyncio.run(coroutine)  # type: ignore[arg-type]
    return time.perf_counter() - mark, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=30_000)
    parser.add_argument("--groups", type=int, default=600)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rules", type=int, default=50, help="rule groups whose members to read")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added per request")
    parser.add_argument("--repeat", type=int, default=2, help="reads of each kind (best kept)")
    args = parser.parse_args()
    args.quota, args.window = 1_000_000.0, 1.0  # no write limit in play
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    port = free_port()
    emulator = start_emulator(args, port, "--latency", str(args.latency))
    base = f"http://127.0.0.1:{port}/v1.0"
    try:
        rules, licensed = asyncio.run(rule_groups(base, args.rules))
        group_ids = rules + licensed
        chain, members, both, lic = [], [], [], []
        for _ in range(args.repeat):
            seconds, users = timed(users_chain(base))
            chain.append(seconds)
            seconds, _ = timed(member_reads(base, group_ids))
            members.append(seconds)
            both.append(timed(both_at_once(base, group_ids))[0])
            seconds, read = timed(licsync_read(base, group_ids))
            lic.append(seconds)
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)
    pages = -(-int(users) // PAGE_SIZE)  # type: ignore[call-overload]
    bound = max(min(chain), min(members))
    print(
        f"full read, {args.users:,} users ({pages} pages), {args.groups:,} groups, members of "
        f"{len(rules)} rule + {len(licensed)} licensed groups, latency {args.latency:g} s"
    )
    print(f"  {'users chain (sequential next links)':<44}{min(chain):>8.2f} s")
    print(f"  {f'members ({DEFAULT_CONCURRENCY} at a time)':<44}{min(members):>8.2f} s")
    print(f"  {'raw, both at once':<44}{min(both):>8.2f} s")
    print(f"  {'licsync read_tenant (+ delta links)':<44}{min(lic):>8.2f} s   {read}")
    print(f"  {'ratio licsync / longest chain':<44}{min(lic) / bound:>8.2f}   (goal <= 1.15)")
    print(f"  {'ratio licsync / raw, both at once':<44}{min(lic) / min(both):>8.2f}")


if __name__ == "__main__":
    main()
