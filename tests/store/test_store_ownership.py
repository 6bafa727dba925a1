"""Ownership rules, decided above the SQL: licsync only removes what it assigned."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from licsync.model import Ownership
from licsync.store import diff_ledger, normalise_ownership, settle_ledger

PLANS = frozenset({"plan-a"})


def own(user: str, sku: str, *groups: str, prior: frozenset[str] | None = None) -> Ownership:
    return Ownership(user, sku, groups, prior)


def test_normalising_lowers_ids_sorts_groups_and_refuses_no_group():
    entry = normalise_ownership(own("U1", "E3", "G2", "g1", "G1", prior=frozenset({"P"})))
    assert entry == own("u1", "e3", "g1", "g2", prior=frozenset({"p"}))
    with pytest.raises(ValueError, match="names no rule group"):
        normalise_ownership(own("u1", "e3"))


def test_settling_keeps_old_entries_for_users_whose_write_failed():
    old = {("u1", "e3"): own("u1", "e3", "g1"), ("u2", "e3"): own("u2", "e3", "g1")}
    planned = {("u1", "e5"): own("u1", "e5", "g2"), ("u2", "e5"): own("u2", "e5", "g2")}
    settled = settle_ledger(old, planned, applied_users={"U1"})
    assert settled == {("u1", "e5"): own("u1", "e5", "g2"), ("u2", "e3"): own("u2", "e3", "g1")}


ids = st.sampled_from(["u1", "u2", "u3"])
skus = st.sampled_from(["e3", "e5"])
entries = st.builds(
    own,
    ids,
    skus,
    st.sampled_from(["g1", "g2", "g3"]),
    prior=st.none() | st.frozensets(st.sampled_from(["p1", "p2"])),
)
ledgers = st.lists(entries).map(lambda es: {(e.user_id, e.sku_id): e for e in es})


@given(ledgers, ledgers)
def test_applying_a_diff_turns_the_old_ledger_into_the_new(old, new):
    diff = diff_ledger(old, new)
    result = dict(old)
    for key in diff.deletes:
        del result[key]
    result.update({(e.user_id, e.sku_id): e for e in diff.upserts})
    assert result == new
    assert bool(diff) == (old != new)
