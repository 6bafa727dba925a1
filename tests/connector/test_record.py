"""What a sync commits: one user's record from its writes, the run's record, and when the
outcome recorder commits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from licsync.connector.licence_writes import UserWrites
from licsync.connector.record import (
    FLUSH_SECONDS,
    FLUSH_USERS,
    OutcomeRecorder,
    begin_run,
    build_record,
    user_record,
)
from licsync.connector.recovery import intents_for
from licsync.graph import Action, WriteResult
from licsync.model import Assignment, LicenseError, Ownership, Plan, Problem, UserPlan
from licsync.outcomes import WriteOutcome
from licsync.store import ChangeAction, LedgerDiff, StateStore, open_store
from tests.builders import TenantBuilder, object_id

E3, EMS, POWER_BI = "ENTERPRISEPACK", "EMSPREMIUM", "POWER_BI_PRO"
SALES = object_id("Sales")
RUN = "run-1"


def ok(key: str = "w") -> WriteResult:
    return WriteResult(key, Action.SUCCESS, 200, None, "", "req-ok", 1)


def refused(key: str = "w", action: Action = Action.PROBLEM) -> WriteResult:
    return WriteResult(
        key, action, 400, LicenseError.COUNT_VIOLATION, "Subscription has no seats", "req-no", 1
    )


def tenant() -> TenantBuilder:
    b = TenantBuilder().sku(E3).sku(EMS).sku(POWER_BI)
    return b.user("ann", direct={E3: ["SWAY"], POWER_BI: []}).user("ben")


def ann_change(b: TenantBuilder, location: str | None = None) -> UserPlan:
    """ann's E3 loses SWAY's switch-off, she gets EMS and loses Power BI."""
    return UserPlan(
        object_id("ann"),
        "ann@contoso.example",
        (),
        (),
        add_licenses=(Assignment(b.sku_id(E3)), Assignment(b.sku_id(EMS))),
        remove_licenses=(b.sku_id(POWER_BI),),
        usage_location=location,
    )


def planned(b: TenantBuilder, user: str, *parts: str) -> dict[tuple[str, str], Ownership]:
    return {
        (object_id(user), b.sku_id(p)): Ownership(object_id(user), b.sku_id(p), (SALES,), None)
        for p in parts
    }


def test_a_user_whose_writes_succeeded_takes_the_plans_ledger() -> None:
    b = tenant()
    before = planned(b, "ann", POWER_BI)
    after = planned(b, "ann", E3, EMS)
    writes = UserWrites(location=ok(), assign=ok())
    record = user_record(RUN, b.tenant(), ann_change(b, "FR"), writes, before, after)
    assert record.ok and not record.fatal and record.problems == ()
    assert record.ledger_diff == LedgerDiff(tuple(after.values()), tuple(before))
    ann = object_id("ann")
    assert record.resolved == ((ann, b.sku_id(E3)), (ann, b.sku_id(EMS)), (ann, b.sku_id(POWER_BI)))
    assert [(c.action, c.sku_id, c.outcome, c.request_id) for c in record.changes] == [
        (ChangeAction.USAGE_LOCATION, None, WriteOutcome.APPLIED, "req-ok"),
        (ChangeAction.UPDATE, b.sku_id(E3), WriteOutcome.APPLIED, "req-ok"),  # she held E3 already
        (ChangeAction.ADD, b.sku_id(EMS), WriteOutcome.APPLIED, "req-ok"),
        (ChangeAction.REMOVE, b.sku_id(POWER_BI), WriteOutcome.APPLIED, "req-ok"),
    ]
    assert record.changes[0].usage_location == "FR"


def test_a_refused_write_keeps_the_old_ledger_and_gives_a_problem_per_licence() -> None:
    b = tenant()
    before = planned(b, "ann", POWER_BI)
    writes = UserWrites(assign=refused())
    record = user_record(RUN, b.tenant(), ann_change(b), writes, before, planned(b, "ann", E3))
    assert not record.ok and not record.fatal
    assert not record.ledger_diff and record.resolved == ()
    ann, upn = object_id("ann"), "ann@contoso.example"
    no_seats = (LicenseError.COUNT_VIOLATION, "Subscription has no seats")
    assert record.problems == (
        Problem(ann, upn, b.sku_id(E3), SALES, *no_seats),  # the group from the plan's ledger
        Problem(ann, upn, b.sku_id(EMS), None, *no_seats),
        Problem(ann, upn, b.sku_id(POWER_BI), None, *no_seats),
    )
    assert {c.outcome for c in record.changes} == {WriteOutcome.FAILED}


def test_a_refused_usage_location_fails_the_user_with_graphs_reason() -> None:
    b = tenant()
    writes = UserWrites(location=refused(), assign=ok())
    record = user_record(RUN, b.tenant(), ann_change(b, "FR"), writes, {}, planned(b, "ann", E3))
    assert not record.ok and not record.ledger_diff
    assert {p.message for p in record.problems} == {"Subscription has no seats"}
    assert [c.outcome for c in record.changes] == [
        WriteOutcome.FAILED,
        WriteOutcome.APPLIED,
        WriteOutcome.APPLIED,
        WriteOutcome.APPLIED,
    ]


def test_a_fatal_answer_marks_the_record_fatal() -> None:
    b = tenant()
    writes = UserWrites(assign=refused(action=Action.FATAL))
    assert user_record(RUN, b.tenant(), ann_change(b), writes, {}, {}).fatal


def _plan(*users: str, problems: tuple[Problem, ...] = ()) -> Plan:
    """Each user gets a usage location and an E3 licence."""
    e3 = TenantBuilder().sku(E3).sku_id(E3)
    return Plan(
        tuple(
            UserPlan(object_id(u), u, (), (), add_licenses=(Assignment(e3),), usage_location="FR")
            for u in users
        ),
        problems,
        (),
    )


def test_the_run_record_keeps_the_plans_order_and_its_problems_first() -> None:
    b = TenantBuilder().sku(E3).user("ann").user("ben").user("cat")
    plan = _plan(
        "ann",
        "ben",
        "cat",
        problems=(Problem("p", "p", "s", None, LicenseError.OTHER, "predicted"),),
    )
    change = {c.user_id: c for c in plan.changes}

    def record(user: str, outcome: WriteResult):
        return user_record(
            RUN, b.tenant(), change[object_id(user)], UserWrites(location=outcome), {}, {}
        )

    # the writes ended in another order than the plan's
    run = build_record(
        plan, [record("cat", refused()), record("ben", ok()), record("ann", refused())]
    )
    assert run.succeeded_users == (object_id("ben"),)
    assert run.failed_users == (object_id("ann"), object_id("cat"))
    assert [p.message for p in run.problems] == ["predicted", *["Subscription has no seats"] * 2]
    assert [p.user_id for p in run.problems[1:]] == [object_id("ann"), object_id("cat")]
    assert not run.fatal
    assert build_record(plan, [record("ben", refused(action=Action.FATAL))]).fatal


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with open_store(str(tmp_path / "state.db")) as opened:
        opened.acquire_lease("me", 60)
        yield opened


def _recorder(store: StateStore, users: list[str], clock: Clock) -> tuple[OutcomeRecorder, Plan]:
    b = TenantBuilder().sku(E3)
    for user in users:
        b.user(user)
    plan = _plan(*users)
    with store.transaction() as tx:
        tx.start_run("sync", RUN)  # as `runtime.session` does when the run starts
    begin_run(store, "me", intents_for(RUN, plan, {}))
    return OutcomeRecorder(store, "me", RUN, b.tenant(), plan, {}, clock=clock), plan


def test_outcomes_are_committed_a_second_after_the_first_unrecorded_one(store: StateStore) -> None:
    clock = Clock()
    recorder, _ = _recorder(store, ["ann", "ben", "cat", "dan"], clock)
    recorder.add(object_id("ann"), UserWrites(location=ok()))
    clock.now = FLUSH_SECONDS - 0.01
    recorder.add(object_id("ben"), UserWrites(location=ok()))
    assert store.list_changes(run_id=RUN) == []  # not yet
    clock.now = FLUSH_SECONDS
    recorder.add(object_id("cat"), UserWrites(location=refused()))
    assert {c.user_id for c in store.list_changes(run_id=RUN)} == {
        object_id(u) for u in ("ann", "ben", "cat")
    }
    assert [p.user_id for p in store.list_problems()] == [object_id("cat")]
    assert set(store.load_tenant_cache()["stale"]) == {object_id(u) for u in ("ann", "ben", "cat")}
    clock.now += 10  # the timer starts again with the next outcome
    recorder.add(object_id("dan"), UserWrites(location=ok()))
    assert len(store.list_changes(run_id=RUN)) == 3
    recorder.flush()
    assert len(store.list_changes(run_id=RUN)) == 4 and len(recorder.records) == 4


def test_outcomes_are_committed_every_few_hundred_users(store: StateStore) -> None:
    users = [f"user{n}" for n in range(FLUSH_USERS + 1)]
    recorder, _ = _recorder(store, users, Clock())  # the clock never moves
    for user in users[:-1]:
        recorder.add(object_id(user), UserWrites(location=ok()))
    assert len(store.list_changes(run_id=RUN)) == FLUSH_USERS
    assert [i.user_id for i in store.pending_intents()] == [object_id(users[-1])]
    recorder.add(object_id(users[-1]), UserWrites(location=ok()))
    assert len(store.list_changes(run_id=RUN)) == FLUSH_USERS
