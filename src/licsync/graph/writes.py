"""Send writes (assignLicense, PATCH usageLocation …) in `$batch` envelopes, item by item.

Each job runs under the retry policy on its own: it is put into the next `$batch` with free
room, its inner response goes through the classifier, and only a throttled or transient item
is re-queued, with its own attempt count and its own Retry-After. Permanent failures become
outcomes. The write budget is consulted before each `$batch`; at most `max_batches_in_flight`
envelopes are in flight. After a fatal answer (403 …) no further job is sent.

A 5xx, a missing item or a dropped connection leaves it unknown whether Graph applied the write.
assignLicense is not idempotent for removals (removing a SKU the user no longer has is a 400), so
when a job after such an attempt is refused or runs out of retries, the user is read back: if
the write's effect is there, the job succeeded (an earlier attempt applied it and its answer was
lost). A fatal answer also cuts short the retry waits of other jobs: they keep their last answer.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import structlog

from licsync.graph.batch import (
    MAX_BATCH_SIZE,
    BatchRequest,
    build_batch_body,
    parse_batch_response,
)
from licsync.graph.budget import WriteBudget
from licsync.graph.classify import Action, Verdict, classify, classify_exception, to_error
from licsync.graph.client import GraphClient
from licsync.graph.errors import GraphError
from licsync.graph.retry import RetryPolicy, Sleep
from licsync.model import LicenseError

log = structlog.get_logger("licsync.graph")

_RETRYABLE = (Action.THROTTLED, Action.RETRY, Action.AUTH)
_CONFIRMABLE = (*_RETRYABLE, Action.PROBLEM)  # worth a read-back after a lost answer
CONFIRM_SELECT = "id,assignedLicenses,licenseAssignmentStates"


def assign_key(user_id: str) -> str:
    """The default key of a user's assignLicense job."""
    return f"{user_id}:assignLicense"


def location_key(user_id: str) -> str:
    """The default key of a user's usageLocation job."""
    return f"{user_id}:usageLocation"


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
        return cls(key or assign_key(user_id), "POST", url, body, after)

    def applied(self, user: Mapping[str, Any]) -> bool:
        """Whether `user` (Graph JSON with `licenseAssignmentStates`) already shows this
        assignLicense: each added SKU assigned directly with exactly its disabled plans, each
        removed SKU no longer assigned directly. False for other jobs or without the states."""
        states = user.get("licenseAssignmentStates")
        if not self.url.endswith("/assignLicense") or not isinstance(states, list):
            return False
        direct = {
            str(s.get("skuId", "")).lower(): _lowered(s.get("disabledPlans"))
            for s in states
            if isinstance(s, dict) and s.get("assignedByGroup") is None
        }
        adds_ok = all(
            direct.get(a["skuId"].lower()) == _lowered(a["disabledPlans"])
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
        return cls(key or location_key(user_id), "PATCH", f"/users/{user_id}", body)


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

    @property
    def failure(self) -> str:
        """Why the write was not applied, in Graph's words when it gave any."""
        return self.message or f"the write was not applied ({self.action})"

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


_Pending = tuple[BatchRequest, "asyncio.Future[tuple[Verdict, Any]]"]
_STOPPED = Verdict(Action.SKIPPED, None, "", "not sent: the run stopped")
_MISSING = Verdict(Action.RETRY, None, "MissingResponse", "not in the $batch answer")


class _Batcher:
    """Packs ready items into `$batch` envelopes and resolves one future per item with its
    verdict and body; also tells the write budget what Graph answered.

    `in_flight` senders each take what is pending when the write budget is open, so envelopes
    fill up while the others are in flight or the budget is closed (after a 429). Senders also
    wait until every item throttled with a Retry-After is back (or its job ended), so items
    throttled together are retried together. An envelope holds at most 20
    items and never more than the budget's burst. A fatal answer (403 …) stops the batcher:
    pending items and items waiting for the budget are never sent.
    """

    def __init__(self, client: GraphClient, budget: WriteBudget, in_flight: int) -> None:
        self._client = client
        self._budget = budget
        self._in_flight = in_flight
        self._size = max(1, min(MAX_BATCH_SIZE, int(budget.burst)))
        self._pending: deque[_Pending] = deque()
        self._ready = asyncio.Event()
        self._senders: list[asyncio.Task[None]] = []
        self._returning: set[str] = set()  # items throttled with a Retry-After, not yet back
        self._rejoined = asyncio.Event()
        self._rejoined.set()
        self.stopped = asyncio.Event()

    def submit(self, request: BatchRequest) -> asyncio.Future[tuple[Verdict, Any]]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[Verdict, Any]] = loop.create_future()
        if self.stopped.is_set():
            future.set_result((_STOPPED, None))
            return future
        self.release(request.id)
        self._pending.append((request, future))
        self._ready.set()
        if not self._senders:
            self._senders = [loop.create_task(self._sender()) for _ in range(self._in_flight)]
        return future

    def release(self, item_id: str) -> None:
        """`item_id` is back in the queue or its job ended: senders need not wait for it."""
        self._returning.discard(item_id)
        if not self._returning:
            self._rejoined.set()

    def stop(self) -> None:
        """Send nothing more: pending items end as skipped."""
        self.stopped.set()
        self._rejoined.set()
        _settle(list(self._pending), [(_STOPPED, None)] * len(self._pending))
        self._pending.clear()

    async def aclose(self) -> None:
        """Stop the senders (all futures are resolved by then)."""
        self.stop()
        for task in self._senders:
            task.cancel()
        await asyncio.gather(*self._senders, return_exceptions=True)

    async def _sender(self) -> None:
        while True:
            await self._ready.wait()
            await self._budget.wait_open()
            await self._rejoined.wait()
            chunk = []
            while self._pending and len(chunk) < self._size:
                entry = self._pending.popleft()
                if not entry[1].done():
                    chunk.append(entry)
            if not self._pending:
                self._ready.clear()
            if chunk:
                await self._send(chunk)

    async def _send(self, chunk: list[_Pending]) -> None:
        try:
            if not await _unless_set(self.stopped, lambda: self._budget.acquire(len(chunk))):
                _settle(chunk, [(_STOPPED, None)] * len(chunk))
                return
            answers = await self._post([request for request, _ in chunk])
            self._track_returning(chunk, answers)
            if any(verdict.action is Action.FATAL for verdict, _ in answers):
                self.stop()
            _settle(chunk, answers)
        except BaseException as exc:  # never leave a job waiting forever
            for _, future in chunk:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise

    def _track_returning(self, chunk: list[_Pending], answers: list[tuple[Verdict, Any]]) -> None:
        for (request, _), (verdict, _) in zip(chunk, answers, strict=True):
            if verdict.action is Action.THROTTLED and verdict.retry_after is not None:
                self._returning.add(request.id)
                self._rejoined.clear()

    async def _post(self, requests: list[BatchRequest]) -> list[tuple[Verdict, Any]]:
        """One `$batch`: each item's verdict and body (the envelope's verdict if it failed)."""
        try:
            answer = await self._client.attempt_json(
                "POST", "$batch", json=build_batch_body(requests)
            )
        except GraphError as exc:
            verdict = exc.verdict or classify_exception(exc)
            if verdict.action is Action.THROTTLED:
                self._budget.throttled(verdict.retry_after)
            return [(verdict, None)] * len(requests)
        items = parse_batch_response(answer)
        answers = []
        for request in requests:
            item = items.get(request.id)
            verdict = _MISSING if item is None else classify(item.status, item.headers, item.body)
            if verdict.action is Action.THROTTLED:
                self._budget.throttled(verdict.retry_after)
            elif verdict.action is Action.SUCCESS:
                self._budget.succeeded()
            answers.append((verdict, item.body if item else None))
        return answers


def _settle(chunk: list[_Pending], answers: list[tuple[Verdict, Any]]) -> None:
    for (_, future), answer in zip(chunk, answers, strict=True):
        if not future.done():
            future.set_result(answer)


async def _unless_set(event: asyncio.Event, start: Callable[[], Awaitable[object]]) -> bool:
    """Await `start()` unless `event` is set before it ends (it is then cancelled).

    True if it ran to the end with `event` still clear; its own error is raised."""
    if event.is_set():
        return False
    task = asyncio.ensure_future(start())
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait((task, waiter), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (task, waiter):
            pending.cancel()
        await asyncio.gather(task, waiter, return_exceptions=True)
    if not task.cancelled():
        task.result()
    return not event.is_set()


async def send_writes(
    client: GraphClient,
    jobs: Sequence[WriteJob],
    budget: WriteBudget,
    policy: RetryPolicy | None = None,
    *,
    max_batches_in_flight: int | None = None,
) -> list[WriteOutcome]:
    """Send `jobs` through `$batch`; one outcome per job, in the jobs' order.

    A job whose `after` job did not succeed, or that was not yet sent when a fatal answer
    arrived, gets an outcome with `Action.SKIPPED`; a retry wait is cut short by a fatal
    answer (the job keeps its last answer).
    """
    _check_jobs(jobs)
    in_flight = max_batches_in_flight or client.max_batches_in_flight
    batcher = _Batcher(client, budget, in_flight)
    base = policy or client.policy
    policy = replace(base, sleep=_stoppable(batcher.stopped, base.sleep))
    done: dict[str, asyncio.Event] = {job.key: asyncio.Event() for job in jobs}
    outcomes: dict[str, WriteOutcome] = {}

    async def run(position: int, job: WriteJob) -> WriteOutcome:
        if job.after is not None:
            await done[job.after].wait()
            before = outcomes[job.after]
            if not before.ok:
                return _skipped(job, f"not sent: {job.after} did not succeed ({before.action})")
        return await _run_job(client, batcher, policy, job, str(position))

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
                batcher.stop()
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


async def _run_job(
    client: GraphClient, batcher: _Batcher, policy: RetryPolicy, job: WriteJob, item_id: str
) -> WriteOutcome:
    """Send `job` as `$batch` item `item_id` under `policy`; read the user back if an attempt
    whose answer was lost may have applied it and the job did not end in success."""
    request = BatchRequest(item_id, job.method, job.url, job.body)
    attempts = 0
    unknown = False  # an attempt failed in a way that may have applied the write anyway
    last: tuple[Verdict, Any] = (_STOPPED, None)

    async def attempt() -> tuple[Verdict, Any]:
        nonlocal attempts, unknown, last
        if batcher.stopped.is_set():
            return last  # a fatal answer arrived while this job waited to retry
        attempts += 1
        verdict, body = last = await batcher.submit(request)
        unknown = unknown or _maybe_applied(verdict)
        if verdict.action in _RETRYABLE:
            raise to_error(verdict, f"{job.method} {job.url}")
        return verdict, body

    try:
        verdict, body = await policy.call(attempt, what=job.key)
    except GraphError:
        verdict, body = last
    finally:
        batcher.release(item_id)
    if unknown and verdict.action in _CONFIRMABLE and not batcher.stopped.is_set():
        verdict, body = await _confirm(client, job, verdict, body)
    return WriteOutcome.from_verdict(job.key, verdict, attempts, body)


def _stoppable(stopped: asyncio.Event, sleep: Sleep) -> Sleep:
    """`sleep`, cut short when `stopped` is set."""

    async def stoppable(seconds: float) -> None:
        await _unless_set(stopped, lambda: sleep(seconds))

    return stoppable


def _maybe_applied(verdict: Verdict) -> bool:
    """A 5xx, a transport error or a missing item: Graph may have applied the write."""
    return verdict.action is Action.RETRY


async def _confirm(
    client: GraphClient, job: WriteJob, verdict: Verdict, body: Any
) -> tuple[Verdict, Any]:
    """`verdict` ended a job after an attempt whose answer was lost; if the user shows the
    write's effect, that attempt applied it: success. Otherwise (or if the user cannot be
    read) the verdict stands."""
    if not job.url.endswith("/assignLicense"):
        return verdict, body
    try:
        user = await client.get_json(f"/users/{job.user_id}", {"$select": CONFIRM_SELECT})
    except GraphError:
        return verdict, body
    if not job.applied(user):
        return verdict, body
    reason = f"applied by an earlier attempt whose answer was lost (then {verdict.describe()})"
    return Verdict(Action.SUCCESS, 200, request_id=verdict.request_id, reason=reason), user


def _lowered(ids: Any) -> frozenset[str] | None:
    """GUIDs compared case-insensitively; None when Graph sent no list."""
    return frozenset(str(i).lower() for i in ids) if isinstance(ids, list) else None


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
        user=job.user_id,
        method=job.method,
        url=job.url,
        outcome=str(outcome.action),
        status=outcome.status,
        license_error=str(outcome.license_error) if outcome.license_error else None,
        message=outcome.message or None,
        request_id=outcome.request_id,
        attempts=outcome.attempts,
    )
