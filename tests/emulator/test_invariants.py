"""Property test: whatever sequence of licensing calls, seats and sources stay consistent."""

from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from licsync.emulator.state import GraphError, Tenant
from tests.builders import TINY_IDS as IDS
from tests.builders import TINY_SEATS as SEATS
from tests.builders import catalogue_sku_id as sku_id
from tests.builders import tiny_snapshot

USERS = ["alice", "bob", "carol", "dave", "erin", "frank"]
GROUPS = ["licensed", "sales", "parent"]
PARTS = sorted(SEATS)

sku = st.sampled_from(PARTS).map(sku_id)
operation = st.one_of(
    st.tuples(
        st.just("user"),
        st.sampled_from(USERS),
        st.lists(sku, max_size=2),
        st.lists(sku, max_size=1),
    ),
    st.tuples(
        st.just("group"),
        st.sampled_from(GROUPS),
        st.lists(sku, max_size=2),
        st.lists(sku, max_size=1),
    ),
    st.tuples(st.just("join"), st.sampled_from(GROUPS), st.sampled_from(USERS)),
    st.tuples(st.just("leave"), st.sampled_from(GROUPS), st.sampled_from(USERS)),
    st.tuples(st.just("reprocess"), st.sampled_from(USERS)),
    st.tuples(st.just("locate"), st.sampled_from(USERS)),
)


def apply(tenant: Tenant, op: tuple) -> None:
    kind = op[0]
    if kind in ("user", "group"):
        body = {
            "addLicenses": [{"skuId": s, "disabledPlans": []} for s in dict.fromkeys(op[2])],
            "removeLicenses": list(dict.fromkeys(op[3])),
        }
        if kind == "user":
            tenant.assign_user_license(IDS[op[1]], body)
        else:
            tenant.assign_group_license(IDS[op[1]], body)
    elif kind == "join":
        tenant.add_member(IDS[op[1]], IDS[op[2]])
    elif kind == "leave":
        tenant.remove_member(IDS[op[1]], IDS[op[2]])
    elif kind == "reprocess":
        tenant.reprocess(IDS[op[1]])
    else:
        tenant.patch_user(IDS[op[1]], {"usageLocation": "NL"})


def check(tenant: Tenant) -> None:
    holders = Counter(s for u in tenant.users.values() for s in u.held())
    for record in tenant.skus.values():
        assert record.consumed == holders[record.id]
        assert record.consumed <= record.enabled
    for user in tenant.users.values():
        keys = [(s.sku, s.group) for s in user.sources]
        assert len(keys) == len(set(keys))
        derived = {}
        for s in user.sources:
            if s.active:
                derived[s.sku] = derived.get(s.sku, set(s.disabled)) & set(s.disabled)
        assert {a["skuId"]: set(a["disabledPlans"]) for a in user.licenses} == derived
        for s in user.sources:
            if s.group and s.state == "Active":
                group = tenant.groups[s.group]
                assert user.id in group.members and s.sku in group.licenses


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, max_size=12))
def test_any_sequence_keeps_seats_and_sources_consistent(ops):
    tenant = Tenant.from_snapshot(tiny_snapshot())
    for op in ops:
        before = tenant.to_snapshot()
        try:
            apply(tenant, op)
        except GraphError:
            assert tenant.to_snapshot() == before  # failed calls change nothing
        check(tenant)
