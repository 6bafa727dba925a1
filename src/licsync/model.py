"""Frozen value types shared by every stage: the tenant as read, and the plan the engine returns.

Identifiers are Graph object ids (GUIDs) normalised to lower case by `guid()`; Graph itself
sends them in mixed case. Field names follow Graph's vocabulary wherever Graph has a word.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


def guid(value: str) -> str:
    """Return a Graph object id in the canonical form licsync compares and stores (lower case)."""
    return value.strip().lower()


class LicenseError(StrEnum):
    """`licenseAssignmentState.error` values, plus the spelling licsync uses for unknown ones,
    and `AccessDenied`: Graph refused to change this user (403), e.g. a member of a restricted
    management administrative unit."""

    COUNT_VIOLATION = "CountViolation"
    MUTUALLY_EXCLUSIVE_VIOLATION = "MutuallyExclusiveViolation"
    DEPENDENCY_VIOLATION = "DependencyViolation"
    PROHIBITED_IN_USAGE_LOCATION_VIOLATION = "ProhibitedInUsageLocationViolation"
    UNIQUENESS_VIOLATION = "UniquenessViolation"
    ACCESS_DENIED = "AccessDenied"
    OTHER = "Other"

    @classmethod
    def parse(cls, value: str | None) -> LicenseError | None:
        """Parse Graph's `error` field: null or "None" is success; "Others" is the old "Other"."""
        if value is None:
            return None
        text = value.strip().lower()
        if text in ("", "none"):
            return None
        if text == "others":
            return cls.OTHER
        for member in cls:
            if member.value.lower() == text:
                return member
        return cls.OTHER


class SourceKind(StrEnum):
    """Where a licence for one SKU comes from."""

    DIRECT = "direct"  # assigned on the user by someone other than licsync
    RULE = "rule"  # a licsync rule group: pushed by licsync as part of the user's direct assignment
    ENTRA = "entra"  # a group licensed by Entra itself: computed, never pushed


@dataclass(frozen=True, slots=True)
class ServicePlan:
    id: str
    name: str
    applies_to: str = "User"


@dataclass(frozen=True, slots=True)
class Sku:
    """A `subscribedSku`: a product the tenant has bought, with its seats and service plans."""

    id: str
    part_number: str
    applies_to: str
    capability_status: str
    enabled_units: int
    consumed_units: int
    plans: tuple[ServicePlan, ...]

    @property
    def assignable(self) -> bool:
        """Whether new seats can be given to users (Graph refuses Company SKUs and dead ones)."""
        return self.applies_to == "User" and self.capability_status in ("Enabled", "Warning")

    @property
    def free_units(self) -> int:
        return max(self.enabled_units - self.consumed_units, 0)


@dataclass(frozen=True, slots=True)
class Assignment:
    """One entry of `assignedLicenses`: a SKU and the plans disabled in it."""

    sku_id: str
    disabled_plans: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class AssignmentState:
    """One entry of `licenseAssignmentStates` as Graph reports it (one per source)."""

    sku_id: str
    assigned_by_group: str | None
    disabled_plans: frozenset[str]
    state: str = "Active"
    error: LicenseError | None = None


@dataclass(frozen=True, slots=True)
class User:
    id: str
    user_principal_name: str
    account_enabled: bool = True
    usage_location: str | None = None
    user_type: str = "Member"
    assigned_licenses: tuple[Assignment, ...] = ()
    license_assignment_states: tuple[AssignmentState, ...] | None = None
    # the properties attribute rules read, by Entra's rule name, sorted: ((name, value), …);
    # a value is a string, a boolean, a tuple of strings (collections) or None (unset)
    attributes: tuple[tuple[str, str | bool | tuple[str, ...] | None], ...] = ()

    @property
    def is_guest(self) -> bool:
        return self.user_type.lower() == "guest"

    def held_skus(self) -> frozenset[str]:
        """SKUs the user holds a seat of, from any source."""
        return frozenset(a.sku_id for a in self.assigned_licenses)

    def direct_licenses(self) -> dict[str, frozenset[str]]:
        """The user's direct assignments (sku id → disabled plans).

        Read from `licenseAssignmentStates` when Graph sent them; without them every assigned
        licence is taken as direct, which is exact for tenants that use no Entra group licensing.
        """
        if self.license_assignment_states is None:
            return {a.sku_id: a.disabled_plans for a in self.assigned_licenses}
        return {
            s.sku_id: s.disabled_plans
            for s in self.license_assignment_states
            if s.assigned_by_group is None
        }

    def inheriting_from(self) -> frozenset[str]:
        """Groups the user already holds a licence from, without error."""
        return frozenset(
            s.assigned_by_group
            for s in self.license_assignment_states or ()
            if s.assigned_by_group is not None and s.error is None
        )


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    display_name: str
    security_enabled: bool = True
    mail_enabled: bool = False
    group_types: tuple[str, ...] = ()
    assigned_licenses: tuple[Assignment, ...] = ()
    member_users: tuple[str, ...] = ()
    member_groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Tenant:
    """Everything licsync reads from a tenant, keyed by lower-case object id. `tenant_id` is the
    organization's id (Entra's directory id) when known."""

    country: str | None
    skus: dict[str, Sku]
    users: dict[str, User]
    groups: dict[str, Group]
    tenant_id: str | None = None


@dataclass(frozen=True, slots=True)
class Ownership:
    """A ledger entry: licsync assigned `sku_id` to `user_id`.

    `prior_direct` is the user's own direct assignment of that SKU (its disabled plans) from before
    licsync took it over, or None when the user had none; licsync restores it when its rules no
    longer grant the SKU.
    """

    user_id: str
    sku_id: str
    groups: tuple[str, ...]
    prior_direct: frozenset[str] | None


Ledger = dict[tuple[str, str], Ownership]


@dataclass(frozen=True, slots=True)
class SourceState:
    """The engine's verdict on one source of one SKU for one user."""

    sku_id: str
    kind: SourceKind
    group_id: str | None
    disabled_plans: frozenset[str]
    error: LicenseError | None = None

    @property
    def state(self) -> str:
        return "Active" if self.error is None else "Error"


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a user cannot get (or lose) a licence as the rules say."""

    user_id: str
    user_principal_name: str
    sku_id: str
    group_id: str | None
    error: LicenseError
    message: str


@dataclass(frozen=True, slots=True)
class UserPlan:
    """Everything the engine decided for one user.

    `add_licenses` and `remove_licenses` are exactly the body of one `assignLicense` call;
    `usage_location` is set when the policy fills a missing usage location first.
    """

    user_id: str
    user_principal_name: str
    assigned_licenses: tuple[Assignment, ...]
    states: tuple[SourceState, ...]
    add_licenses: tuple[Assignment, ...] = ()
    remove_licenses: tuple[str, ...] = ()
    usage_location: str | None = None
    ownership: tuple[Ownership, ...] = ()

    @property
    def has_change(self) -> bool:
        return bool(self.add_licenses or self.remove_licenses or self.usage_location)


@dataclass(frozen=True, slots=True)
class SkuForecast:
    """Seat forecast for one SKU: what is free, what the plan asks for and frees."""

    sku_id: str
    part_number: str
    enabled: int
    consumed: int
    requested: int
    granted: int
    freed: int

    @property
    def available(self) -> int:
        """Seats this plan can hand out: free ones plus the ones it frees."""
        return max(self.enabled - self.consumed, 0) + self.freed

    @property
    def shortfall(self) -> int:
        """Users who need a new seat beyond what is available."""
        return max(self.requested - self.available, 0)

    @property
    def consumed_after(self) -> int:
        return self.consumed + self.granted - self.freed


@dataclass(frozen=True, slots=True)
class Plan:
    users: tuple[UserPlan, ...]
    problems: tuple[Problem, ...]
    skus: tuple[SkuForecast, ...]
    ledger: Ledger = field(default_factory=dict)

    @property
    def changes(self) -> tuple[UserPlan, ...]:
        return tuple(u for u in self.users if u.has_change)
