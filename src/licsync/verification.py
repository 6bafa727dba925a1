"""Entra's own group licensing against its rules: per user x SKU x group, Entra's state beside
the engine's verdict (pure: `licsync.connector.verify` reads the tenant, `licsync verify`
reports)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from licsync.engine import compute_plan
from licsync.engine.inputs import Policy
from licsync.errors import InputError
from licsync.model import AssignmentState, SourceKind, SourceState, Tenant
from licsync.validation import closest

COMPLETE = "ProcessingComplete"

Stamps = dict[tuple[str, str, str], str]  # (user, group, SKU) → Entra's lastUpdatedDateTime


class Status(StrEnum):
    """How Entra's assignment of one SKU from one group to one user compares with its rules."""

    OK = "ok"
    MISSING = "missing"  # the rules say assigned; Entra has nothing from this group
    UNEXPECTED = "unexpected"  # Entra assigns it; the rules say it should not
    PLANS_DIFFER = "plansDiffer"  # both assign it, with different disabled plans
    ERROR = "error"  # Entra reports an error the tenant explains
    STALE = "stale"  # Entra reports an error the tenant no longer explains


REPROCESSED = (Status.STALE, Status.MISSING)  # what `verify --reprocess` reprocesses


@dataclass(frozen=True, slots=True)
class GroupState:
    """An Entra-licensed group and where Entra's processing of it stands."""

    group_id: str
    display_name: str
    processing_state: str | None
    has_members_with_license_errors: bool | None

    @property
    def complete(self) -> bool:
        """Whether Entra finished processing the group (Graph may send no state at all)."""
        return self.processing_state in (None, COMPLETE)


@dataclass(frozen=True, slots=True)
class Finding:
    """One user x SKU x group: Entra's state (None: none) and the engine's (None: the rules
    give nothing)."""

    user_id: str
    user_principal_name: str
    group_id: str
    sku_id: str
    status: Status
    entra: AssignmentState | None
    expected: SourceState | None
    last_updated: str | None = None


@dataclass(frozen=True, slots=True)
class Verification:
    tenant: Tenant
    groups: tuple[GroupState, ...]
    findings: tuple[Finding, ...]

    @property
    def pending_groups(self) -> tuple[GroupState, ...]:
        """Groups whose processing has not completed."""
        return tuple(g for g in self.groups if not g.complete)

    @property
    def ok(self) -> bool:
        return not self.pending_groups and all(f.status is Status.OK for f in self.findings)

    def summary(self) -> dict[str, int]:
        """Findings per status (every status, zeros included) and unfinished groups."""
        counts = Counter(f.status for f in self.findings)
        summary = {status.value: counts[status] for status in Status}
        summary["groupsProcessing"] = len(self.pending_groups)
        return summary

    def reprocess_targets(self) -> list[str]:
        """Users with a `stale` or `missing` finding, in id order."""
        return sorted({f.user_id for f in self.findings if f.status in REPROCESSED})


def select_groups(groups: Sequence[GroupState], names: Sequence[str]) -> list[GroupState]:
    """The groups `names` designate (display name or id, case-insensitive); every group when
    `names` is empty. A name that designates no licensed group raises InputError (exit 3)
    with the closest names."""
    if not names:
        return list(groups)
    chosen: dict[str, GroupState] = {}
    for name in names:
        wanted = name.strip().lower()
        hits = [g for g in groups if wanted in (g.group_id, g.display_name.lower())]
        if not hits:
            known = [g.display_name for g in groups]
            raise InputError(
                f"--group {name!r}: no group Entra licenses has that name or id"
                f"{closest(name, known)}"
            )
        chosen.update((g.group_id, g) for g in hits)
    return [g for g in groups if g.group_id in chosen]


def compare(
    tenant: Tenant, groups: Iterable[GroupState], stamps: Stamps, policy: Policy
) -> Verification:
    """Entra's assignments from `groups` beside what the engine computes for `tenant`."""
    groups = tuple(groups)
    plan = compute_plan(tenant, (), policy)
    expected: dict[tuple[str, str], dict[str, SourceState]] = {}
    for user_plan in plan.users:
        for s in user_plan.states:
            if s.kind is SourceKind.ENTRA and s.group_id is not None:
                expected.setdefault((user_plan.user_id, s.group_id), {})[s.sku_id] = s
    held = _entra_states(tenant)
    findings: list[Finding] = []
    for group in groups:
        entra = held.get(group.group_id, {})
        source = tenant.groups.get(group.group_id)
        for user_id in source.member_users if source else ():
            if user_id in tenant.users:
                entra.setdefault(user_id, {})
        for user_id in sorted(entra):
            user = tenant.users[user_id]
            mine = expected.get((user_id, group.group_id), {})
            for sku_id in sorted(set(entra[user_id]) | set(mine)):
                state, want = entra[user_id].get(sku_id), mine.get(sku_id)
                findings.append(
                    Finding(
                        user_id,
                        user.user_principal_name,
                        group.group_id,
                        sku_id,
                        judge(state, want),
                        state,
                        want,
                        stamps.get((user_id, group.group_id, sku_id)),
                    )
                )
    return Verification(tenant, groups, tuple(findings))


def _entra_states(tenant: Tenant) -> dict[str, dict[str, dict[str, AssignmentState]]]:
    """Entra's group states: group → user → SKU → state."""
    found: dict[str, dict[str, dict[str, AssignmentState]]] = {}
    for user in tenant.users.values():
        for s in user.license_assignment_states or ():
            if s.assigned_by_group is not None:
                found.setdefault(s.assigned_by_group, {}).setdefault(user.id, {})[s.sku_id] = s
    return found


def judge(entra: AssignmentState | None, expected: SourceState | None) -> Status:
    """The status of one user x SKU x group."""
    if entra is None:
        return Status.MISSING
    if entra.error is not None:
        explained = expected is not None and expected.error is not None
        return Status.ERROR if explained else Status.STALE
    if expected is None or expected.error is not None:
        return Status.UNEXPECTED
    return Status.OK if entra.disabled_plans == expected.disabled_plans else Status.PLANS_DIFFER
