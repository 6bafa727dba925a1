"""Entra's licensing behaviour over HTTP: seats, sources, group processing, membership changes."""

from __future__ import annotations

import httpx
import pytest

from tests.builders import TINY_IDS as IDS
from tests.builders import catalogue_plan_id as plan_id
from tests.builders import catalogue_sku_id as sku_id

E3, EMS, PBI = sku_id("SPE_E3"), sku_id("EMS"), sku_id("POWER_BI_PRO")


def licences(graph, who: str) -> tuple[list[dict], list[dict]]:
    user = graph.tenant.users[IDS[who]]
    return user.licenses, user.states_json()


def post(http: httpx.Client, url: str, body: dict) -> httpx.Response:
    return http.post(url, json=body)


def group_assign(http, graph, group: str, add: list[str], remove: list[str] = ()) -> httpx.Response:
    body = {
        "addLicenses": [{"skuId": s, "disabledPlans": []} for s in add],
        "removeLicenses": list(remove),
    }
    return post(http, f"{graph.url}/groups/{IDS[group]}/assignLicense", body)


def user_assign(
    http, graph, who: str, add: list[tuple[str, list[str]]], remove=()
) -> httpx.Response:
    body = {
        "addLicenses": [{"skuId": s, "disabledPlans": d} for s, d in add],
        "removeLicenses": list(remove),
    }
    return post(http, f"{graph.url}/users/{IDS[who]}/assignLicense", body)


def test_group_licence_uses_tenant_country_and_count_violation(tiny, http):
    response = group_assign(http, tiny, "licensed", [EMS])
    assert response.status_code == 202
    assert response.json()["id"] == IDS["licensed"]
    _, carol = licences(tiny, "carol")
    assert carol == [
        {
            **carol[0],
            "skuId": EMS,
            "assignedByGroup": IDS["licensed"],
            "state": "Active",
            "error": "None",
            "disabledPlans": [],
        }
    ]
    assert tiny.tenant.users[IDS["carol"]].usage_location is None  # never written on the user
    held, erin = licences(tiny, "erin")  # third member, two seats
    assert held == [] and erin[0]["state"] == "Error" and erin[0]["error"] == "CountViolation"
    assert tiny.tenant.skus[EMS].consumed == 2


def test_group_is_all_or_nothing_per_user(tiny, http):
    group_assign(http, tiny, "licensed", [E3, PBI])  # one E3 seat left
    held, _ = licences(tiny, "bob")
    assert {a["skuId"] for a in held} == {E3, PBI}
    held, states = licences(tiny, "carol")
    assert held == []
    assert {(s["skuId"], s["state"], s["error"]) for s in states} == {
        (E3, "Error", "CountViolation"),
        (PBI, "Error", "Other"),
    }
    assert tiny.tenant.skus[PBI].consumed == 1 and tiny.tenant.skus[E3].consumed == 3


def test_join_and_leave_move_seats_and_keep_direct(tiny, http):
    group_assign(http, tiny, "licensed", [E3])  # bob takes the last E3 seat
    ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{IDS['alice']}"}
    assert post(http, f"{tiny.url}/groups/{IDS['licensed']}/members/$ref", ref).status_code == 204
    held, states = licences(tiny, "alice")  # direct + group: two states, one seat
    assert len(held) == 1 and len(states) == 2 and tiny.tenant.skus[E3].consumed == 3
    gone = http.delete(f"{tiny.url}/groups/{IDS['licensed']}/members/{IDS['bob']}/$ref")
    assert gone.status_code == 204
    assert licences(tiny, "bob") == ([], []) and tiny.tenant.skus[E3].consumed == 2
    again = http.delete(f"{tiny.url}/groups/{IDS['licensed']}/members/{IDS['bob']}/$ref")
    assert again.status_code == 404
    dup = post(http, f"{tiny.url}/groups/{IDS['licensed']}/members/$ref", ref)
    assert dup.status_code == 400 and "already exist" in dup.json()["error"]["message"]
    # alice leaves: the inherited source goes, the direct one stays
    http.delete(f"{tiny.url}/groups/{IDS['licensed']}/members/{IDS['alice']}/$ref")
    held, states = licences(tiny, "alice")
    assert len(held) == 1 and [s["assignedByGroup"] for s in states] == [None]


def test_leaving_a_group_that_holds_a_prerequisite_is_a_dependency_violation(tiny, http):
    group_assign(http, tiny, "licensed", [E3])
    meet = sku_id("MCOMEETADV")
    assert user_assign(http, tiny, "bob", [(meet, [])]).status_code == 200  # needs E3's MCOSTANDARD
    http.delete(f"{tiny.url}/groups/{IDS['licensed']}/members/{IDS['bob']}/$ref")
    held, states = licences(tiny, "bob")
    kept = next(s for s in states if s["skuId"] == E3)
    assert (kept["state"], kept["error"]) == ("ActiveWithError", "DependencyViolation")
    assert {a["skuId"] for a in held} == {E3, meet}


def test_an_add_on_needs_its_prerequisite_in_the_same_group(tiny, http):
    """Entra docs: with group-based licensing the add-on and its prerequisite must be in the
    same group; bob's direct E3 (Skype for Business Plan 2) does not count for the group."""
    meet = sku_id("MCOMEETADV")
    assert user_assign(http, tiny, "bob", [(E3, [])]).status_code == 200
    group_assign(http, tiny, "licensed", [meet])
    _, states = licences(tiny, "bob")
    inherited = [s for s in states if s["assignedByGroup"]]
    assert [(s["state"], s["error"]) for s in inherited] == [("Error", "DependencyViolation")]
    group_assign(http, tiny, "licensed", [E3])  # now the group holds the prerequisite too
    _, states = licences(tiny, "bob")
    assert {s["error"] for s in states if s["assignedByGroup"]} == {"None"}


def test_inherited_licence_cannot_be_removed_from_user(tiny, http):
    group_assign(http, tiny, "licensed", [E3])
    response = user_assign(http, tiny, "bob", [], [E3])
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "User license is inherited from a group membership and it cannot be removed directly "
        "from the user."
    )


def test_group_licences_reach_direct_user_members_only(tiny, http):
    group_assign(http, tiny, "parent", [PBI])  # parent = {sales (group: alice, frank), bob}
    assert licences(tiny, "bob")[0][0]["skuId"] == PBI
    assert licences(tiny, "frank") == ([], [])
    assert tiny.tenant.skus[PBI].consumed == 1
    removed = group_assign(http, tiny, "parent", [], [PBI])
    assert removed.status_code == 202 and licences(tiny, "bob") == ([], [])
    assert tiny.tenant.skus[PBI].consumed == 0


def test_distribution_group_cannot_hold_licences(tiny, http):
    assert group_assign(http, tiny, "dist", [PBI]).status_code == 400


def test_adding_an_owned_sku_replaces_its_disabled_plans(tiny, http):
    sway = plan_id("SPE_E3", "SWAY")
    response = user_assign(http, tiny, "alice", [(E3, [sway])])
    assert response.status_code == 200
    assert response.json()["assignedLicenses"] == [{"disabledPlans": [sway], "skuId": E3}]
    assert tiny.tenant.skus[E3].consumed == 2


def test_union_of_enabled_plans_across_sources(tiny, http):
    sway, forms = plan_id("SPE_E3", "SWAY"), plan_id("SPE_E3", "FORMS_PLAN_E3")
    user_assign(http, tiny, "alice", [(E3, [sway, forms])])
    body = {"addLicenses": [{"skuId": E3, "disabledPlans": [sway]}], "removeLicenses": []}
    post(http, f"{tiny.url}/groups/{IDS['sales']}/assignLicense", body)
    held, states = licences(tiny, "alice")
    assert held == [{"disabledPlans": [sway], "skuId": E3}] and len(states) == 2


def test_reprocess_after_seats_are_freed(tiny, http):
    group_assign(http, tiny, "licensed", [EMS])
    http.delete(f"{tiny.url}/groups/{IDS['licensed']}/members/{IDS['bob']}/$ref")
    assert licences(tiny, "erin")[1][0]["error"] == "CountViolation"  # nothing retries by itself
    response = post(http, f"{tiny.url}/users/{IDS['erin']}/reprocessLicenseAssignment", {})
    assert response.status_code == 200
    assert response.json()["assignedLicenses"][0]["skuId"] == EMS
    assert tiny.tenant.skus[EMS].consumed == 2


def test_patch_usage_location_then_assign(tiny, http):
    assert user_assign(http, tiny, "carol", [(PBI, [])]).status_code == 400
    patch = http.patch(f"{tiny.url}/users/{IDS['carol']}", json={"usageLocation": "FR"})
    assert patch.status_code == 204
    assert user_assign(http, tiny, "carol", [(PBI, [])]).status_code == 200


@pytest.mark.parametrize("code", ["UK", "USA", "XX", "G1", 44])
def test_an_unknown_usage_location_is_refused_as_graph_does(tiny, http, code):
    """Graph's user resource: usageLocation is "a two-letter country code (ISO standard 3166)"."""
    patch = http.patch(f"{tiny.url}/users/{IDS['carol']}", json={"usageLocation": code})
    assert patch.status_code == 400
    assert patch.json()["error"]["message"] == (
        "Invalid value specified for property 'usageLocation'."
    )
    assert tiny.tenant.users[IDS["carol"]].usage_location is None


def test_a_known_usage_location_is_accepted_in_any_case(tiny, http):
    patch = http.patch(f"{tiny.url}/users/{IDS['carol']}", json={"usageLocation": "gb"})
    assert patch.status_code == 204
    assert tiny.tenant.users[IDS["carol"]].usage_location == "GB"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"AddLicenses": [], "removeLicenses": []},
            "The parameter 'AddLicenses' in the request payload is not a valid parameter for the "
            "operation 'assignLicense'.",
        ),
        (
            {"addLicenses": []},
            "One or more parameters of the operation 'assignLicense' are missing from the request "
            "payload. The missing parameters are: removeLicenses.",
        ),
        ({"addLicenses": [{"SkuId": PBI}], "removeLicenses": []}, "does not exist on type"),
    ],
)
def test_request_body_is_validated(tiny, http, body, message):
    response = post(http, f"{tiny.url}/users/{IDS['bob']}/assignLicense", body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "Request_BadRequest" and message in error["message"]


def test_one_call_adds_and_removes_as_a_whole(tiny, http):
    e1 = sku_id("STANDARDPACK")
    ok = user_assign(http, tiny, "alice", [(e1, []), (PBI, [])], [E3])  # swap E3 for E1
    assert ok.status_code == 200
    assert {a["skuId"] for a in ok.json()["assignedLicenses"]} == {e1, PBI}
    assert tiny.tenant.skus[E3].consumed == 1 and tiny.tenant.skus[e1].consumed == 1


def test_deleting_users_and_groups(tiny, http):
    """A deleted user frees its seats and leaves its groups; users/delta and groups/delta report
    deletions as @removed ("changed": in the recycle bin); a licensed group cannot be deleted."""
    users_link = http.get(f"{tiny.url}/users/delta?$deltatoken=latest").json()["@odata.deltaLink"]
    groups_link = http.get(f"{tiny.url}/groups/delta?$select=members&$deltatoken=latest").json()[
        "@odata.deltaLink"
    ]
    e3_before = tiny.tenant.skus[E3].consumed
    assert http.delete(f"{tiny.url}/users/{IDS['alice']}").status_code == 204  # holds E3
    assert http.get(f"{tiny.url}/users/{IDS['alice']}").status_code == 404
    assert tiny.tenant.skus[E3].consumed == e3_before - 1
    members = http.get(f"{tiny.url}/groups/{IDS['sales']}/members").json()["value"]
    assert [m["id"] for m in members] == [IDS["frank"]]

    assert group_assign(http, tiny, "licensed", [PBI]).status_code == 202
    refused = http.delete(f"{tiny.url}/groups/{IDS['licensed']}")
    assert refused.status_code == 400
    assert "remove all licenses" in refused.json()["error"]["message"]
    assert http.delete(f"{tiny.url}/groups/{IDS['sales']}").status_code == 204
    parent = http.get(f"{tiny.url}/groups/{IDS['parent']}/members").json()["value"]
    assert [m["id"] for m in parent] == [IDS["bob"]]

    users = http.get(users_link).json()["value"]
    assert {"id": IDS["alice"], "@removed": {"reason": "changed"}} in users
    groups = http.get(groups_link).json()["value"]
    assert {"id": IDS["sales"], "@removed": {"reason": "changed"}} in groups
    assert http.delete(f"{tiny.url}/users/{IDS['alice']}").status_code == 404
