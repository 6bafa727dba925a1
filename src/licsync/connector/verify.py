"""`licsync verify`'s read: the Entra-licensed groups with Entra's processing state and their
members' `licenseAssignmentStates`.

    verification = await verify_tenant(client, config.policy(), names)

The read takes the subscribed SKUs, every group with its licences and Entra's processing state
(`licenseProcessingState`, `hasMembersWithLicenseErrors`), and the user members of each
licensed group with their `licenseAssignmentStates`; `licsync.verification.compare` runs the
engine on that tenant (no licsync rule: the users' direct assignments are the baseline, Entra's
groups the sources). Read-only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from licsync.connector.read_full import GROUP_SELECT, PAGE_SIZE, USER_SELECT, read_org_and_skus
from licsync.engine.inputs import Policy
from licsync.graphjson import parse_group, parse_user
from licsync.model import Group, Tenant, User, guid
from licsync.verification import COMPLETE, GroupState, Stamps, Verification, compare, select_groups

if TYPE_CHECKING:
    from licsync.graph.client import GraphClient

PROCESSING_SELECT = GROUP_SELECT + ",licenseProcessingState,hasMembersWithLicenseErrors"
MEMBER_READS = 8  # member lists read at once


async def read_entra_groups(client: GraphClient) -> tuple[Tenant, list[GroupState], Stamps]:
    """The SKUs, the Entra-licensed groups (and groups whose licence processing has not
    completed: a licence removed and not processed yet) with their processing state, and their
    user members (with `licenseAssignmentStates`); the states' `lastUpdatedDateTime` apart."""
    (org, skus), raw_groups = await asyncio.gather(
        read_org_and_skus(client),
        client.iterate_pages("/groups", {"$select": PROCESSING_SELECT, "$top": PAGE_SIZE}).collect(
            lambda item: item
        ),
    )
    licensed = [(raw, parse_group(raw)) for raw in raw_groups if _concerned(raw)]
    gate = asyncio.Semaphore(MEMBER_READS)

    async def members(group_id: str) -> list[dict[str, Any]]:
        async with gate:
            return await client.iterate_pages(
                f"/groups/{group_id}/members/microsoft.graph.user",
                {"$select": USER_SELECT, "$top": PAGE_SIZE},
            ).collect(lambda item: item)

    lists = await asyncio.gather(*(members(g.id) for _, g in licensed))
    users: dict[str, User] = {}
    stamps: Stamps = {}
    groups: dict[str, Group] = {}
    states: list[GroupState] = []
    for (raw, group), member_list in zip(licensed, lists, strict=True):
        for item in member_list:
            user = users.get(guid(str(item.get("id", "")))) or parse_user(item)
            users[user.id] = user
            stamps.update(state_stamps(user.id, item))
        ids = tuple(guid(str(m["id"])) for m in member_list)
        groups[group.id] = replace(group, member_users=ids)
        states.append(
            GroupState(
                group.id,
                group.display_name,
                _processing(raw),
                raw.get("hasMembersWithLicenseErrors"),
            )
        )
    tenant = Tenant(org.country, skus, users, groups, org.tenant_id)
    return tenant, sorted(states, key=lambda g: g.display_name.lower()), stamps


def _processing(raw: Mapping[str, Any]) -> str | None:
    state = raw.get("licenseProcessingState")
    value = state.get("state") if isinstance(state, dict) else None
    return value if isinstance(value, str) else None


def _concerned(raw: Mapping[str, Any]) -> bool:
    """A group with licences, or one Entra is still processing."""
    return bool(raw.get("assignedLicenses")) or _processing(raw) not in (None, COMPLETE)


def state_stamps(user_id: str, item: Mapping[str, Any]) -> Stamps:
    """Each group state's `lastUpdatedDateTime` in a user's JSON."""
    found: Stamps = {}
    for state in item.get("licenseAssignmentStates") or ():
        if isinstance(state, dict) and state.get("assignedByGroup"):
            stamp = state.get("lastUpdatedDateTime")
            if isinstance(stamp, str):
                group, sku = guid(str(state["assignedByGroup"])), guid(str(state.get("skuId")))
                found[(user_id, group, sku)] = stamp
    return found


async def verify_tenant(
    client: GraphClient, policy: Policy, names: Sequence[str] = ()
) -> Verification:
    """Read the Entra-licensed groups and compare (only the groups `names` designate)."""
    tenant, groups, stamps = await read_entra_groups(client)
    return compare(tenant, select_groups(groups, names), stamps, policy)
