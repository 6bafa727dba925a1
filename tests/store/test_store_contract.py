"""The contract every state store backend keeps (run against each backend in conftest)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from licsync.errors import StateError
from licsync.model import LicenseError, Ownership, Problem
from licsync.outcomes import RunStatus, WriteOutcome
from licsync.store import (
    CURRENT_VERSION,
    AppliedChange,
    ChangeAction,
    Prior,
    RunEnd,
    RunPhase,
    StateStore,
    diff_ledger,
    open_store,
)

U1, U2, U3 = "user-1", "user-2", "user-3"
E3, E5 = "sku-e3", "sku-e5"
G1, G2 = "group-1", "group-2"


def own(user: str, sku: str, *groups: str, prior: frozenset[str] | None = None) -> Ownership:
    return Ownership(user, sku, groups, prior)


def problem(user: str = U1, sku: str = E3, group: str | None = G1, **kw) -> Problem:
    error = kw.pop("error", LicenseError.COUNT_VIOLATION)
    message = kw.pop("message", "Subscription does not have any available licenses.")
    return Problem(user, f"{user}@contoso.com", sku, group, error, message)


def start(store, kind: str = "sync") -> str:
    with store.transaction() as tx:
        return tx.start_run(kind).id


class Boom(Exception):
    pass


# --- opening and schema -------------------------------------------------------------------------


def test_a_new_store_is_at_the_current_schema_and_satisfies_the_protocol(store, backend):
    assert store.schema_version == CURRENT_VERSION
    assert store.backend == backend.name
    assert isinstance(store, StateStore)
    assert backend.raw("SELECT version FROM licsync_schema") == [(CURRENT_VERSION,)]


def test_reopening_keeps_the_data(store, backend, clock):
    with store.transaction() as tx:
        tx.replace_ledger({(U1, E3): own(U1, E3, G1)})
    store.close()
    with open_store(backend.url, clock=clock) as again:
        assert again.schema_version == CURRENT_VERSION
        assert again.load_ledger() == {(U1, E3): own(U1, E3, G1)}


def test_a_newer_schema_version_is_refused(store, backend, clock):
    store.close()
    backend.raw("UPDATE licsync_schema SET version = 99")
    with pytest.raises(
        StateError, match=rf"schema version 99.*up to {CURRENT_VERSION}: upgrade licsync"
    ):
        open_store(backend.url, clock=clock)
    # nothing was touched
    assert backend.raw("SELECT version FROM licsync_schema") == [(99,)]


# --- runs ---------------------------------------------------------------------------------------


def test_runs_start_running_and_finish_with_a_summary(store, clock):
    with store.transaction() as tx:
        run = tx.start_run("sync")
    assert run.status is RunStatus.RUNNING
    clock.advance(seconds=90)
    with store.transaction() as tx:
        done = tx.finish_run(run.id, RunStatus.SUCCEEDED, {"changes": 3, "skus": ["E3"]})
    loaded = store.get_run(run.id)
    assert loaded == done
    assert loaded.status is RunStatus.SUCCEEDED
    assert loaded.finished_at - loaded.started_at == timedelta(seconds=90)
    assert loaded.summary == {"changes": 3, "skus": ["E3"]}


def test_runs_are_listed_newest_first_and_finish_once(store, clock):
    ids = []
    for kind in ("plan", "sync", "migrate"):
        with store.transaction() as tx:
            ids.append(tx.start_run(kind, run_id=f"run-{kind}").id)
        clock.advance(seconds=1)
    assert [r.id for r in store.list_runs()] == ids[::-1]
    assert [r.kind for r in store.list_runs(limit=2)] == ["migrate", "sync"]
    with store.transaction() as tx:
        tx.finish_run("run-plan", RunStatus.STOPPED)
    with pytest.raises(StateError, match="already finished"), store.transaction() as tx:
        tx.finish_run("run-plan", RunStatus.FAILED)
    with pytest.raises(StateError, match="no run"), store.transaction() as tx:
        tx.finish_run("run-unknown", RunStatus.FAILED)
    assert store.get_run("run-unknown") is None


# --- ledger -------------------------------------------------------------------------------------


def test_ledger_round_trip_normalises_ids_and_keeps_none_apart_from_empty(store):
    ledger = {
        (U1, E3): own(U1, E3, G2, G1, G2),
        (U2, E3): own(U2, E3, G1, prior=frozenset()),
        ("USER-3", "SKU-E5"): own("USER-3", "SKU-E5", "GROUP-1", prior=frozenset({"PLAN-A"})),
    }
    with store.transaction() as tx:
        assert tx.replace_ledger(ledger) == 3
    assert store.load_ledger() == {
        (U1, E3): own(U1, E3, G1, G2),
        (U2, E3): own(U2, E3, G1, prior=frozenset()),
        (U3, E5): own(U3, E5, G1, prior=frozenset({"plan-a"})),
    }
    assert store.load_ledger()[(U1, E3)].prior_direct is None


def test_ledger_upsert_delete_and_replace(store):
    with store.transaction() as tx:
        tx.replace_ledger({(U1, E3): own(U1, E3, G1), (U2, E3): own(U2, E3, G1)})
    with store.transaction() as tx:
        tx.upsert_ownership([own(U1, E3, G2, prior=frozenset({"p"})), own(U3, E5, G1)])
        assert tx.delete_ownership([(U2, E3), ("nobody", E3)]) == 1
    assert store.load_ledger() == {
        (U1, E3): own(U1, E3, G2, prior=frozenset({"p"})),
        (U3, E5): own(U3, E5, G1),
    }
    with store.transaction() as tx:
        tx.replace_ledger({})
    assert store.load_ledger() == {}


def test_a_ledger_diff_applied_gives_the_new_ledger(store):
    old = {(U1, E3): own(U1, E3, G1), (U2, E3): own(U2, E3, G1), (U3, E5): own(U3, E5, G2)}
    new = {(U1, E3): own(U1, E3, G1, G2), (U3, E5): own(U3, E5, G2), (U2, E5): own(U2, E5, G1)}
    with store.transaction() as tx:
        tx.replace_ledger(old)
    with store.transaction() as tx:
        tx.apply_ledger_diff(diff_ledger(old, new))
    assert store.load_ledger() == new


def test_large_upserts_take_the_bulk_path(store):
    entries = [own(f"u{i:05d}", E3, G1) for i in range(1200)]
    with store.transaction() as tx:
        tx.upsert_ownership(entries[:700])
    with store.transaction() as tx:
        tx.upsert_ownership([own(e.user_id, E3, G2) for e in entries])
    ledger = store.load_ledger()
    assert len(ledger) == 1200
    assert {e.groups for e in ledger.values()} == {(G2,)}


def test_an_entry_without_groups_is_refused(store):
    with pytest.raises(ValueError, match="names no rule group"), store.transaction() as tx:
        tx.upsert_ownership([own(U1, E3)])


# --- transactions -------------------------------------------------------------------------------


def test_an_exception_rolls_back_every_write_of_the_unit(store):
    run_id = start(store)
    with store.transaction() as tx:
        tx.replace_ledger({(U1, E3): own(U1, E3, G1)})
        tx.hold_delta_link(run_id, "users", "link-old-run")
        tx.commit_delta_links(run_id)
    run2 = start(store)
    with store.transaction() as tx:
        tx.hold_delta_link(run2, "users", "link-new")
    with pytest.raises(Boom), store.transaction() as tx:
        tx.replace_ledger({(U2, E5): own(U2, E5, G2)})
        tx.record_changes([AppliedChange(run2, U2, E5, ChangeAction.ADD, WriteOutcome.APPLIED)])
        tx.record_problems(run2, [problem()])
        tx.commit_delta_links(run2)
        tx.finish_run(run2, RunStatus.SUCCEEDED, {"x": 1})
        raise Boom
    assert store.load_ledger() == {(U1, E3): own(U1, E3, G1)}
    assert store.list_changes() == []
    assert store.list_problems() == []
    assert store.delta_link("users") == "link-old-run"
    assert store.pending_delta_links(run2) == {"users": "link-new"}
    assert store.get_run(run2).status is RunStatus.RUNNING


def test_uncommitted_writes_are_invisible_to_another_connection(store, other_store):
    with store.transaction() as tx:
        tx.upsert_ownership([own(U1, E3, G1)])
        assert other_store.load_ledger() == {}
    assert other_store.load_ledger() == {(U1, E3): own(U1, E3, G1)}


def test_transactions_do_not_nest_and_end_with_their_block(store):
    with store.transaction() as tx:
        with pytest.raises(StateError, match="already open"), store.transaction():
            pass
        tx.start_run("sync")
    with pytest.raises(StateError, match="has ended"):
        tx.start_run("sync")
    assert len(store.list_runs()) == 1


# --- changes ------------------------------------------------------------------------------------


def test_changes_are_kept_with_their_run(store, clock):
    run1, run2 = start(store), start(store)
    at = clock.advance(minutes=5)
    with store.transaction() as tx:
        n = tx.record_changes(
            [
                AppliedChange(
                    run1,
                    "USER-1",
                    "SKU-E3",
                    ChangeAction.ADD,
                    WriteOutcome.APPLIED,
                    frozenset({"plan-b", "PLAN-A"}),
                    request_id="req-1",
                ),
                AppliedChange(
                    run1,
                    U1,
                    None,
                    ChangeAction.USAGE_LOCATION,
                    WriteOutcome.APPLIED,
                    usage_location="DE",
                ),
                AppliedChange(run2, U2, E5, ChangeAction.REMOVE, WriteOutcome.FAILED, at=at),
            ]
        )
    assert n == 3
    first, location = store.list_changes(run_id=run1)
    assert (first.user_id, first.sku_id, first.action) == (U1, E3, ChangeAction.ADD)
    assert first.disabled_plans == {"plan-a", "plan-b"}
    assert (first.outcome, first.request_id, first.at) == (WriteOutcome.APPLIED, "req-1", at)
    assert (location.sku_id, location.usage_location) == (None, "DE")
    assert [c.action for c in store.list_changes(user_id=U2)] == [ChangeAction.REMOVE]
    assert len(store.list_changes()) == 3


def test_a_run_keeps_its_phase_exit_code_error_and_seconds_per_phase(store, clock):
    run_id = start(store)
    with store.transaction() as tx:
        tx.set_run_phase(run_id, RunPhase.WRITE)
    assert store.get_run(run_id).phase == "write"
    end = RunEnd(RunStatus.STOPPED, {"writes": 3}, 143, "stopped by SIGTERM", {"read": 1.5})
    with store.transaction() as tx:
        tx.end_run(run_id, end)
    run = store.get_run(run_id)
    assert (run.status, run.exit_code, run.phase) == (RunStatus.STOPPED, 143, "write")
    assert (run.error, run.phases, run.summary) == (
        "stopped by SIGTERM",
        {"read": 1.5},
        {"writes": 3},
    )
    assert store.latest_run(RunStatus.STOPPED) == run
    assert store.latest_run(RunStatus.SUCCEEDED) is None


def test_a_change_keeps_what_it_replaced_and_writes_are_counted_per_run(store):
    run1, run2 = start(store), start(store)
    APPLIED = WriteOutcome.APPLIED
    before = own(U1, E3, G1, prior=frozenset({"plan-x"}))
    prior = Prior(frozenset({"PLAN-X"}), "DE", before)
    with store.transaction() as tx:
        tx.record_changes(
            [
                AppliedChange(run1, U1, E3, ChangeAction.ADD, WriteOutcome.APPLIED, prior=prior,
                              user_principal_name="u1@contoso.com", http_status=200),
                AppliedChange(run1, U1, E5, ChangeAction.REMOVE, APPLIED, prior=Prior()),
                AppliedChange(run1, U1, None, ChangeAction.USAGE_LOCATION, WriteOutcome.APPLIED,
                              usage_location="FR", prior=Prior(usage_location="DE")),
                AppliedChange(run1, U2, E3, ChangeAction.ADD, WriteOutcome.FAILED, http_status=400,
                              error="Subscription has no seats."),
                AppliedChange(run2, U3, E3, ChangeAction.ADD, WriteOutcome.APPLIED),
            ]
        )  # fmt: skip
    added, removed, location, refused = store.list_changes(run_id=run1)
    assert added.prior == Prior(frozenset({"plan-x"}), "DE", before)
    assert (added.user_principal_name, added.http_status) == ("u1@contoso.com", 200)
    assert removed.prior == Prior()
    assert location.prior == Prior(usage_location="DE")
    assert (refused.prior, refused.http_status, refused.error) == (
        None,
        400,
        "Subscription has no seats.",
    )
    # one assignLicense (two licences) and one PATCH succeeded; one assignLicense failed
    assert store.count_writes([run1, run2, "none"]) == {run1: (2, 1), run2: (1, 0), "none": (0, 0)}


# --- problems -----------------------------------------------------------------------------------


def test_a_problem_seen_again_counts_attempts_and_moves_last_seen(store, clock):
    run1 = start(store)
    first = clock.now
    with store.transaction() as tx:
        tx.record_problems(run1, [problem(), problem(group=None)])
        tx.record_problems(run1, [problem()])  # the same run meeting it twice counts once
    clock.advance(hours=1)
    run2 = start(store)
    with store.transaction() as tx:
        tx.record_problems(run2, [problem(message="still no seats")])
    grouped, ungrouped = sorted(store.list_problems(), key=lambda p: p.group_id or "")[::-1]
    assert (grouped.group_id, grouped.attempts, grouped.last_run_id) == (G1, 2, run2)
    assert grouped.first_seen == first and grouped.last_seen == clock.now
    assert grouped.message == "still no seats"
    assert grouped.error is LicenseError.COUNT_VIOLATION and grouped.is_open
    assert grouped.to_problem() == problem(message="still no seats")
    assert (ungrouped.group_id, ungrouped.attempts) == (None, 1)


def test_problems_are_keyed_by_user_sku_group_and_error(store):
    run = start(store)
    with store.transaction() as tx:
        tx.record_problems(
            run,
            [
                problem(),
                problem(error=LicenseError.OTHER),
                problem(group=G2),
                problem(sku=E5),
                problem(user=U2),
            ],
        )
    assert len(store.list_problems()) == 5


def test_a_later_success_resolves_the_users_problems_for_that_sku(store, clock):
    run1 = start(store)
    with store.transaction() as tx:
        tx.record_problems(run1, [problem(), problem(group=G2), problem(sku=E5), problem(user=U2)])
    clock.advance(hours=1)
    run2 = start(store)
    with store.transaction() as tx:
        assert tx.resolve_problems(run2, [(U1, E3)]) == 2
    open_now = store.list_problems()
    assert {(p.user_id, p.sku_id) for p in open_now} == {(U1, E5), (U2, E3)}
    resolved = [p for p in store.list_problems(include_resolved=True) if not p.is_open]
    assert len(resolved) == 2
    assert {(p.resolved_at, p.resolved_run_id) for p in resolved} == {(clock.now, run2)}


def test_a_run_resolves_the_problems_it_no_longer_sees(store, clock):
    run1 = start(store)
    with store.transaction() as tx:
        tx.record_problems(run1, [problem(), problem(sku=E5), problem(user=U2)])
    clock.advance(hours=1)
    run2 = start(store)
    with store.transaction() as tx:
        tx.record_problems(run2, [problem(sku=E5)])
        assert tx.resolve_unseen_problems(run2) == 2
    assert [(p.user_id, p.sku_id) for p in store.list_problems()] == [(U1, E5)]
    resolved = [p for p in store.list_problems(include_resolved=True) if not p.is_open]
    assert {(p.resolved_at, p.resolved_run_id) for p in resolved} == {(clock.now, run2)}


def test_a_problem_recorded_by_the_same_run_stays_open(store):
    run = start(store)
    with store.transaction() as tx:
        tx.record_problems(run, [problem()])
        assert tx.resolve_problems(run, [(U1, E3)]) == 0
    assert len(store.list_problems()) == 1


def test_a_problem_that_returns_after_resolution_opens_again(store, clock):
    run1 = start(store)
    with store.transaction() as tx:
        tx.record_problems(run1, [problem()])
    run2 = start(store)
    with store.transaction() as tx:
        tx.resolve_problems(run2, [(U1, E3)])
    clock.advance(days=1)
    run3 = start(store)
    with store.transaction() as tx:
        tx.record_problems(run3, [problem()])
    (reopened,) = store.list_problems()
    assert (reopened.attempts, reopened.first_seen, reopened.last_run_id) == (1, clock.now, run3)
    assert len(store.list_problems(include_resolved=True)) == 2


# --- delta links --------------------------------------------------------------------------------


def test_a_delta_link_is_pending_until_its_run_commits(store):
    run = start(store)
    assert store.delta_link("users") is None
    with store.transaction() as tx:
        tx.hold_delta_link(run, "users", "https://graph/users/delta?$deltatoken=1")
        tx.hold_delta_link(run, "groups", "https://graph/groups/delta?$deltatoken=1")
    assert store.delta_link("users") is None
    assert store.pending_delta_links(run) == {
        "users": "https://graph/users/delta?$deltatoken=1",
        "groups": "https://graph/groups/delta?$deltatoken=1",
    }
    with store.transaction() as tx:
        assert tx.commit_delta_links(run) == ("groups", "users")
    assert store.delta_link("users") == "https://graph/users/delta?$deltatoken=1"
    assert store.pending_delta_links(run) == {}


def test_a_crashed_run_leaves_the_old_link_and_only_its_own_links_commit(store):
    run1 = start(store)
    with store.transaction() as tx:
        tx.hold_delta_link(run1, "users", "old")
        tx.commit_delta_links(run1)
    crashed = start(store)
    with store.transaction() as tx:
        tx.hold_delta_link(crashed, "users", "from-crashed-run")
    # the crashed run never commits; the next run reads from the old link and holds its own
    assert store.delta_link("users") == "old"
    run3 = start(store)
    with store.transaction() as tx:
        assert tx.commit_delta_links(run3) == ()
        tx.hold_delta_link(run3, "users", "new")
        assert tx.commit_delta_links(run3) == ("users",)
    assert store.delta_link("users") == "new"
    with store.transaction() as tx:
        tx.reset_delta_link("users")
    assert store.delta_link("users") is None


# --- the cached tenant view ---------------------------------------------------------------------


def test_the_tenant_cache_is_replaced_patched_and_commits_with_its_links(store, other_store):
    user = {"id": U1, "assignedLicenses": [{"skuId": E3, "disabledPlans": []}], "x": "é"}
    group = {"id": G1, "displayName": "Sales", "members": [{"id": U1}]}
    run = start(store)
    with store.transaction() as tx:
        assert tx.replace_tenant_cache([("user", U1, user), ("group", G1, group)]) == 2
        tx.hold_delta_link(run, "users", "link-1")
        tx.commit_delta_links(run)
    assert other_store.load_tenant_cache() == {"user": {U1: user}, "group": {G1: group}}

    moved = {**user, "usageLocation": "GB"}
    with store.transaction() as tx:
        tx.patch_tenant_cache([("user", U1, moved), ("user", U2, {"id": U2})], [("group", G1)])
    assert other_store.load_tenant_cache() == {"user": {U1: moved, U2: {"id": U2}}}

    # a run that fails inside its transaction changes neither the cache nor the links
    run2 = start(store)
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.replace_tenant_cache([])
        tx.hold_delta_link(run2, "users", "link-2")
        tx.commit_delta_links(run2)
        raise RuntimeError("the run failed")
    assert len(other_store.load_tenant_cache()["user"]) == 2
    assert other_store.delta_link("users") == "link-1"

    with store.transaction() as tx:
        assert tx.replace_tenant_cache([("meta", "view", {"v": 1})]) == 1
    assert store.load_tenant_cache() == {"meta": {"view": {"v": 1}}}


def test_a_read_only_store_reads_and_refuses_every_write(backend, store, clock):
    with store.transaction() as tx:
        tx.upsert_ownership([own(U1, E3, G1)])
    with open_store(backend.url, clock=clock, read_only=True) as reader:
        assert reader.schema_version == CURRENT_VERSION
        assert list(reader.load_ledger()) == [(U1, E3)]
        with pytest.raises(StateError, match="read-only"), reader.transaction():
            pass
        with pytest.raises(StateError, match="read-only"):
            reader.acquire_lease("dry-run", 60)
        with pytest.raises(Exception, match=r"(?i)read.?only"):  # the connection refuses too
            reader._db.execute("DELETE FROM ownership")
    assert store.current_lease() is None and list(store.load_ledger()) == [(U1, E3)]


# --- lease --------------------------------------------------------------------------------------


def test_a_held_lease_names_its_holder_and_expiry(store, other_store, clock):
    lease = store.acquire_lease("run-a", timedelta(minutes=15))
    assert lease.expires_at == clock.now + timedelta(minutes=15)
    with pytest.raises(StateError) as caught:
        other_store.acquire_lease("run-b", 60)
    assert "'run-a'" in str(caught.value)
    assert "until 2025-06-01T12:15:00Z" in str(caught.value)
    assert other_store.current_lease() == lease


def test_the_holder_can_reacquire_renew_and_release(store, other_store, clock):
    first = store.acquire_lease("run-a", 60)
    clock.advance(seconds=30)
    again = store.acquire_lease("run-a", 60)
    assert again.acquired_at == first.acquired_at
    assert again.expires_at == clock.now + timedelta(seconds=60)
    clock.advance(seconds=30)
    renewed = store.renew_lease("run-a", 120)
    assert renewed.expires_at == clock.now + timedelta(seconds=120)
    with pytest.raises(StateError, match="'run-a' holds it"):
        other_store.renew_lease("run-b", 60)
    assert other_store.release_lease("run-b") is False
    assert store.release_lease("run-a") is True
    assert store.current_lease() is None
    with pytest.raises(StateError, match="nobody holds it"):
        store.renew_lease("run-a", 60)
    assert other_store.acquire_lease("run-b", 60).holder == "run-b"


def test_an_expired_lease_is_taken_over(store, other_store, clock):
    store.acquire_lease("run-a", 60)
    clock.advance(seconds=61)
    taken = other_store.acquire_lease("run-b", 60)
    assert (taken.holder, taken.acquired_at) == ("run-b", clock.now)
    with pytest.raises(StateError, match="'run-b' holds it"):
        store.renew_lease("run-a", 60)


def test_a_transaction_for_a_holder_checks_the_lease_inside_it(store, other_store, clock):
    store.acquire_lease("run-a", 60)
    with store.transaction(holder="run-a") as tx:
        tx.upsert_ownership([own(U1, E3, G1)])
    with (
        pytest.raises(StateError, match="'run-b' may not write"),
        other_store.transaction(holder="run-b") as tx,
    ):
        tx.upsert_ownership([own(U2, E3, G1)])
    clock.advance(seconds=61)
    with (
        pytest.raises(StateError, match="'run-a' may not write"),
        store.transaction(holder="run-a") as tx,
    ):
        tx.upsert_ownership([own(U3, E3, G1)])
    assert set(store.load_ledger()) == {(U1, E3)}


def test_a_lease_needs_a_positive_ttl(store):
    with pytest.raises(ValueError, match="positive"):
        store.acquire_lease("run-a", 0)


def test_racing_acquirers_get_exactly_one_lease(backend, clock):
    stores = [open_store(backend.url, clock=clock) for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    outcomes: list[str] = []

    def race(index: int) -> None:
        barrier.wait()
        try:
            stores[index].acquire_lease(f"run-{index}", 60)
            outcomes.append("won")
        except StateError:
            outcomes.append("refused")

    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert sorted(outcomes) == ["refused"] * (len(stores) - 1) + ["won"]
        holder = stores[0].current_lease().holder
        assert holder in {f"run-{i}" for i in range(len(stores))}
    finally:
        for s in stores:
            s.close()
