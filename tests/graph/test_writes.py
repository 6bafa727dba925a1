"""$batch bodies and per-item handling of writes."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
import respx
from structlog.testing import capture_logs

from licsync.connector.licence_writes import AssignLicense, SetUsageLocation, send_licence_writes
from licsync.graph.batch import BatchRequest, build_batch_body, parse_batch_response
from licsync.graph.budget import WriteBudget
from licsync.graph.classify import Action
from licsync.graph.client import GraphClient
from licsync.graph.retry import RetryPolicy
from licsync.graph.writes import send_writes
from licsync.model import Assignment, LicenseError
from licsync.outcomes import WriteOutcome
from tests.graph.fakes import LOOPBACK, FakeClock

SKU = "84a661c4-e949-4bd2-a560-ed7766fcaf2b"
PLAN = "8a256a2b-b617-496d-b51b-e76466e88db0"
Item = dict[str, Any]
Answer = Callable[[Item, int], tuple[int, dict[str, str], Any]]


class FakeBatchEndpoint:
    """Answers `$batch` envelopes item by item, in reverse order, via `answer(item, attempt)`."""

    def __init__(
        self, answer: Answer, envelope: Callable[[int], httpx.Response | None] | None = None
    ):
        self.answer = answer
        self.envelope = envelope
        self.envelopes: list[list[Item]] = []
        self.attempts: Counter[str] = Counter()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path.endswith("/$batch")
        assert request.headers["content-type"] == "application/json"
        items = orjson.loads(request.content)["requests"]
        self.envelopes.append(items)
        if self.envelope is not None and (special := self.envelope(len(self.envelopes))):
            return special
        responses = []
        for item in reversed(items):
            self.attempts[item["url"]] += 1
            status, headers, body = self.answer(item, self.attempts[item["url"]])
            responses.append({"id": item["id"], "status": status, "headers": headers, "body": body})
        return httpx.Response(200, json={"responses": responses})


def ok(item: Item, attempt: int) -> tuple[int, dict[str, str], Any]:
    user = item["url"].split("/")[2]
    return 200, {"Content-Type": "application/json"}, {"id": user, "assignedLicenses": []}


def assign(
    user: str, add: Any = (), remove: Any = (), *, after: str | None = None
) -> AssignLicense:
    """An assignLicense job from (sku, disabled plans) pairs and removed SKU ids."""
    adds = tuple(Assignment(sku, frozenset(plans)) for sku, plans in add)
    return AssignLicense(user, adds, tuple(remove), after=after)


def jobs_for(n: int) -> list[AssignLicense]:
    return [assign(f"user-{i}", [(SKU, [PLAN])], []) for i in range(n)]


METHOD_NOT_ALLOWED = {
    "error": {
        "code": "Request_BadRequest",
        "message": "Specified HTTP method is not allowed for the request target.",
    }
}


def run(client: GraphClient, jobs: list[Any], clock: FakeClock, **kwargs: Any) -> list:
    bucket = kwargs.pop("budget", None) or WriteBudget(20, clock=clock, sleep=clock.sleep)
    return asyncio.run(send_licence_writes(client, jobs, bucket, **kwargs))


def test_batch_body_shape() -> None:
    body = build_batch_body(
        [
            BatchRequest(
                "1", "post", "/users/u/assignLicense", {"addLicenses": [], "removeLicenses": []}
            )
        ]
    )
    assert body == {
        "requests": [
            {
                "id": "1",
                "method": "POST",
                "url": "/users/u/assignLicense",
                "body": {"addLicenses": [], "removeLicenses": []},
                "headers": {"Content-Type": "application/json"},
            }
        ]
    }
    with pytest.raises(ValueError, match="at most 20"):
        build_batch_body([BatchRequest(str(i), "GET", "/users") for i in range(21)])
    with pytest.raises(ValueError, match="unique"):
        build_batch_body([BatchRequest("1", "GET", "/users"), BatchRequest("1", "GET", "/groups")])
    with pytest.raises(ValueError, match="relative"):
        build_batch_body([BatchRequest("1", "GET", "https://graph.microsoft.com/v1.0/users")])


def test_parse_sample_envelope_by_id(samples: Callable[[str], Any]) -> None:
    sample = samples("json_batch.json")
    items = parse_batch_response(sample["response"]["body"])
    assert sorted(items) == ["1", "2", "3", "4", "5"]
    assert items["3"].status == 403
    assert items["1"].headers["x-ms-resource-unit"] == "1"  # header names lower-cased


def test_envelopes_hold_at_most_20_relative_requests(
    make_client: Callable[..., GraphClient], clock: FakeClock
) -> None:
    endpoint = FakeBatchEndpoint(ok)
    outcomes = run(make_client(endpoint), jobs_for(45), clock)
    assert [len(e) for e in endpoint.envelopes] == [20, 20, 5]
    for envelope in endpoint.envelopes:
        assert len({item["id"] for item in envelope}) == len(envelope)
        for item in envelope:
            assert item["url"].startswith("/users/") and item["url"].endswith("/assignLicense")
            assert item["method"] == "POST"
            assert item["headers"] == {"Content-Type": "application/json"}
            assert item["body"] == {
                "addLicenses": [{"skuId": SKU, "disabledPlans": [PLAN]}],
                "removeLicenses": [],
            }
    assert all(o.ok and o.attempts == 1 for o in outcomes)


def test_out_of_order_responses_match_by_id(
    make_client: Callable[..., GraphClient], clock: FakeClock
) -> None:
    outcomes = run(make_client(FakeBatchEndpoint(ok)), jobs_for(7), clock)
    assert [o.key for o in outcomes] == [f"user-{i}:assignLicense" for i in range(7)]
    assert [o.body["id"] for o in outcomes] == [f"user-{i}" for i in range(7)]
    assert [o.subject for o in outcomes] == [f"user-{i}" for i in range(7)]
    assert {o.outcome for o in outcomes} == {WriteOutcome.APPLIED}


def test_item_429_is_retried_alone_after_its_retry_after(
    make_client: Callable[..., GraphClient], clock: FakeClock, samples: Callable[[str], Any]
) -> None:
    throttle = samples("throttling_429.json")["variants"][1]

    def answer(item: Item, attempt: int) -> tuple[int, dict[str, str], Any]:
        if item["url"] == "/users/user-3/assignLicense" and attempt == 1:
            return 429, throttle["headers"], throttle["body"]
        return ok(item, attempt)

    endpoint = FakeBatchEndpoint(answer)
    bucket = WriteBudget(20, clock=clock, sleep=clock.sleep)
    policy_sleeps: list[float] = []
    client = make_client(endpoint)
    original = client.policy.sleep

    async def record(seconds: float) -> None:
        policy_sleeps.append(seconds)
        await original(seconds)

    from dataclasses import replace

    policy = replace(client.policy, sleep=record)
    with capture_logs() as logs:
        outcomes = run(client, jobs_for(10), clock, budget=bucket, policy=policy)
    assert [len(e) for e in endpoint.envelopes] == [10, 1]
    assert endpoint.envelopes[1][0]["url"] == "/users/user-3/assignLicense"
    assert policy_sleeps == [2.128]  # exactly Retry-After for that item
    assert {o.key: o.attempts for o in outcomes}["user-3:assignLicense"] == 2
    assert all(o.ok for o in outcomes)
    assert sum(o.attempts for o in outcomes) == 11
    assert bucket.rate < 20  # the budget slowed down
    writes = [e for e in logs if e["event"] == "licence.write"]
    assert len(writes) == 10
    assert all(e["user"] and e["url"] and e["outcome"] and "request_id" in e for e in writes)


def test_permanent_failures_become_outcomes(
    make_client: Callable[..., GraphClient], clock: FakeClock
) -> None:
    def answer(item: Item, attempt: int) -> tuple[int, dict[str, str], Any]:
        if item["url"] == "/users/user-1/assignLicense":
            body = {
                "error": {
                    "code": "Request_BadRequest",
                    "message": "Subscription 123 does not have any available licenses.",
                    "innerError": {"request-id": "rid-count"},
                }
            }
            return 400, {"Content-Type": "application/json"}, body
        return ok(item, attempt)

    endpoint = FakeBatchEndpoint(answer)
    outcomes = run(make_client(endpoint), jobs_for(3), clock)
    failed = outcomes[1]
    assert failed.action is Action.PROBLEM
    assert failed.error_type is LicenseError.COUNT_VIOLATION
    assert failed.request_id == "rid-count"
    assert failed.attempts == 1
    assert "available licenses" in failed.message
    assert len(endpoint.envelopes) == 1  # not re-sent
    assert outcomes[0].ok and outcomes[2].ok


def test_envelope_429_retries_every_item(
    make_client: Callable[..., GraphClient], clock: FakeClock
) -> None:
    def envelope(n: int) -> httpx.Response | None:
        return httpx.Response(429, headers={"Retry-After": "4"}) if n == 1 else None

    endpoint = FakeBatchEndpoint(ok, envelope)
    outcomes = run(make_client(endpoint), jobs_for(5), clock)
    assert [len(e) for e in endpoint.envelopes] == [5, 5]
    assert all(o.ok and o.attempts == 2 for o in outcomes)
    assert clock.now >= 4.0


def test_fatal_answer_stops_further_sends(
    make_client: Callable[..., GraphClient], clock: FakeClock
) -> None:
    def answer(item: Item, attempt: int) -> tuple[int, dict[str, str], Any]:
        return 405, {}, METHOD_NOT_ALLOWED

    endpoint = FakeBatchEndpoint(answer)
    outcomes = run(make_client(endpoint), jobs_for(60), clock, max_batches_in_flight=1)
    actions = Counter(o.action for o in outcomes)
    assert actions[Action.FATAL] == sum(len(e) for e in endpoint.envelopes)
    assert actions[Action.SKIPPED] == 60 - actions[Action.FATAL] > 0


DENIED = {
    "error": {
        "code": "Authorization_RequestDenied",
        "message": "Insufficient privileges to complete the operation.",
        "innerError": {"request-id": "93b6f17e-c05d-4f45-ad2a-6665c708d8a0"},
    }
}


def test_a_denied_user_is_a_problem_and_the_writes_go_on(
    make_client: Callable[..., GraphClient], clock: FakeClock
) -> None:
    """A 403 on one user's write (restricted management administrative unit) is that user's
    AccessDenied problem, with Graph's message and request id; everyone else is written."""

    def answer(item: Item, attempt: int) -> tuple[int, dict[str, str], Any]:
        return (403, {}, DENIED) if item["url"] == "/users/user-7/assignLicense" else ok(item, 1)

    outcomes = run(make_client(FakeBatchEndpoint(answer)), jobs_for(60), clock)
    assert Counter(o.action for o in outcomes) == {Action.SUCCESS: 59, Action.PROBLEM: 1}
    denied = outcomes[7]
    assert denied.error_type is LicenseError.ACCESS_DENIED
    assert denied.message == "Insufficient privileges to complete the operation."
    assert denied.request_id == "93b6f17e-c05d-4f45-ad2a-6665c708d8a0"


def test_denials_in_a_row_stop_the_writes_naming_the_permission(
    make_client: Callable[..., GraphClient], clock: FakeClock
) -> None:
    """An app without the permission is refused on every user: after `max_consecutive_denials`
    refusals in a row the writes stop, the message names the permission to grant."""

    def answer(item: Item, attempt: int) -> tuple[int, dict[str, str], Any]:
        return 403, {}, DENIED

    endpoint = FakeBatchEndpoint(answer)
    outcomes = run(
        make_client(endpoint),
        jobs_for(60),
        clock,
        max_batches_in_flight=1,
        max_consecutive_denials=5,
    )
    actions = [o.action for o in outcomes]
    assert actions[:4] == [Action.PROBLEM] * 4 and actions[4] is Action.FATAL
    assert "LicenseAssignment.ReadWrite.All" in outcomes[4].failure
    assert "5 writes to distinct users refused with 403 in a row" in outcomes[4].failure
    assert len(endpoint.envelopes) == 1  # nothing sent after the fatal envelope
    assert Counter(actions)[Action.SKIPPED] == 40


def test_a_success_between_denials_starts_the_count_again(
    make_client: Callable[..., GraphClient], clock: FakeClock
) -> None:
    def answer(item: Item, attempt: int) -> tuple[int, dict[str, str], Any]:
        number = int(item["url"].split("/")[2].split("-")[1])
        return ok(item, 1) if number % 4 == 0 else (403, {}, DENIED)

    outcomes = run(
        make_client(FakeBatchEndpoint(answer)), jobs_for(60), clock, max_consecutive_denials=4
    )
    assert Counter(o.action for o in outcomes) == {Action.SUCCESS: 15, Action.PROBLEM: 45}


def test_usage_location_goes_first_and_gates_the_assignment(
    make_client: Callable[..., GraphClient], clock: FakeClock
) -> None:
    def answer(item: Item, attempt: int) -> tuple[int, dict[str, str], Any]:
        if item["method"] == "PATCH":
            if item["url"] == "/users/bad":
                return 404, {}, {"error": {"code": "Request_ResourceNotFound", "message": "gone"}}
            return 204, {}, None
        return ok(item, attempt)

    jobs = []
    for user in ("good", "bad"):
        location = SetUsageLocation(user, "DE")
        jobs += [location, assign(user, [(SKU, [])], after=location.key)]
    endpoint = FakeBatchEndpoint(answer)
    outcomes = {o.key: o for o in run(make_client(endpoint), jobs, clock)}
    assert [item["method"] for item in endpoint.envelopes[0]] == ["PATCH", "PATCH"]
    assert endpoint.envelopes[0][0]["body"] == {"usageLocation": "DE"}
    assert outcomes["good:usageLocation"].ok and outcomes["good:assignLicense"].ok
    assert outcomes["bad:usageLocation"].action is Action.PROBLEM
    assert outcomes["bad:assignLicense"].action is Action.SKIPPED


@dataclass(frozen=True)
class BrokenJob:
    """A job with a bug: building its request raises."""

    key: str = "bug:assignLicense"
    subject: str = "bug"
    after: str | None = None

    def request(self) -> tuple[str, str, Any]:
        raise TypeError("unsupported operand type(s) for +: 'int' and 'str'")

    def confirmation(self) -> None:
        return None

    def applied(self, found: Any) -> bool:
        return False


def test_a_bug_is_raised_not_taken_for_a_graph_refusal(
    make_client: Callable[..., GraphClient], clock: FakeClock
) -> None:
    endpoint = FakeBatchEndpoint(ok)
    seen: list[WriteOutcome] = []
    jobs = [*jobs_for(2), BrokenJob(), assign("later", [(SKU, [])], after=BrokenJob.key)]
    budget = WriteBudget(20, clock=clock, sleep=clock.sleep)
    with pytest.raises(TypeError, match="unsupported operand"):
        asyncio.run(
            send_writes(
                make_client(endpoint), jobs, budget, on_outcome=lambda j, o: seen.append(o.outcome)
            )
        )
    sent = [item["url"] for envelope in endpoint.envelopes for item in envelope]
    assert "/users/later/assignLicense" not in sent  # nothing after the bug is sent
    assert WriteOutcome.FAILED not in seen  # no write was recorded as refused by Graph


def test_job_checks() -> None:
    job = assign("u", [])
    with pytest.raises(ValueError, match="unique"):
        asyncio.run(send_writes(None, [job, job], WriteBudget()))  # type: ignore[arg-type]
    later = assign("u", [], after="x")
    with pytest.raises(ValueError, match="must come earlier"):
        asyncio.run(send_writes(None, [later], WriteBudget()))  # type: ignore[arg-type]


def test_assign_license_body_is_camel_case_with_both_keys() -> None:
    job = assign("u", [], ["sku-x"])
    assert job.request()[2] == {"addLicenses": [], "removeLicenses": ["sku-x"]}


REMOVED = {
    "skuId": "c7df2760-2c81-4ef7-b578-5b5392b571df",
    "disabledPlans": [],
    "assignedByGroup": None,
}
NOT_HELD = {
    "error": {
        "code": "Request_BadRequest",
        "message": "User does not have a corresponding license.",
    }
}


@pytest.mark.parametrize("removed", [True, False])
def test_refused_retry_after_a_lost_answer_reads_the_user_back(
    make_client: Callable[..., GraphClient], clock: FakeClock, removed: bool
) -> None:
    """The first envelope is applied but its connection drops; the retried removal is refused
    because the licence is already gone. Reading the user back shows the write took effect."""

    def answer(item: Item, attempt: int) -> tuple[int, dict[str, str], Any]:
        return (400, {}, NOT_HELD) if attempt > 1 else ok(item, attempt)

    endpoint = FakeBatchEndpoint(answer)
    reads: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            reads.append(request.url)
            states = (
                [] if removed else [{"skuId": SKU, "disabledPlans": [], "assignedByGroup": None}]
            )
            return httpx.Response(200, json={"id": "user-0", "licenseAssignmentStates": states})
        response = endpoint(request)
        if len(endpoint.envelopes) == 1:
            raise httpx.RemoteProtocolError("peer closed connection", request=request)
        return response

    job = assign("user-0", [], [SKU])
    [outcome] = run(make_client(handler), [job], clock)
    assert sum(endpoint.attempts.values()) == 2
    assert {u.path for u in reads} == {"/v1.0/users/user-0"}
    assert "licenseAssignmentStates" in reads[0].params["$select"]
    if removed:
        assert outcome.ok and "answer was lost" in outcome.reason
        assert outcome.body["id"] == "user-0" and len(reads) == 1
    else:
        assert outcome.action is Action.PROBLEM and "corresponding license" in outcome.message
        # read again while a replica may lag, backing off, up to the replication wait
        waits = clock.sleeps[-(len(reads) - 1) :]
        assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 14.5] and sum(waits) == 30.0


def test_a_read_back_waits_for_a_lagging_replica(
    make_client: Callable[..., GraphClient], clock: FakeClock
) -> None:
    """The first read-back still shows the licence (a replica behind the write); a later one
    shows it gone: the write succeeded."""
    endpoint = FakeBatchEndpoint(
        lambda item, attempt: (400, {}, NOT_HELD) if attempt > 1 else ok(item, attempt)
    )
    reads: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            reads.append(1)
            held = [{"skuId": SKU, "disabledPlans": [], "assignedByGroup": None}]
            states = held if len(reads) < 3 else []
            return httpx.Response(200, json={"id": "user-0", "licenseAssignmentStates": states})
        response = endpoint(request)
        if len(endpoint.envelopes) == 1:
            raise httpx.RemoteProtocolError("peer closed connection", request=request)
        return response

    [outcome] = run(make_client(handler), [assign("user-0", [], [SKU])], clock)
    assert outcome.ok and "answer was lost" in outcome.reason
    assert len(reads) == 3 and clock.sleeps[-2:] == [0.5, 1.0]


def test_refusal_without_an_unknown_attempt_is_not_read_back(
    make_client: Callable[..., GraphClient], clock: FakeClock
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.method == "POST", "no read-back after a plain refusal"
        return FakeBatchEndpoint(lambda item, attempt: (400, {}, NOT_HELD))(request)

    [outcome] = run(make_client(handler), [assign("u", [], [SKU])], clock)
    assert outcome.action is Action.PROBLEM and outcome.attempts == 1


@pytest.mark.parametrize(
    ("states", "applied"),
    [
        ([{"skuId": SKU.upper(), "disabledPlans": [PLAN], "assignedByGroup": None}], True),
        ([{"skuId": SKU, "disabledPlans": [], "assignedByGroup": None}], False),  # other plans
        ([{"skuId": SKU, "disabledPlans": [PLAN], "assignedByGroup": "g"}], False),  # group's
        ([{"skuId": SKU, "disabledPlans": [PLAN], "assignedByGroup": None}, {**REMOVED}], False),
        ([{"skuId": SKU, "disabledPlans": [PLAN]}, {"skuId": REMOVED["skuId"]}], False),  # held
        (None, False),
    ],
)
def test_applied_compares_direct_assignments(states: Any, applied: bool) -> None:
    job = assign("u", [(SKU, [PLAN])], [REMOVED["skuId"]])
    assert job.applied({"id": "u", "licenseAssignmentStates": states}) is applied
    assert not SetUsageLocation("u", "DE").applied({"licenseAssignmentStates": []})


def test_items_throttled_together_are_retried_together(
    make_client: Callable[..., GraphClient], clock: FakeClock
) -> None:
    """20 items get 429s with slightly different Retry-Afters: they wake one by one, but the
    budget stays closed until the last Retry-After and the senders wait for every throttled
    item to come back, so they go out again in one full envelope."""

    def answer(item: Item, attempt: int) -> tuple[int, dict[str, str], Any]:
        if attempt == 1:
            index = int(item["url"].split("/")[2].removeprefix("user-"))
            return 429, {"Retry-After": f"{0.01 + index * 0.002:.3f}"}, {}
        return ok(item, attempt)

    endpoint = FakeBatchEndpoint(answer)
    policy = RetryPolicy(max_attempts=3, sleep=asyncio.sleep, jitter=lambda: 0.0)
    client = make_client(endpoint, policy=policy)
    # the budget on the fake clock: still closed whenever the first item is back, however
    # late the loop runs; the items really sleep their Retry-After
    bucket = WriteBudget(1000, clock=clock, sleep=clock.sleep)
    outcomes = asyncio.run(send_licence_writes(client, jobs_for(20), bucket))
    assert all(o.ok and o.attempts == 2 for o in outcomes)
    assert [len(e) for e in endpoint.envelopes] == [20, 20]


def test_fatal_answer_sends_nothing_more_and_cuts_retry_waits_short(
    make_client: Callable[..., GraphClient], clock: FakeClock
) -> None:
    """One item of the first envelope is refused for good (405), another waits out a 503's long
    Retry-After: no further envelope leaves, the waiting item ends with its 503 at once."""

    def answer(item: Item, attempt: int) -> tuple[int, dict[str, str], Any]:
        if item["url"] == "/users/user-0/assignLicense":
            return 503, {"Retry-After": "30"}, {}
        if item["url"] == "/users/user-1/assignLicense":
            return 405, {}, METHOD_NOT_ALLOWED
        return ok(item, 1)

    endpoint = FakeBatchEndpoint(answer)
    outcomes = run(make_client(endpoint), jobs_for(60), clock, max_batches_in_flight=1)
    assert len(endpoint.envelopes) == 1
    actions = Counter(o.action for o in outcomes)
    assert actions == {Action.SUCCESS: 18, Action.FATAL: 1, Action.RETRY: 1, Action.SKIPPED: 40}
    assert (outcomes[0].status, outcomes[0].attempts) == (503, 1)
    assert 30 not in clock.sleeps


def test_giving_up_after_a_lost_answer_reads_the_user_back(
    make_client: Callable[..., GraphClient], clock: FakeClock
) -> None:
    """The first envelope is applied but its answer is lost; every retry gets a 503 until the
    policy gives up. The user shows the write: success (the ledger must learn of it)."""
    router = respx.Router(base_url=LOOPBACK)
    sends = router.post("/$batch").mock(
        side_effect=[httpx.ConnectError("reset")] + [httpx.Response(503)] * 10
    )
    user = {"id": "u", "licenseAssignmentStates": [{"skuId": SKU, "disabledPlans": [PLAN]}]}
    read = router.get("/users/u").mock(return_value=httpx.Response(200, json=user))
    [outcome] = run(make_client(router.handler), [assign("u", [(SKU, [PLAN])])], clock)
    assert outcome.ok and outcome.attempts == 5 and "answer was lost" in outcome.reason
    assert sends.call_count == 5 and read.call_count == 1


@pytest.mark.parametrize("rate", [0.05, 0.1, 1.0, 5.0, 20.0])
def test_envelopes_fit_the_budget_at_low_rates(
    make_client: Callable[..., GraphClient], clock: FakeClock, rate: float
) -> None:
    """No 150 s window holds more than the quota, even when a full $batch exceeds it."""
    taken: list[tuple[float, int]] = []

    class Recording(WriteBudget):
        async def acquire(self, n: int = 1) -> None:
            await super().acquire(n)
            taken.append((clock.now, n))

    endpoint = FakeBatchEndpoint(ok)
    bucket = Recording(rate, clock=clock, sleep=clock.sleep)
    outcomes = run(make_client(endpoint), jobs_for(60), clock, budget=bucket)
    assert all(o.ok for o in outcomes)
    assert [n for _, n in taken] == [len(e) for e in endpoint.envelopes]
    for start, _ in taken:
        assert sum(n for t, n in taken if start <= t < start + 150) <= rate * 150 + 1e-9


def test_an_item_that_gives_up_does_not_hold_the_others_back(
    make_client: Callable[..., GraphClient], clock: FakeClock
) -> None:
    """user-0's Retry-After is past the policy's total wait, so its job ends at once; user-1,
    throttled in the same envelope, must not wait for user-0 to come back."""

    def answer(item: Item, attempt: int) -> tuple[int, dict[str, str], Any]:
        if attempt == 1:
            wait = "100" if item["url"] == "/users/user-0/assignLicense" else "1"
            return 429, {"Retry-After": wait}, {}
        return ok(item, attempt)

    endpoint = FakeBatchEndpoint(answer)
    bucket = WriteBudget(20, clock=clock, sleep=clock.sleep)
    writes = send_licence_writes(
        make_client(endpoint), jobs_for(2), bucket, max_batches_in_flight=1
    )
    outcomes = asyncio.run(asyncio.wait_for(writes, timeout=30))  # a hang fails, never a race
    assert [(o.action, o.attempts) for o in outcomes] == [
        (Action.THROTTLED, 1),
        (Action.SUCCESS, 2),
    ]


class LowestRate(WriteBudget):
    """A write budget that remembers the lowest rate it ran at."""

    lowest = float("inf")

    def throttled(self, retry_after: float | None) -> None:
        super().throttled(retry_after)
        self.lowest = min(self.lowest, self.rate)


def test_5xx_and_drops_are_retried_at_the_full_write_rate(
    make_client: Callable[..., GraphClient], clock: FakeClock
) -> None:
    """10 % of items answer 5xx once and every 10th envelope is cut off: every write lands and
    the rate is never cut, so the budget paces the retries at the full rate (the fake clock
    moves only with the budget's waits: retry back-offs run concurrently in real life)."""
    statuses = (500, 503, 504)

    def answer(item: Item, attempt: int) -> tuple[int, dict[str, str], Any]:
        user = int(item["url"].split("/")[2].split("-")[1])
        if attempt == 1 and user % 10 == 3:
            return statuses[user % 3], {}, {"error": {"code": "ServiceUnavailable"}}
        return ok(item, attempt)

    def envelope(n: int) -> httpx.Response | None:
        if n % 10 == 5:
            raise httpx.RemoteProtocolError("peer closed connection")
        return None

    endpoint = FakeBatchEndpoint(answer, envelope)
    bucket = LowestRate(20, clock=clock, sleep=clock.sleep)

    async def back_off(_seconds: float) -> None:
        await asyncio.sleep(0)

    policy = RetryPolicy(max_attempts=5, sleep=back_off, jitter=lambda: 0.0)
    outcomes = run(make_client(endpoint), jobs_for(1000), clock, budget=bucket, policy=policy)
    assert all(o.ok for o in outcomes)
    sent = sum(len(e) for e in endpoint.envelopes)
    assert sent > 1100  # the faults were retried
    assert bucket.lowest == float("inf") and bucket.rate == 20  # never slowed down
    assert clock.now == pytest.approx((sent - bucket.burst) / bucket.fill_rate, abs=1.0)


def test_a_halved_rate_recovers_within_100_writes_at_any_target(clock: FakeClock) -> None:
    for target in (20.0, 100.0):
        bucket = WriteBudget(target, clock=clock, sleep=clock.sleep)
        bucket.throttled(1.0)
        assert bucket.rate == target / 2
        bucket.succeeded(99)
        assert bucket.rate < target
        bucket.succeeded(1)
        assert bucket.rate == pytest.approx(target)
