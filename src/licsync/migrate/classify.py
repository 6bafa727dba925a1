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

Both targets apply Entra's same-group prerequisite rule: a group source counts only if its own
assignment enables every enabled plan's prerequisite (for rules, the engine's verdict says so).

No I/O: the tenant, the resolved rules, the policy and the ledger are inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from licsync.engine import compute_plan
from licsync.engine.inputs import Policy, Rule
from licsync.engine.membership import sources_by_user
from licsync.engine.service_plans import ServicePlanIndex
from licsync.model import (
    AssignmentState,
    Ledger,
    LicenseError,
    SourceKind,
    SourceState,
    Tenant,
    User,
)


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


NO_STATES = (
    "Graph sent no licenseAssignmentStates for this user: direct and inherited assignments "
    "cannot be told apart"
)


def _entra_grants(tenant: Tenant) -> dict[str, set[str]]:
    """User id -> the SKUs an Entra-licensed group of theirs grants."""
    grants: dict[str, set[str]] = {}
    for group in tenant.groups.values():
        if group.security_enabled and group.assigned_licenses:
            for user_id in group.member_users:
                grants.setdefault(user_id, set()).update(a.sku_id for a in group.assigned_licenses)
    return grants


def _excluded_by(user: User, policy: Policy) -> str:
    """Which `[policy]` switch keeps `user` out of the rule groups."""
    if not policy.license_disabled_accounts and not user.account_enabled:
        return "disabled account"
    return "guest"


class _Classifier:
    def __init__(self, tenant: Tenant, policy: Policy, ledger: Ledger) -> None:
        self.tenant = tenant
        self.ledger = ledger
        self.index = ServicePlanIndex(tenant, policy.plan_rules)
        self.entra_grants = _entra_grants(tenant)

    def group_name(self, group_id: str) -> str:
        group = self.tenant.groups.get(group_id)
        return group.display_name if group else group_id

    def same_group_violation(self, group_id: str) -> str | None:
        """`DependencyViolation: …` when the group's own licences enable a plan without its
        prerequisite (the engine's rule for every group source), else None."""
        group = self.tenant.groups.get(group_id)
        if group is None:
            return None
        licences = [(a.sku_id, a.disabled_plans) for a in group.assigned_licenses]
        missing = self.index.group_missing_prerequisite(licences)
        if missing is None:
            return None
        return (
            f"{LicenseError.DEPENDENCY_VIOLATION.value}: {self.index.same_group_message(*missing)}"
        )

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


def _rules_decision(
    c: _Classifier,
    user: User,
    sku_id: str,
    sources: Sequence[_Source],
    granting: set[str],
    policy: Policy,
) -> Decision | None:
    """Target rules for one SKU of one user; None when there is nothing to consider (licsync's
    own licence, gone from the user)."""
    part = c.index.part_number(sku_id)
    direct = user.direct_licenses().get(sku_id)
    entry = c.ledger.get((user.id, sku_id))
    if entry is not None and entry.prior_direct is None:
        if direct is None:
            return None
        groups = ", ".join(c.group_name(g) for g in entry.groups)
        return _skip(user, sku_id, f"already managed by licsync (rule groups: {groups})")
    if entry is not None:
        direct = entry.prior_direct
    elif user.license_assignment_states is None and sku_id in c.entra_grants.get(user.id, ()):
        return _skip(user, sku_id, NO_STATES, direct)  # what looks direct may be Entra's
    if sku_id in granting:
        no_source = (
            f"excluded by [policy] ({_excluded_by(user, policy)}) "
            f"from the rule groups that grant {part}"
        )
    else:
        no_source = f"not a member of any group that grants {part}"
    return c.decide(user, sku_id, direct, sources, MigrateAction.ADOPT, no_source)


def _classify_rules(c: _Classifier, rules: Sequence[Rule], policy: Policy) -> list[Decision]:
    plan = compute_plan(c.tenant, rules, policy, c.ledger)
    by_user = {u.user_id: _rule_sources(u.states) for u in plan.users}
    members = sources_by_user(c.tenant, rules, Policy())  # membership whatever the policy says
    decisions: list[Decision] = []
    for user in c.tenant.users.values():
        rule_sources = by_user.get(user.id, {})
        granting = {
            sku
            for source in members.get(user.id, ())
            if source.kind is SourceKind.RULE
            for sku, _ in source.licenses
        }
        for sku_id in sorted(set(user.direct_licenses()) | set(rule_sources)):
            sources = rule_sources.get(sku_id, ())
            found = _rules_decision(c, user, sku_id, sources, granting, policy)
            if found is not None:
                decisions.append(found)
    return decisions


def _inherited(c: _Classifier, state: AssignmentState) -> _Source:
    """An inherited source; one from a group that breaks Entra's same-group prerequisite rule
    does not count, whatever Graph reports for it."""
    error = state.error.value if state.error is not None else None
    if error is None and state.state.casefold() != "active":
        error = state.state
    group_id = state.assigned_by_group or ""
    if error is None:
        error = c.same_group_violation(group_id)
    return _Source(group_id, state.disabled_plans, error)


def _classify_entra(c: _Classifier) -> list[Decision]:
    decisions: list[Decision] = []
    for user in c.tenant.users.values():
        if user.license_assignment_states is None:
            decisions.extend(_skip(user, sku_id, NO_STATES) for sku_id in sorted(user.held_skus()))
            continue
        direct = user.direct_licenses()
        inherited: dict[str, list[_Source]] = {}
        for state in user.license_assignment_states:
            if state.assigned_by_group is not None:
                inherited.setdefault(state.sku_id, []).append(_inherited(c, state))
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
            if sku_id in c.entra_grants.get(user.id, ()):
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
