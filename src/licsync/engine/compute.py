"""Compute every user's licences with Entra's rules, the problems it predicts, and the changes.

The pass, for users in ascending object-id order (the documented seat order):

1. The user's own direct assignments (not licsync's) are the baseline: they are never touched.
2. Each group source, in ascending group-id order (Entra groups the user already inherits from
   first: their licences are in place), is checked as a whole (all or nothing per
   group): SKU usable, usage location (licsync rules only), plan conflicts, prerequisites, and last
   a seat. A plan's prerequisite must be enabled by the same group (Entra's rule for add-ons),
   whatever the user holds from elsewhere. A user who already holds a SKU keeps their seat;
   others take one from the free seats (`prepaidUnits.enabled - consumedUnits`) plus the seats
   this plan frees, first come first served. If any licence of the group fails, the group gives
   none: the failing SKU carries the error and the group's other SKUs carry `Other`.
3. licsync's direct assignment per SKU is the union of enabled plans over the rule groups that
   passed and the user's own prior direct assignment. licsync removes only what its ledger says
   it assigned, and restores the user's own plans when its rules no longer grant the SKU.
4. A removal or narrowing that would take away a plan another enabled plan depends on is not made:
   the licence is kept and a DependencyViolation recorded.

A source that fails for a SKU the user already holds is reported but not withdrawn: licsync never
takes away a working licence because of an error elsewhere.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import reduce

from licsync.engine.inputs import Policy, Rule, UsageLocationMode
from licsync.engine.membership import GroupSource, sources_by_user
from licsync.engine.service_plans import ServicePlanIndex
from licsync.model import (
    Assignment,
    Ledger,
    LicenseError,
    Ownership,
    Plan,
    Problem,
    SkuForecast,
    SourceKind,
    SourceState,
    Tenant,
    User,
    UserPlan,
)

Signature = tuple[object, ...]
MAX_PASSES = 5  # seat passes; another is needed only when a predicted removal was blocked


def compute_plan(
    tenant: Tenant, rules: Sequence[Rule], policy: Policy, ledger: Ledger | None = None
) -> Plan:
    """The plan for `tenant` under `rules`: pure, deterministic, independent of rule order."""
    return _Engine(tenant, rules, policy, ledger or {}).run()


def _intersection(sets: Iterable[frozenset[str]]) -> frozenset[str]:
    return reduce(frozenset.intersection, sets)


@dataclass(slots=True)
class _Failure:
    sku_id: str
    error: LicenseError
    message: str


@dataclass(slots=True)
class _UserResult:
    plan: UserPlan
    problems: list[Problem]
    blocked_removals: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Verdicts:
    """Steps 1 and 2 for one user: each source's state, the problems, and what passed."""

    states: list[SourceState]
    problems: list[Problem] = field(default_factory=list)
    relevant: set[str] = field(default_factory=set)  # plans that conflict or are prerequisites
    granted: set[str] = field(default_factory=set)  # SKUs given a new seat
    asked: set[str] = field(default_factory=set)  # SKUs that asked for a new seat
    rule_ok: dict[str, list[tuple[str, frozenset[str]]]] = field(default_factory=dict)
    rule_failed: set[str] = field(default_factory=set)
    entra: dict[str, list[frozenset[str]]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Kind:
    """Users with one signature: its number, the SKUs they may need a new seat of, and the
    SKUs they will hold no longer."""

    number: int
    new_seats: tuple[str, ...]
    releases: tuple[str, ...]


@dataclass(slots=True)
class _Outcome:
    """One user's result with the seats it took and asked for: shared by every user with the same
    signature and seat availability (the result's user id and name are the first user's)."""

    result: _UserResult
    granted: set[str]
    requested: set[str]


class _Engine:
    def __init__(self, tenant: Tenant, rules: Sequence[Rule], policy: Policy, ledger: Ledger):
        self.tenant = tenant
        self.policy = policy
        self.index = ServicePlanIndex(tenant, policy.plan_rules)
        self.sources = sources_by_user(tenant, rules, policy)
        self.owned: dict[str, dict[str, Ownership]] = {}
        for (user_id, sku_id), entry in ledger.items():
            self.owned.setdefault(user_id, {})[sku_id] = entry
        self.location = self._policy_location()
        interesting = set(self.sources) | set(self.owned)
        interesting.update(u.id for u in tenant.users.values() if u.assigned_licenses)
        self.user_ids = sorted(i for i in interesting if i in tenant.users)
        self._outcomes: dict[tuple[int, tuple[bool, ...]], _Outcome] = {}
        self.kinds: dict[str, _Kind] = {}
        self.releases: list[tuple[str, str]] = []
        kinds: dict[Signature, _Kind] = {}
        for user_id in self.user_ids:
            user = tenant.users[user_id]
            signature = self._signature(user)
            kind = kinds.get(signature)
            if kind is None:
                kind = kinds[signature] = _Kind(len(kinds), *self._seat_skus(user))
            self.kinds[user_id] = kind
            if kind.releases:
                self.releases.extend([(user_id, sku) for sku in kind.releases])

    def _policy_location(self) -> str | None:
        if self.policy.usage_location is UsageLocationMode.TENANT:
            return self.tenant.country
        if self.policy.usage_location is UsageLocationMode.FIXED:
            return self.policy.usage_location_code
        return None

    # -- the whole tenant ---------------------------------------------------------------------

    def run(self) -> Plan:
        blocked: set[tuple[str, str]] = set()
        for _ in range(MAX_PASSES):
            freed = self._freed_seats(blocked)
            self.pool = Counter({s.id: s.free_units for s in self.tenant.skus.values()})
            self.pool.update(freed)
            self.requested: Counter[str] = Counter()
            self.granted: Counter[str] = Counter()
            results = [self._plan_user(self.tenant.users[i]) for i in self.user_ids]
            now_blocked = {(r.plan.user_id, s) for r in results for s in r.blocked_removals}
            if now_blocked <= blocked:
                break
            blocked |= now_blocked
        return self._assemble(results, freed)

    def _admin_direct(self, user: User) -> dict[str, frozenset[str]]:
        """The user's own direct assignments: current ones licsync does not own, and the prior
        assignments licsync recorded when it took a SKU over (while licsync's is still there)."""
        owned = self.owned.get(user.id, {})
        admin: dict[str, frozenset[str]] = {}
        for sku_id, disabled in user.direct_licenses().items():
            entry = owned.get(sku_id)
            if entry is None:
                admin[sku_id] = disabled
            elif entry.prior_direct is not None:
                admin[sku_id] = entry.prior_direct
        return admin

    def _freed_seats(self, blocked: set[tuple[str, str]]) -> Counter[str]:
        """Seats freed by users who will hold a SKU no longer (no source of any kind is left)."""
        return Counter(sku for user_id, sku in self.releases if (user_id, sku) not in blocked)

    def _signature(self, user: User) -> Signature:
        """What the engine's decisions for `user` depend on, besides free seats: users with the
        same signature get the same decisions. Objects are compared by identity, which is exact
        (every object is alive for the whole run) and cheap."""
        owned = self.owned.get(user.id)
        states = user.license_assignment_states
        return (  # by identity: the snapshot parser shares equal assignments and states
            tuple(map(id, self.sources.get(user.id, ()))),
            tuple(map(id, user.assigned_licenses)),
            None if states is None else tuple(map(id, states)),
            tuple((s, o.groups, o.prior_direct) for s, o in sorted(owned.items())) if owned else (),
            user.usage_location is None,
        )

    def _seat_skus(self, user: User) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """SKUs the user's sources may need a new seat of, and SKUs the user will hold no
        longer (no source of any kind is left)."""
        held = user.held_skus()
        granting = {sku for s in self.sources.get(user.id, ()) for sku, _ in s.licenses}
        return (
            tuple(sorted(granting - held)),
            tuple(sorted(held - granting - set(self._admin_direct(user)))),
        )

    def _assemble(self, results: list[_UserResult], freed: Counter[str]) -> Plan:
        ledger: Ledger = {}
        problems: list[Problem] = []
        for result in results:
            problems.extend(result.problems)
            for entry in result.plan.ownership:
                ledger[(entry.user_id, entry.sku_id)] = entry
        skus = tuple(
            SkuForecast(
                sku_id=sku.id,
                part_number=sku.part_number,
                enabled=sku.enabled_units,
                consumed=sku.consumed_units,
                requested=self.requested[sku.id],
                granted=self.granted[sku.id],
                freed=freed[sku.id],
            )
            for sku in sorted(self.tenant.skus.values(), key=lambda s: s.part_number)
        )
        return Plan(tuple(r.plan for r in results), tuple(problems), skus, ledger)

    # -- one user -------------------------------------------------------------------------------

    def _untouched_user(self, user: User) -> _UserResult:
        """A user with no group source and no licsync licence: only their own assignments."""
        direct = sorted(user.direct_licenses().items())
        states = tuple(SourceState(s, SourceKind.DIRECT, None, d) for s, d in direct)
        assigned = tuple(Assignment(s, d) for s, d in direct)
        plan = UserPlan(user.id, user.user_principal_name, assigned, states)
        return _UserResult(plan, [])

    def _plan_user(self, user: User) -> _UserResult:
        """The user's result, computed once per signature and seat availability: users with the
        same sources, licences, ledger entries and usage-location gap get the same decisions."""
        if user.id not in self.sources and user.id not in self.owned:
            return self._untouched_user(user)
        kind = self.kinds[user.id]
        pool = self.pool
        key = (kind.number, tuple([pool[s] > 0 for s in kind.new_seats]))
        outcome = self._outcomes.get(key)
        if outcome is None:
            available = {s for s in kind.new_seats if pool[s] > 0}
            outcome = self._outcomes[key] = self._decide(user, available)
        for sku_id in outcome.granted:
            pool[sku_id] -= 1
            self.granted[sku_id] += 1
        for sku_id in outcome.requested:
            self.requested[sku_id] += 1
        result = outcome.result
        if result.plan.user_id == user.id:
            return result
        return _rebind(result, user)

    def _decide(self, user: User, available: set[str]) -> _Outcome:
        """Everything but the seat counters for one user, given which new seats are available:
        the four steps of the module docstring, in order."""
        admin = self._admin_direct(user)
        current = user.direct_licenses()
        verdicts = self._check_sources(user, admin, available)
        desired, ownership = self._desired(user, admin, current, verdicts)
        blocked = self._keep_prerequisites(
            user, current, desired, ownership, verdicts.entra, verdicts.problems
        )
        plan = self._user_plan(user, current, desired, ownership, verdicts)
        result = _UserResult(plan, verdicts.problems, blocked)
        return _Outcome(result, verdicts.granted, verdicts.asked)

    def _check_sources(
        self, user: User, admin: dict[str, frozenset[str]], available: set[str]
    ) -> _Verdicts:
        """Steps 1 and 2: the user's own direct assignments as the baseline, then every group
        source checked as a whole, in check order."""
        index = self.index
        held = user.held_skus()
        v = _Verdicts(
            states=[SourceState(s, SourceKind.DIRECT, None, d) for s, d in sorted(admin.items())]
        )
        for sku_id, disabled in admin.items():
            v.relevant |= index.relevant_enabled(sku_id, disabled)
        for source in self._in_check_order(user):
            failure = self._check(user, source, held, v.granted, v.asked, v.relevant, available)
            if failure is not None:
                self._fail(user, source, failure, v.states, v.problems)
                if source.kind is SourceKind.RULE:
                    v.rule_failed.update(sku for sku, _ in source.licenses)
                else:  # Entra keeps a licence the user already holds
                    for sku_id, disabled in source.licenses:
                        if sku_id in held:
                            v.entra.setdefault(sku_id, []).append(disabled)
                continue
            for sku_id, disabled in source.licenses:
                if sku_id not in held:
                    v.granted.add(sku_id)
                v.relevant |= index.relevant_enabled(sku_id, disabled)
                v.states.append(SourceState(sku_id, source.kind, source.group_id, disabled))
                if source.kind is SourceKind.RULE:
                    v.rule_ok.setdefault(sku_id, []).append((source.group_id, disabled))
                else:
                    v.entra.setdefault(sku_id, []).append(disabled)
        return v

    def _desired(
        self,
        user: User,
        admin: dict[str, frozenset[str]],
        current: dict[str, frozenset[str]],
        v: _Verdicts,
    ) -> tuple[dict[str, frozenset[str] | None], dict[str, Ownership]]:
        """Step 3: licsync's direct assignment per SKU (disabled plans, None for none) and its
        ledger entries: the union of enabled plans over the rule groups that passed and the
        user's own prior assignment; a held licence whose rule failed is kept as it is."""
        owned = self.owned.get(user.id, {})
        desired: dict[str, frozenset[str] | None] = {}
        ownership: dict[str, Ownership] = {}
        for sku_id in sorted(set(admin) | set(current) | set(v.rule_ok) | v.rule_failed):
            prior = admin.get(sku_id)
            entry = owned.get(sku_id)
            kept_as_is = sku_id in v.rule_failed and entry is not None and sku_id in current
            grants = v.rule_ok.get(sku_id)
            if grants:
                sets = [d for _, d in grants]
                if prior is not None:
                    sets.append(prior)
                if kept_as_is:
                    sets.append(current[sku_id])
                desired[sku_id] = _intersection(sets)
                groups = tuple(sorted(g for g, _ in grants))
                ownership[sku_id] = Ownership(user.id, sku_id, groups, prior)
            elif kept_as_is:
                desired[sku_id] = current[sku_id]
                ownership[sku_id] = entry  # type: ignore[assignment]
            else:
                desired[sku_id] = prior
        return desired, ownership

    def _keep_prerequisites(
        self,
        user: User,
        current: dict[str, frozenset[str]],
        desired: dict[str, frozenset[str] | None],
        ownership: dict[str, Ownership],
        entra: dict[str, list[frozenset[str]]],
        problems: list[Problem],
    ) -> set[str]:
        """Step 4: a removal or narrowing that would take away a prerequisite is not made (the
        licence stays as it is, with its ledger entry); returns the blocked removals."""
        owned = self.owned.get(user.id, {})
        blocked = self._block_lost_prerequisites(user, current, desired, entra, owned, problems)
        blocked_removals = {s for s in blocked if desired[s] is None}
        for sku_id in blocked:
            desired[sku_id] = current[sku_id]
            if sku_id in owned:
                ownership[sku_id] = owned[sku_id]
            else:
                ownership.pop(sku_id, None)
        return blocked_removals

    def _user_plan(
        self,
        user: User,
        current: dict[str, frozenset[str]],
        desired: dict[str, frozenset[str] | None],
        ownership: dict[str, Ownership],
        v: _Verdicts,
    ) -> UserPlan:
        """The `assignLicense` body that turns `current` into `desired`, and the licences the
        user ends up with from every source."""
        add: list[Assignment] = []
        remove: list[str] = []
        for sku_id, want in desired.items():
            have = current.get(sku_id)
            if want is None:
                if have is not None:
                    remove.append(sku_id)
            elif want != have:
                add.append(Assignment(sku_id, want))
        combined: dict[str, list[frozenset[str]]] = {}
        for sku_id, want in desired.items():
            if want is not None:
                combined.setdefault(sku_id, []).append(want)
        for sku_id, sets in v.entra.items():
            combined.setdefault(sku_id, []).extend(sets)
        assigned = tuple(Assignment(s, _intersection(d)) for s, d in sorted(combined.items()))
        return UserPlan(
            user_id=user.id,
            user_principal_name=user.user_principal_name,
            assigned_licenses=assigned,
            states=tuple(v.states),
            add_licenses=tuple(add),
            remove_licenses=tuple(remove),
            usage_location=self.location if add and user.usage_location is None else None,
            ownership=tuple(ownership[s] for s in sorted(ownership)),
        )

    def _in_check_order(self, user: User) -> list[GroupSource]:
        """The user's group sources in ascending group-id order, except that Entra groups the
        user already inherits from come first: their licences are in place, so a rule that
        conflicts with them is the one Graph refuses."""
        sources = self.sources.get(user.id, [])
        if all(s.kind is SourceKind.RULE for s in sources):
            return sources
        inheriting = user.inheriting_from()
        return sorted(sources, key=lambda s: s.group_id not in inheriting)

    def _check(
        self,
        user: User,
        source: GroupSource,
        held: frozenset[str],
        granted: set[str],
        asked: set[str],
        relevant: set[str],
        available: set[str],
    ) -> _Failure | None:
        """Why this group cannot license the user (the first reason), or None. New seats it
        needs are added to `asked`; they are granted only if all are `available`."""
        index = self.index
        own = index.group_enabled(source.licenses)
        seen = set(relevant)
        new_seats: list[str] = []
        for sku_id, disabled in source.licenses:
            sku = self.tenant.skus.get(sku_id)
            part = index.part_number(sku_id)
            if sku is None:
                return _Failure(
                    sku_id,
                    LicenseError.OTHER,
                    f"SKU {sku_id} is not among the tenant's subscribed SKUs",
                )
            needs_seat = sku_id not in held and sku_id not in granted
            if needs_seat and not sku.assignable:
                return _Failure(
                    sku_id,
                    LicenseError.COUNT_VIOLATION,
                    f"{part} is {sku.capability_status}: no new seats can be assigned",
                )
            if (
                source.kind is SourceKind.RULE
                and user.usage_location is None
                and self.location is None
            ):
                return _Failure(
                    sku_id,
                    LicenseError.PROHIBITED_IN_USAGE_LOCATION_VIOLATION,
                    self._location_message(),
                )
            plans = index.relevant_enabled(sku_id, disabled)
            clash = index.conflict(plans, seen)
            if clash is not None:
                return _Failure(
                    sku_id,
                    LicenseError.MUTUALLY_EXCLUSIVE_VIOLATION,
                    f"{index.name(clash[0])} in {part} cannot be assigned together "
                    f"with {index.name(clash[1])}, which the user has",
                )
            seen |= plans
            missing = index.missing_prerequisite(index.dependents(sku_id, disabled), own)
            if missing is not None:
                return _Failure(
                    sku_id, LicenseError.DEPENDENCY_VIOLATION, index.same_group_message(*missing)
                )
            if needs_seat:
                new_seats.append(sku_id)
        asked.update(new_seats)
        for sku_id in new_seats:
            if sku_id not in available:
                sku = self.tenant.skus[sku_id]
                return _Failure(
                    sku_id,
                    LicenseError.COUNT_VIOLATION,
                    f"no seats left in {sku.part_number} ({sku.enabled_units} "
                    f"bought, {sku.consumed_units} in use before this run)",
                )
        return None

    def _location_message(self) -> str:
        if self.policy.usage_location is UsageLocationMode.TENANT:
            return (
                "user has no usageLocation and the tenant has no countryLetterCode to "
                "use instead; set usageLocation on the user"
            )
        return (
            "user has no usageLocation; set it on the user, or set [policy] usage_location "
            'to "tenant" or a two-letter country code'
        )

    def _fail(
        self,
        user: User,
        source: GroupSource,
        failure: _Failure,
        states: list[SourceState],
        problems: list[Problem],
    ) -> None:
        """Record an all-or-nothing failure of one group for one user."""
        root = self.index.part_number(failure.sku_id)
        for sku_id, disabled in source.licenses:
            if sku_id == failure.sku_id:
                error, message = failure.error, failure.message
            else:
                error = LicenseError.OTHER
                message = (
                    f"not assigned because {root} from the same group failed "
                    f"({failure.error.value})"
                )
            states.append(SourceState(sku_id, source.kind, source.group_id, disabled, error))
            problems.append(
                Problem(user.id, user.user_principal_name, sku_id, source.group_id, error, message)
            )

    def _block_lost_prerequisites(
        self,
        user: User,
        current: dict[str, frozenset[str]],
        desired: dict[str, frozenset[str] | None],
        entra: dict[str, list[frozenset[str]]],
        owned: dict[str, Ownership],
        problems: list[Problem],
    ) -> set[str]:
        """SKUs whose removal or narrowing would break a prerequisite; their change is not made."""
        index = self.index
        narrowing = [
            s for s, have in current.items() if (want := desired.get(s)) is None or not want <= have
        ]
        if not narrowing:
            return set()
        before: set[str] = set()
        for assignment in user.assigned_licenses:
            before |= index.enabled(assignment.sku_id, assignment.disabled_plans)
        blocked: set[str] = set()
        while True:
            after: set[str] = set()
            for sku_id, want in desired.items():
                source = current[sku_id] if sku_id in blocked else want
                if source is not None:
                    after |= index.enabled(sku_id, source)
            for sku_id, sets in entra.items():
                for disabled in sets:
                    after |= index.enabled(sku_id, disabled)
            newly: set[str] = set()
            for plan_id in sorted(after):
                needs = index.prerequisites.get(plan_id)
                if not needs or needs & after or not needs & before:
                    continue
                for sku_id in narrowing:
                    if sku_id in blocked or not needs & index.enabled(sku_id, current[sku_id]):
                        continue
                    newly.add(sku_id)
                    lost = ", ".join(sorted(index.name(p) for p in needs & before))
                    problems.append(
                        Problem(
                            user.id,
                            user.user_principal_name,
                            sku_id,
                            owned[sku_id].groups[0]
                            if sku_id in owned and owned[sku_id].groups
                            else None,
                            LicenseError.DEPENDENCY_VIOLATION,
                            f"changing {index.part_number(sku_id)} would remove {lost}, which "
                            f"{index.name(plan_id)} depends on; licence kept as it is",
                        )
                    )
            if not newly:
                return blocked
            blocked |= newly


def _rebind(result: _UserResult, user: User) -> _UserResult:
    """Another user's result with the same decisions, carried over to `user`."""
    plan = result.plan
    uid, upn = user.id, user.user_principal_name
    return _UserResult(
        UserPlan(
            uid,
            upn,
            plan.assigned_licenses,
            plan.states,
            plan.add_licenses,
            plan.remove_licenses,
            plan.usage_location,
            tuple([Ownership(uid, o.sku_id, o.groups, o.prior_direct) for o in plan.ownership]),
        ),
        [Problem(uid, upn, p.sku_id, p.group_id, p.error, p.message) for p in result.problems],
        result.blocked_removals,
    )
