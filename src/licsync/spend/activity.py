"""When users last signed in: `signInActivity.lastSuccessfulSignInDateTime` on `/users`.

Graph returns `signInActivity` only to an app granted `AuditLog.Read.All`, in a tenant with
Microsoft Entra ID P1 or P2; otherwise the whole request is refused (403).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from licsync.graph.errors import GraphError
from licsync.model import guid
from licsync.spend.subscriptions import parse_time

if TYPE_CHECKING:
    from licsync.graph.client import GraphClient

SIGN_IN_PERMISSION = "AuditLog.Read.All"
SIGN_IN_HOW = (
    f"grant the app the application permission {SIGN_IN_PERMISSION} (Microsoft Graph) with "
    "admin consent; the tenant needs Microsoft Entra ID P1 or P2"
)
PAGE_SIZE = 999  # Graph's most with signInActivity selected is 999 (the default is 100)


def _last(user: dict[str, Any]) -> datetime | None:
    activity = user.get("signInActivity")
    if not isinstance(activity, dict):
        return None
    return parse_time(activity.get("lastSuccessfulSignInDateTime"), "lastSuccessfulSignInDateTime")


async def _users(client: GraphClient, select: str) -> list[dict[str, Any]]:
    params: dict[str, str | int] = {"$select": f"id,{select}", "$top": PAGE_SIZE}
    users = await client.iterate_pages("/users", params).collect()
    return [u for u in users if isinstance(u.get("id"), str)]


async def read_sign_ins(client: GraphClient) -> dict[str, datetime | None]:
    """Every user's last successful sign-in (None: never, or Graph has no record). A refusal
    raises GraphError (status 403): see `SIGN_IN_HOW`."""
    return {guid(u["id"]): _last(u) for u in await _users(client, "signInActivity")}


async def read_created(client: GraphClient) -> dict[str, datetime | None]:
    """Every user's `createdDateTime` (None for accounts from before Graph recorded it)."""
    users = await _users(client, "createdDateTime")
    return {guid(u["id"]): parse_time(u.get("createdDateTime"), "createdDateTime") for u in users}


def refused(exc: GraphError) -> bool:
    """Whether Graph refused the read for lack of a permission or licence (403)."""
    return exc.verdict is not None and exc.verdict.status == 403
