"""The emulated tenant: users, groups, subscribed SKUs, and Entra's licensing behaviour on them.

Every mutation goes through `Tenant` methods, which hold `Tenant.lock`, keep `consumedUnits` in step
with what users hold (one seat per user per SKU, whatever the number of sources), and bump the
change sequence that delta queries read. Licences are kept per source (`licenseAssignmentStates`);
`assignedLicenses` is derived from the active sources (union of enabled plans).
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import iso3166

from licsync.emulator import rules as R
from licsync.emulator.subscriptions import derive_subscriptions

GraphJSON = dict[str, Any]
ACTIVE = ("Active", "ActiveWithError")
GENERATED_AT = "2025-01-01T00:00:00Z"


def sign_in_activity(last: str | None) -> GraphJSON:
    """A user's `signInActivity` whose last (successful, interactive) sign-in was `last`."""
    return {
        "lastSignInDateTime": last,
        "lastSignInRequestId": None,
        "lastNonInteractiveSignInDateTime": last,
        "lastNonInteractiveSignInRequestId": None,
        "lastSuccessfulSignInDateTime": last,
        "lastSuccessfulSignInRequestId": None,
    }


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class GraphError(Exception):
    """A Graph error response: HTTP status, error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def not_found(object_id: str) -> GraphError:
    return GraphError(404, "Request_ResourceNotFound", R.MSG_NOT_FOUND.format(id=object_id))


def bad_request(message: str) -> GraphError:
    return GraphError(400, "Request_BadRequest", message)


def denied() -> GraphError:
    """Graph's answer to an app writing to a user it may not manage (restricted management
    administrative unit), as in the JSON batching docs' sample."""
    return GraphError(
        403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
    )


@dataclass(slots=True)
class Source:
    """One `licenseAssignmentState`: one SKU from one source (group id, or None for direct)."""

    sku: str
    group: str | None
    disabled: tuple[str, ...]
    state: str = "Active"
    error: str = "None"
    updated: str = GENERATED_AT

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    def to_json(self) -> GraphJSON:
        return {
            "assignedByGroup": self.group,
            "disabledPlans": list(self.disabled),
            "error": self.error,
            "lastUpdatedDateTime": self.updated,
            "skuId": self.sku,
            "state": self.state,
        }


@dataclass(slots=True)
class UserRecord:
    id: str
    upn: str
    display_name: str
    account_enabled: bool = True
    usage_location: str | None = None
    user_type: str = "Member"
    sources: list[Source] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    version: int = 0
    licenses: list[GraphJSON] = field(default_factory=list)  # derived assignedLicenses
    management_restricted: bool = False  # isManagementRestricted: the app may not change it
    states_cache: list[GraphJSON] | None = None

    def states_json(self) -> list[GraphJSON]:
        """`licenseAssignmentStates` as Graph sends them (cached until the next change)."""
        if self.states_cache is None:
            self.states_cache = [s.to_json() for s in self.sources]
        return self.states_cache

    def held(self) -> set[str]:
        return {s.sku for s in self.sources if s.active}

    def derive(self) -> None:
        """Recompute `assignedLicenses`: one entry per held SKU, disabled plans intersected."""
        self.states_cache = None
        combined: dict[str, set[str]] = {}
        for s in self.sources:
            if not s.active:
                continue
            if s.sku in combined:
                combined[s.sku] &= set(s.disabled)
            else:
                combined[s.sku] = set(s.disabled)
        self.licenses = [{"disabledPlans": sorted(d), "skuId": sku} for sku, d in combined.items()]


@dataclass(slots=True)
class GroupRecord:
    id: str
    display_name: str
    security_enabled: bool = True
    mail_enabled: bool = False
    group_types: list[str] = field(default_factory=list)
    licenses: dict[str, tuple[str, ...]] = field(default_factory=dict)  # sku -> disabled plans
    members: dict[str, str] = field(default_factory=dict)  # member id -> "user" | "group" | other
    member_log: list[tuple[int, str, str, bool]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    version: int = 0
    queued_at: float | None = None  # when its licence processing was queued; None: complete

    @property
    def role_assignable(self) -> bool:
        return self.extra.get("isAssignableToRole") is True

    def licenses_json(self) -> list[GraphJSON]:
        return [{"disabledPlans": list(d), "skuId": s} for s, d in self.licenses.items()]


@dataclass(slots=True)
class SkuRecord:
    id: str
    part_number: str
    applies_to: str
    capability_status: str
    enabled: int
    consumed: int
    plans: list[GraphJSON]
    warning: int = 0
    suspended: int = 0
    locked_out: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def free(self) -> int:
        return self.enabled + self.warning - self.consumed

    @property
    def assignable(self) -> bool:
        return self.applies_to == "User" and self.capability_status in ("Enabled", "Warning")

    def to_json(self, tenant_id: str) -> GraphJSON:
        body: GraphJSON = dict(self.extra)
        body.update(
            {
                "appliesTo": self.applies_to,
                "capabilityStatus": self.capability_status,
                "consumedUnits": self.consumed,
                "id": f"{tenant_id}_{self.id}",
                "prepaidUnits": {
                    "enabled": self.enabled,
                    "lockedOut": self.locked_out,
                    "suspended": self.suspended,
                    "warning": self.warning,
                },
                "servicePlans": self.plans,
                "skuId": self.id,
                "skuPartNumber": self.part_number,
            }
        )
        return body


def _license_key(licenses: list[GraphJSON]) -> dict[str, frozenset[str]]:
    return {lic["skuId"]: frozenset(lic["disabledPlans"]) for lic in licenses}


def _lower(value: str) -> str:
    return value.strip().lower()


def _member_kind(member: GraphJSON) -> str:
    kind = str(member.get("@odata.type", "#microsoft.graph.user"))
    return kind.rsplit(".", 1)[-1]


def _derived_tenant_id(tenant: Tenant) -> str:
    """A stable organization id for a snapshot that has none: a hash of its object ids."""
    digest = hashlib.sha256()
    for ids in (tenant.skus, tenant.users, tenant.groups):
        digest.update(",".join(sorted(ids)).encode() + b";")
    return str(uuid.UUID(bytes=digest.digest()[:16], version=4))


class Tenant:
    """The in-memory tenant. Thread-safe: every public method takes `lock`."""

    def __init__(self, organization: GraphJSON, rules: R.RuleTables | None = None) -> None:
        self.organization = organization
        self.rules = rules or R.default_rules()
        self.skus: dict[str, SkuRecord] = {}
        self.subscriptions: list[GraphJSON] = []  # companySubscription, as Graph sends them
        # application permissions the app lacks (tests take some away): a read that needs one
        # is refused with 403 as Graph refuses it
        self.denied_permissions: set[str] = set()
        self.report_settings: GraphJSON = {"displayConcealedNames": False}
        self.users: dict[str, UserRecord] = {}
        self.groups: dict[str, GroupRecord] = {}
        # user or group id -> the groups it is a direct member of
        self.member_of: dict[str, set[str]] = {}
        self.seq = 1
        # delta tokens issued before this change sequence are expired (Graph: 7 days)
        self.delta_floor = 0
        # deleted object id -> ("users" | "groups", change sequence): delta's @removed entries
        self.removed: dict[str, tuple[str, int]] = {}
        self._user_list: list[UserRecord] | None = None
        self.lock = threading.RLock()
        self.clock: Callable[[], str] = now_iso
        # the recycle bin: deleted user id -> (user, its direct licences, its groups)
        self.deleted: dict[str, tuple[UserRecord, list[Source], set[str]]] = {}
        # replication lag (docs/emulator.md): reads of a user within `replication_lag` seconds
        # of a write see the version before it; an assignLicense adding licences within it of
        # a usageLocation change is refused as for a missing usage location
        self.replication_lag = 0.0
        self.monotonic: Callable[[], float] = time.monotonic
        self._versions: dict[str, list[tuple[float, UserRecord]]] = {}  # id -> (write, before)
        self._located: dict[str, float] = {}  # user id -> time of its last usageLocation change
        # Entra processes a group's licences in the background (docs/emulator.md): with a
        # delay, `POST /groups/{id}/assignLicense` queues the group and its members are
        # processed `processing_delay` seconds later (the first half QueuedForProcessing, the
        # second ProcessingInProgress); 0 processes them within the call
        self.processing_delay = 0.0
        self._queued: set[str] = set()

    # ----- construction -------------------------------------------------------------------
    @property
    def tenant_id(self) -> str:
        return str(self.organization.get("id", ""))

    @property
    def country(self) -> str | None:
        return self.organization.get("countryLetterCode")

    @classmethod
    def from_snapshot(cls, snapshot: GraphJSON) -> Tenant:
        """Load a tenant snapshot (docs/snapshot.md); GUIDs are lower-cased. The organization
        keeps its id; a snapshot without one gets an id derived from its objects' ids (the same
        for the same snapshot, as a tenant's id never changes)."""
        org = snapshot.get("organization") or {}
        if isinstance(org, list):
            org = org[0] if org else {}
        tenant = cls(dict(org))
        for raw in snapshot.get("subscribedSkus", []):
            prepaid = raw.get("prepaidUnits") or {}
            known = {"appliesTo", "capabilityStatus", "consumedUnits", "id", "prepaidUnits"}
            known |= {"servicePlans", "skuId", "skuPartNumber"}
            sku = SkuRecord(
                id=_lower(raw["skuId"]),
                part_number=raw.get("skuPartNumber", ""),
                applies_to=raw.get("appliesTo", "User"),
                capability_status=raw.get("capabilityStatus", "Enabled"),
                enabled=int(prepaid.get("enabled", 0)),
                consumed=int(raw.get("consumedUnits", 0)),
                plans=[
                    {**p, "servicePlanId": _lower(p["servicePlanId"])}
                    for p in raw.get("servicePlans", [])
                ],
                warning=int(prepaid.get("warning", 0)),
                suspended=int(prepaid.get("suspended", 0)),
                locked_out=int(prepaid.get("lockedOut", 0)),
                extra={k: v for k, v in raw.items() if k not in known},
            )
            tenant.skus[sku.id] = sku
        for raw in snapshot.get("users", []):
            tenant.users[_lower(raw["id"])] = _user_from_json(raw)
        for raw in snapshot.get("groups", []):
            group = GroupRecord(
                id=_lower(raw["id"]),
                display_name=raw.get("displayName") or "",
                security_enabled=bool(raw.get("securityEnabled", True)),
                mail_enabled=bool(raw.get("mailEnabled", False)),
                group_types=list(raw.get("groupTypes") or []),
                licenses={
                    _lower(a["skuId"]): tuple(_lower(p) for p in a.get("disabledPlans") or [])
                    for a in raw.get("assignedLicenses") or []
                },
                members={_lower(m["id"]): _member_kind(m) for m in raw.get("members") or []},
            )
            known = {"id", "displayName", "securityEnabled", "mailEnabled", "groupTypes"}
            known |= {"assignedLicenses", "members"}
            group.extra = {k: v for k, v in raw.items() if k not in known}
            tenant.groups[group.id] = group
            for member in group.members:
                tenant.member_of.setdefault(member, set()).add(group.id)
        if not tenant.organization.get("id"):
            tenant.organization["id"] = _derived_tenant_id(tenant)
        subscriptions = snapshot.get("subscriptions")
        tenant.subscriptions = (
            [dict(s, skuId=_lower(s["skuId"])) for s in subscriptions]
            if isinstance(subscriptions, list)
            else derive_subscriptions(tenant.tenant_id, tenant.skus.values())
        )
        return tenant

    def to_snapshot(self) -> GraphJSON:
        """The tenant as a snapshot (docs/snapshot.md)."""
        with self.lock:
            return {
                "organization": dict(self.organization),
                "subscribedSkus": [s.to_json(self.tenant_id) for s in self.skus.values()],
                "subscriptions": [dict(s) for s in self.subscriptions],
                "users": [
                    {
                        **u.extra,
                        "id": u.id,
                        "userPrincipalName": u.upn,
                        "displayName": u.display_name,
                        "accountEnabled": u.account_enabled,
                        "usageLocation": u.usage_location,
                        "userType": u.user_type,
                        "assignedLicenses": [dict(a) for a in u.licenses],
                        "licenseAssignmentStates": u.states_json(),
                        **({"isManagementRestricted": True} if u.management_restricted else {}),
                        **{k: v for k, v in u.extra.items() if k in SNAPSHOT_ATTRIBUTES},
                    }
                    for u in self.users.values()
                ],
                "groups": [
                    {
                        "id": g.id,
                        "displayName": g.display_name,
                        "securityEnabled": g.security_enabled,
                        "mailEnabled": g.mail_enabled,
                        "groupTypes": list(g.group_types),
                        "assignedLicenses": g.licenses_json(),
                        "members": [
                            {"@odata.type": f"#microsoft.graph.{kind}", "id": mid}
                            for mid, kind in g.members.items()
                        ],
                    }
                    for g in self.groups.values()
                ],
            }

    # ----- helpers ------------------------------------------------------------------------
    def user_list(self) -> list[UserRecord]:
        """Users in a stable order (cached; the emulator creates no users, and a deletion
        changes the count)."""
        if self._user_list is None or len(self._user_list) != len(self.users):
            self._user_list = list(self.users.values())
        return self._user_list

    def touch(self, obj: UserRecord | GroupRecord) -> int:
        self.seq += 1
        obj.version = self.seq
        return self.seq

    def expire_delta_links(self) -> None:
        """Make every delta link issued so far expired, as Graph does after seven days."""
        with self.lock:
            self.seq += 1
            self.delta_floor = self.seq

    def user(self, user_id: str) -> UserRecord:
        """A user by object id or, as Graph also accepts, by userPrincipalName."""
        found = self.users.get(_lower(user_id))
        if found is None and "@" in user_id:
            upn = user_id.lower()
            found = next((u for u in self.users.values() if u.upn.lower() == upn), None)
        if found is None:
            raise not_found(user_id)
        return found

    def changeable_user(self, user_id: str) -> UserRecord:
        """`user(user_id)`, unless it is management-restricted: 403 (`denied`)."""
        user = self.user(user_id)
        if user.management_restricted:
            raise denied()
        return user

    def group(self, group_id: str) -> GroupRecord:
        found = self.groups.get(_lower(group_id))
        if found is None:
            raise not_found(group_id)
        return found

    def enabled_plans(self, sources: list[Source]) -> dict[str, set[str]]:
        """Enabled plan name -> SKUs enabling it, over the active sources."""
        enabled: dict[str, set[str]] = {}
        for s in sources:
            sku = self.skus.get(s.sku)
            if not s.active or sku is None:
                continue
            disabled = set(s.disabled)
            for plan in sku.plans:
                if plan["servicePlanId"] not in disabled:
                    enabled.setdefault(plan["servicePlanName"], set()).add(s.sku)
        return enabled

    def _plan_id(self, name: str) -> str:
        for sku in self.skus.values():
            for plan in sku.plans:
                if plan["servicePlanName"] == name:
                    return plan["servicePlanId"]
        return name

    def _commit(self, user: UserRecord, sources: list[Source]) -> None:
        """Replace a user's sources, moving seats for SKUs gained or lost."""
        self._remember(user)
        before = user.held()
        user.sources = sources
        after = user.held()
        for sku_id in after - before:
            self.skus[sku_id].consumed += 1
        for sku_id in before - after:
            self.skus[sku_id].consumed -= 1
        licenses = _license_key(user.licenses)
        user.derive()
        # users/delta does not track licenseAssignmentStates (Graph's user-delta docs): a
        # change of sources that leaves assignedLicenses as it was is not reported
        if _license_key(user.licenses) != licenses:
            self.touch(user)

    def _violations(
        self, before: list[Source], after: list[Source]
    ) -> list[tuple[str, str, set[str]]]:
        """New rule violations caused by going from `before` to `after` (error, message, skus)."""
        found: list[tuple[str, str, set[str]]] = []
        held_before = {s.sku for s in before if s.active}
        for sku_id in {s.sku for s in after if s.active} - held_before:
            sku = self.skus[sku_id]
            if sku.free <= 0 or not sku.assignable:
                found.append(("CountViolation", R.MSG_NO_SEATS.format(sku=sku_id), {sku_id}))
        old, new = self.enabled_plans(before), self.enabled_plans(after)
        for a, b in self.rules.conflicts(set(new)):
            if a in old and b in old:
                continue
            message = R.MSG_EXCLUSIVE.format(a=self._plan_id(a), b=self._plan_id(b))
            found.append(("MutuallyExclusiveViolation", message, new[a] | new[b]))
        already = {p for p, _ in self.rules.missing_prerequisites(set(old))}
        for plan, needs in self.rules.missing_prerequisites(set(new)):
            if plan in already:
                continue
            ids = ",".join(self._plan_id(n) for n in sorted(needs))
            message = R.MSG_DEPENDENCY.format(plan=self._plan_id(plan), needs=ids)
            lost = {s.sku for s in before if s.active} - {s.sku for s in after if s.active}
            found.append(("DependencyViolation", message, new[plan] | lost))
        return found

    # ----- replication lag ----------------------------------------------------------------
    def _remember(self, user: UserRecord) -> None:
        """Keep the version of `user` a write is about to change, for reads within the lag."""
        if self.replication_lag <= 0:
            return
        now = self.monotonic()
        kept = [v for v in self._versions.get(user.id, ()) if v[0] > now - self.replication_lag]
        kept.append((now, replace(user)))
        self._versions[user.id] = kept

    def replica(self, user: UserRecord) -> UserRecord:
        """`user` as a read sees it: the version of `replication_lag` seconds ago."""
        versions = self._versions.get(user.id) if self.replication_lag > 0 else None
        if not versions:
            return user
        horizon = self.monotonic() - self.replication_lag
        seen = next((before for at, before in versions if at > horizon), None)
        if seen is None:  # every write has replicated
            del self._versions[user.id]
            return user
        return seen

    def _relocated(self, user: UserRecord) -> bool:
        """Whether the user's usageLocation changed within the replication lag."""
        changed = self._located.get(user.id)
        return changed is not None and self.monotonic() - changed < self.replication_lag

    # ----- direct assignment --------------------------------------------------------------
    def _check_user_skus(self, sku_ids: list[str]) -> None:
        """Graph's 400s for a SKU the tenant lacks or one assigned to the company, not users."""
        for sku_id in sku_ids:
            sku = self.skus.get(sku_id)
            if sku is None:
                raise bad_request(R.MSG_UNKNOWN_SKU.format(sku=sku_id))
            if sku.applies_to != "User":
                raise bad_request(R.MSG_COMPANY_SKU.format(sku=sku_id))

    def assign_user_license(self, user_id: str, body: Any) -> UserRecord:
        """`POST /users/{id}/assignLicense`: validate everything, then apply as a whole."""
        adds, removes = parse_assign_body(body)
        with self.lock:
            user = self.changeable_user(user_id)
            self._check_user_skus([a for a, _ in adds] + removes)
            direct = {s.sku for s in user.sources if s.group is None}
            for sku_id in removes:
                if sku_id not in direct:
                    inherited = any(s.sku == sku_id for s in user.sources)
                    raise bad_request(R.MSG_INHERITED if inherited else R.MSG_NOT_ASSIGNED)
            if adds and (not user.usage_location or self._relocated(user)):
                raise bad_request(R.MSG_USAGE_LOCATION)
            added = dict(adds)
            stamp = self.clock()
            after: list[Source] = []
            for s in user.sources:
                if s.group is None and s.sku in removes:
                    continue
                if s.group is None and s.sku in added:
                    after.append(Source(s.sku, None, added.pop(s.sku), updated=stamp))
                    continue
                after.append(s)
            after.extend(Source(sku, None, dis, updated=stamp) for sku, dis in added.items())
            problems = self._violations(user.sources, after)
            if problems:
                raise bad_request(problems[0][1])
            self._commit(user, after)
            return user

    def patch_user(self, user_id: str, body: Any) -> None:
        if not isinstance(body, dict):
            raise bad_request("Invalid request body.")
        with self.lock:
            user = self.changeable_user(user_id)
            self._remember(user)
            if "usageLocation" in body:
                loc = body["usageLocation"]
                # ISO 3166-1 alpha-2 only (Graph's user resource): Graph refuses other codes
                if loc and (
                    not isinstance(loc, str) or loc.upper() not in iso3166.countries_by_alpha2
                ):
                    raise bad_request("Invalid value specified for property 'usageLocation'.")
                location = loc.upper() if loc else None
                if location != user.usage_location:
                    self._located[user.id] = self.monotonic()
                user.usage_location = location
            if "accountEnabled" in body:
                user.account_enabled = bool(body["accountEnabled"])
            if "displayName" in body:
                user.display_name = str(body["displayName"])
            user.extra.update(_attribute_changes(body))
            self.touch(user)

    # ----- group-based licensing ----------------------------------------------------------
    def _apply_group(self, sources: list[Source], group: GroupRecord, stamp: str) -> list[Source]:
        """Entra's processing of one licensed group for one user: all or nothing."""
        base = [s for s in sources if s.group != group.id]
        trial = base + [
            Source(sku, group.id, dis, updated=stamp) for sku, dis in group.licenses.items()
        ]
        errors: dict[str, str] = {}
        # the add-on and its prerequisite must be in the same group (Entra docs, "Identify
        # and resolve license assignment problems for a group"): the group's own plans count
        own = self.enabled_plans(trial[len(base) :])
        for plan, _needs in self.rules.missing_prerequisites(set(own)):
            for sku in own[plan]:
                errors.setdefault(sku, "DependencyViolation")
        for error, _message, skus in self._violations(sources, trial):
            for sku in skus & set(group.licenses):
                errors.setdefault(sku, error)
        if not errors:
            return trial
        return base + [
            Source(sku, group.id, dis, "Error", errors.get(sku, "Other"), stamp)
            for sku, dis in group.licenses.items()
        ]

    def _release_group(self, sources: list[Source], group_id: str, keep: set[str]) -> list[Source]:
        """Drop a group's sources for SKUs not in `keep`, unless that breaks a prerequisite."""
        after = [s for s in sources if s.group != group_id or s.sku in keep]
        if after == sources:
            return sources
        blocked: set[str] = set()
        for error, _message, skus in self._violations(sources, after):
            if error == "DependencyViolation":
                blocked |= skus
        if not blocked:
            return after
        result = []
        for s in sources:
            if s.group == group_id and s.sku not in keep:
                if s.sku not in blocked or not s.active:
                    continue
                s = Source(
                    s.sku, s.group, s.disabled, "ActiveWithError", "DependencyViolation", s.updated
                )
            result.append(s)
        return result

    def reconcile(self, user: UserRecord) -> None:
        """Bring a user's group-sourced states in line with memberships and group licences."""
        stamp = self.clock()
        sources = list(user.sources)
        groups = self.member_of.get(user.id, set())
        for gid in sorted({s.group for s in sources if s.group}):
            group = self.groups.get(gid)
            keep = set(group.licenses) if group is not None and gid in groups else set()
            sources = self._release_group(sources, gid, keep)
        for gid in sorted(groups):
            group = self.groups[gid]
            if group.licenses and group.security_enabled:
                current = [s for s in sources if s.group == gid]
                wanted = {sku: dis for sku, dis in group.licenses.items()}
                if (
                    all(s.state == "Active" for s in current)
                    and {s.sku: s.disabled for s in current} == wanted
                ):
                    continue
                sources = self._apply_group(sources, group, stamp)
        if sources != user.sources:
            self._commit(user, sources)

    def assign_group_license(self, group_id: str, body: Any) -> GroupRecord:
        """`POST /groups/{id}/assignLicense`: validated as a whole, then the group's licences
        change at once and its members are processed (after `processing_delay`). A member
        whose other licences depend on a removed one keeps it as a direct assignment."""
        adds, removes = parse_assign_body(body)
        with self.lock:
            group = self.group(group_id)
            self._check_user_skus([a for a, _ in adds] + removes)
            if not group.security_enabled:
                raise bad_request("Licenses can only be assigned to security-enabled groups.")
            if group.role_assignable:
                raise bad_request(R.MSG_ROLE_ASSIGNABLE)
            stamp = self.clock()
            for sku_id in removes:
                if group.licenses.pop(sku_id, None) is not None:
                    self._keep_dependents_direct(group, sku_id, stamp)
            for sku_id, disabled in adds:
                group.licenses[sku_id] = disabled
            self.touch(group)
            if self.processing_delay > 0:
                group.queued_at = self.monotonic()
                self._queued.add(group.id)
            else:
                self._reconcile_members(group)
            return group

    def _keep_dependents_direct(self, group: GroupRecord, sku_id: str, stamp: str) -> None:
        """Members whose remaining licences need a plan only `sku_id` from `group` gives get
        that licence as a direct assignment (entra-docs, "When a licensed group is deleted")."""
        for member in group.members:
            user = self.users.get(member)
            if user is None:
                continue
            source = next(
                (s for s in user.sources if s.group == group.id and s.sku == sku_id), None
            )
            if source is None or not source.active:
                continue
            rest = [s for s in user.sources if s is not source]
            if any(s.sku == sku_id and s.group is None for s in rest):
                continue
            broken = self._violations(user.sources, rest)
            if not any(error == "DependencyViolation" for error, _, _ in broken):
                continue
            rest.append(Source(sku_id, None, source.disabled, updated=stamp))
            self._commit(user, rest)

    def processing_state(self, group: GroupRecord) -> str:
        """`licenseProcessingState.state` of `group`."""
        if group.queued_at is None:
            return "ProcessingComplete"
        if self.monotonic() - group.queued_at < self.processing_delay / 2:
            return "QueuedForProcessing"
        return "ProcessingInProgress"

    def has_members_with_license_errors(self, group: GroupRecord) -> bool:
        """`hasMembersWithLicenseErrors`: a member holds a licence of this group in error."""
        return any(
            s.group == group.id and s.state == "Error"
            for m in group.members
            if m in self.users
            for s in self.users[m].sources
        )

    def settle(self) -> None:
        """Finish the processing of the groups whose delay has passed."""
        if not self._queued:
            return
        with self.lock:
            now = self.monotonic()
            for gid in sorted(self._queued):
                group = self.groups.get(gid)
                if group is None or group.queued_at is None:
                    self._queued.discard(gid)
                elif now - group.queued_at >= self.processing_delay:
                    group.queued_at = None
                    self._queued.discard(gid)
                    self._reconcile_members(group)

    def _reconcile_members(self, group: GroupRecord) -> None:
        members = [self.users[m] for m in group.members if m in self.users]
        holders = [u for u in members if set(group.licenses) <= u.held()]
        others = [u for u in members if not set(group.licenses) <= u.held()]
        for user in holders + others:  # users already holding the licences keep them first
            self.reconcile(user)

    def reprocess(self, user_id: str) -> UserRecord:
        """`POST /users/{id}/reprocessLicenseAssignment`: the user's group licences are processed
        again (errors whose cause is gone clear; nothing else retries them)."""
        with self.lock:
            user = self.changeable_user(user_id)
            self.reconcile(user)
            return user

    def add_member(self, group_id: str, member_id: str) -> None:
        with self.lock:
            group = self.group(group_id)
            member_id = _lower(member_id)
            if member_id in self.users:
                kind = "user"
            elif member_id in self.groups:
                kind = "group"
            else:
                raise not_found(member_id)
            if member_id in group.members:
                raise bad_request(
                    "One or more added object references already exist for the following "
                    "modified properties: 'members'."
                )
            if member_id == group.id:
                raise bad_request("A group cannot be a member of itself.")
            group.members[member_id] = kind
            self.member_of.setdefault(member_id, set()).add(group.id)
            group.member_log.append((self.touch(group), member_id, kind, True))
            if kind == "user":
                self.reconcile(self.users[member_id])

    def remove_member(self, group_id: str, member_id: str) -> None:
        with self.lock:
            group = self.group(group_id)
            member_id = _lower(member_id)
            kind = group.members.pop(member_id, None)
            if kind is None:
                raise not_found(member_id)
            self.member_of.get(member_id, set()).discard(group.id)
            group.member_log.append((self.touch(group), member_id, kind, False))
            if kind == "user" and member_id in self.users:
                self.reconcile(self.users[member_id])

    def delete_user(self, user_id: str) -> None:
        """`DELETE /users/{id}`: the user goes to the recycle bin; its seats are released and it
        leaves its groups without a members@delta entry (Graph reports the user as @removed)."""
        with self.lock:
            user = self.user(user_id)
            direct = [s for s in user.sources if s.group is None]
            self.deleted[user.id] = (user, direct, set(self.member_of.get(user.id, ())))
            self._commit(user, [])
            self._forget(user.id, "users")
            del self.users[user.id]

    def restore(self, object_id: str) -> UserRecord:
        """`POST /directory/deletedItems/{id}/restore`: the user comes back with its direct
        licences and its group memberships (no members@delta for them: users/delta reports the
        user as changed); group licences are processed again."""
        with self.lock:
            found = self.deleted.pop(_lower(object_id), None)
            if found is None:
                raise not_found(object_id)
            user, direct, groups = found
            self.users[user.id] = user
            self.removed.pop(user.id, None)
            for gid in groups & set(self.groups):
                self.groups[gid].members[user.id] = "user"
                self.member_of.setdefault(user.id, set()).add(gid)
            self._commit(user, direct)
            self.reconcile(user)
            self.touch(user)
            return user

    def delete_group(self, group_id: str) -> None:
        """`DELETE /groups/{id}`; refused while the group carries licences, as in Entra."""
        with self.lock:
            group = self.group(group_id)
            if group.licenses:
                raise bad_request(R.MSG_DELETE_LICENSED_GROUP)
            for member in group.members:
                self.member_of.get(member, set()).discard(group.id)
            self._forget(group.id, "groups")
            del self.groups[group.id]

    def _forget(self, object_id: str, kind: str) -> None:
        """Drop a deleted object from the groups it was a member of, and remember it for delta."""
        for parent in self.member_of.pop(object_id, set()):
            self.groups[parent].members.pop(object_id, None)
        self.seq += 1
        self.removed[object_id] = (kind, self.seq)

    def transitive_members(self, group: GroupRecord) -> dict[str, str]:
        """Members of the group and of every nested group (each once, cycles tolerated)."""
        found: dict[str, str] = {}
        seen = {group.id}
        stack = [group]
        while stack:
            current = stack.pop()
            for mid, kind in current.members.items():
                found.setdefault(mid, kind)
                if kind == "group" and mid not in seen and mid in self.groups:
                    seen.add(mid)
                    stack.append(self.groups[mid])
        return found


# user properties a PATCH may change beyond the ones the tenant model keeps in fields
TEXT_PROPERTIES = frozenset(
    {
        *("city", "companyName", "country", "department", "employeeId", "employeeType"),
        *("jobTitle", "mail", "mailNickname", "officeLocation", "postalCode", "state"),
        *("streetAddress", "givenName", "surname"),
    }
)
LIST_PROPERTIES = frozenset({"otherMails"})
EXTENSIONS = "onPremisesExtensionAttributes"
# the directory attributes a snapshot keeps (what attribute rules may select on)
SNAPSHOT_ATTRIBUTES = TEXT_PROPERTIES | {"otherMails", "proxyAddresses", EXTENSIONS}


def _attribute_changes(body: GraphJSON) -> GraphJSON:
    """The directory attributes a PATCH sets, checked as Graph types them."""
    changes: GraphJSON = {}
    for key, value in body.items():
        if key in TEXT_PROPERTIES and (value is None or isinstance(value, str)):
            changes[key] = value
        elif key in LIST_PROPERTIES and isinstance(value, list):
            changes[key] = [str(v) for v in value]
        elif key == EXTENSIONS and isinstance(value, dict):
            changes[key] = {
                f"extensionAttribute{n}": value.get(f"extensionAttribute{n}") for n in range(1, 16)
            }
        elif key in TEXT_PROPERTIES | LIST_PROPERTIES:
            raise bad_request(f"Invalid value specified for property '{key}' of resource 'User'.")
    return changes


def _user_from_json(raw: GraphJSON) -> UserRecord:
    upn = raw.get("userPrincipalName") or raw["id"]
    known = {"id", "userPrincipalName", "displayName", "accountEnabled", "usageLocation"}
    known |= {"userType", "assignedLicenses", "licenseAssignmentStates", "isManagementRestricted"}
    user = UserRecord(
        id=_lower(raw["id"]),
        upn=upn,
        display_name=raw.get("displayName") or upn.split("@")[0],
        account_enabled=raw.get("accountEnabled") is not False,
        usage_location=raw.get("usageLocation") or None,
        user_type=raw.get("userType") or "Member",
        extra={k: v for k, v in raw.items() if k not in known},
        management_restricted=raw.get("isManagementRestricted") is True,
    )
    states = raw.get("licenseAssignmentStates")
    if states is None:
        user.sources = [
            Source(_lower(a["skuId"]), None, tuple(_lower(p) for p in a.get("disabledPlans") or []))
            for a in raw.get("assignedLicenses") or []
        ]
    else:
        user.sources = [
            Source(
                _lower(s["skuId"]),
                _lower(s["assignedByGroup"]) if s.get("assignedByGroup") else None,
                tuple(_lower(p) for p in s.get("disabledPlans") or []),
                (s.get("state") or "Active").strip(),
                (s.get("error") or "None").strip(),
                s.get("lastUpdatedDateTime") or GENERATED_AT,
            )
            for s in states
        ]
    user.derive()
    return user


ASSIGN_KEYS = ("addLicenses", "removeLicenses")


def parse_assign_body(body: Any) -> tuple[list[tuple[str, tuple[str, ...]]], list[str]]:
    """Validate an assignLicense body the way Graph's OData layer does (camelCase, both keys)."""
    if not isinstance(body, dict):
        raise bad_request("Invalid request body.")
    for key in body:
        if key not in ASSIGN_KEYS:
            raise bad_request(R.MSG_BAD_PARAM.format(name=key))
    missing = [k for k in ASSIGN_KEYS if k not in body]
    if missing:
        raise bad_request(R.MSG_MISSING_PARAMS.format(names=", ".join(missing)))
    add_raw, remove_raw = body["addLicenses"], body["removeLicenses"]
    if not isinstance(add_raw, list) or not isinstance(remove_raw, list):
        raise bad_request("Invalid request body.")
    adds: list[tuple[str, tuple[str, ...]]] = []
    for item in add_raw:
        if not isinstance(item, dict):
            raise bad_request("Invalid request body.")
        for key in item:
            if key not in ("skuId", "disabledPlans", "@odata.type"):
                raise bad_request(
                    f"The property '{key}' does not exist on type "
                    "'microsoft.graph.assignedLicense'. Make sure to only use property names "
                    "that are defined by the type."
                )
        if not isinstance(item.get("skuId"), str):
            raise bad_request("Invalid request body.")
        disabled = item.get("disabledPlans") or []
        adds.append((_lower(item["skuId"]), tuple(_lower(str(p)) for p in disabled)))
    removes = [_lower(str(r)) for r in remove_raw]
    return adds, removes
