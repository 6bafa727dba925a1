"""Send writes (assignLicense, PATCH usageLocation …) in `$batch` envelopes, item by item.

Each job runs under the retry policy on its own: it is put into the next `$batch` with free
room, its inner response goes through the classifier, and only a throttled or transient item
is re-queued, with its own attempt count and its own Retry-After. Permanent failures become
outcomes. The write budget is consulted before each `$batch`; at most `max_batches_in_flight`
envelopes are in flight. After a fatal answer (403 …) no further job is sent.

A 5xx, a missing item or a dropped connection leaves it unknown whether Graph applied the write.
assignLicense is not idempotent for removals (removing a SKU the user no longer has is a 400), so
when a retry after such an attempt is refused, the user is read back: if the write's effect is
there, the job succeeded (an earlier attempt applied it and its answer was lost).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import structlog

from licsync.graph.batch import (
    MAX_BATCH_SIZE,
    BatchItemResponse,
    BatchRequest,
    build_batch_body,
    parse_batch_response,
)
from licsync.graph.budget import WriteBudget
from licsync.graph.classify import Action, Verdict, classify, classify_exception, to_error
from licsync.graph.client import GraphClient
from licsync.graph.errors import GraphError, GraphTransientError
from licsync.graph.retry import RetryPolicy
from licsync.model import LicenseError

log = structlog.get_logger("licsync.graph")

_RETRYABLE = (Action.THROTTLED, Action.RETRY, Action.AUTH)
CONFIRM_SELECT = "id,assignedLicenses,licenseAssignmentStates"


@dataclass(frozen=True, slots=True)
class WriteJob:
    """One write: `key` is unique in a call; `after` names a job that must succeed first."""

    key: str
    method: str
    url: str  # relative to the version root: "/users/{id}/assignLicense"
    body: Any = None
    after: str | None = None

    @classmethod
    def assign_license(
        cls,
        user_id: str,
        add_licenses: Iterable[tuple[str, Iterable[str]]] = (),
        remove_licenses: Iterable[str] = (),
        *,
        key: str | None = None,
        after: str | None = None,
    ) -> WriteJob:
        """`POST /users/{id}/assignLicense` with both (camelCase) keys always present."""
        body = {
            "addLicenses": [
                {"skuId": sku, "disabledPlans": sorted(disabled)} for sku, disabled in add_licenses
            ],
            "removeLicenses": list(remove_licenses),
        }
        url = f"/users/{user_id}/assignLicense"
        return cls(key or f"{user_id}:assignLicense", "POST", url, body, after)

    def applied(self, user: Mapping[str, Any]) -> bool:
        """Whether `user` (Graph JSON with `licenseAssignmentStates`) already shows this
        assignLicense: each added SKU assigned directly with exactly its disabled plans, each
        removed SKU no longer assigned directly. False for other jobs or without the states."""
        states = user.get("licenseAssignmentStates")
        if not self.url.endswith("/assignLicense") or not isinstance(states, list):
            return False
        direct = {
            str(s.get("skuId", "")).lower(): sorted(str(p).lower() for p in s["disabledPlans"])
            for s in states
            if s.get("assignedByGroup") is None and isinstance(s.get("disabledPlans"), list)
        }
        adds_ok = all(
            direct.get(a["skuId"].lower()) == sorted(p.lower() for p in a["disabledPlans"])
            for a in self.body["addLicenses"]
        )
        return adds_ok and not any(sku.lower() in direct for sku in self.body["removeLicenses"])

    @property
    def user_id(self) -> str:
        """The user a `/users/{id}/…` job writes to."""
        return self.url.split("/")[2]

    @classmethod
    def set_usage_location(cls, user_id: str, country: str, *, key: str | None = None) -> WriteJob:
        """`PATCH /users/{id}` setting `usageLocation` (must precede assignLicense)."""
        body = {"usageLocation": country}
        return cls(key or f"{user_id}:usageLocation", "PATCH", f"/users/{user_id}", body)


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """What became of one job."""

    key: str
    action: Action
    status: int | None
    license_error: LicenseError | None
    message: str
    request_id: str | None
    attempts: int
    reason: str = ""
    body: Any = None  # the success body (assignLicense returns the user)

    @property
    def ok(self) -> bool:
        return self.action is Action.SUCCESS

    @classmethod
    def from_verdict(
        cls, key: str, verdict: Verdict, attempts: int, body: Any = None
    ) -> WriteOutcome:
        return cls(
            key=key,
            action=verdict.action,
            status=verdict.status,
            license_error=verdict.license_error,
            message=verdict.message,
            request_id=verdict.request_id,
            attempts=attempts,
            reason=verdict.reason,
            body=body,
        )


class _Batcher:
    """Packs ready items into `$batch` envelopes of up to 20 and resolves one future each.

    `in_flight` senders each take what is pending when the write budget is open, so envelopes
    fill up while the others are in flight or the budget is closed (after a 429), instead of
    leaving with the first item that became ready.
    """

    def __init__(
        self, client: GraphClient, budget: WriteBudget, in_flight: int, linger: float
    ) -> None:
        self._client = client
        self._budget = budget
        self._in_flight = in_flight
        self._linger = linger
        self._pending: deque[tuple[BatchRequest, asyncio.Future[BatchItemResponse]]] = deque()
        self._ready = asyncio.Event()
        self._senders: list[asyncio.Task[None]] = []
        self.envelopes = 0

    def submit(self, request: BatchRequest) -> asyncio.Future[BatchItemResponse]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[BatchItemResponse] = loop.create_future()
        self._pending.append((request, future))
        self._ready.set()
        if not self._senders:
            self._senders = [loop.create_task(self._sender()) for _ in range(self._in_flight)]
        return future

    async def aclose(self) -> None:
        """Stop the senders (all futures are resolved by then)."""
        for task in self._senders:
            task.cancel()
        await asyncio.gather(*self._senders, return_exceptions=True)
        self._fail(list(self._pending), RuntimeError("the batcher was closed"))

    async def _sender(self) -> None:
        while True:
            await self._ready.wait()
            if self._linger > 0 and len(self._pending) < MAX_BATCH_SIZE:
                await asyncio.sleep(self._linger)
            await self._budget.wait_open()
            chunk = []
            while self._pending and len(chunk) < MAX_BATCH_SIZE:
                entry = self._pending.popleft()
                if not entry[1].done():
                    chunk.append(entry)
            if not self._pending:
                self._ready.clear()
            if chunk:
                await self._send(chunk)

    async def _send(
        self, chunk: list[tuple[BatchRequest, asyncio.Future[BatchItemResponse]]]
    ) -> None:
        try:
            await self._budget.acquire(len(chunk))
            self.envelopes += 1
            body = build_batch_body([request for request, _ in chunk])
            try:
                response = await self._client.send("POST", "$batch", json=body)
            except httpx.TransportError as exc:
                verdict = classify_exception(exc)
                message = f"POST $batch: {verdict.describe()}"
                self._fail(chunk, GraphTransientError(message, verdict))
                return
            if response.verdict.action is not Action.SUCCESS:
                if response.verdict.action is Action.THROTTLED:
                    self._budget.throttled(response.verdict.retry_after)
                self._fail(chunk, to_error(response.verdict, "POST $batch"))
                return
            items = parse_batch_response(response.body)
            for request, future in chunk:
                item = items.get(request.id)
                if future.done():
                    continue
                if item is None:
                    verdict = Verdict(Action.RETRY, None, "MissingResponse", "not in envelope")
                    future.set_exception(to_error(verdict, f"$batch item {request.id}"))
                else:
                    future.set_result(item)
        except BaseException as exc:  # never leave a job waiting forever
            self._fail(chunk, exc)
            if not isinstance(exc, Exception):
                raise

    @staticmethod
    def _fail(
        chunk: list[tuple[BatchRequest, asyncio.Future[BatchItemResponse]]], exc: BaseException
    ) -> None:
        for _, future in chunk:
            if not future.done():
                future.set_exception(exc)


async def send_writes(
    client: GraphClient,
    jobs: Sequence[WriteJob],
    budget: WriteBudget,
    policy: RetryPolicy | None = None,
    *,
    max_batches_in_flight: int | None = None,
    linger: float = 0.0,
) -> list[WriteOutcome]:
    """Send `jobs` through `$batch`; one outcome per job, in the jobs' order.

    A job whose `after` job did not succeed, or that was not yet sent when a fatal answer
    arrived, gets an outcome with `Action.SKIPPED`.
    """
    _check_jobs(jobs)
    policy = policy or client.policy
    in_flight = max_batches_in_flight or client.max_batches_in_flight
    batcher = _Batcher(client, budget, in_flight, linger)
    done: dict[str, asyncio.Event] = {job.key: asyncio.Event() for job in jobs}
    outcomes: dict[str, WriteOutcome] = {}
    stopped = asyncio.Event()

    async def run(position: int, job: WriteJob) -> WriteOutcome:
        if job.after is not None:
            await done[job.after].wait()
            before = outcomes[job.after]
            if not before.ok:
                return _skipped(job, f"not sent: {job.after} did not succeed ({before.action})")
        attempts = 0
        unknown = False  # an attempt failed in a way that may have applied the write anyway

        def count(n: int) -> None:
            nonlocal attempts
            attempts = n

        async def attempt() -> tuple[Verdict, Any]:
            nonlocal unknown
            if stopped.is_set():
                return Verdict(Action.SKIPPED, None, "", "not sent: the run stopped"), None
            request = BatchRequest(str(position), job.method, job.url, job.body)
            try:
                item = await batcher.submit(request)
            except GraphError as exc:
                unknown = unknown or _maybe_applied(exc.verdict)
                raise
            verdict = classify(item.status, item.headers, item.body)
            unknown = unknown or _maybe_applied(verdict)
            if verdict.action is Action.THROTTLED:
                budget.throttled(verdict.retry_after)
            elif verdict.action is Action.SUCCESS:
                budget.succeeded()
            if verdict.action in _RETRYABLE:
                raise to_error(verdict, f"{job.method} {job.url}")
            return verdict, item.body

        try:
            verdict, body = await policy.call(attempt, what=job.key, on_attempt=count)
        except GraphError as exc:
            verdict, body = exc.verdict or classify_exception(exc), None
        if verdict.action is Action.PROBLEM and unknown:
            verdict, body = await _confirm(client, job, verdict, body)
        if verdict.action is Action.FATAL:
            stopped.set()
        return WriteOutcome.from_verdict(job.key, verdict, attempts, body)

    queue: asyncio.Queue[int] = asyncio.Queue()
    for position in range(len(jobs)):
        queue.put_nowait(position)

    async def worker() -> None:
        while not queue.empty():
            position = queue.get_nowait()
            job = jobs[position]
            try:
                outcome = await run(position, job)
            except Exception as exc:  # a bug or an unexpected error: record it, stop sending
                stopped.set()
                outcome = WriteOutcome.from_verdict(job.key, classify_exception(exc), 0)
            outcomes[job.key] = outcome
            done[job.key].set()
            _log(job, outcome)

    workers = min(len(jobs), in_flight * MAX_BATCH_SIZE * 2)
    try:
        await asyncio.gather(*(worker() for _ in range(workers)))
    finally:
        await batcher.aclose()
    return [outcomes[job.key] for job in jobs]


def _maybe_applied(verdict: Verdict | None) -> bool:
    """A 5xx, a transport error or a missing item: Graph may have applied the write."""
    return verdict is not None and verdict.action is Action.RETRY


async def _confirm(
    client: GraphClient, job: WriteJob, verdict: Verdict, body: Any
) -> tuple[Verdict, Any]:
    """`verdict` refused a retry; if the user shows the write's effect, an earlier attempt
    applied it: success. Otherwise (or if the user cannot be read) the refusal stands."""
    if not job.url.endswith("/assignLicense"):
        return verdict, body
    try:
        user = await client.get_json(f"/users/{job.user_id}", {"$select": CONFIRM_SELECT})
    except GraphError:
        return verdict, body
    if not job.applied(user):
        return verdict, body
    reason = f"applied by an earlier attempt whose answer was lost (retry got {verdict.status})"
    return Verdict(Action.SUCCESS, 200, request_id=verdict.request_id, reason=reason), user


def _check_jobs(jobs: Sequence[WriteJob]) -> None:
    index: dict[str, int] = {}
    for position, job in enumerate(jobs):
        if job.key in index:
            raise ValueError(f"write job keys must be unique, {job.key!r} repeats")
        if job.after is not None and job.after not in index:
            raise ValueError(f"job {job.key!r} depends on {job.after!r}, which must come earlier")
        index[job.key] = position


def _skipped(job: WriteJob, message: str) -> WriteOutcome:
    return WriteOutcome(job.key, Action.SKIPPED, None, None, message, None, 0)


def _log(job: WriteJob, outcome: WriteOutcome) -> None:
    event = log.info if outcome.ok else log.warning
    event(
        "graph.write",
        key=job.key,
        method=job.method,
        url=job.url,
        outcome=str(outcome.action),
        status=outcome.status,
        license_error=str(outcome.license_error) if outcome.license_error else None,
        message=outcome.message or None,
        request_id=outcome.request_id,
        attempts=outcome.attempts,
    )
