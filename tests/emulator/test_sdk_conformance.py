"""The real msgraph-sdk client against the emulator: paging, $select, delta, assignLicense."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.groups.delta.delta_request_builder import DeltaRequestBuilder as GroupDelta
from msgraph.generated.groups.item.members.graph_user.graph_user_request_builder import (
    GraphUserRequestBuilder,
)
from msgraph.generated.models.assigned_license import AssignedLicense
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.users.delta.delta_request_builder import DeltaRequestBuilder as UserDelta
from msgraph.generated.users.item.assign_license.assign_license_post_request_body import (
    AssignLicensePostRequestBody,
)
from msgraph.generated.users.users_request_builder import UsersRequestBuilder

from tests.builders import TINY_IDS as IDS
from tests.builders import catalogue_plan_id as plan_id
from tests.builders import catalogue_sku_id as sku_id
from tests.emulator.sdk import run, sdk_client

LICENCE_PROPS = [
    "id",
    "assignedLicenses",
    "licenseAssignmentStates",
    "usageLocation",
    "accountEnabled",
    "userType",
]


def users_config(**params: Any) -> RequestConfiguration:
    query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(**params)
    return RequestConfiguration(query_parameters=query)


@pytest.mark.slow
def test_paging_with_top_and_select(generated):
    async def go() -> tuple[int, int, set[str]]:
        client = sdk_client(generated.url)
        page = await client.users.get(users_config(top=100, select=LICENCE_PROPS))
        pages, ids = 1, [u.id for u in page.value]
        while page.odata_next_link:
            assert page.odata_next_link.startswith(generated.url + "/users?")
            page = await client.users.with_url(page.odata_next_link).get()
            pages += 1
            ids += [u.id for u in page.value]
        return pages, len(set(ids)), {u.usage_location or "" for u in page.value}

    pages, count, _ = run(go)
    assert (pages, count) == (5, 420)


@pytest.mark.slow
def test_default_page_is_100_and_licence_properties_need_select(generated):
    async def go():
        client = sdk_client(generated.url)
        return await client.users.get(), await client.users.get(users_config(select=LICENCE_PROPS))

    plain, selected = run(go)
    assert len(plain.value) == 100 and plain.odata_next_link
    first = plain.value[0]
    assert first.user_principal_name and first.assigned_licenses is None
    assert first.usage_location is None and first.account_enabled is None
    licensed = [u for u in selected.value if u.assigned_licenses]
    assert licensed and selected.value[0].account_enabled is not None
    state = licensed[0].license_assignment_states[0]
    assert state.sku_id and state.state == "Active" and state.error == "None"


def test_top_over_999_is_400(generated):
    async def go():
        return await sdk_client(generated.url).users.get(users_config(top=1000))

    with pytest.raises(ODataError) as caught:
        run(go)
    assert caught.value.response_status_code == 400
    assert caught.value.error.code == "Request_BadRequest"
    assert "between 1 and 999" in caught.value.error.message


def test_filter_by_sku_and_ids(generated):
    tenant = generated.tenant
    some = next(u for u in tenant.users.values() if u.licenses)
    sku = some.licenses[0]["skuId"]
    expected = {u.id for u in tenant.users.values() if any(a["skuId"] == sku for a in u.licenses)}

    async def go():
        client = sdk_client(generated.url)
        flt = f"assignedLicenses/any(x:x/skuId eq {sku})"
        found, page = [], await client.users.get(users_config(filter=flt, top=999))
        found += [u.id for u in page.value]
        pair = await client.users.get(users_config(filter=f"id in ('{some.id}','{IDS['bob']}')"))
        return set(found), [u.id for u in pair.value]

    found, pair = run(go)
    assert found == expected and pair == [some.id]


def test_get_user_and_unknown_user(tiny):
    async def go():
        client = sdk_client(tiny.url)
        user = await client.users.by_user_id(IDS["alice"]).get()
        try:
            await client.users.by_user_id(str(uuid.UUID(int=7))).get()
        except ODataError as exc:
            return user, exc
        raise AssertionError("no 404")

    user, error = run(go)
    assert user.user_principal_name == "alice@contoso.com"
    assert error.response_status_code == 404 and error.error.code == "Request_ResourceNotFound"


def test_members_cast_and_transitive(tiny):
    async def go():
        client = sdk_client(tiny.url)
        parent = client.groups.by_group_id(IDS["parent"])
        direct = await parent.members.get()
        users = await parent.members.graph_user.get(
            RequestConfiguration(
                query_parameters=GraphUserRequestBuilder.GraphUserRequestBuilderGetQueryParameters(
                    select=["id", "userPrincipalName"]
                )
            )
        )
        transitive = await parent.transitive_members.graph_user.get()
        return direct, users, transitive

    direct, users, transitive = run(go)
    assert sorted(m.odata_type for m in direct.value) == [
        "#microsoft.graph.group",
        "#microsoft.graph.user",
    ]
    assert [u.id for u in users.value] == [IDS["bob"]]
    assert {u.id for u in transitive.value} == {IDS["bob"], IDS["alice"], IDS["frank"]}


def test_user_delta_round(tiny):
    async def go():
        client = sdk_client(tiny.url)
        query = UserDelta.DeltaRequestBuilderGetQueryParameters(select=["id", "assignedLicenses"])
        page = await client.users.delta.get(RequestConfiguration(query_parameters=query))
        first = [u.id for u in page.value]
        while page.odata_next_link:
            page = await client.users.delta.with_url(page.odata_next_link).get()
            first += [u.id for u in page.value]
        delta_link = page.odata_delta_link
        again = await client.users.delta.with_url(delta_link).get()
        tiny.tenant.patch_user(IDS["bob"], {"usageLocation": "FR"})
        changed = await client.users.delta.with_url(delta_link).get()
        return first, again, changed

    first, again, changed = run(go)
    assert len(first) == 6
    assert again.value == [] and again.odata_delta_link
    assert [u.id for u in changed.value] == [IDS["bob"]]


def test_group_delta_with_members(tiny):
    async def go():
        client = sdk_client(tiny.url)
        query = GroupDelta.DeltaRequestBuilderGetQueryParameters(select=["displayName", "members"])
        page = await client.groups.delta.get(RequestConfiguration(query_parameters=query))
        while page.odata_next_link:
            page = await client.groups.delta.with_url(page.odata_next_link).get()
        return page

    page = run(go)
    assert page.odata_delta_link and len(page.value) == 4
    licensed = next(g for g in page.value if g.id == IDS["licensed"])
    assert licensed.display_name == "Licensed"
    members = licensed.additional_data.get("members@delta")
    assert {str(m["id"]) for m in members} == {IDS["bob"], IDS["carol"], IDS["erin"]}


def assign(url: str, user: str, add: list[tuple[str, list[str]]], remove: list[str]):
    async def go():
        body = AssignLicensePostRequestBody(
            add_licenses=[
                AssignedLicense(sku_id=uuid.UUID(s), disabled_plans=[uuid.UUID(p) for p in d])
                for s, d in add
            ],
            remove_licenses=[uuid.UUID(r) for r in remove],
        )
        return await sdk_client(url).users.by_user_id(user).assign_license.post(body)

    return run(go)


def test_assign_license_success_moves_seats(tiny):
    e1 = sku_id("STANDARDPACK")
    user = assign(tiny.url, IDS["bob"], [(e1, [plan_id("STANDARDPACK", "SWAY")])], [])
    assert [str(a.sku_id) for a in user.assigned_licenses] == [e1]
    assert [str(p) for p in user.assigned_licenses[0].disabled_plans] == [
        plan_id("STANDARDPACK", "SWAY")
    ]
    assert tiny.tenant.skus[e1].consumed == 1
    user = assign(tiny.url, IDS["bob"], [], [e1])
    assert user.assigned_licenses == [] and tiny.tenant.skus[e1].consumed == 0


@pytest.mark.parametrize(
    ("who", "add", "remove", "pattern"),
    [
        ("carol", [("STANDARDPACK", [])], [], "invalid usage location"),
        ("bob", [("SPE_E3", []), ("MCOMEETADV", [])], [], None),  # control: succeeds
        ("alice", [("STANDARDPACK", [])], [], "are mutually exclusive"),
        ("dave", [], ["SPE_E3"], "depends on the service plan(s)"),
        ("bob", [("WORKPLACE_ANALYTICS", [])], [], "depends on the service plan(s)"),
        ("bob", [("SHAREPOINTSTORAGE", [])], [], "cannot be assigned to a user"),
        (
            "bob",
            [(str(uuid.UUID(int=99)), [])],
            [],
            "does not correspond to a valid company License",
        ),
    ],
)
def test_assign_license_errors(tiny, who, add, remove, pattern):
    def sku(part: str) -> str:
        return part if "-" in part else sku_id(part)

    adds = [(sku(p), d) for p, d in add]
    if pattern is None:
        assign(tiny.url, IDS[who], adds, [sku(r) for r in remove])
        return
    before = tiny.snapshot()
    with pytest.raises(ODataError) as caught:
        assign(tiny.url, IDS[who], adds, [sku(r) for r in remove])
    assert caught.value.response_status_code == 400
    assert caught.value.error.code == "Request_BadRequest"
    assert pattern in caught.value.error.message
    assert tiny.snapshot() == before  # all or nothing


def test_assign_license_no_seats(tiny):
    e3 = sku_id("SPE_E3")
    assign(tiny.url, IDS["bob"], [(e3, [])], [])  # third and last seat
    with pytest.raises(ODataError) as caught:
        assign(tiny.url, IDS["frank"], [(e3, [])], [])
    assert caught.value.error.message == (
        f"Subscription with SKU {e3} does not have any available licenses."
    )
    assert tiny.tenant.skus[e3].consumed == 3
