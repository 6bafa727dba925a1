"""Parse cost of one 999-user page: orjson to dicts vs msgraph-sdk generated models.

Run: `python benchmarks/graph_parse.py`.
"""

from __future__ import annotations

import time
import uuid

import orjson
from kiota_serialization_json.json_parse_node import JsonParseNode
from msgraph.generated.models.user_collection_response import UserCollectionResponse


def page(n: int = 999) -> bytes:
    def user(i: int) -> dict:
        return {
            "id": str(uuid.uuid4()),
            "userPrincipalName": f"user{i}@contoso.com",
            "accountEnabled": True,
            "usageLocation": "DE",
            "userType": "Member",
            "assignedLicenses": [
                {"skuId": str(uuid.uuid4()), "disabledPlans": [str(uuid.uuid4())]},
                {"skuId": str(uuid.uuid4()), "disabledPlans": []},
            ],
            "licenseAssignmentStates": [
                {
                    "skuId": str(uuid.uuid4()),
                    "disabledPlans": [],
                    "assignedByGroup": str(uuid.uuid4()) if k else None,
                    "state": "Active",
                    "error": "None",
                    "lastUpdatedDateTime": "2025-02-13T10:17:06Z",
                }
                for k in range(3)
            ],
        }

    return orjson.dumps(
        {"@odata.nextLink": "https://x/users?$skiptoken=a", "value": [user(i) for i in range(n)]}
    )


def best(fn, rounds: int = 7) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    raw = page()
    ours = best(lambda: orjson.loads(raw))
    sdk = best(lambda: JsonParseNode(orjson.loads(raw)).get_object_value(UserCollectionResponse), 3)
    print(f"page: 999 users, {len(raw) / 1024:.0f} KiB")
    print(f"orjson dicts:        {ours * 1000:8.2f} ms/page  {ours / 999 * 1e6:8.2f} us/user")
    print(f"SDK generated model: {sdk * 1000:8.2f} ms/page  {sdk / 999 * 1e6:8.2f} us/user")
    print(f"ratio: {sdk / ours:.0f}x")


if __name__ == "__main__":
    main()
