"""One run's session: the state store, the write lease and its renewal, the Graph client and the
write budget, shared by `sync`, `migrate apply|rollback` and the read-only commands.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog

from licsync.config import Config
from licsync.errors import StateError
from licsync.exitcodes import ExitCode
from licsync.graph import WriteBudget, load_graph_settings
from licsync.model import Problem
from licsync.outcomes import RunStatus
from licsync.runlog import RunLog, Stopped, StopSignals
from licsync.store import (
    AppliedChange,
    LedgerDiff,
    RunPhase,
    StateSettings,
    StateStore,
    open_store,
    stale_rows,
    state_exists,
)
from licsync.tenancy import bind_tenant, check_tenant

if TYPE_CHECKING:
    from licsync.graph.client import GraphClient
    from licsync.graph.settings import GraphSettings

log = structlog.get_logger("licsync.sync")


def open_state(
    config: Config, *, read_only: bool = False
) -> tuple[StateStore | None, StateSettings]:
    """The state store `[state] url` names (a relative SQLite path is relative to the config
    file's directory). `read_only`: never create, migrate or write it; None when the SQLite file
    does not exist."""
    settings = StateSettings.from_config(config.settings.state, base_dir=config.path.parent)
    if read_only:
        if not state_exists(settings.url):
            return None, settings
        store = open_store(settings.url, read_only=True, schema=settings.db_schema)
        if store.schema_version == 0:  # an empty PostgreSQL database or schema
            store.close()
            return None, settings
        return store, settings
    return open_store(settings.url, schema=settings.db_schema), settings


def new_client(settings: GraphSettings) -> GraphClient:
    """A Graph client; msgraph-sdk is loaded here, on first use, not when licsync starts."""
    from licsync.graph.client import GraphClient

    return GraphClient.from_settings(settings)


def graph_client(config: Config) -> GraphClient:
    return new_client(load_graph_settings(config.settings.graph, path=str(config.path)))


def holder_name(kind: str, run_id: str) -> str:
    """Who holds the lease: the run, and where it runs (so `licsync unlock` can tell a dead
    process from a live one on the same host)."""
    return f"{kind}-{run_id}@{socket.gethostname()}:{os.getpid()}"


def holder_alive(holder: str) -> bool | None:
    """Whether the process named in `holder` still runs: None when it runs on another host
    (or the name says nothing of where), which cannot be checked from here."""
    _, _, place = holder.rpartition("@")
    host, _, pid = place.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def unlock(store: StateStore) -> str:
    """Release a lease whose run is gone (expired, or its process no longer runs on this host);
    raise StateError while its holder may be alive."""
    lease = store.current_lease()
    if lease is None:
        return "the state store is not leased: nothing to unlock"
    expired = lease.expires_at <= datetime.now(UTC)
    alive = holder_alive(lease.holder)
    if not expired and alive is not False:
        where = "that process is alive" if alive else "it may be running on another host"
        raise StateError(
            f"the lease is held by {lease.holder!r} until {lease.expires_at:%Y-%m-%dT%H:%M:%SZ} "
            f"and {where}: not unlocked (it expires by itself when its run dies)"
        )
    store.release_lease(lease.holder)
    why = "it had expired" if expired else "its process no longer runs"
    return (
        f"released the lease of {lease.holder!r} ({why}); the next sync reconciles the writes "
        "that run sent and marks it interrupted"
    )


FENCE_SHARE = 0.75  # stop writing when the lease went unrenewed for this share of its TTL


@dataclass
class LeaseGuard:
    """Whether this run may still send writes: its lease was renewed recently enough that no
    other run can hold it, and the run is within its deadline. Asked before every `$batch`."""

    ttl: float
    deadline: float  # on `clock`'s scale
    clock: Callable[[], float] = time.monotonic
    renewed_at: float = field(default_factory=time.monotonic)
    lost: str | None = None
    stopped: str | None = None  # a signal or the deadline: the run stops, the next one goes on

    def lapsed(self) -> str | None:
        """Why nothing more may be sent, or None."""
        if self.lost is not None:
            return self.lost
        if self.stopped is not None:
            return self.stopped
        now = self.clock()
        if now - self.renewed_at > self.ttl * FENCE_SHARE:
            return (
                f"the write lease was last renewed {now - self.renewed_at:.1f} s ago (TTL "
                f"{self.ttl:g} s): another run may hold it now"
            )
        if now > self.deadline:
            self.stopped = "the run reached its deadline ([state] max_run_seconds)"
            return self.stopped
        return None


async def keep_lease(store: StateStore, holder: str, guard: LeaseGuard) -> None:
    """Renew the write lease every third of its lifetime (the heartbeat) until cancelled; a
    renewal that fails marks the guard lost, which stops the writes."""
    while True:
        await asyncio.sleep(guard.ttl / 3)
        try:
            store.renew_lease(holder, guard.ttl)
        except StateError as exc:
            guard.lost = f"the write lease could not be renewed: {exc}"
            log.warning("run.lease_lost", holder=holder, reason=str(exc))
            return
        guard.renewed_at = guard.clock()
        log.debug("run.lease_renewed", holder=holder)


@dataclass
class Session:
    """A leased store, a Graph client and a write budget for one run."""

    config: Config
    store: StateStore
    client: GraphClient
    budget: WriteBudget
    holder: str
    guard: LeaseGuard
    run_id: str
    runlog: RunLog
    stop: StopSignals
    writing: bool = False  # from the first write on, a signal stops the sending, not the task

    def renew(self) -> None:
        """Re-take the lease (renews it; raises StateError if another run holds it now)."""
        self.store.acquire_lease(self.holder, self.guard.ttl)
        self.guard.renewed_at = self.guard.clock()

    @asynccontextmanager
    async def keeping_lease(self) -> AsyncIterator[None]:
        """Renew the lease every third of its lifetime while writes are in flight, then once
        more at the end (a long wave outlives the lease)."""

        task = asyncio.ensure_future(keep_lease(self.store, self.holder, self.guard))
        try:
            yield
        finally:
            task.cancel()
        self.renew()

    def enter(self, phase: RunPhase) -> None:
        """The run moves on to `phase`; from `write` on, a signal no longer cancels the run but
        stops its sending (`LeaseGuard.stopped`)."""
        self.runlog.enter(phase)
        self.writing = phase in (RunPhase.WRITE, RunPhase.RECORD)

    @property
    def stop_code(self) -> int | None:
        """128 + the signal that stopped the run, if one did."""
        return self.stop.exit_code

    def record(
        self,
        kind: str,
        *,
        changes: Iterable[AppliedChange] = (),
        problems: Iterable[Problem] = (),
        ledger: LedgerDiff | None = None,
        finish: tuple[RunStatus, dict[str, object]] | None = None,
        exit_code: int = 0,
    ) -> None:
        """One store transaction under the lease (`finish`: the run's status and summary, with
        `exit_code`)."""
        problems = list(problems)
        with self.store.transaction(holder=self.holder) as tx:
            changes = list(changes)
            tx.record_changes(changes)
            tx.patch_tenant_cache(stale_rows(c.user_id for c in changes))
            if ledger:
                tx.apply_ledger_diff(ledger)
            if problems:
                tx.record_problems(self.run_id, problems)
            if finish is not None:
                end = self.runlog.end(finish[0], finish[1], exit_code=exit_code)
                tx.end_run(self.run_id, end)


@asynccontextmanager
async def read_only_session(
    config: Config, *, client: GraphClient | None = None
) -> AsyncIterator[tuple[StateStore | None, GraphClient]]:
    """The store opened read-only (None when the SQLite file does not exist: nothing is
    created) and a Graph client, for dry runs and reports; closed on the way out. A store bound
    to another tenant than Graph's is refused (StateError)."""
    store, _ = open_state(config, read_only=True)
    own_client = client is None
    graph = client or graph_client(config)
    try:
        await check_tenant(graph, store)
        yield store, graph
    finally:
        try:
            if own_client:
                await graph.aclose()
        finally:
            if store is not None:
                store.close()


@asynccontextmanager
async def session(
    config: Config,
    kind: str,
    *,
    client: GraphClient | None = None,
    budget: WriteBudget | None = None,
) -> AsyncIterator[Session]:
    """Open the store, record the run (`RunLog`: from here on, however the run ends, the store
    says so), take the write lease, connect to Graph; undo all of it on the way out. SIGTERM and
    SIGINT stop the run (`StopSignals`): before its writes by cancelling it (`Stopped`), from
    its first write on by sending nothing more (`Session.guard`)."""
    graph_settings = load_graph_settings(config.settings.graph, path=str(config.path))
    store, state_settings = open_state(config)
    assert store is not None  # a writable store is always opened (or created)
    run_id = uuid.uuid4().hex
    holder = holder_name(kind, run_id)
    own_client = client is None
    leased = False
    runlog = RunLog(store, run_id, kind)
    guard = LeaseGuard(
        state_settings.lease_ttl_seconds, time.monotonic() + state_settings.max_run_seconds
    )
    task = asyncio.current_task()
    state: dict[str, Session] = {}

    def on_stop() -> None:
        guard.stopped = stop.reason
        s = state.get("session")
        if (s is None or not s.writing) and task is not None:
            task.cancel()

    stop = StopSignals(on_stop)
    try:
        runlog.start()
        stop.install()
        store.acquire_lease(holder, state_settings.lease_ttl_seconds)
        guard.renewed_at = guard.clock()
        leased = True
        if client is None:
            client = new_client(graph_settings)
        bind_tenant(store, holder, await check_tenant(client, store), run_id)
        state["session"] = Session(
            config,
            store,
            client,
            budget or WriteBudget(graph_settings.write_rate),
            holder,
            guard,
            run_id,
            runlog,
            stop,
        )
        yield state["session"]
    except BaseException as exc:
        if isinstance(exc, asyncio.CancelledError) and stop.signum is not None:
            exc = Stopped(stop.signum)
        runlog.fail(exc)
        if leased:  # the error that got us here is the one to report
            with suppress(StateError):
                store.release_lease(holder)
            leased = False
        if isinstance(exc, Stopped):
            raise exc from None
        raise
    else:
        runlog.close(RunStatus.SUCCEEDED, ExitCode.OK)
    finally:
        stop.uninstall()
        try:
            if own_client and client is not None:
                await client.aclose()
        finally:
            try:
                if leased:
                    store.release_lease(holder)
            finally:
                store.close()
