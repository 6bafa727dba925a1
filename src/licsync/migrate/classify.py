"""Which direct assignments can move to group licensing, and why the others cannot (pure).

    decisions = classify(tenant, Target.RULES, rules=rules, policy=policy, ledger=ledger)

One `Decision` per user and SKU considered: every direct assignment the user holds, and every
SKU a group grants the user without a direct assignment ("no direct assignment").

- `Target.RULES` (licsync's own rules): a direct assignment is ADOPTED when the user's rule-group
  sources for the same SKU are free of errors (the engine's verdict) and together enable every
  plan it enables. A SKU licsync already took over keeps the user's prior direct assignment in the
  ledger (`prior_direct`): that one is what gets checked and adopted.
- `Target.ENTRA` (Entra's own group licensing): a direct assignment is REMOVED when the user's
  inherited assignments of the SKU (`licenseAssignmentStates` with `assignedByGroup`) are all
  Active and together enable every plan it enables (Microsoft's migration steps 4 to 6).

No I/O: the tenant, the resolved rules, the policy and the ledger are inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from licsync.engine import compute_plan
from licsync.engine.inputs import Policy, Rule
from licsync.engine.membership import sources_by_user
from licsync.engine.plans import PlanIndex
from licsync.model import AssignmentState, Ledger, SourceKind, SourceState, Tenant, User


class Target(StrEnum):
    RULES = "rules"  # adopt into licsync's ledger
    ENTRA = "entra"  # remove the direct assignment; Entra's licensed groups carry the licence


class MigrateAction(StrEnum):
    ADOPT = "adopt"
    REMOVE_DIRECT = "remove-direct"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class Decision:
    """What the migration does with one SKU of one user.

    `disabled_plans` are the direct assignment's (None: the user has none); `groups` are the
    group sources that cover it (for an adoption: the rule groups the ledger will name).
    """

    user_id: str
    user_principal_name: str
    sku_id: str
    action: MigrateAction
    reason: str | None = None
    disabled_plans: frozenset[str] | None = None
    groups: tuple[str, ...] = field(default_factory=tuple)

    @property
    def actionable(self) -> bool:
        return self.action is not MigrateAction.SKIP


def _skip(user: User, sku_id: str, reason: str, direct: frozenset[str] | None = None) -> Decision:
    return Decision(user.id, user.user_principal_name, sku_id, MigrateAction.SKIP, reason, direct)


@dataclass(frozen=True, slots=True)
class _Source:
    """One group source of one SKU for one user, with the error that keeps it from counting."""

    group_id: str
    disabled: frozenset[str]
    error: str | None


class _Classifier:
    def __init__(self, tenant: Tenant, policy: Policy, ledger: Ledger) -> None:
        self.tenant = tenant
        self.ledger = ledger
        self.index = PlanIndex(tenant, policy.plan_rules)

    def group_name(self, group_id: str) -> str:
        group = self.tenant.groups.get(group_id)
        return group.display_name if group else group_id

    def plan_names(self, plan_ids: Iterable[str]) -> str:
        return ", ".join(sorted(self.index.name(p) for p in plan_ids))

    def decide(
        self,
        user: User,
        sku_id: str,
        direct: frozenset[str] | None,
        sources: Sequence[_Source],
        action: MigrateAction,
        no_source: str,
    ) -> Decision:
        """The common verdict once a user's direct assignment and group sources are known."""

        def skip(reason: str) -> Decision:
            return _skip(user, sku_id, reason, direct)

        if direct is None:
            return skip("no direct assignment")
        if not sources:
            return skip(no_source)
        good = [s for s in sources if s.error is None]
        failed = [s for s in sources if s.error is not None]
        errors = "; ".join(
            f"group source in error: {s.error} (group {self.group_name(s.group_id)})"
            for s in failed
        )
        if action is MigrateAction.REMOVE_DIRECT and failed:
            return skip(errors)  # Microsoft's step 5: no member in an error state
        covered: set[str] = set()
        for source in good:
            covered |= self.index.enabled(sku_id, source.disabled)
        missing = self.index.enabled(sku_id, direct) - covered
        if not good:
            return skip(errors)
        if missing:
            reason = (
                f"direct assignment enables {self.plan_names(missing)}, "
                "which no group source enables"
            )
            return skip(f"{reason}; {errors}" if errors else reason)
        groups = tuple(sorted(s.group_id for s in good))
        return Decision(user.id, user.user_principal_name, sku_id, action, None, direct, groups)


def _rule_sources(states: Iterable[SourceState]) -> dict[str, list[_Source]]:
    found: dict[str, list[_Source]] = {}
    for s in states:
        if s.kind is SourceKind.RULE and s.group_id is not None:
            error = s.error.value if s.error is not None else None
            found.setdefault(s.sku_id, []).append(_Source(s.group_id, s.disabled_plans, error))
    return found


def _classify_rules(c: _Classifier, rules: Sequence[Rule], policy: Policy) -> list[Decision]:
    tenant = c.tenant
    plan = compute_plan(tenant, rules, policy, c.ledger)
    by_user = {u.user_id: _rule_sources(u.states) for u in plan.users}
    members = sources_by_user(tenant, rules, Policy())  # membership whatever the policy says
    decisions: list[Decision] = []
    for user in tenant.users.values():
        rule_sources = by_user.get(user.id, {})
        skus = set(user.direct_licenses()) | set(rule_sources)
        for sku_id in sorted(skus):
            part = c.index.part_number(sku_id)
            entry = c.ledger.get((user.id, sku_id))
            if entry is not None and entry.prior_direct is None:
                if sku_id in user.direct_licenses():
                    groups = ", ".join(c.group_name(g) for g in entry.groups)
                    decisions.append(
                        _skip(
                            user,
                            sku_id,
                            f"already managed by licsync (rule groups: {groups})",
                        )
                    )
                continue
            direct = entry.prior_direct if entry is not None else user.direct_licenses().get(sku_id)
            in_group = any(
                sku_id in dict(s.licenses)
                for s in members.get(user.id, ())
                if s.kind is SourceKind.RULE
            )
            no_source = (
                f"excluded by [policy] ({'guest' if user.is_guest else 'disabled account'}) "
                f"from the rule groups that grant {part}"
                if in_group
                else f"not a member of any group that grants {part}"
            )
            decisions.append(
                c.decide(
                    user,
                    sku_id,
                    direct,
                    rule_sources.get(sku_id, ()),
                    MigrateAction.ADOPT,
                    no_source,
                )
            )
    return decisions


def _inherited(state: AssignmentState) -> _Source:
    error = state.error.value if state.error is not None else None
    if error is None and state.state.casefold() != "active":
        error = state.state
    return _Source(state.assigned_by_group or "", state.disabled_plans, error)


def _classify_entra(c: _Classifier) -> list[Decision]:
    tenant = c.tenant
    entra_groups: dict[str, set[str]] = {}  # user -> SKUs an Entra-licensed group grants
    for group in tenant.groups.values():
        if group.security_enabled:
            for user_id in group.member_users:
                entra_groups.setdefault(user_id, set()).update(
                    a.sku_id for a in group.assigned_licenses
                )
    decisions: list[Decision] = []
    for user in tenant.users.values():
        if user.license_assignment_states is None:
            for sku_id in sorted(user.held_skus()):
                decisions.append(
                    _skip(
                        user,
                        sku_id,
                        "Graph sent no licenseAssignmentStates for this user: direct and "
                        "inherited assignments cannot be told apart",
                    )
                )
            continue
        direct = user.direct_licenses()
        inherited: dict[str, list[_Source]] = {}
        for state in user.license_assignment_states:
            if state.assigned_by_group is not None:
                inherited.setdefault(state.sku_id, []).append(_inherited(state))
        for sku_id in sorted(set(direct) | set(inherited)):
            part = c.index.part_number(sku_id)
            entry = c.ledger.get((user.id, sku_id))
            if entry is not None and sku_id in direct:
                groups = ", ".join(c.group_name(g) for g in entry.groups)
                decisions.append(
                    _skip(
                        user,
                        sku_id,
                        f"the direct assignment is licsync's (rule groups: {groups}); "
                        f"take {part} out of the licsync rules first",
                        direct[sku_id],
                    )
                )
                continue
            if sku_id in entra_groups.get(user.id, ()):
                no_source = (
                    f"member of an Entra-licensed group that grants {part}, but Entra has not "
                    "assigned it yet; reprocess the user's licences and plan again"
                )
            else:
                no_source = f"not a member of any group that grants {part}"
            decisions.append(
                c.decide(
                    user,
                    sku_id,
                    direct.get(sku_id),
                    inherited.get(sku_id, ()),
                    MigrateAction.REMOVE_DIRECT,
                    no_source,
                )
            )
    return decisions


def classify(
    tenant: Tenant,
    target: Target,
    *,
    rules: Sequence[Rule] = (),
    policy: Policy | None = None,
    ledger: Ledger | None = None,
) -> tuple[Decision, ...]:
    """Every user/SKU considered for `target`, sorted by user id then SKU id."""
    policy = policy or Policy()
    c = _Classifier(tenant, policy, ledger or {})
    found = _classify_rules(c, rules, policy) if target is Target.RULES else _classify_entra(c)
    return tuple(sorted(found, key=lambda d: (d.user_id, d.sku_id)))
