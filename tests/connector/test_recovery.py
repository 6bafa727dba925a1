"""Crash recovery's pure part: the intents a plan records, and how the next read settles them."""

from __future__ import annotations

from licsync.connector.recovery import apply_diff, intents_for, reconcile
from licsync.model import Assignment, Ownership, Plan, UserPlan
from licsync.store import ChangeAction, Intent, LedgerDiff
from tests.builders import TenantBuilder, object_id

E3, EMS = "ENTERPRISEPACK", "EMSPREMIUM"
SALES = object_id("Sales")


def tenant() -> TenantBuilder:
    """ann holds E3 without SWAY, ben holds E3 and EMS (both directly), cat holds nothing."""
    b = TenantBuilder().sku(E3).sku(EMS)
    return b.user("ann", direct={E3: ["SWAY"]}).user("ben", direct={E3: [], EMS: []}).user("cat")


def owned(b: TenantBuilder, user: str, part: str, prior: frozenset[str] | None = None) -> Ownership:
    return Ownership(object_id(user), b.sku_id(part), (SALES,), prior)


def intent(b: TenantBuilder, user: str, part: str, expect: frozenset[str] | None, **kw) -> Intent:
    return Intent(
        kw.get("run", "run-1"),
        object_id(user),
        b.sku_id(part),
        expect,
        kw.get("before"),
        kw.get("after"),
    )


def test_one_intent_per_licence_each_call_adds_updates_or_removes() -> None:
    b = tenant()
    ann, ben, e3, ems = object_id("ann"), object_id("ben"), b.sku_id(E3), b.sku_id(EMS)
    sway = frozenset(b.plan_ids(E3, ["SWAY"]))
    before = {(ben, ems): owned(b, "ben", EMS)}
    after = {(ann, e3): owned(b, "ann", E3, prior=sway)}
    plan = Plan(
        users=(
            UserPlan(ann, "ann", (), (), add_licenses=(Assignment(e3, sway),)),
            UserPlan(ben, "ben", (), (), remove_licenses=(ems,)),
            UserPlan(object_id("cat"), "cat", (), ()),  # nothing to write
        ),
        problems=(),
        skus=(),
        ledger=after,
    )
    assert intents_for("run-1", plan, before) == [
        Intent("run-1", ann, e3, sway, None, after[(ann, e3)]),
        Intent("run-1", ben, ems, None, before[(ben, ems)], None),
    ]


def test_an_intent_whose_assignment_graph_shows_is_taken_as_written() -> None:
    b = tenant()
    sway = frozenset(b.plan_ids(E3, ["SWAY"]))
    added = intent(b, "ann", E3, sway, after=owned(b, "ann", E3))
    updated = intent(
        b, "ben", E3, frozenset(), before=owned(b, "ben", E3, sway), after=owned(b, "ben", E3)
    )
    removed = intent(b, "cat", EMS, None, before=owned(b, "cat", EMS))
    recovery = reconcile([added, updated, removed], b.tenant())
    assert recovery.applied == {"run-1": 3} and recovery.not_applied == {}
    assert [c.action for c in recovery.changes] == [
        ChangeAction.ADD,
        ChangeAction.UPDATE,
        ChangeAction.REMOVE,
    ]
    assert (
        recovery.changes[0].disabled_plans == sway
        and recovery.changes[2].disabled_plans == frozenset()
    )
    assert recovery.diff == LedgerDiff(
        (owned(b, "ann", E3), owned(b, "ben", E3)), ((object_id("cat"), b.sku_id(EMS)),)
    )
    assert recovery.users == {object_id("ann"), object_id("ben"), object_id("cat")}


def test_an_intent_graph_does_not_show_leaves_the_ledger_as_it_was() -> None:
    b = tenant()
    other_plans = intent(b, "ann", E3, frozenset(), after=owned(b, "ann", E3))  # SWAY still off
    never_added = intent(b, "cat", E3, frozenset(), run="run-2", after=owned(b, "cat", E3))
    not_removed = intent(b, "ben", EMS, None, before=owned(b, "ben", EMS))
    gone = intent(b, "deleted", E3, None, run="run-2", before=owned(b, "deleted", E3))
    recovery = reconcile([other_plans, never_added, not_removed, gone], b.tenant())
    assert recovery.applied == {} and recovery.not_applied == {"run-1": 2, "run-2": 2}
    assert recovery.changes == () and not recovery.diff
    assert object_id("deleted") in recovery.users


def test_the_ledger_entry_taken_is_stored_in_canonical_form() -> None:
    b = tenant()
    loud = Ownership(object_id("ann").upper(), b.sku_id(E3).upper(), (SALES.upper(), SALES), None)
    sway = frozenset(b.plan_ids(E3, ["SWAY"]))
    recovery = reconcile([intent(b, "ann", E3, sway, after=loud)], b.tenant())
    assert recovery.diff.upserts == (owned(b, "ann", E3),)


def test_apply_diff_deletes_then_upserts_without_touching_the_ledger_given() -> None:
    b = tenant()
    ann, ben, e3, ems = object_id("ann"), object_id("ben"), b.sku_id(E3), b.sku_id(EMS)
    ledger = {(ann, e3): owned(b, "ann", E3), (ben, ems): owned(b, "ben", EMS)}
    replaced = owned(b, "ann", E3, prior=frozenset())
    diff = LedgerDiff(upserts=(replaced, owned(b, "ben", E3)), deletes=((ben, ems), ("x", "y")))
    assert apply_diff(ledger, diff) == {(ann, e3): replaced, (ben, e3): owned(b, "ben", E3)}
    assert set(ledger) == {(ann, e3), (ben, ems)}
