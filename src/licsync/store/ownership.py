"""The ownership ledger as the store keeps it: canonical entries, diffs, and settling a run.

The rules themselves (licsync removes only what it assigned, and hands back the user's own direct
assignment, `prior_direct`) are the engine's (`licsync.engine.compute`).
"""

from __future__ import annotations

from collections.abc import Collection

from licsync.model import Ledger, Ownership, guid
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
