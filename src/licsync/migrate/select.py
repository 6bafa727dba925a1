"""Waves: which users a run migrates (`--users FILE`, `--limit N`) and in which groups.

wanted = read_users_file(path)                  # InputError names the file and the line
decisions = select(decisions, tenant, users=wanted, limit=10)
for wave in waves(decisions, size=50): ...
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from licsync.errors import InputError
from licsync.migrate.classify import Decision, MigrateAction
from licsync.model import Tenant, guid
from licsync.textfile import read_text
from licsync.validation import shown


@dataclass(frozen=True, slots=True)
class UserList:
    """A `--users` file: (line number, UPN or object id) per user named."""

    path: Path
    entries: tuple[tuple[int, str], ...]


def read_users_file(path: Path) -> UserList:
    """One UPN or object id per line; blank lines and `#` comments are ignored."""
    text = read_text(path, "the --users file")
    entries: list[tuple[int, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        value = raw.split("#", 1)[0].strip()
        if not value:
            continue
        if any(ch.isspace() for ch in value) or "," in value:
            raise InputError(
                f"{path}:{number}: {shown(raw.strip())} is not one UPN or object id "
                "(one user per line)"
            )
        entries.append((number, value))
    if not entries:
        raise InputError(f"{path}: names no user (one UPN or object id per line)")
    return UserList(path, tuple(entries))


def resolve_users(tenant: Tenant, users: UserList) -> frozenset[str]:
    """The object ids of the users the file names; every unknown one is reported at once."""
    by_upn = {u.user_principal_name.casefold(): u.id for u in tenant.users.values()}
    found: set[str] = set()
    unknown: list[str] = []
    for number, value in users.entries:
        user_id = guid(value) if guid(value) in tenant.users else by_upn.get(value.casefold())
        if user_id is None:
            unknown.append(f"{users.path}:{number}: no user {shown(value)} in the tenant")
        else:
            found.add(user_id)
    if unknown:
        raise InputError("\n".join(unknown))
    return frozenset(found)


def select(
    decisions: Sequence[Decision],
    tenant: Tenant,
    *,
    users: UserList | None = None,
    limit: int | None = None,
) -> tuple[Decision, ...]:
    """The decisions for the users named (all users without a file); beyond the first `limit`
    users with something to migrate (by UPN), migrations turn into skips saying why."""
    chosen = list(decisions)
    if users is not None:
        ids = resolve_users(tenant, users)
        chosen = [d for d in chosen if d.user_id in ids]
    if limit is None:
        return tuple(chosen)
    movers = sorted({(d.user_principal_name.casefold(), d.user_id) for d in chosen if d.actionable})
    kept = {user_id for _, user_id in movers[:limit]}
    later = f"not in this wave (--limit {limit})"
    return tuple(
        d
        if not d.actionable or d.user_id in kept
        else replace(d, action=MigrateAction.SKIP, reason=later)
        for d in chosen
    )


def waves(decisions: Sequence[Decision], size: int | None) -> list[list[Decision]]:
    """The actionable decisions in groups of at most `size` users (one group without a size);
    a user's SKUs stay together, users in UPN order."""
    by_user: dict[str, list[Decision]] = {}
    for d in decisions:
        if d.actionable:
            by_user.setdefault(d.user_id, []).append(d)
    order = sorted(by_user, key=lambda u: (by_user[u][0].user_principal_name.casefold(), u))
    step = size or max(len(order), 1)
    return [
        [d for u in order[i : i + step] for d in by_user[u]] for i in range(0, len(order), step)
    ]
