"""Entra's background processing of group licences over HTTP: licenseProcessingState, sticky
errors until a reprocess, Entra's refusals of group assignLicense, and a removed group licence
that another licence depends on becoming a direct assignment."""

from __future__ import annotations

import httpx

from tests.builders import TINY_IDS as IDS
from tests.builders import catalogue_sku_id as sku_id
from tests.emulator.test_licensing import group_assign, licences, user_assign

E3, EMS, MEET = sku_id("SPE_E3"), sku_id("EMS"), sku_id("MCOMEETADV")
SELECT = "id,licenseProcessingState,hasMembersWithLicenseErrors"


def group_state(http: httpx.Client, graph, name: str) -> dict:
    reply = http.get(f"{graph.url}/groups/{IDS[name]}", params={"$select": SELECT})
    assert reply.status_code == 200
    return reply.json()


def test_processing_goes_queued_in_progress_complete_after_the_delay(tiny, http):
    now = [1000.0]
    tiny.tenant.monotonic = lambda: now[0]
    tiny.tenant.processing_delay = 10.0
    assert group_assign(http, tiny, "licensed", [EMS]).status_code == 202
    seen = group_state(http, tiny, "licensed")
    assert seen["licenseProcessingState"] == {"state": "QueuedForProcessing"}
    assert licences(tiny, "bob")[1] == []  # members not processed yet
    now[0] += 6
    assert group_state(http, tiny, "licensed")["licenseProcessingState"] == {
        "state": "ProcessingInProgress"
    }
    assert licences(tiny, "bob")[1] == []
    now[0] += 4
    seen = group_state(http, tiny, "licensed")
    assert seen["licenseProcessingState"] == {"state": "ProcessingComplete"}
    assert seen["hasMembersWithLicenseErrors"] is True  # two EMS seats, three members
    assert [s["error"] for s in licences(tiny, "bob")[1]] == ["None"]


def test_a_count_violation_stays_after_seats_are_bought_until_reprocessed(tiny, http):
    group_assign(http, tiny, "licensed", [EMS])
    with tiny.tenant.lock:
        tiny.tenant.skus[EMS].enabled += 5
    http.get(f"{tiny.url}/groups/{IDS['licensed']}")  # any request: nothing retries by itself
    assert [s["error"] for s in licences(tiny, "erin")[1]] == ["CountViolation"]
    reply = http.post(f"{tiny.url}/users/{IDS['erin']}/reprocessLicenseAssignment")
    assert reply.status_code == 200
    assert reply.json()["assignedLicenses"] == [{"disabledPlans": [], "skuId": EMS}]
    assert [s["state"] for s in licences(tiny, "erin")[1]] == ["Active"]
    assert group_state(http, tiny, "licensed")["hasMembersWithLicenseErrors"] is False


def test_reprocess_of_a_user_the_app_may_not_change_is_403(tiny, http):
    tiny.tenant.users[IDS["bob"]].management_restricted = True
    reply = http.post(f"{tiny.url}/users/{IDS['bob']}/reprocessLicenseAssignment")
    assert reply.status_code == 403
    assert reply.json()["error"]["code"] == "Authorization_RequestDenied"


def test_group_assign_license_refusals(tiny, http):
    unknown = "11111111-2222-3333-4444-555555555555"
    reply = group_assign(http, tiny, "licensed", [unknown])
    assert reply.status_code == 400
    assert unknown in reply.json()["error"]["message"]
    tiny.tenant.groups[IDS["licensed"]].extra["isAssignableToRole"] = True
    reply = group_assign(http, tiny, "licensed", [EMS])
    assert reply.status_code == 400
    assert "assignable to roles" in reply.json()["error"]["message"]
    assert tiny.tenant.groups[IDS["licensed"]].licenses == {}  # nothing changed


def test_removing_a_group_licence_another_licence_depends_on_makes_it_direct(tiny, http):
    """entra-docs, "When a licensed group is deleted": a member whose add-on needs a plan of
    the removed licence keeps that licence as a direct assignment; the others lose it."""
    group_assign(http, tiny, "licensed", [E3])
    assert user_assign(http, tiny, "bob", [(MEET, [])]).status_code == 200  # needs MCOSTANDARD
    consumed = tiny.tenant.skus[E3].consumed
    assert group_assign(http, tiny, "licensed", [], [E3]).status_code == 202
    held, states = licences(tiny, "bob")
    assert {(s["skuId"], s["assignedByGroup"], s["state"]) for s in states} == {
        (E3, None, "Active"),
        (MEET, None, "Active"),
    }
    assert {a["skuId"] for a in held} == {E3, MEET}
    assert licences(tiny, "carol") == ([], [])  # its CountViolation state went with the licence
    assert tiny.tenant.skus[E3].consumed == consumed  # bob's seat is now a direct one
    assert http.delete(f"{tiny.url}/groups/{IDS['licensed']}").status_code == 204
