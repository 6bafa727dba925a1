"""Benchmark: generate a tenant, then page through all its users with plain httpx + orjson.

.venv/bin/python benchmarks/emulator_paging.py [--users 100000] [--groups 2000] [--seed 1]
"""

from __future__ import annotations

import argparse
import time

import httpx
import orjson

from licsync.emulator.generate import build_tenant
from licsync.emulator.server import Emulator

SELECT = (
    "id,userPrincipalName,accountEnabled,usageLocation,userType,assignedLicenses,"
    "licenseAssignmentStates"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    started = time.perf_counter()
    tenant = build_tenant(args.users, args.groups, args.seed)
    generated = time.perf_counter() - started
    print(f"generate   {args.users} users, {args.groups} groups: {generated:.2f} s")

    with Emulator(tenant=tenant) as graph, httpx.Client(timeout=60) as client:
        started = time.perf_counter()
        url: str | None = f"{graph.url}/users?$top=999&$select={SELECT}"
        pages = users = size = 0
        while url:
            response = client.get(url)
            response.raise_for_status()
            size += len(response.content)
            body = orjson.loads(response.content)
            pages += 1
            users += len(body["value"])
            url = body.get("@odata.nextLink")
        paged = time.perf_counter() - started
    assert users == args.users, (users, args.users)
    print(f"page users {users} users in {pages} pages, {size / 1e6:.1f} MB: {paged:.2f} s")
    print(f"           {users / paged:,.0f} users/s, {size / 1e6 / paged:.1f} MB/s")


if __name__ == "__main__":
    main()
