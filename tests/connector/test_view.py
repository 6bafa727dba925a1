"""The cached tenant view: which member lists it keeps, its rows in the store and back, and the
row diff an incremental run patches the store with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from licsync.config import Config, parse_config
from licsync.connector.view import VIEW_FORMAT, TenantView, diff_rows, typed_members, wanted_groups
from licsync.graphjson import GROUP_TYPE, USER_TYPE
from licsync.store import CachedObjects
from tests.builders import TenantBuilder, object_id

E3 = "ENTERPRISEPACK"


def rules(*groups: tuple[str, bool]) -> Config:
    text = "".join(
        f'[[group_licenses]]\ngroup = "{g}"\nnested = {str(n).lower()}\n'
        f'licenses = [{{ sku = "{E3}" }}]\n'
        for g, n in groups
    )
    return parse_config(text, Path("licsync.toml"))


def tenant() -> TenantBuilder:
    """Sales (ann) holds Child (ben), which holds Grandchild (cat), which holds Sales again;
    Entra licenses Licensed; Other is nobody's business."""
    b = TenantBuilder().sku(E3).user("ann").user("ben").user("cat").user("dan")
    b.group("Grandchild", members=["cat"], groups=["Sales"])
    b.group("Child", members=["ben"], groups=["Grandchild"])
    b.group("Sales", members=["ann"], groups=["Child"])
    b.group("Licensed", members=["dan"], entra={E3: []})
    return b.group("Other", members=["dan"])


def ids(*names: str) -> set[str]:
    return {object_id(n) for n in names}


def as_objects(rows: dict[tuple[str, str], Any]) -> CachedObjects:
    """Store rows as `load_tenant_cache` returns them."""
    objects: CachedObjects = {}
    for (kind, oid), row in rows.items():
        objects.setdefault(kind, {})[oid] = row
    return objects


def test_typed_members_keeps_each_members_kind() -> None:
    assert typed_members(["u1", "u2"], ["g1"]) == {
        "u1": USER_TYPE,
        "u2": USER_TYPE,
        "g1": GROUP_TYPE,
    }


def test_wanted_groups_are_rule_groups_and_entra_licensed_ones() -> None:
    t = tenant().tenant()
    known = {g.id: typed_members(g.member_users, g.member_groups) for g in t.groups.values()}
    assert wanted_groups(t.groups, rules(("Sales", False)), known) == ids("Sales", "Licensed")
    assert wanted_groups(t.groups, None, known) == ids("Licensed")


def test_a_nested_rule_wants_every_group_below_it_and_survives_cycles() -> None:
    t = tenant().tenant()
    known = {g.id: typed_members(g.member_users, g.member_groups) for g in t.groups.values()}
    wanted = wanted_groups(t.groups, rules(("Sales", True)), known)
    assert wanted == ids("Sales", "Child", "Grandchild", "Licensed")
    # only memberships already known are followed: without Child's list, Grandchild is unknown
    del known[object_id("Child")]
    assert wanted_groups(t.groups, rules(("Sales", True)), known) == ids(
        "Sales", "Child", "Licensed"
    )


def test_the_view_keeps_member_lists_of_wanted_groups_only() -> None:
    t = tenant().tenant()
    view = TenantView.from_tenant(t, rules(("Sales", False)))
    assert set(view.users) == ids("ann", "ben", "cat", "dan")
    assert set(view.groups) == ids("Sales", "Child", "Grandchild", "Licensed", "Other")
    assert set(view.members) == ids("Sales", "Licensed")
    assert view.members[object_id("Sales")] == {
        object_id("ann"): USER_TYPE,
        object_id("Child"): GROUP_TYPE,
    }


def test_the_view_comes_back_from_its_rows_as_the_same_tenant() -> None:
    t = tenant().tenant()
    view = TenantView.from_tenant(t, rules(("Sales", True)))
    again = TenantView.from_cache(as_objects(view.rows()))
    assert again == view
    rebuilt = again.tenant(t.country, t.skus, t.tenant_id)
    assert rebuilt.users == t.users and rebuilt.skus == t.skus
    for gid in ids("Sales", "Child", "Grandchild", "Licensed"):
        assert rebuilt.groups[gid] == t.groups[gid]
    other = rebuilt.groups[object_id("Other")]  # kept without its members
    assert other.display_name == "Other" and other.member_users == ()


def test_a_cache_without_a_view_or_of_another_format_is_not_used() -> None:
    rows = TenantView.from_tenant(tenant().tenant(), None).rows()
    assert TenantView.from_cache({}) is None
    assert (
        TenantView.from_cache(as_objects({k: v for k, v in rows.items() if k[0] != "meta"})) is None
    )
    rows[("meta", "view")] = {"format": VIEW_FORMAT + 1}
    assert TenantView.from_cache(as_objects(rows)) is None


def test_users_to_re_read_are_kept_as_stale_rows() -> None:
    view = TenantView.from_tenant(tenant().tenant(), None)
    view.stale = {"u-old"}
    rows = view.rows(stale=["u-new", "u-old"])
    assert {k for k in rows if k[0] == "stale"} == {("stale", "u-old"), ("stale", "u-new")}
    assert TenantView.from_cache(as_objects(rows)).stale == {"u-old", "u-new"}


def test_forget_drops_deleted_objects_from_every_member_list() -> None:
    view = TenantView(members={"g1": {"u1": USER_TYPE, "g2": GROUP_TYPE}, "g2": {"u1": USER_TYPE}})
    view.forget({"u1", "never-a-member"})
    assert view.members == {"g1": {"g2": GROUP_TYPE}, "g2": {}}


def test_diff_rows_upserts_what_changed_or_is_new_and_deletes_what_is_gone() -> None:
    old = {("user", "a"): {"v": 1}, ("user", "b"): {"v": 1}, ("stale", "c"): {}}
    new = {("user", "a"): {"v": 1}, ("user", "b"): {"v": 2}, ("group", "d"): {"v": 1}}
    upserts, deletes = diff_rows(old, new)
    assert sorted(upserts) == [("group", "d", {"v": 1}), ("user", "b", {"v": 2})]
    assert deletes == [("stale", "c")]
    assert diff_rows(new, new) == ([], [])
