"""The guardrail: a run that would remove too many licences, or that reads a rule group empty
although licsync licensed members through it, stops before its first write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from licsync.config import Config
from licsync.engine.inputs import Rule
from licsync.engine.membership import members_of
from licsync.errors import GuardrailError
from licsync.model import Ledger, Plan, Tenant

log = structlog.get_logger("licsync.sync")


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


def check_guardrail(
    tenant: Tenant,
    config: Config,
    plan: Plan,
    ledger: Ledger,
    allow_removals: int | None,
    rules: Sequence[Rule],
) -> Guardrail:
    """Count the plan's removals against `[guardrail]`; find rule groups (of the resolved `rules`)
    that read empty although the ledger says licsync licensed members through them."""
    settings = config.settings.guardrail
    removals = sum(len(u.remove_licenses) for u in plan.changes)
    licensed = sum(1 for u in tenant.users.values() if u.assigned_licenses)
    limit = min(settings.max_removals, int(licensed * settings.max_removal_percent / 100))
    owned_groups = {g for entry in ledger.values() for g in entry.groups}
    suspicious = []
    for rule in rules:
        if rule.group_id in owned_groups and not members_of(tenant, rule.group_id, rule.nested):
            suspicious.append(rule.group_id)
    reasons = []
    if removals > limit:
        reasons.append(
            f"the plan removes {removals} licence(s); the guardrail allows {limit} "
            f"(max_removals = {settings.max_removals}, max_removal_percent = "
            f"{settings.max_removal_percent:g}% of {licensed} licensed users)"
        )
    for group_id in suspicious:
        name = tenant.groups[group_id].display_name
        reasons.append(
            f"rule group {name!r} ({group_id}) reads empty, but licsync licensed members "
            "through it before"
        )
    approved = allow_removals is not None and allow_removals >= removals
    return Guardrail(removals, bool(reasons) and not approved, tuple(reasons))
