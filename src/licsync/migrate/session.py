"""What `migrate apply` and `migrate rollback` share: the store and lease, the Graph client and
write budget, re-reading users, the effective plans of a user, and the store's run record."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass

from licsync.config import Config
from licsync.engine.plans import PlanIndex
from licsync.graph import GraphClient, WriteBudget, load_graph_settings
from licsync.model import Problem, Tenant, User, guid
from licsync.reader import USER_SELECT, stale_rows
from licsync.snapshot import parse_user
from licsync.store import AppliedChange, LedgerDiff, RunStatus, StateStore
from licsync.sync import keep_lease, open_state

READ_CONCURRENCY = 8


@dataclass
class Session:
    """A leased store, a Graph client and a write budget for one run."""

    config: Config
    store: StateStore
    client: GraphClient
    budget: WriteBudget
    holder: str
    ttl: float
    run_id: str
    started: bool = False

    def renew(self) -> None:
        """Re-take the lease (renews it; raises StateError if another run holds it now)."""
        self.store.acquire_lease(self.holder, self.ttl)

    @asynccontextmanager
    async def keeping_lease(self) -> AsyncIterator[None]:
        """Renew the lease every third of its lifetime while writes are in flight, then once
        more at the end (a long wave outlives the lease)."""

        task = asyncio.ensure_future(keep_lease(self.store, self.holder, self.ttl))
        try:
            yield
        finally:
            task.cancel()
        self.renew()

    def abort(self, kind: str, reason: str) -> None:
        """Mark a started run failed after an unexpected error (best effort: the error that
        got us here is the one reported)."""
        if not self.started:
            return
        with suppress(Exception):
            self.record(kind, finish=(RunStatus.FAILED, {"error": reason}))

    def record(
        self,
        kind: str,
        *,
        changes: Iterable[AppliedChange] = (),
        problems: Iterable[Problem] = (),
        ledger: LedgerDiff | None = None,
        finish: tuple[RunStatus, dict[str, object]] | None = None,
    ) -> None:
        """One store transaction under the lease: starts the run the first time."""
        problems = list(problems)
        with self.store.transaction(holder=self.holder) as tx:
            if not self.started:
                tx.start_run(kind, self.run_id)
                self.started = True
            changes = list(changes)
            tx.record_changes(changes)
            tx.patch_tenant_cache(stale_rows(c.user_id for c in changes))
            if ledger:
                tx.apply_ledger_diff(ledger)
            if problems:
                tx.record_problems(self.run_id, problems)
            if finish is not None:
                tx.finish_run(self.run_id, finish[0], finish[1])


@asynccontextmanager
async def session(
    config: Config,
    kind: str,
    *,
    client: GraphClient | None = None,
    budget: WriteBudget | None = None,
) -> AsyncIterator[Session]:
    """Open the store, take the write lease, connect to Graph; undo all of it on the way out."""
    graph_settings = load_graph_settings(config.settings.graph, path=str(config.path))
    store, state_settings = open_state(config)
    assert store is not None  # a writable store is always opened (or created)
    run_id = uuid.uuid4().hex
    holder = f"{kind}-{run_id}"
    own_client = client is None
    leased = False
    try:
        store.acquire_lease(holder, state_settings.lease_ttl_seconds)
        leased = True
        if client is None:
            client = GraphClient.from_settings(graph_settings)
        yield Session(
            config,
            store,
            client,
            budget or WriteBudget(graph_settings.write_rate),
            holder,
            state_settings.lease_ttl_seconds,
            run_id,
        )
    finally:
        try:
            if own_client and client is not None:
                await client.aclose()
        finally:
            try:
                if leased:
                    store.release_lease(holder)
            finally:
                store.close()


async def read_users(client: GraphClient, user_ids: Iterable[str]) -> dict[str, User]:
    """Re-read users with their licence properties (GET /users/{id}), a few at a time."""
    semaphore = asyncio.Semaphore(READ_CONCURRENCY)

    async def one(user_id: str) -> User:
        async with semaphore:
            raw = await client.get_json(f"/users/{user_id}", {"$select": USER_SELECT})
        return parse_user(raw)

    users = await asyncio.gather(*(one(u) for u in sorted(set(user_ids))))
    return {guid(u.id): u for u in users}


def effective_plans(index: PlanIndex, user: User) -> dict[str, frozenset[str]]:
    """The user's enabled service plans per SKU held (what `assignedLicenses` adds up to)."""
    return {a.sku_id: index.enabled(a.sku_id, a.disabled_plans) for a in user.assigned_licenses}


def plan_index(tenant: Tenant, config: Config) -> PlanIndex:
    return PlanIndex(tenant, config.policy().plan_rules)
