"""Send writes (assignLicense, PATCH usageLocation …) in `$batch` envelopes, item by item.

Each job runs under the retry policy on its own: it is put into the next `$batch` with free
room, its inner response goes through the classifier, and only a throttled or transient item
is re-queued, with its own attempt count and its own Retry-After. Permanent failures become
outcomes. The write budget is consulted before each `$batch`; at most `max_batches_in_flight`
envelopes are in flight (by default `envelopes_to_fill`: enough to keep the write rate going
when an envelope takes 2 s). After a fatal answer no further job is sent.

A 403 the caller's rules make a per-object problem (a user Graph will not let this app change)
is that job's outcome; but `max_consecutive_denials` such refusals in a row (no success
between them; each job is answered once, so they concern distinct objects) mean the app itself
lacks a permission: that answer becomes fatal, naming the permission to grant.

A 5xx, a missing item or a dropped connection leaves it unknown whether Graph applied the write.
Some writes are not idempotent (assignLicense refuses to remove a SKU the user no longer has),
so when a job after such an attempt is refused or runs out of retries, the object is read back
(`WriteJob.confirmation`): if the write's effect is there (`WriteJob.applied`), the job
succeeded (an earlier attempt applied it and its answer was lost). A fatal answer also cuts
short the retry waits of other jobs: they keep their last answer.

Jobs are typed values of the caller's (`licsync.connector.licence_writes`); the method, url and
JSON body are rendered only when the `$batch` item is built. The caller's own classification
rows (`rules`) are tried before the generic table.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from licsync.graph.batch import (
    MAX_BATCH_SIZE,
    BatchRequest,
    build_batch_body,
    parse_batch_response,
)
from licsync.graph.budget import WriteBudget, envelopes_to_fill
from licsync.graph.classify import (
    Action,
    Rule,
    Verdict,
    classify,
    classify_exception,
    to_error,
)
from licsync.graph.errors import GraphError
from licsync.graph.permissions import missing_permission_hint
from licsync.graph.retry import RetryPolicy, Sleep
from licsync.outcomes import WriteOutcome

if TYPE_CHECKING:
    from licsync.graph.client import GraphClient

log = structlog.get_logger("licsync.graph")

_RETRYABLE = (Action.THROTTLED, Action.RETRY, Action.AUTH)
_CONFIRMABLE = (*_RETRYABLE, Action.PROBLEM)  # worth a read-back after a lost answer


class WriteJob(Protocol):
    """One write: `key` is unique in a call; `subject` is the id of the object it changes (a
    user); `after` names a job that must succeed first."""

    @property
    def key(self) -> str: ...

    @property
    def subject(self) -> str: ...

    @property
    def after(self) -> str | None: ...

    def request(self) -> tuple[str, str, Any]:
        """(method, url relative to the version root, JSON body)."""
        ...

    def confirmation(self) -> tuple[str, dict[str, str | int]] | None:
        """The GET (path, query) that shows whether the write took effect; None: none."""
        ...

    def applied(self, found: Mapping[str, Any]) -> bool:
        """Whether `found` (the confirmation's answer) already shows this write."""
        ...


_OUTCOMES = {Action.SUCCESS: WriteOutcome.APPLIED, Action.SKIPPED: WriteOutcome.SKIPPED}


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What became of one job: Graph's last answer (`action`…) and what the write did
    (`outcome`). `subject` is the job's."""

    key: str
    action: Action
    status: int | None
    error_type: Enum | None
    message: str
    request_id: str | None
    attempts: int
    reason: str = ""
    body: Any = None  # the success body (assignLicense returns the user)
    subject: str = ""

    @property
    def ok(self) -> bool:
        return self.action is Action.SUCCESS

    @property
    def outcome(self) -> WriteOutcome:
        """A success applied the write, a job never sent skipped it, any other answer failed."""
        return _OUTCOMES.get(self.action, WriteOutcome.FAILED)

    @property
    def failure(self) -> str:
        """Why the write was not applied, in Graph's words when it gave any."""
        return self.message or f"the write was not applied ({self.action})"

    @classmethod
    def from_verdict(
        cls, job: WriteJob, verdict: Verdict, attempts: int, body: Any = None
    ) -> WriteResult:
        return cls(
            key=job.key,
            subject=job.subject,
            action=verdict.action,
            status=verdict.status,
            error_type=verdict.error_type,
            message=verdict.message,
            request_id=verdict.request_id,
            attempts=attempts,
            reason=verdict.reason,
            body=body,
        )


Halt = Callable[[], str | None]  # before each envelope: a reason to send nothing more, or None
OnOutcome = Callable[[WriteJob, WriteResult], None]

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

    def __init__(
        self,
        client: GraphClient,
        budget: WriteBudget,
        in_flight: int,
        rules: Sequence[Rule],
        halt: Halt | None = None,
        denials: _Denials | None = None,
    ) -> None:
        self._client = client
        self._rules = rules
        self._halt = halt
        self._denials = denials or _Denials(0)
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
            chunk: list[_Pending] = []
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
            reason = self._halt() if self._halt is not None else None
            if reason is not None:  # the caller's fence: nothing more may be sent
                log.warning("graph.writes_halted", reason=reason)
                halted = Verdict(Action.SKIPPED, None, "", f"not sent: {reason}")
                _settle(chunk, [(halted, None)] * len(chunk))
                self.stop()
                return
            requests = [request for request, _ in chunk]
            answers = self._denials.judge(requests, await self._post(requests))
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
            verdict = (
                _MISSING
                if item is None
                else classify(item.status, item.headers, item.body, self._rules)
            )
            if verdict.action is Action.THROTTLED:
                self._budget.throttled(verdict.retry_after)
            elif verdict.action is Action.SUCCESS:
                self._budget.succeeded()
            answers.append((verdict, item.body if item else None))
        return answers


@dataclass
class _Denials:
    """Counts writes refused with 403 as a per-object problem, in a row (a success resets the
    count); the `limit`-th becomes fatal (0: never)."""

    limit: int
    in_a_row: int = 0

    def judge(
        self, requests: Sequence[BatchRequest], answers: list[tuple[Verdict, Any]]
    ) -> list[tuple[Verdict, Any]]:
        judged = []
        for request, (verdict, body) in zip(requests, answers, strict=True):
            if verdict.status == 403 and verdict.action is Action.PROBLEM:
                self.in_a_row += 1
                if self.limit and self.in_a_row >= self.limit:
                    verdict = self._fatal(request, verdict)
            elif verdict.action is Action.SUCCESS:
                self.in_a_row = 0
            judged.append((verdict, body))
        return judged

    def _fatal(self, request: BatchRequest, verdict: Verdict) -> Verdict:
        hint = missing_permission_hint(f"{request.method} {request.url}")
        message = (
            f"{verdict.message} ({self.in_a_row} writes to distinct users refused with 403 in "
            f"a row: {hint}; [graph] max_consecutive_denials sets how many)"
        )
        return replace(verdict, action=Action.FATAL, message=message, reason="permission missing")


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
    rules: Sequence[Rule] = (),
    max_batches_in_flight: int | None = None,
    halt: Halt | None = None,
    on_outcome: OnOutcome | None = None,
    max_consecutive_denials: int | None = None,
) -> list[WriteResult]:
    """Send `jobs` through `$batch`; one outcome per job, in the jobs' order.
    `max_consecutive_denials` defaults to the client's (see the module docstring).

    A job whose `after` job did not succeed, or that was not yet sent when a fatal answer
    arrived, gets an outcome with `Action.SKIPPED`; a retry wait is cut short by a fatal
    answer (the job keeps its last answer). An exception that is not a Graph answer (a bug in a
    job, or `on_outcome` failing) is never taken for one: sending stops and it is raised once
    the jobs in flight have ended.
    """
    _check_jobs(jobs)
    in_flight = (
        max_batches_in_flight
        or client.max_batches_in_flight
        or envelopes_to_fill(budget.target_rate)
    )
    limit = client.max_consecutive_denials
    if max_consecutive_denials is not None:
        limit = max_consecutive_denials
    batcher = _Batcher(client, budget, in_flight, rules, halt, _Denials(limit))
    failures: list[Exception] = []  # raised once every job has ended: the first one
    base = policy or client.policy
    policy = replace(base, sleep=_stoppable(batcher.stopped, base.sleep))
    done: dict[str, asyncio.Event] = {job.key: asyncio.Event() for job in jobs}
    outcomes: dict[str, WriteResult] = {}

    async def run(position: int, job: WriteJob) -> WriteResult:
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
            except Exception as exc:  # a bug, not Graph's answer: stop sending, then raise it
                failures.append(exc)
                batcher.stop()
                outcome = _skipped(job, f"not sent: {type(exc).__name__}")
            outcomes[job.key] = outcome
            done[job.key].set()
            if on_outcome is not None and not failures:
                try:
                    on_outcome(job, outcome)
                except Exception as exc:  # the caller could not keep the outcome: stop sending
                    failures.append(exc)
                    batcher.stop()

    workers = min(len(jobs), in_flight * MAX_BATCH_SIZE * 2)
    try:
        await asyncio.gather(*(worker() for _ in range(workers)))
    finally:
        await batcher.aclose()
    if failures:
        raise failures[0]
    return [outcomes[job.key] for job in jobs]


async def _run_job(
    client: GraphClient, batcher: _Batcher, policy: RetryPolicy, job: WriteJob, item_id: str
) -> WriteResult:
    """Send `job` as `$batch` item `item_id` under `policy`; read the user back if an attempt
    whose answer was lost may have applied it and the job did not end in success."""
    method, url, body = job.request()
    request = BatchRequest(item_id, method, url, body)
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
            raise to_error(verdict, f"{method} {url}")
        return verdict, body

    try:
        verdict, body = await policy.call(attempt, what=job.key)
    except GraphError:
        verdict, body = last
    finally:
        batcher.release(item_id)
    if unknown and verdict.action in _CONFIRMABLE and not batcher.stopped.is_set():
        verdict, body = await _confirm(client, policy, job, verdict, body)
    return WriteResult.from_verdict(job, verdict, attempts, body)


def _stoppable(stopped: asyncio.Event, sleep: Sleep) -> Sleep:
    """`sleep`, cut short when `stopped` is set."""

    async def stoppable(seconds: float) -> None:
        await _unless_set(stopped, lambda: sleep(seconds))

    return stoppable


def _maybe_applied(verdict: Verdict) -> bool:
    """A 5xx, a transport error or a missing item: Graph may have applied the write."""
    return verdict.action is Action.RETRY


async def _confirm(
    client: GraphClient, policy: RetryPolicy, job: WriteJob, verdict: Verdict, body: Any
) -> tuple[Verdict, Any]:
    """`verdict` ended a job after an attempt whose answer was lost; if the object shows the
    write's effect, that attempt applied it: success. The object is read again until it does
    or the policy's replication wait is over (a replica may still serve the version before the
    write); otherwise (or if it cannot be read) the verdict stands."""
    confirmation = job.confirmation()
    if confirmation is None:
        return verdict, body
    found: Any = None

    async def shows_write() -> bool:
        nonlocal found
        found = await client.get_json(*confirmation)
        return job.applied(found)

    try:
        applied = await policy.until_replicated(shows_write, what=f"read-back of {job.key}")
    except GraphError:
        return verdict, body
    if not applied:
        return verdict, body
    reason = f"applied by an earlier attempt whose answer was lost (then {verdict.describe()})"
    return Verdict(Action.SUCCESS, 200, request_id=verdict.request_id, reason=reason), found


def _check_jobs(jobs: Sequence[WriteJob]) -> None:
    index: dict[str, int] = {}
    for position, job in enumerate(jobs):
        if job.key in index:
            raise ValueError(f"write job keys must be unique, {job.key!r} repeats")
        if job.after is not None and job.after not in index:
            raise ValueError(f"job {job.key!r} depends on {job.after!r}, which must come earlier")
        index[job.key] = position


def _skipped(job: WriteJob, message: str) -> WriteResult:
    return WriteResult(job.key, Action.SKIPPED, None, None, message, None, 0, subject=job.subject)
