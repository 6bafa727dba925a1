"""The guardrail: a run that would remove too many licences, or that reads a rule group empty
although licsync licensed members through it, stops before its first write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from licsync.config.settings import GuardrailSettings
from licsync.engine.inputs import Rule
from licsync.engine.membership import members_of
from licsync.errors import GuardrailError
from licsync.model import Ledger, Tenant


@dataclass(frozen=True, slots=True)
class Guardrail:
    removals: int
    tripped: bool
    reasons: tuple[str, ...]

    def error(self, advice: str) -> GuardrailError:
        """The error that stops the run, with `advice` on how to proceed."""
        return GuardrailError(
            "guardrail: nothing was written.\n  - " + "\n  - ".join(self.reasons) + f"\n{advice}"
        )


def emptied_rule_groups(
    tenant: Tenant, rules: Sequence[Rule], ledger: Ledger
) -> tuple[tuple[str, str], ...]:
    """(id, name) of rule groups that read empty although the ledger says licsync licensed
    members through them (a membership read gone wrong looks exactly like this)."""
    owned = {g for entry in ledger.values() for g in entry.groups}
    return tuple(
        (rule.group_id, tenant.groups[rule.group_id].display_name)
        for rule in rules
        if rule.group_id is not None
        and rule.group_id in owned
        and not members_of(tenant, rule.group_id, rule.nested)
    )


def licensed_users(tenant: Tenant) -> int:
    """Users holding at least one licence (the base of `max_removal_percent`)."""
    return sum(1 for u in tenant.users.values() if u.assigned_licenses)


def check_guardrail(
    settings: GuardrailSettings,
    *,
    removals: int,
    licensed: int,
    emptied_groups: Sequence[tuple[str, str]] = (),
    allow_removals: int | None = None,
) -> Guardrail:
    """The verdict on `removals` licence removals in a tenant of `licensed` licensed users
    under `[guardrail]`, and on rule groups that read empty (`emptied_rule_groups`)."""
    limit = min(settings.max_removals, int(licensed * settings.max_removal_percent / 100))
    reasons = []
    if removals > limit:
        reasons.append(
            f"the plan removes {removals} licence(s); the guardrail allows {limit} "
            f"(max_removals = {settings.max_removals}, max_removal_percent = "
            f"{settings.max_removal_percent:g}% of {licensed} licensed users)"
        )
    reasons.extend(
        f"rule group {name!r} ({group_id}) reads empty, but licsync licensed members "
        "through it before"
        for group_id, name in emptied_groups
    )
    approved = allow_removals is not None and allow_removals >= removals
    return Guardrail(removals, bool(reasons) and not approved, tuple(reasons))
