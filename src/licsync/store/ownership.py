"""Ownership rules: which licences licsync may touch, decided in code above the SQL.

licsync only ever removes a licence it assigned itself, and it remembers the user's own direct
assignment from before it took the SKU over (`prior_direct`) so that it can hand it back.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from licsync.model import Assignment, Ledger, Ownership, guid
from licsync.store.base import LedgerDiff


def normalise_ownership(entry: Ownership) -> Ownership:
    """The canonical form the store keeps: lower-case ids, groups sorted without repeats.

    Raises ValueError for an entry with no group: licsync owns a licence only because a rule group
    grants it, so such an entry must be deleted instead.
    """
    groups = tuple(sorted({guid(g) for g in entry.groups}))
    if not groups:
        raise ValueError(
            f"ownership of {entry.sku_id} for {entry.user_id} names no rule group: "
            "delete it instead"
        )
    prior = None if entry.prior_direct is None else frozenset(guid(p) for p in entry.prior_direct)
    return Ownership(guid(entry.user_id), guid(entry.sku_id), groups, prior)


def may_remove(ledger: Ledger, user_id: str, sku_id: str) -> bool:
    """Whether licsync may take `sku_id` away from `user_id`: only if its ledger says it
    assigned it."""
    return (guid(user_id), guid(sku_id)) in ledger


def take_over(
    previous: Ownership | None,
    user_id: str,
    sku_id: str,
    groups: Iterable[str],
    direct_disabled_plans: frozenset[str] | None,
) -> Ownership:
    """The ledger entry after licsync assigns `sku_id` to `user_id` because of `groups`.

    `direct_disabled_plans` is what the user holds directly right now (None if nothing). It becomes
    `prior_direct` only when licsync first takes the SKU over: once licsync owns it, the direct
    assignment Graph shows is licsync's own, and recording it would lose the user's original one.
    """
    prior = previous.prior_direct if previous is not None else direct_disabled_plans
    return normalise_ownership(Ownership(user_id, sku_id, tuple(groups), prior))


def hand_back(entry: Ownership) -> Assignment | None:
    """What to leave on the user when no rule grants the SKU any more.

    The user's prior direct assignment is restored with its own disabled plans; without one the SKU
    is removed (None).
    """
    if entry.prior_direct is None:
        return None
    return Assignment(entry.sku_id, entry.prior_direct)


def diff_ledger(old: Ledger, new: Ledger) -> LedgerDiff:
    """The upserts and deletes that turn `old` into `new` (entries compared in canonical form)."""
    upserts = []
    for key, entry in new.items():
        before = old.get(key)
        if before == entry:  # the common case at every sync: skip normalising both
            continue
        canonical = normalise_ownership(entry)
        if before is None or normalise_ownership(before) != canonical:
            upserts.append(canonical)
    deletes = tuple(sorted(key for key in old if key not in new))
    return LedgerDiff(tuple(upserts), deletes)


def settle_ledger(old: Ledger, planned: Ledger, applied_users: Collection[str]) -> Ledger:
    """The ledger to commit after the writes: the plan for users whose change Graph accepted, the
    old entries for everyone else (a failed or skipped write changed nothing in the tenant)."""
    applied = {guid(u) for u in applied_users}
    settled = {key: entry for key, entry in old.items() if key[0] not in applied}
    settled.update((key, entry) for key, entry in planned.items() if key[0] in applied)
    return settled
