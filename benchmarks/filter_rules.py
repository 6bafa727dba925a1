"""Planning with attribute rules next to group rules on the same tenant.

    python benchmarks/filter_rules.py [--users 100000] [--rules 50] [--repeat 2]

One generated tenant (the emulator's generator: departments, countries, job titles, extension
attributes as an HR feed leaves them) and `--rules` filter rules in Entra's syntax over those
attributes (one to six clauses each: `-eq`, `-in`, `-startsWith`, `-ne`, `-any`). The same
tenant then gets one group per filter rule holding exactly the users that rule selects, and
the group rules grant the same licences through those groups: both rule sets give every user
the same sources, so the difference is what selecting by attribute costs. For each: loading
the snapshot (with the properties the filters read), resolving the rules and computing the
plan, the best of `--repeat` runs. Prints each stage and the ratio filter / group (goal: plan
at most 1.5x).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import tempfile
import time
import uuid
from pathlib import Path

from licsync.cli import GC_THRESHOLD
from licsync.config import load_config, resolve_rules, rules_toml
from licsync.config.filters import parse_filter
from licsync.emulator.generate import DEPARTMENTS, JOB_TITLES, generate_tenant
from licsync.engine import compute_plan
from licsync.engine.filters import PROPERTIES, evaluate
from licsync.engine.membership import user_attributes
from licsync.snapshot import load_snapshot, tenant_from_json

COUNTRIES = ["US", "GB", "DE", "FR", "IN", "CA", "BR", "JP", "NL", "AU"]


def filter_rules(snapshot: dict, count: int, seed: int) -> list[dict]:
    """`count` filter rules (`name`, `filter`, `licenses`), each a random SKU with 0-2 plans off."""
    rng = random.Random(seed)
    skus = [s for s in snapshot["subscribedSkus"] if s["appliesTo"] == "User"]
    titles = [t for t in JOB_TITLES if t]
    rules = []
    for i in range(count):
        clauses = [f'user.department -eq "{rng.choice(DEPARTMENTS)}"']
        if rng.random() < 0.6:
            picked = ", ".join(f'"{c}"' for c in rng.sample(COUNTRIES, 3))
            clauses.append(f"user.country -in [{picked}]")
        if rng.random() < 0.3:
            clauses.append(f'user.jobTitle -startsWith "{rng.choice(titles)[:4]}"')
        if rng.random() < 0.2:
            clauses.append('user.employeeType -ne "Contractor"')
        if rng.random() < 0.2:
            clauses.append(f'user.extensionAttribute1 -eq "CC{rng.randrange(100, 110)}"')
        if rng.random() < 0.1:
            clauses.append('user.proxyAddresses -any (_ -startsWith "smtp:")')
        sku = rng.choice(skus)
        names = [p["servicePlanName"] for p in sku["servicePlans"]]
        off = sorted(rng.sample(names, min(len(names) // 3, rng.choice((0, 1, 2)))))
        rules.append(
            {
                "name": f"rule {i}",
                "filter": " -and ".join(clauses),
                "licenses": [{"sku": sku["skuPartNumber"], "disabled_plans": off}],
            }
        )
    return rules


def filter_rules_toml(rules: list[dict]) -> str:
    return "\n".join(
        f'[[group_licenses]]\nname = "{r["name"]}"\nfilter = {json.dumps(r["filter"])}\n'
        + "".join(
            f"[[group_licenses.licenses]]\nsku = {json.dumps(lic['sku'])}\n"
            f"disabled_plans = {json.dumps(lic['disabled_plans'])}\n"
            for lic in r["licenses"]
        )
        for r in rules
    )


def with_rule_groups(snapshot: dict, rules: list[dict]) -> list[dict]:
    """Add to `snapshot` one security group per filter rule with exactly the users it selects;
    return group rules over them granting the same licences."""
    wanted = sorted({p.graph for p in PROPERTIES.values()})
    tenant = tenant_from_json(snapshot, user_properties=wanted)
    values = {uid: user_attributes(u) for uid, u in tenant.users.items()}
    group_rules = []
    for rule in rules:
        expr = parse_filter(rule["filter"])
        gid = str(uuid.uuid5(uuid.NAMESPACE_URL, rule["name"]))
        members = [u for u, v in values.items() if evaluate(expr, v)]
        snapshot["groups"].append(
            {
                "id": gid,
                "displayName": f"group of {rule['name']}",
                "securityEnabled": True,
                "mailEnabled": False,
                "groupTypes": [],
                "assignedLicenses": [],
                "members": [{"@odata.type": "#microsoft.graph.user", "id": m} for m in members],
            }
        )
        group_rules.append({"group": gid, "nested": False, "licenses": rule["licenses"]})
    return group_rules


def measure(snapshot: Path, config: Path) -> dict[str, float]:
    cfg = load_config(config)
    times: dict[str, float] = {}
    gc.collect()
    start = time.perf_counter()
    tenant = load_snapshot(snapshot, cfg.filter_properties())
    times["load"] = time.perf_counter() - start
    mark = time.perf_counter()
    rules = resolve_rules(tenant, cfg)
    plan = compute_plan(tenant, rules, cfg.policy())
    times["plan"] = time.perf_counter() - mark
    times["users licensed"] = sum(1 for u in plan.users if u.assigned_licenses)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=600)
    parser.add_argument("--rules", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    gc.set_threshold(*GC_THRESHOLD)
    started = time.perf_counter()
    snapshot = generate_tenant(args.users, args.groups, args.seed)
    print(f"generated {args.users} users in {time.perf_counter() - started:.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        snap = Path(tmp) / "tenant.json"
        chosen = filter_rules(snapshot, args.rules, args.seed)
        configs = {
            "group rules": rules_toml(with_rule_groups(snapshot, chosen)),
            "filter rules": filter_rules_toml(chosen),
        }
        snap.write_text(json.dumps(snapshot), encoding="utf-8")
        del snapshot
        best: dict[str, dict[str, float]] = {}
        for kind, text in configs.items():
            path = Path(tmp) / f"{kind.replace(' ', '-')}.toml"
            path.write_text(text, encoding="utf-8")
            runs = [measure(snap, path) for _ in range(args.repeat)]
            best[kind] = {k: min(r[k] for r in runs) for k in runs[0]}
            b = best[kind]
            print(
                f"{kind:>12}: load {b['load']:.2f} s, resolve + plan {b['plan']:.2f} s, "
                f"{int(b['users licensed'])} users licensed"
            )
    group, filters = best["group rules"], best["filter rules"]
    print(
        f"ratio filter/group: plan {filters['plan'] / group['plan']:.2f}x (goal <= 1.5x), "
        f"load + plan {(filters['load'] + filters['plan']) / (group['load'] + group['plan']):.2f}x"
    )


if __name__ == "__main__":
    main()
