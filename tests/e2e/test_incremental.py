"""Incremental runs end to end: `users/delta` and `groups/delta` from the links in the state
store, the cached tenant view they patch, and every way back to a full read. Real HTTP against
the in-process emulator; membership changes go through Graph's own `$ref` endpoints."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from licsync.cli import main
from licsync.config import parse_config
from licsync.connector.read_delta import DeltaRefused, read_incremental
from licsync.connector.view import TenantView
from licsync.emulator.generate import generate_rules, generate_tenant
from licsync.emulator.server import Emulator
from licsync.errors import GuardrailError, StateError
from licsync.exitcodes import ExitCode
from licsync.graph.classify import Action, Verdict
from licsync.graph.errors import GraphError
from licsync.graphjson import parse_user, user_json
from licsync.model import Tenant
from licsync.snapshot import tenant_from_json
from licsync.store import open_store
from tests.builders import catalogue_plan_id as plan_id
from tests.builders import catalogue_sku_id as sku_id
from tests.builders import group_id, small_snapshot, user_id
from tests.syncing import buy_seats, config_text, direct_licences, make_config, sync

E3, BI = "SPE_E3", "POWER_BI_PRO"
USER, GROUP = "#microsoft.graph.user", "#microsoft.graph.group"
RULES = [
    {"group": "Group 1", "licenses": [{"sku": E3, "disabled_plans": ["SWAY"]}]},
    {"group": group_id(2), "licenses": [{"sku": E3, "disabled_plans": ["YAMMER_ENTERPRISE"]}]},
    {"group": "Group 3", "nested": True, "licenses": [{"sku": BI}]},
]


def add_member(graph: Emulator, group: str, member: str) -> None:
    ref = {"@odata.id": f"{graph.url}/directoryObjects/{member}"}
    httpx.post(f"{graph.url}/groups/{group}/members/$ref", json=ref).raise_for_status()


def remove_member(graph: Emulator, group: str, member: str) -> None:
    httpx.delete(f"{graph.url}/groups/{group}/members/{member}/$ref").raise_for_status()


def tenant_with_nesting() -> dict[str, Any]:
    """Groups 1-3 of `small_snapshot`, plus group 4 (nested in group 3, no rule of its own) and
    group 5 (not nested yet). User 4 holds E3 directly with one plan off."""
    snapshot = small_snapshot(
        users=12,
        members={1: [1, 2, 3, 4], 2: [5], 3: [7]},
        direct={4: [(E3, ["WHITEBOARD_PLAN2"])]},
    )
    for n, users in ((4, [10]), (5, [9])):
        snapshot["groups"].append(
            {
                **snapshot["groups"][0],
                "id": group_id(n),
                "displayName": f"Group {n}",
                "members": [
                    {"@odata.type": "#microsoft.graph.user", "id": user_id(u)} for u in users
                ],
            }
        )
    snapshot["groups"][2]["members"].append(
        {"@odata.type": "#microsoft.graph.group", "id": group_id(4)}
    )
    return snapshot


def same_tenant(a: Tenant, b: Tenant, groups: set[str]) -> None:
    """Equal users, SKUs and group shells; equal member sets for `groups` (order is Graph's)."""
    assert a.users == b.users
    assert a.skus == b.skus and a.country == b.country
    assert set(a.groups) == set(b.groups)
    for gid in groups:
        assert set(a.groups[gid].member_users) == set(b.groups[gid].member_users), gid
        assert set(a.groups[gid].member_groups) == set(b.groups[gid].member_groups), gid


def stored(tmp_path: Path) -> tuple[dict[str, str | None], dict[str, Any]]:
    with open_store(str(tmp_path / "state.db")) as store:
        links = {r: store.delta_link(r) for r in ("users", "groups")}
        return links, store.load_tenant_cache()


# --- membership changes converge on the next incremental run -----------------------------------


def test_membership_changes_converge_on_the_next_incremental_run(
    emulator_factory: Any, tmp_path: Path
) -> None:
    graph = emulator_factory(tenant_with_nesting())
    config = make_config(tmp_path, graph, RULES)
    e3, bi = sku_id(E3), sku_id(BI)
    sway, yammer = plan_id(E3, "SWAY"), plan_id(E3, "YAMMER_ENTERPRISE")

    first = sync(config)
    assert not first.incremental and first.failed_users == ()
    lic = direct_licences(graph)
    assert lic[user_id(10)] == {bi: frozenset()}  # in group 4, nested in group 3
    assert lic[user_id(9)] == {}

    add_member(graph, group_id(1), user_id(6))  # join
    remove_member(graph, group_id(1), user_id(2))  # leave
    remove_member(graph, group_id(1), user_id(3))  # move to a group with other plans off
    add_member(graph, group_id(2), user_id(3))
    remove_member(graph, group_id(1), user_id(4))  # leave, keeping the direct licence
    add_member(graph, group_id(4), user_id(8))  # nested opt-in: joins a nested group
    add_member(graph, group_id(3), group_id(5))  # a group newly nested in the nested rule

    full_plan = sync(config, dry_run=True, full=True).plan  # what a fresh full read computes
    graph.stats.reset()
    second = sync(config)
    assert second.incremental
    assert (
        graph.stats.count("GET /users/delta") == 1 and graph.stats.count("GET /groups/delta") == 1
    )
    assert graph.stats.count("GET /groups/{id}/members") == 1  # only group 5, newly needed
    assert second.plan.changes == full_plan.changes and second.plan.ledger == full_plan.ledger
    assert second.failed_users == ()

    lic = direct_licences(graph)
    assert lic[user_id(6)] == {e3: frozenset({sway})}
    assert lic[user_id(2)] == {}
    assert lic[user_id(3)] == {e3: frozenset({yammer})}
    assert lic[user_id(4)] == {e3: frozenset({plan_id(E3, "WHITEBOARD_PLAN2")})}  # kept
    assert lic[user_id(8)] == {bi: frozenset()}
    assert lic[user_id(9)] == {bi: frozenset()}

    third = sync(config)  # incremental again: licsync's own writes are read back, nothing to do
    fresh = sync(config, dry_run=True, full=True)
    assert third.incremental and not fresh.incremental
    assert third.plan.changes == () and fresh.plan.changes == ()
    rule_groups = {group_id(n) for n in (1, 2, 3, 4, 5)}
    same_tenant(third.tenant, fresh.tenant, rule_groups)
    with open_store(str(tmp_path / "state.db")) as store:
        ledger = store.load_ledger()
    assert (user_id(4), e3) not in ledger and (user_id(2), e3) not in ledger
    assert ledger[(user_id(3), e3)].groups == (group_id(2),)
    assert ledger[(user_id(9), bi)].groups == (group_id(3),)


@pytest.mark.parametrize("small", [{"members": {1: [5], 2: [5]}}], indirect=True)
def test_a_write_graph_does_not_report_in_users_delta_is_read_back(
    small: Emulator, tmp_path: Path
) -> None:
    """Graph's users/delta does not track licenseAssignmentStates: a direct E3 added next to the
    same E3 from an Entra-licensed group leaves assignedLicenses as it was, so the user is not
    in the next delta. licsync re-reads the users it wrote instead of planning the add again."""
    e3, yammer = sku_id(E3), plan_id(E3, "YAMMER_ENTERPRISE")
    body = {"addLicenses": [{"skuId": e3, "disabledPlans": [yammer]}], "removeLicenses": []}
    httpx.post(f"{small.url}/groups/{group_id(2)}/assignLicense", json=body).raise_for_status()
    rules = [
        {"group": "Group 1", "licenses": [{"sku": E3, "disabled_plans": ["YAMMER_ENTERPRISE"]}]}
    ]
    config = make_config(tmp_path, small, rules)
    first = sync(config)
    assert [c.user_id for c in first.plan.changes] == [user_id(5)]
    assert direct_licences(small)[user_id(5)] == {e3: frozenset({yammer})}
    small.stats.reset()
    second = sync(config)
    assert second.incremental and second.plan.changes == ()
    assert small.stats.count("GET /users/delta") == 1 and small.stats.count("GET /users") == 2


# --- an unchanged tenant reads almost nothing ---------------------------------------------------


@pytest.mark.slow
def test_an_unchanged_tenant_sends_only_a_handful_of_requests(
    emulator_factory: Any, tmp_path: Path
) -> None:
    generated = buy_seats(emulator_factory(users=3000, groups=60, seed=1), 3000)
    config = make_config(tmp_path, generated, generate_rules(generated.snapshot(), 20, 1))
    counts = {}
    for name in ("full", "incremental", "unchanged"):
        generated.stats.reset()
        result = sync(config)
        counts[name] = (generated.stats.count("GET"), generated.stats.count(""), result)
    print(
        "\nGET requests (all requests) on 3000 users / 60 groups: "
        + ", ".join(f"{k} {g} ({n})" for k, (g, n, _) in counts.items())
    )
    full, incremental, unchanged = (counts[k][2] for k in ("full", "incremental", "unchanged"))
    assert not full.incremental and incremental.incremental and unchanged.incremental
    assert len(full.plan.changes) > 100
    # the refused writes of the first run are tried again (they change nothing in Graph)
    assert {c.user_id for c in unchanged.plan.changes} <= set(full.failed_users)
    # organization (the tenant check), users/delta, groups/delta (one empty page each),
    # organization, subscribedSkus: five GETs, whatever the tenant's size (a full read takes one
    # per 999 users and one per member group)
    assert counts["unchanged"][0] == 5
    assert counts["full"][0] >= 5 + 3000 // 999 + 20


# --- full re-reads: on demand, and when a link is refused ---------------------------------------


@pytest.mark.parametrize("small", [{"members": {1: [1, 2]}}], indirect=True)
def test_full_re_reads_everything_and_takes_new_links(small: Emulator, tmp_path: Path) -> None:
    config = make_config(tmp_path, small, RULES[:1])
    sync(config)
    old_links, _ = stored(tmp_path)
    small.stats.reset()
    again = sync(config, full=True)
    assert not again.incremental
    assert small.stats.count("GET /users") >= 2  # the delta link ($deltatoken=latest), the list
    assert small.stats.count("GET /groups/{id}/members") == 1
    new_links, _ = stored(tmp_path)
    assert new_links["users"] and new_links != old_links
    assert sync(config).incremental


@pytest.mark.parametrize("how", ["expired", "refused"])
@pytest.mark.parametrize("small", [{"members": {1: [1, 2]}}], indirect=True)
def test_a_refused_delta_link_falls_back_to_a_full_read(
    small: Emulator, tmp_path: Path, how: str
) -> None:
    config = make_config(tmp_path, small, RULES[:1])
    sync(config)
    if how == "expired":
        small.tenant.expire_delta_links()  # Graph: 400 syncStateNotFound after seven days
    else:
        conn = sqlite3.connect(tmp_path / "state.db")
        conn.execute(
            "UPDATE delta_links SET link = ? WHERE resource = 'users'",
            (f"{small.url}/users/delta?$deltatoken=not-a-token",),
        )
        conn.commit()
        conn.close()
    add_member(small, group_id(1), user_id(3))
    small.stats.reset()
    result = sync(config)
    assert not result.incremental
    assert small.stats.count("GET /users/delta", status=400) == 1
    assert direct_licences(small)[user_id(3)] == {sku_id(E3): frozenset({plan_id(E3, "SWAY")})}
    links, _ = stored(tmp_path)
    assert "not-a-token" not in str(links["users"])
    assert sync(config).incremental


# --- a config change between runs ----------------------------------------------------------------


@pytest.mark.parametrize("small", [{"members": {1: [1, 2], 2: [5, 6]}}], indirect=True)
def test_a_rule_added_or_removed_between_runs_reads_what_it_needs(
    small: Emulator, tmp_path: Path
) -> None:
    """A new rule group has no cached members: they are read in full in the incremental run. A
    rule group dropped from the config is forgotten (a later rule for it reads it again)."""
    e3 = sku_id(E3)
    sync(make_config(tmp_path, small, RULES[:1]))
    added = make_config(tmp_path, small, RULES[:2])
    full_plan = sync(added, dry_run=True, full=True).plan
    small.stats.reset()
    second = sync(added)
    assert second.incremental and small.stats.count("GET /groups/{id}/members") == 1
    assert second.plan.changes == full_plan.changes and second.plan.ledger == full_plan.ledger
    assert {u: lic[e3] for u, lic in direct_licences(small).items() if lic} == {
        user_id(1): frozenset({plan_id(E3, "SWAY")}),
        user_id(2): frozenset({plan_id(E3, "SWAY")}),
        user_id(5): frozenset({plan_id(E3, "YAMMER_ENTERPRISE")}),
        user_id(6): frozenset({plan_id(E3, "YAMMER_ENTERPRISE")}),
    }
    _, cache = stored(tmp_path)
    assert {"members" in cache["group"][group_id(n)] for n in (1, 2)} == {True}

    dropped = make_config(tmp_path, small, RULES[1:2])
    full_plan = sync(dropped, dry_run=True, full=True).plan
    third = sync(dropped)
    assert third.incremental and third.plan.changes == full_plan.changes
    assert direct_licences(small)[user_id(1)] == {} and direct_licences(small)[user_id(5)]
    _, cache = stored(tmp_path)
    assert "members" not in cache["group"][group_id(1)]
    small.stats.reset()
    assert sync(added).incremental and small.stats.count("GET /groups/{id}/members") == 1


# --- a failing run advances nothing -------------------------------------------------------------


@pytest.mark.parametrize("small", [{"members": {1: [1, 2, 3, 4, 5, 6]}}], indirect=True)
def test_a_failing_run_does_not_advance_the_links_or_the_view(
    small: Emulator, tmp_path: Path
) -> None:
    config = make_config(tmp_path, small, RULES[:1], guardrail=(2, 100.0))
    sync(config)
    sync(config)  # reads licsync's own writes back: links and view now settled
    before = stored(tmp_path)
    for n in (1, 2, 3):
        remove_member(small, group_id(1), user_id(n))
    with pytest.raises(GuardrailError):
        sync(config)
    assert stored(tmp_path) == before
    approved = sync(config, allow_removals=3)  # replays the same changes from the old links
    assert approved.incremental and approved.guardrail.removals == 3
    assert all(direct_licences(small)[user_id(n)] == {} for n in (1, 2, 3))
    assert stored(tmp_path) != before


@pytest.mark.parametrize("small", [{"members": {1: [1, 2]}}], indirect=True)
def test_a_run_that_dies_after_its_writes_is_replayed_from_the_old_links(
    small: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writes reached Graph and their outcomes were recorded, but the final transaction
    never ran (a crash, a lost store): links stay as they were (the view only gains the written
    users' re-read marks), and the next run replays the same delta onto them."""
    config = make_config(tmp_path, small, RULES[:1])
    sync(config)
    sync(config)
    before = stored(tmp_path)
    add_member(small, group_id(1), user_id(3))
    remove_member(small, group_id(1), user_id(1))

    def crash(*args: Any, **kw: Any) -> None:
        raise RuntimeError("killed between the writes and the record")

    monkeypatch.setattr("licsync.connector.sync.commit_run", crash)
    with pytest.raises(RuntimeError):
        sync(config)
    links, view = stored(tmp_path)
    assert links == before[0]
    assert {k: v for k, v in view.items() if k != "stale"} == before[1]
    assert set(view["stale"]) == {user_id(1), user_id(3)}
    assert direct_licences(small)[user_id(3)] and direct_licences(small)[user_id(1)] == {}
    monkeypatch.undo()
    replayed = sync(config)
    assert replayed.incremental and replayed.failed_users == ()
    settled, fresh = sync(config), sync(config, dry_run=True, full=True)
    assert settled.incremental and settled.plan.changes == () and fresh.plan.changes == ()
    same_tenant(settled.tenant, fresh.tenant, {group_id(1)})
    with open_store(str(tmp_path / "state.db")) as store:
        assert store.load_ledger() == fresh.plan.ledger


@pytest.mark.parametrize("small", [{"members": {1: [1]}}], indirect=True)
def test_the_lease_is_renewed_while_the_run_reads(
    small: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read longer than the lease's TTL (a full read of a large tenant) keeps the lease: no
    second run can take it over and write at the same time."""
    text = config_text(small, tmp_path / "state.db", RULES[:1]).replace(
        "[state]\n",
        "[state]\nlease_ttl_seconds = 2\n",  # a heartbeat every 0.67 s
    )
    (tmp_path / "licsync.toml").write_text(text, encoding="utf-8")
    config = parse_config(text, tmp_path / "licsync.toml")
    from licsync.connector import sync as sync_module

    read_for_sync = sync_module.read_for_sync
    intruder: list[BaseException | None] = []

    async def slow_read(*args: Any, **kw: Any) -> Any:
        await asyncio.sleep(3)  # past the TTL (with room for a late heartbeat on a busy machine)
        with open_store(str(tmp_path / "state.db")) as other:
            try:
                other.acquire_lease("another-run", 60)
                intruder.append(None)
            except StateError as exc:
                intruder.append(exc)
        return await read_for_sync(*args, **kw)

    monkeypatch.setattr(sync_module, "read_for_sync", slow_read)
    result = sync(config)
    assert isinstance(intruder[0], StateError) and result.failed_users == ()
    with open_store(str(tmp_path / "state.db")) as store:
        assert store.current_lease() is None  # released at the end


# --- delta pages: removed users, split member lists ---------------------------------------------


class FakeGraph:
    """Answers GETs from a table of urls (a delta link or a path) to pages."""

    def __init__(self, pages: dict[str, dict[str, Any]], users: list[dict[str, Any]]) -> None:
        self.pages = pages
        self.users = users

    async def request_json(self, method: str, url: str, **kw: Any) -> Any:
        params = kw.get("params") or {}
        if url == "/users":  # a re-read by id
            wanted = params["$filter"]
            return {"value": [u for u in self.users if u["id"] in wanted]}
        return self.pages[url]

    def iterate_pages(self, url: str, params: Any = None, headers: Any = None) -> Any:
        from licsync.graph.paging import Paginator

        return Paginator(self, url, params=params, headers=headers)

    async def get_json(self, path: str, *a: Any, **kw: Any) -> dict[str, Any]:
        return self.pages[path]


def test_delta_pages_patch_the_view_with_removals_and_split_member_lists() -> None:
    u = [user_id(n) for n in range(6)]
    g1 = group_id(1)
    group = {"id": g1, "displayName": "Group 1", "securityEnabled": True, "assignedLicenses": []}
    view = TenantView(
        users={uid: {"id": uid, "userPrincipalName": uid} for uid in u[:4]},
        groups={g1: group, group_id(2): {**group, "id": group_id(2)}},
        members={g1: {u[0]: "#microsoft.graph.user", u[1]: "#microsoft.graph.user"}},
    )
    renamed = {"id": u[2], "userPrincipalName": "renamed@contoso.com", "usageLocation": "GB"}
    pages = {
        "users-link": {
            "value": [{"id": u[3], "@removed": {"reason": "deleted"}}, renamed],
            "@odata.deltaLink": "users-next",
        },
        "groups-link": {
            "value": [
                {**group, "members@delta": [{"id": u[2]}, {"id": u[0], "@removed": {}}]},
            ],
            "@odata.nextLink": "groups-page-2",
        },
        "groups-page-2": {  # the same group again: the rest of its member changes
            "value": [
                {**group, "members@delta": [{"id": u[4]}, {"id": u[2], "@removed": {}}]},
                {"id": group_id(2), "@removed": {"reason": "deleted"}},
            ],
            "@odata.deltaLink": "groups-next",
        },
        "/organization": {"value": [{"countryLetterCode": "us"}]},
        "/subscribedSkus": {"value": []},
    }
    graph = FakeGraph(pages, users=[{**renamed, "licenseAssignmentStates": []}])
    read = asyncio.run(
        read_incremental(graph, None, view, {"users": "users-link", "groups": "groups-link"})
    )
    assert read.links == {"users": "users-next", "groups": "groups-next"}
    assert set(read.tenant.users) == {u[0], u[1], u[2]}
    assert read.tenant.users[u[2]].usage_location == "GB"
    assert read.tenant.users[u[2]].license_assignment_states == ()  # re-read, not the delta's
    assert set(read.tenant.groups) == {g1}
    # no rule needs group 1 here, so its member list is forgotten after the patch
    assert read.view.members == {}
    assert read.tenant.country == "US"


def test_a_deleted_user_or_group_leaves_every_cached_member_list() -> None:
    """Graph drops a deleted user (soft, `reason: changed`, or for good) from its groups without
    any `members@delta`; likewise a deleted group from the groups it was nested in."""
    u = [user_id(n) for n in range(4)]
    g1, g2, g3 = group_id(1), group_id(2), group_id(3)
    licensed = {"securityEnabled": True, "assignedLicenses": [{"skuId": sku_id(E3)}]}
    view = TenantView(  # Entra licenses groups 1 and 2 (so their members are needed); 3 not
        users={uid: {"id": uid, "userPrincipalName": uid} for uid in u},
        groups={
            g1: {"id": g1, "displayName": "Group 1", **licensed},
            g2: {"id": g2, "displayName": "Group 2", **licensed},
            g3: {"id": g3, "displayName": "Group 3", "securityEnabled": True},
        },
        members={
            g1: {u[0]: USER, u[1]: USER, g3: GROUP},
            g2: {u[1]: USER, u[2]: USER, u[3]: USER},
        },
        stale={u[1]},
    )
    pages = {
        "users-link": {
            "value": [
                {"id": u[1], "@removed": {"reason": "changed"}},  # soft delete
                {"id": u[2], "@removed": {"reason": "deleted"}},  # for good
                {"id": u[3], "@removed": {"reason": "changed"}},
                {"id": u[3], "userPrincipalName": "back@contoso.com"},  # restored
            ],
            "@odata.deltaLink": "users-next",
        },
        "groups-link": {
            "value": [{"id": g3, "@removed": {"reason": "changed"}}],
            "@odata.deltaLink": "groups-next",
        },
        "/organization": {"value": [{"countryLetterCode": "US"}]},
        "/subscribedSkus": {"value": []},
    }
    graph = FakeGraph(pages, users=[{"id": u[3], "userPrincipalName": "back@contoso.com"}])
    read = asyncio.run(
        read_incremental(graph, None, view, {"users": "users-link", "groups": "groups-link"})
    )
    assert set(read.tenant.users) == {u[0], u[3]} and read.view.stale == set()
    assert read.tenant.groups[g1].member_users == (u[0],)
    assert read.tenant.groups[g1].member_groups == ()
    assert read.tenant.groups[g2].member_users == (u[3],)
    assert set(read.tenant.groups) == {g1, g2}


def test_a_user_graph_does_not_return_yet_is_never_planned_half_known() -> None:
    """users/delta reports a change, but the re-read by id does not find the user yet (Graph
    replicates): the last complete entry stays (a new user stays out) until a later re-read."""
    u0, u1, gone = user_id(0), user_id(1), user_id(2)
    old = {"id": u0, "userPrincipalName": "old@contoso.com", "licenseAssignmentStates": []}
    view = TenantView(users={u0: old})
    pages = {
        "users-link": {
            "value": [
                {"id": u0, "assignedLicenses": [{"skuId": sku_id(E3)}]},
                {"id": u1, "userPrincipalName": "new@contoso.com"},
            ],
            "@odata.deltaLink": "users-empty",
        },
        "users-empty": {"value": [], "@odata.deltaLink": "users-empty"},
        "groups-link": {"value": [], "@odata.deltaLink": "groups-link"},
        "/organization": {"value": []},
        "/subscribedSkus": {"value": []},
    }
    links = {"users": "users-link", "groups": "groups-link"}
    graph = FakeGraph(pages, users=[])
    read = asyncio.run(read_incremental(graph, None, view, links))
    assert read.view.users == {u0: old} and read.view.stale == {u0, u1}
    assert set(read.tenant.users) == {u0} and read.tenant.users[u0].assigned_licenses == ()
    view.stale.add(gone)  # an id Graph never returns again (deleted meanwhile)
    graph.users = [{**old, "userPrincipalName": "now@contoso.com"}, {"id": u1}]
    links["users"] = "users-empty"
    read = asyncio.run(read_incremental(graph, None, view, links))
    assert set(read.tenant.users) == {u0, u1} and read.view.stale == set()


@pytest.mark.parametrize(
    ("status", "refused"), [(400, True), (404, True), (410, True), (503, False)]
)
def test_only_a_refused_link_falls_back_to_a_full_read(status: int, refused: bool) -> None:
    """400 syncStateNotFound (a link older than seven days), 404 and 410 resyncRequired mean
    "read everything again"; any other Graph error fails the run, which commits nothing."""
    verdict = Verdict(Action.FATAL, status, code="syncStateNotFound")

    class Refusing(FakeGraph):
        async def request_json(self, method: str, url: str, **kw: Any) -> Any:
            if url == "users-page-2":
                raise GraphError(f"GET users/delta: {status}", verdict)
            return await super().request_json(method, url, **kw)

    pages = {
        "users-link": {"value": [], "@odata.nextLink": "users-page-2"},
        "groups-link": {"value": [], "@odata.deltaLink": "groups-next"},
        "/organization": {"value": []},
        "/subscribedSkus": {"value": []},
    }
    links = {"users": "users-link", "groups": "groups-link"}
    expected = DeltaRefused if refused else GraphError
    with pytest.raises(expected) as caught:
        asyncio.run(read_incremental(Refusing(pages, []), None, TenantView(), links))
    assert isinstance(caught.value, DeltaRefused) == refused


def test_a_cached_tenant_reads_back_unchanged() -> None:
    tenant = tenant_from_json(generate_tenant(500, 30, seed=3))
    assert all(parse_user(user_json(user)) == user for user in tenant.users.values())
    view = TenantView.from_tenant(tenant, None)
    rows = view.rows()
    again = TenantView.from_cache(
        {k: {i: d for (kk, i), d in rows.items() if kk == k} for k in {k for k, _ in rows}}
    )
    assert again is not None and again.tenant(tenant.country, tenant.skus).users == tenant.users


# --- dry runs write nothing; relative state paths ----------------------------------------------


@pytest.mark.parametrize("small", [{"members": {1: [1, 2]}}], indirect=True)
def test_a_dry_run_creates_and_writes_no_state_store(small: Emulator, tmp_path: Path) -> None:
    config = make_config(tmp_path, small, RULES[:1])
    before = sorted(os.listdir(tmp_path))
    preview = sync(config, dry_run=True)
    assert len(preview.plan.changes) == 2
    assert sorted(os.listdir(tmp_path)) == before  # no state.db, -wal or -shm
    path = str(config.path)
    assert main(["sync", "--config", path, "--dry-run", "--format", "json"]) == ExitCode.OK
    assert not (tmp_path / "state.db").exists()

    sync(config)
    small.stats.reset()
    assert not sync(config, dry_run=True, full=True).incremental
    deltas = small.stats.count("GET /users/delta") + small.stats.count("GET /groups/delta")
    assert deltas == 0  # no links it could not keep
    add_member(small, group_id(1), user_id(3))
    with open_store(str(tmp_path / "state.db")) as store:
        runs, links = store.list_runs(), store.delta_link("users")
    mtime = (tmp_path / "state.db").stat().st_mtime_ns
    preview = sync(config, dry_run=True)  # incremental, read-only
    assert preview.incremental and [c.user_id for c in preview.plan.changes] == [user_id(3)]
    assert (tmp_path / "state.db").stat().st_mtime_ns == mtime
    with open_store(str(tmp_path / "state.db")) as store:
        assert store.list_runs() == runs and store.delta_link("users") == links
        assert store.current_lease() is None


@pytest.mark.parametrize("url", ["state/licsync.db", "sqlite:///state/licsync.db"])
@pytest.mark.parametrize("small", [{"members": {1: [1]}}], indirect=True)
def test_a_relative_state_path_is_relative_to_the_config_file(
    small: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    home = tmp_path / "conf"
    (home / "state").mkdir(parents=True)
    text = config_text(small, Path("placeholder"), RULES[:1]).replace(
        'url = "placeholder"', f'url = "{url}"'
    )
    (home / "licsync.toml").write_text(text, encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = parse_config(text, home / "licsync.toml")
    sync(config)
    assert (home / "state" / "licsync.db").exists()
    assert os.listdir(elsewhere) == []
    with open_store(str(home / "state" / "licsync.db")) as store:
        assert len(store.list_runs()) == 1


def test_deleted_users_and_groups_leave_the_incremental_view(
    emulator_factory: Any, tmp_path: Path
) -> None:
    """Over real HTTP: a licensed user and a nested group are deleted in the emulator; the
    next incremental run sees them gone (users/delta and groups/delta @removed, no
    members@delta), plans like a full read, and writes nothing for the deleted user."""
    graph = emulator_factory(tenant_with_nesting())
    config = make_config(tmp_path, graph, RULES)
    sync(config)
    e3 = sku_id(E3)
    assert e3 in direct_licences(graph)[user_id(1)]
    consumed = graph.tenant.skus[e3].consumed
    httpx.delete(f"{graph.url}/users/{user_id(1)}").raise_for_status()
    httpx.delete(f"{graph.url}/groups/{group_id(4)}").raise_for_status()  # nested in group 3

    fresh = sync(config, dry_run=True, full=True)  # what a full read sees now
    after = sync(config)
    assert after.summary()["read"] == "incremental"
    assert user_id(1) not in after.tenant.users and group_id(4) not in after.tenant.groups
    same_tenant(after.tenant, fresh.tenant, {group_id(n) for n in (1, 2, 3)})
    assert after.plan.changes == fresh.plan.changes
    assert after.succeeded_users == (user_id(10),)  # nothing written for the deleted user
    assert graph.tenant.skus[e3].consumed == consumed - 1
    assert sku_id(BI) not in direct_licences(graph)[user_id(10)]  # group 4 no longer nested
