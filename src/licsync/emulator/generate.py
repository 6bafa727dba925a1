"""Realistic, deterministic tenants built from Microsoft's real licensing catalogue.

`generate_tenant(users, groups, seed)` returns a snapshot (docs/snapshot.md); `build_tenant` returns
the live `Tenant` the emulator serves. Group-sourced licences are produced by the same Entra
processing the emulator applies at run time, so seats and states are consistent by construction.
"""

from __future__ import annotations

import bisect
import itertools
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from licsync.catalogue import CatalogueSku, default_catalogue
from licsync.emulator.rules import default_rules
from licsync.emulator.state import (
    GENERATED_AT,
    GroupRecord,
    SkuRecord,
    Source,
    Tenant,
    UserRecord,
    sign_in_activity,
)
from licsync.emulator.subscriptions import derive_subscriptions

# (part number, role, weight). Roles: main (one per user), addon, viral, company.
SKU_MIX: tuple[tuple[str, str, float], ...] = (
    ("SPE_E3", "main", 0.35),
    ("SPE_E5", "main", 0.10),
    ("ENTERPRISEPACK", "main", 0.15),
    ("STANDARDPACK", "main", 0.12),
    ("SPE_F1", "main", 0.12),
    ("O365_BUSINESS_PREMIUM", "main", 0.04),
    ("EMS", "addon", 0.20),
    ("EMSPREMIUM", "addon", 0.05),
    ("POWER_BI_PRO", "addon", 0.15),
    ("VISIOCLIENT", "addon", 0.05),
    ("PROJECTPROFESSIONAL", "addon", 0.04),
    ("MCOMEETADV", "addon", 0.06),
    ("MCOEV", "addon", 0.04),
    ("AAD_PREMIUM_P2", "addon", 0.05),
    ("Microsoft_Teams_Premium", "addon", 0.02),
    ("EXCHANGESTANDARD", "addon", 0.0),
    ("POWER_BI_STANDARD", "viral", 0.20),
    ("FLOW_FREE", "viral", 0.10),
    ("SHAREPOINTSTORAGE", "company", 0.0),
    ("MCOPSTNC", "company", 0.0),
)
GROUP_LICENCES = ("EMS", "POWER_BI_PRO", "VISIOCLIENT", "AAD_PREMIUM_P2", "PROJECTPROFESSIONAL")
FIRST = "Adele Alex Ben Chloe Dana Eli Fatima Grace Hugo Ines Jon Kai Lena Miguel Nia Omar Priya"
LAST = "Vance Wilber Smith Garcia Chen Okafor Novak Silva Kim Müller Rossi Haddad Patel Berg"
COUNTRIES = ("US", "US", "US", "GB", "DE", "FR", "IN", "CA", "BR", "JP", "NL", "AU")
CITIES: dict[str, tuple[str | None, ...]] = {
    "US": ("Seattle", "New York", "Austin", None),
    "GB": ("London", "Manchester"),
    "DE": ("Berlin", "München"),
    "FR": ("Paris", "Lyon"),
    "IN": ("Bengaluru", "Pune"),
    "CA": ("Toronto",),
    "BR": ("São Paulo",),
    "JP": ("Tokyo",),
    "NL": ("Amsterdam",),
    "AU": ("Sydney",),
}
JOB_TITLES = (
    "Account Executive",
    "Sales Manager",
    "Software Engineer",
    "SDE II",
    "Accountant",
    "Support Engineer",
    "Counsel",
    "Designer",
    None,
)
DEPARTMENTS = [
    "Sales",
    "Finance",
    "Engineering",
    "Support",
    "Legal",
    "Marketing",
    "HR",
    "Operations",
    "Research",
    "IT",
]


def _uuid(rng: random.Random) -> str:
    """A random version-4 GUID from the seeded generator (fast path of uuid.UUID(version=4))."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def _sku_record(cat: CatalogueSku, role: str, rng: random.Random) -> SkuRecord:
    applies = "Company" if role == "company" else "User"
    plans = [
        {
            "servicePlanId": p.id,
            "servicePlanName": p.name,
            "provisioningStatus": "Success",
            "appliesTo": applies,
        }
        for p in cat.plans
    ]
    return SkuRecord(
        id=cat.id,
        part_number=cat.part_number,
        applies_to=applies,
        capability_status="Enabled",
        enabled=10**9,
        consumed=0,
        plans=plans,
        extra={
            "accountName": "Contoso",
            "accountId": _uuid(rng),
            "subscriptionIds": [_uuid(rng)],
        },
    )


def _attributes(
    rng: random.Random, i: int, upn: str, location: str | None, guest: bool
) -> dict[str, Any]:
    """The directory attributes attribute rules select on, as an HR feed leaves them: mostly
    set, some missing, a few spelled differently."""
    if guest:
        return {"otherMails": [upn.split("#EXT#")[0].replace("_", "@")]}
    country = location if location and rng.random() < 0.95 else None
    alias = upn.split("@")[0]
    return {
        "country": country.lower() if country and rng.random() < 0.05 else country,
        "city": rng.choice(CITIES.get(country or "", (None,))),
        "state": rng.choice(("WA", "NY", "TX", "CA")) if country == "US" else None,
        "companyName": rng.choice(("Contoso", "Contoso", "Contoso", "Fabrikam", None)),
        "jobTitle": rng.choice(JOB_TITLES),
        "employeeId": f"{100000 + i}" if rng.random() < 0.9 else None,
        "employeeType": rng.choice(("Employee", "Employee", "Employee", "Contractor", None)),
        "officeLocation": rng.choice(("Building 1", "Building 2", "Remote", None)),
        "mailNickname": alias,
        "otherMails": [f"{alias}@fabrikam.example"] if rng.random() < 0.1 else [],
        "proxyAddresses": [f"SMTP:{upn}"]
        + ([f"smtp:{alias}@contoso.example"] if rng.random() < 0.3 else []),
        "onPremisesExtensionAttributes": {
            f"extensionAttribute{n}": value
            for n in range(1, 16)
            for value in [
                f"CC{rng.randrange(100, 110)}"
                if n == 1 and rng.random() < 0.8
                else rng.choice(("Marketing", "Ops", None))
                if n == 15
                else None
            ]
        },
    }


def _disabled_choice(pool: list[str], rng: random.Random) -> tuple[str, ...]:
    """Usually nothing disabled; sometimes one to three plans of the pool (no prerequisites)."""
    if rng.random() > 0.3 or len(pool) < 3:
        return ()
    return tuple(sorted(rng.sample(pool, rng.randint(1, 3))))


def build_tenant(  # noqa: C901 (one recipe)
    users: int, groups: int, seed: int, restricted: float = 0.0
) -> Tenant:
    """A live tenant with `users` users and `groups` groups, the same for the same seed; a
    `restricted` share of the users are members of a restricted management administrative
    unit (Graph refuses the app's writes to them with 403)."""
    rng = random.Random(seed)
    rules = default_rules()
    protected = {n for needs in rules.dependencies.values() for n in needs}
    protected |= set(rules.dependencies)
    org_id = _uuid(rng)
    domain = f"contoso{seed}.onmicrosoft.com"
    tenant = Tenant(
        {
            "id": org_id,
            "displayName": f"Contoso {seed}",
            "countryLetterCode": "US",
            "verifiedDomains": [
                {
                    "capabilities": "Email, OfficeCommunicationsOnline",
                    "isDefault": True,
                    "isInitial": True,
                    "name": domain,
                    "type": "Managed",
                }
            ],
        },
        rules,
    )
    by_part = default_catalogue().by_part_number()
    roles: dict[str, tuple[str, float]] = {}
    for part, role, weight in SKU_MIX:
        found = by_part.get(part)
        if not found:
            continue
        record = _sku_record(found[0], role, rng)
        tenant.skus[record.id] = record
        roles[record.id] = (role, weight)
    mains = [(s, w) for s, (r, w) in roles.items() if r == "main"]
    extras = [(s, w * 0.5) for s, (r, w) in roles.items() if r in ("addon", "viral") and w > 0]
    main_ids = [s for s, _ in mains]
    cumulative = list(itertools.accumulate(w for _, w in mains))
    pools = {
        sku.id: [p["servicePlanId"] for p in sku.plans if p["servicePlanName"] not in protected]
        for sku in tenant.skus.values()
    }

    firsts, lasts = FIRST.split(), LAST.split()
    people = random.Random(f"attributes-{seed}")  # apart from `rng`: tenants stay as they were
    for i in range(users):
        draw = rng.random()
        first, last = firsts[int(draw * len(firsts))], lasts[int(draw * 7919) % len(lasts)]
        guest = rng.random() < 0.06
        location = rng.choice(COUNTRIES) if rng.random() < (0.3 if guest else 0.9) else None
        if guest:
            upn = f"{first.lower()}.{last.lower()}{i}_fabrikam.com#EXT#@{domain}"
        else:
            upn = f"{first.lower()}.{last.lower()}{i}@{domain}"
        user = UserRecord(
            id=_uuid(rng),
            upn=upn,
            display_name=f"{first} {last}",
            account_enabled=rng.random() >= 0.05,
            usage_location=location,
            user_type="Guest" if guest else "Member",
            extra={
                "givenName": first,
                "surname": last,
                "mail": None if guest else upn,
                "department": DEPARTMENTS[i % len(DEPARTMENTS)],
                **_attributes(people, i, upn, location, guest),
            },
        )
        if location and not guest and rng.random() < 0.6:
            sku_id = main_ids[bisect.bisect(cumulative, rng.random() * cumulative[-1])]
            sources = [Source(sku_id, None, _disabled_choice(pools[sku_id], rng))]
            sources.extend(Source(e, None, ()) for e, w in extras if rng.random() < w)
            user.sources = sources
            for source in sources:
                tenant.skus[source.sku].consumed += 1
        user.derive()
        tenant.users[user.id] = user

    user_ids = list(tenant.users)
    member_ids = [u.id for u in tenant.users.values() if u.user_type == "Member"]
    for j in range(groups):
        kind = rng.random()
        if j == 0 or kind < 0.65:
            sec, mail, types = True, False, []
        elif kind < 0.75:
            sec, mail, types = True, True, ["Unified"]
        elif kind < 0.88:
            sec, mail, types = False, True, ["Unified"]
        else:
            sec, mail, types = False, True, []
        name = "All Employees" if j == 0 else f"{rng.choice(DEPARTMENTS)} {j}"
        group = GroupRecord(_uuid(rng), name, sec, mail, types)
        group.extra = {"mailNickname": name.replace(" ", "").lower(), "description": None}
        if j == 0:
            chosen = member_ids
        else:
            size = min(len(user_ids), int(rng.paretovariate(1.1) * 6))
            chosen = rng.sample(user_ids, size)
        for uid in chosen:
            group.members[uid] = "user"
            tenant.member_of.setdefault(uid, set()).add(group.id)
        if rng.random() < 0.03:
            group.members[_uuid(rng)] = "device"
        tenant.groups[group.id] = group
    group_list = list(tenant.groups.values())
    for j, group in enumerate(group_list[1:], start=1):  # nesting: only later groups, so no cycles
        if rng.random() < 0.1 and j + 1 < len(group_list):
            for child in rng.sample(group_list[j + 1 :], min(2, len(group_list) - j - 1)):
                group.members[child.id] = "group"
                tenant.member_of.setdefault(child.id, set()).add(group.id)
    licensable = [p for p in GROUP_LICENCES if by_part.get(p)]
    candidates = [g for g in group_list[1:] if g.security_enabled]
    count = max(1, len(candidates) // 20) if candidates else 0
    live_clock, tenant.clock = tenant.clock, lambda: GENERATED_AT  # same seed, same tenant
    for group in rng.sample(candidates, min(count, len(candidates))):
        sku = tenant.skus[by_part[rng.choice(licensable)][0].id]
        group.licenses[sku.id] = _disabled_choice(pools[sku.id], rng)
        for uid, member_kind in group.members.items():
            if member_kind == "user":
                tenant.reconcile(tenant.users[uid])
    tenant.clock = live_clock
    _set_seats(tenant, roles, rng)
    trial = min(
        (s for s in tenant.skus.values() if roles[s.id][0] == "main" and s.enabled > 1),
        key=lambda s: s.part_number,
        default=None,
    )
    tenant.subscriptions = derive_subscriptions(
        tenant.tenant_id, tenant.skus.values(), trial.id if trial else None
    )
    tenant.seq = 1
    for user in tenant.users.values():
        user.version = 1
    for group in tenant.groups.values():
        group.version = 1
    if restricted > 0:  # drawn from a stream of its own: the rest is the same tenant
        marker = random.Random(f"restricted-{seed}")
        for uid in marker.sample(sorted(tenant.users), round(len(tenant.users) * restricted)):
            tenant.users[uid].management_restricted = True
    _set_activity(tenant, random.Random(f"activity-{seed}"))
    return tenant


INACTIVE_SHARE = 0.12  # users whose last sign-in is 100 to 400 days ago
NEVER_SHARE = 0.03  # users who never signed in


def _days_ago(today: datetime, days: int) -> str:
    return (today - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _set_activity(tenant: Tenant, rng: random.Random) -> None:
    """`createdDateTime` (up to 900 days ago, a few within the last 30) and `signInActivity`
    (most users within the last 30 days, INACTIVE_SHARE long ago, NEVER_SHARE never), relative
    to today, from a stream of their own (the rest is the same tenant)."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    for user in tenant.users.values():
        created = rng.randint(0, 30) if rng.random() < 0.05 else rng.randint(31, 900)
        draw = rng.random()
        if draw < NEVER_SHARE:
            last = None
        elif draw < NEVER_SHARE + INACTIVE_SHARE:
            last = _days_ago(today, min(rng.randint(100, 400), created))
        else:
            last = _days_ago(today, min(rng.randint(0, 30), created))
        user.extra["createdDateTime"] = _days_ago(today, created)
        user.extra["signInActivity"] = sign_in_activity(last)


def _set_seats(tenant: Tenant, roles: dict[str, tuple[str, float]], rng: random.Random) -> None:
    """Prepaid seats from consumption: some SKUs nearly full, viral ones huge."""
    for sku in tenant.skus.values():
        role = roles[sku.id][0]
        if role == "viral":
            sku.enabled = 1_000_000
        elif role == "company":
            sku.enabled = rng.choice((1, 10, 100))
        elif rng.random() < 0.35:
            sku.enabled = sku.consumed + rng.randint(0, 2)  # nearly full
        else:
            sku.enabled = sku.consumed + max(5, int(sku.consumed * rng.uniform(0.05, 0.4)))


def generate_tenant(users: int, groups: int, seed: int) -> dict[str, Any]:
    """A realistic tenant snapshot (docs/snapshot.md), deterministic per seed."""
    return build_tenant(users, groups, seed).to_snapshot()


def generate_rules(snapshot: dict[str, Any], count: int, seed: int) -> list[dict[str, Any]]:
    """Up to `count` licsync rules over a snapshot, one per group: security groups not licensed
    by Entra, user SKUs, and disabled plans that belong to the chosen SKU."""
    rng = random.Random(seed)
    groups = [
        g["id"]
        for g in snapshot.get("groups", [])
        if g.get("securityEnabled") and not g.get("assignedLicenses")
    ]
    skus = [
        s
        for s in snapshot.get("subscribedSkus", [])
        if s.get("appliesTo") == "User" and s.get("capabilityStatus") in ("Enabled", "Warning")
    ]
    if not groups or not skus or count <= 0:
        return []
    result: list[dict[str, Any]] = []
    for group in rng.sample(groups, min(count, len(groups))):
        licences = []
        for sku in rng.sample(skus, min(len(skus), rng.choice((1, 1, 1, 2)))):
            names = [p["servicePlanName"] for p in sku.get("servicePlans", [])]
            disabled = sorted(rng.sample(names, min(len(names) // 3, rng.choice((0, 0, 1, 2)))))
            licences.append({"sku": sku["skuPartNumber"], "disabled_plans": disabled})
        result.append({"group": group, "nested": rng.random() < 0.2, "licenses": licences})
    return result


FIRST_RUN_LICENCES = ("SPE_E3", "EMS", "POWER_BI_PRO", "MCOMEETADV")  # all-staff licences
FIRST_RUN_SHORT = "VISIOCLIENT"  # the second rule's licence: seats for a fifth of its group


def first_run_shape(snapshot: dict[str, Any], count: int, seed: int) -> list[dict[str, Any]]:
    """Make `snapshot` a tenant on licsync's first run and return its rules: `All Employees`
    gets FIRST_RUN_LICENCES with a seat for everyone (most users get 3+ new licences); a new
    group `Designers`, every fourth member, gets FIRST_RUN_SHORT with seats for a fifth of them
    (Entra licenses all or nothing per group, so that shortage stays in that group: about half
    of the users end with a problem); up to `count - 2` generated rules cover other
    groups. Every other SKU gets a seat for every member."""
    rng = random.Random(seed)
    everyone = next(g for g in snapshot["groups"] if g["displayName"] == "All Employees")
    members = list(everyone.get("members") or ())
    designers = {
        "id": _uuid(rng),
        "displayName": "Designers",
        "securityEnabled": True,
        "mailEnabled": False,
        "groupTypes": [],
        "assignedLicenses": [],
        "members": members[::4],
    }
    by_part = {s["skuPartNumber"]: s for s in snapshot["subscribedSkus"]}
    for sku in snapshot["subscribedSkus"]:
        sku["prepaidUnits"]["enabled"] = sku["consumedUnits"] + len(members)
    rules = [r for r in generate_rules(snapshot, count, seed) if r["group"] != everyone["id"]]
    snapshot["groups"].append(designers)
    first = [
        {"group": everyone["id"], "nested": False, "licenses": _licences(FIRST_RUN_LICENCES)},
    ]
    if FIRST_RUN_SHORT in by_part:
        short = by_part[FIRST_RUN_SHORT]
        short["prepaidUnits"]["enabled"] = short["consumedUnits"] + len(members) // 20
        licences = _licences((FIRST_RUN_SHORT,))
        first.append({"group": designers["id"], "nested": False, "licenses": licences})
    return [*first, *rules[: max(0, count - len(first))]]


def _licences(parts: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{"sku": p, "disabled_plans": []} for p in parts]
