"""Response shapes compared with Microsoft's own samples (shared/data/graph-samples)."""

from __future__ import annotations

from tests.builders import TINY_IDS as IDS
from tests.builders import catalogue_sku_id as sku_id


def test_subscribed_skus_match_sample(tiny, http, sample):
    reference = sample("subscribedSkus_list.json")["response"]["body"]
    body = http.get(f"{tiny.url}/subscribedSkus").json()
    assert set(body) == set(reference)
    item, ref = body["value"][0], reference["value"][0]
    assert set(item) == set(ref)
    assert set(item["prepaidUnits"]) == set(ref["prepaidUnits"])
    assert set(item["servicePlans"][0]) == set(ref["servicePlans"][0])
    assert item["id"].endswith("_" + item["skuId"])
    single = http.get(f"{tiny.url}/subscribedSkus/{item['id']}").json()
    assert set(sample("subscribedSku_get.json")["response"]["body"]) <= set(single)
    assert http.get(f"{tiny.url}/subscribedSkus?$filter=appliesTo eq 'User'").status_code == 400


def test_user_list_and_licence_states_match_samples(tiny, http, sample):
    body = http.get(f"{tiny.url}/users/{IDS['alice']}?$select=id,licenseAssignmentStates").json()
    reference = sample("user_licenseAssignmentStates.json")
    ref_state = reference["response_as_published_cleaned"]["body"]["value"][0][
        "licenseAssignmentState"
    ][0]
    assert set(ref_state) <= set(body["licenseAssignmentStates"][0])
    assert body["@odata.context"].endswith("$metadata#users(id,licenseAssignmentStates)/$entity")
    listing = http.get(f"{tiny.url}/users").json()
    delta_ref = sample("user_delta_first_page.json")["response"]["body"]["value"][0]
    assert set(listing["value"][0]) == set(delta_ref)  # Graph's default user properties


def test_assign_license_responses_match_samples(tiny, http, sample):
    body = {
        "addLicenses": [{"skuId": sku_id("POWER_BI_PRO"), "disabledPlans": []}],
        "removeLicenses": [],
    }
    user = http.post(f"{tiny.url}/users/{IDS['bob']}/assignLicense", json=body)
    ref = sample("user_assignLicense_me.json")["response"]
    assert user.status_code == ref["status"]
    assert {"accountEnabled", "assignedLicenses"} <= set(user.json())
    assert set(user.json()["assignedLicenses"][0]) == set(ref["body"]["assignedLicenses"][0])
    group = http.post(f"{tiny.url}/groups/{IDS['licensed']}/assignLicense", json=body)
    gref = sample("group_assignLicense_add.json")["response"]
    assert group.status_code == gref["status"] == 202
    assert set(gref["body"]) <= set(group.json())
    again = http.post(f"{tiny.url}/users/{IDS['bob']}/reprocessLicenseAssignment")
    rref = sample("user_reprocessLicenseAssignment.json")["response"]
    assert again.status_code == rref["status"]
    assert {"accountEnabled", "assignedLicenses"} <= set(again.json())


def test_members_and_refs_match_mocks(tiny, http, sample):
    mocks = sample("docs-mocks-licensing-subset.json")["mocks"]

    def mock(method: str, suffix: str) -> dict:
        return next(
            m["response"]
            for m in mocks
            if m["request"]["method"] == method and m["request"]["url"].endswith(suffix)
        )

    members = http.get(f"{tiny.url}/groups/{IDS['licensed']}/members")
    assert members.json()["@odata.context"].endswith(
        mock("GET", "/groups/*/members")["body"]["@odata.context"].split("/v1.0")[-1]
    )
    ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{IDS['dave']}"}
    added = http.post(f"{tiny.url}/groups/{IDS['licensed']}/members/$ref", json=ref)
    assert added.status_code == mock("POST", "/groups/*/members/$ref")["statusCode"]
    removed = http.delete(f"{tiny.url}/groups/{IDS['licensed']}/members/{IDS['dave']}/$ref")
    assert removed.status_code == mock("DELETE", "/groups/*/members/*/$ref")["statusCode"]
    groups = http.get(
        f"{tiny.url}/groups?$select=id,assignedLicenses&$filter=assignedLicenses/any()"
    )
    ref_groups = sample("groups_with_licenses_expand_members.json")["response"]["body"]
    assert set(groups.json()) == set(ref_groups) and groups.json()["value"] == []


def test_group_delta_round_matches_sample(generated, http, sample):
    exchanges = sample("group_delta_round.json")["exchanges"]
    url = f"{generated.url}/groups/delta?$select=displayName,description,members"
    pages = []
    while url:
        page = http.get(url, headers={"Prefer": "odata.maxpagesize=10"}).json()
        pages.append(page)
        url = page.get("@odata.nextLink")
    assert len(pages) > 2
    assert set(pages[0]) == set(exchanges[0]["response"]["body"])
    assert set(pages[-1]) == set(exchanges[2]["response"]["body"])
    seen: dict[str, set[str]] = {}
    for page in pages:
        for group in page["value"]:
            seen.setdefault(group["id"], set()).update(
                m["id"] for m in group.get("members@delta", [])
            )
    for group in generated.tenant.groups.values():  # split groups repeat, and merge back whole
        assert seen[group.id] == set(group.members)
    big = max(generated.tenant.groups.values(), key=lambda g: len(g.members))
    on_pages = [i for i, p in enumerate(pages) for g in p["value"] if g["id"] == big.id]
    assert len(on_pages) == -(-len(big.members) // 40) > 1
    assert len(set(on_pages)) == len(on_pages)  # the parts of a split group span pages

    delta_link = pages[-1]["@odata.deltaLink"]
    assert http.get(delta_link).json()["value"] == []
    member = next(iter(big.members))
    http.delete(f"{generated.url}/groups/{big.id}/members/{member}/$ref")
    try:
        change = http.get(delta_link).json()
        ref_change = exchanges[4]["response"]["body"]["value"][0]
        group = change["value"][0]
        assert set(group) == set(ref_change)  # displayName, description, id, members@delta
        assert group["members@delta"] == [
            {
                "@odata.type": "#microsoft.graph.user",
                "id": member,
                "@removed": {"reason": "deleted"},
            }
        ]
    finally:
        generated.tenant.add_member(big.id, member)


def test_error_body_shape(tiny, http, sample):
    reference = sample("json_batch.json")["response"]["body"]["responses"][2]["body"]
    body = http.get(f"{tiny.url}/users/00000000-0000-0000-0000-000000000000").json()
    assert set(body) == set(reference)
    assert set(body["error"]) == set(reference["error"])
    assert set(body["error"]["innerError"]) == set(reference["error"]["innerError"])
