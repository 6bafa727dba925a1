"""Snapshots accept what Graph really sends and name the object when they cannot."""

from __future__ import annotations

import json
import re

import pytest

from licsync.emulator.generate import generate_tenant
from licsync.errors import SnapshotError
from licsync.graphjson import parse_sku, parse_state, parse_user
from licsync.model import LicenseError
from licsync.snapshot import load_snapshot, tenant_from_json


def sample(shared_data, name):
    return json.loads((shared_data / "graph-samples" / name).read_text())


def test_real_subscribed_skus_parse(shared_data):
    body = sample(shared_data, "subscribedSkus_list.json")["response"]["body"]
    skus = [parse_sku(s) for s in body["value"]]
    assert skus[0].part_number == "ENTERPRISEPREMIUM"
    assert skus[0].free_units == 11
    assert not skus[1].assignable  # "Suspended"
    assert all(s.id == s.id.lower() for s in skus)


def test_real_license_assignment_states_parse(shared_data):
    doc = sample(shared_data, "user_licenseAssignmentStates.json")
    (user,) = doc["response_as_published_cleaned"]["body"]["value"]
    states = [parse_state(s) for s in user["licenseAssignmentState"]]
    assert [s.error for s in states] == [None] * len(states)  # "None" means success
    assert {s.assigned_by_group is None for s in states} == {True, False}


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        (None, None),
        ("None", None),
        ("none", None),
        ("Other", LicenseError.OTHER),
        ("Others", LicenseError.OTHER),
        ("countviolation", LicenseError.COUNT_VIOLATION),
        ("SomethingNew", LicenseError.OTHER),
    ],
)
def test_error_values_parse_leniently(raw, parsed):
    assert LicenseError.parse(raw) is parsed


def test_mixed_case_ids_and_missing_optional_properties():
    user = parse_user(
        {
            "id": "ABCDEF00-0000-0000-0000-00000000000A",
            "assignedLicenses": [{"skuId": "6FD2C87F-B296-42F0-B197-1E91E994B900"}],
        }
    )
    assert user.id == "abcdef00-0000-0000-0000-00000000000a"
    assert user.account_enabled and user.user_type == "Member" and user.usage_location is None
    assert user.direct_licenses() == {"6fd2c87f-b296-42f0-b197-1e91e994b900": frozenset()}


def test_errors_name_the_file_and_the_object(tmp_path):
    path = tmp_path / "tenant.json"
    path.write_text(
        json.dumps(
            {
                "subscribedSkus": [],
                "groups": [],
                "users": [{"id": "a"}, {"userPrincipalName": "x@y"}],
            }
        )
    )
    with pytest.raises(SnapshotError) as caught:
        load_snapshot(path)
    assert str(path) in str(caught.value)
    assert "users[1]: missing required property 'id'" in str(caught.value)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{", "not valid JSON at line 1, column 2"),
        ("[]", "a snapshot is a JSON object"),
        ('{"users": []}', "missing top-level key(s) subscribedSkus, groups"),
        ('{"users": [\n  {"id": "a"},\n  {"id": "b"\n]}', "not valid JSON at line 4, column 1"),
        ('{"users": [], "groups": [] "subscribedSkus": []}', "line 1, column 28: Expecting '}'"),
        ('{"users": {}, "groups": [], "subscribedSkus": []}', "'users' must be a list"),
        ('{"users": [], "groups": [], "subscribedSkus": []} []', "Extra data"),
        ('{"users": [1], "groups": [], "subscribedSkus": []}', "users[0]: is not a JSON object"),
    ],
)
def test_bad_files(tmp_path, content, expected):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(SnapshotError, match=re.escape(expected)):
        load_snapshot(path)


def test_organization_as_a_collection():
    tenant = tenant_from_json(
        {
            "organization": [{"countryLetterCode": "de"}],
            "subscribedSkus": [],
            "users": [],
            "groups": [],
        }
    )
    assert tenant.country == "DE"


def test_a_streamed_file_is_the_tenant_of_its_decoded_json(tmp_path):
    """load_snapshot decodes element by element; the result is tenant_from_json's."""
    snapshot = generate_tenant(300, 20, seed=3)
    snapshot = {"note": {"nested": [1, 2]}, **snapshot}  # unknown keys are skipped
    path = tmp_path / "tenant.json"
    path.write_text(json.dumps(snapshot, indent=1), encoding="utf-8")
    assert load_snapshot(path) == tenant_from_json(snapshot)


def _valid_snapshot() -> dict:
    from tests.builders import TenantBuilder

    b = TenantBuilder().sku("ENTERPRISEPACK", enabled=5).user("ann").user("ben")
    b.group("Sales", members=["ann", "ben"])
    return b.snapshot()


def _set(path: str, value: object):
    """A mutation putting `value` at `path` (keys and list indexes separated by dots)."""

    def mutate(snap: dict) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        target = snap
        for part in parents:
            target = target[part]
        target[last] = value

    return mutate


def _duplicate_user(snap: dict) -> None:
    snap["users"][1]["id"] = snap["users"][0]["id"].upper()


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_set("subscribedSkus.0.prepaidUnits.enabled", float("inf")), "'enabled' must be a whole"),
        (_set("subscribedSkus.0.consumedUnits", 2**70), "from 0 to 2147483647, got 1180591"),
        (_set("subscribedSkus.0.prepaidUnits.enabled", -5), "'enabled' must be a whole number"),
        (_set("subscribedSkus.0.consumedUnits", 1.5), "'consumedUnits' must be a whole number"),
        (_set("subscribedSkus.0.skuPartNumber", 7), "'skuPartNumber' must be a string, got 7"),
        (_set("groups.0.displayName", ["Sales"]), "'displayName' must be a string, got a list"),
        (_set("users.0.userPrincipalName", 5), "'userPrincipalName' must be a string"),
        (_set("users.0.id", "../../etc/passwd"), "'id' must be a GUID such as"),
        (_set("groups.0.members.0.id", "ann"), "'members[].id' must be a GUID"),
        (_set("users.0.assignedLicenses", "ENTERPRISEPACK"), "'assignedLicenses' must be a list"),
        (
            _set("users.0.licenseAssignmentStates", [{"skuId": "x", "disabledPlans": "SWAY"}]),
            "'disabledPlans' must be a list",
        ),
        (_set("groups.0.groupTypes", "Unified"), "'groupTypes' must be a list, got \"Unified\""),
        (_set("groups.0.securityEnabled", "false"), "'securityEnabled' must be true or false"),
        (_set("users.0.accountEnabled", "false"), "'accountEnabled' must be true or false"),
        (_set("users.0.usageLocation", "United Kingdom"), "'usageLocation' must be a two-letter"),
        (_duplicate_user, "users[1]: id"),
    ],
)
def test_snapshot_problems_are_refused_with_the_object_named(tmp_path, mutate, expected):
    snap = _valid_snapshot()
    mutate(snap)
    path = tmp_path / "tenant.json"
    path.write_text(json.dumps(snap), encoding="utf-8")  # Infinity and huge ints as Python writes
    with pytest.raises(SnapshotError) as caught:
        load_snapshot(path)
    assert str(path) in str(caught.value)
    assert expected in str(caught.value), str(caught.value)


def test_a_duplicate_id_names_both_objects(tmp_path):
    snap = _valid_snapshot()
    _duplicate_user(snap)
    with pytest.raises(SnapshotError, match=r"users\[1\]: id \S+ is also users\[0\]"):
        tenant_from_json(snap)


def test_deeply_nested_json_is_refused(tmp_path):
    path = tmp_path / "tenant.json"
    path.write_text('{"users": [' + "[" * 100_000 + "]" * 100_000 + "]}", encoding="utf-8")
    with pytest.raises(SnapshotError, match="nested too deeply"):
        load_snapshot(path)


def test_every_bad_object_is_listed_at_once(tmp_path):
    snap = _valid_snapshot()
    snap["users"][0]["id"] = "a"
    snap["users"][1]["accountEnabled"] = "no"
    snap["groups"][0]["securityEnabled"] = 1
    with pytest.raises(SnapshotError) as caught:
        tenant_from_json(snap, "t.json")
    message = str(caught.value)
    assert "3 problem(s)" in message
    assert 'users[0] (id "a")' in message and "users[1]" in message and "groups[0]" in message


def test_a_long_list_of_problems_is_cut(tmp_path):
    snap = _valid_snapshot()
    snap["users"] = [{"id": f"user-{n}"} for n in range(500)]
    with pytest.raises(SnapshotError) as caught:
        tenant_from_json(snap, "t.json")
    assert "500 problem(s)" in str(caught.value) and "… and 450 more" in str(caught.value)
