"""Save and load times of the state store at 100k users: the ownership ledger and the cached
tenant view, on SQLite and (with --postgres URL) PostgreSQL.

    python benchmarks/state_store.py [--size 100000] [--postgres postgresql://…]

Both are loaded whole by every run, so these figures bound a sync's fixed cost.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from licsync.model import Ownership
from licsync.store import open_store

SKUS = [f"{s:08d}-0000-0000-0000-00000000000{s}" for s in range(4)]
GROUP_SETS = [("g-1",), ("g-1", "g-2"), ("g-3",)]
PRIORS = [None, None, frozenset(), frozenset({"plan-1", "plan-2"})]


def user_id(i: int) -> str:
    return f"{i:08d}-0000-0000-0000-000000000000"


def ledger(size: int) -> dict[tuple[str, str], Ownership]:
    entries = {}
    for i in range(size):
        user, sku = user_id(i), SKUS[i % 4]
        entries[(user, sku)] = Ownership(user, sku, GROUP_SETS[i % 3], PRIORS[i % 4])
    return entries


def tenant_view(size: int) -> list[tuple[str, str, dict[str, Any]]]:
    """A tenant view as `TenantView.rows` gives it (about 400 bytes of JSON a user)."""
    licences = [{"skuId": s, "disabledPlans": []} for s in SKUS[:2]]
    states = [{**a, "assignedByGroup": None, "state": "Active", "error": "None"} for a in licences]
    rows: list[tuple[str, str, dict[str, Any]]] = [("meta", "view", {"format": 1})]
    for i in range(size):
        user = {
            "id": user_id(i),
            "userPrincipalName": f"user{i}@contoso.com",
            "accountEnabled": True,
            "usageLocation": "US",
            "userType": "Member",
            "assignedLicenses": licences,
            "licenseAssignmentStates": states,
        }
        rows.append(("user", user_id(i), user))
    return rows


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def measure(url: str, size: int) -> None:
    entries, rows = ledger(size), tenant_view(size)
    with open_store(url) as store:

        def save_ledger() -> None:
            with store.transaction() as tx:
                tx.replace_ledger(entries)

        def save_view() -> None:
            with store.transaction() as tx:
                tx.replace_tenant_cache(rows)

        ledger_save, _ = timed(save_ledger)
        ledger_load, loaded = timed(store.load_ledger)
        assert loaded == entries, "the ledger did not round-trip"
        view_save, _ = timed(save_view)
        view_load, cached = timed(store.load_tenant_cache)
        assert len(cached["user"]) == size, "the tenant view did not round-trip"
        for name, save, load in (
            ("ledger", ledger_save, ledger_load),
            ("view", view_save, view_load),
        ):
            print(f"{store.backend:<10} {name:<7} save {save:6.2f} s   load {load:6.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000, help="users (ledger entries)")
    parser.add_argument("--postgres", metavar="URL", help="also measure this PostgreSQL server")
    args = parser.parse_args()
    print(f"{args.size:,} users")
    with tempfile.TemporaryDirectory() as tmp:
        measure(str(Path(tmp) / "state.db"), args.size)
    if args.postgres:
        import psycopg

        schema = f"bench_{uuid.uuid4().hex[:8]}"
        separator = "&" if "?" in args.postgres else "?"
        options = quote(f"-c search_path={schema}", safe="")
        with psycopg.connect(args.postgres, autocommit=True) as admin:
            admin.execute(f"CREATE SCHEMA {schema}")
            try:
                measure(f"{args.postgres}{separator}options={options}", args.size)
            finally:
                admin.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    main()
