"""Time and peak memory of `licsync plan` on generated tenants (default: 10k and 100k users).

    python benchmarks/engine_plan.py [--users 10000 100000] [--rules 500] [--seats enough]
        [--shape first-run]

`--shape first-run`: the tenant on licsync's first run (`first_run_shape`: an all-staff rule
with four licences and seats for all; a quarter of the staff in a group whose licence has seats
for a fifth of it): most users get 3+ new licences and about half have a predicted problem.

Each size is generated once into a temporary snapshot and config, then planned in a fresh
process so that peak RSS is the plan's own. Prints one line per stage and size.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from licsync.config import rules_toml
from licsync.emulator.generate import first_run_shape, generate_rules, generate_tenant


def peak_rss_mb() -> float:
    """This process's peak resident memory. Not getrusage's ru_maxrss: Linux carries that over
    from the parent across fork and exec, so the child would report the generator's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def measure(snapshot: Path, config: Path) -> dict[str, float]:
    """Run inside the child process: one plan, stage by stage."""
    import gc

    from licsync.cli import GC_THRESHOLD
    from licsync.config import load_config
    from licsync.config.rules import resolve_rules
    from licsync.engine import compute_plan
    from licsync.reports.names import Names
    from licsync.reports.output import write_report
    from licsync.snapshot import load_snapshot

    gc.set_threshold(*GC_THRESHOLD)  # as `licsync plan` runs
    times: dict[str, float] = {}
    start = time.perf_counter()
    tenant = load_snapshot(snapshot)
    times["load snapshot"] = time.perf_counter() - start
    mark = time.perf_counter()
    cfg = load_config(config)
    rules = resolve_rules(tenant, cfg)
    policy = cfg.policy()
    times["resolve rules"] = time.perf_counter() - mark
    mark = time.perf_counter()
    plan = compute_plan(tenant, rules, policy)
    times["engine"] = time.perf_counter() - mark
    mark = time.perf_counter()
    report = snapshot.with_suffix(".report.json")
    write_report(plan, Names(tenant), "json", report)
    times["json report"] = time.perf_counter() - mark
    times["total"] = time.perf_counter() - start
    times["peak RSS MB"] = peak_rss_mb()
    times["users with changes"] = len(plan.changes)
    times["licences added"] = sum(len(c.add_licenses) for c in plan.changes)
    times["users with a problem"] = len({p.user_id for p in plan.problems})
    times["problems"] = len(plan.problems)
    times["report MB"] = report.stat().st_size / 1e6
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--rules", type=int, default=500)
    parser.add_argument(
        "--seats",
        choices=("as-generated", "enough"),
        default="as-generated",
        help="as-generated: most SKUs nearly full, so most users get a CountViolation; "
        "enough: every SKU gets a seat per user, as a tenant whose rules fit its purchases",
    )
    parser.add_argument("--shape", choices=("generated", "first-run"), default="generated")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(Path(args.child[0]), Path(args.child[1]))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        for users in args.users:
            start = time.perf_counter()
            snapshot = generate_tenant(users=users, groups=args.rules * 2, seed=7)
            if args.shape == "first-run":
                rules = first_run_shape(snapshot, args.rules, seed=7)
            else:
                rules = generate_rules(snapshot, args.rules, seed=7)
            if args.seats == "enough":
                for sku in snapshot["subscribedSkus"]:
                    sku["prepaidUnits"]["enabled"] += users
            snap_path = Path(tmp) / f"tenant-{users}.json"
            snap_path.write_text(json.dumps(snapshot))
            cfg_path = Path(tmp) / f"licsync-{users}.toml"
            cfg_path.write_text(rules_toml(rules))
            generated = time.perf_counter() - start
            size = snap_path.stat().st_size / 1e6
            del snapshot
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(snap_path), str(cfg_path)],
                check=False,
                capture_output=True,
                text=True,
            )
            if out.returncode != 0:
                sys.exit(f"plan of {users} users failed:\n{out.stderr}")
            figures = json.loads(out.stdout)
            print(
                f"{users:>7} users, {len(rules)} rules, shape {args.shape}, seats {args.seats}, "
                f"snapshot {size:.0f} MB "
                f"(generated in {generated:.1f} s)"
            )
            for name, value in figures.items():
                unit = (
                    " s"
                    if name in ("load snapshot", "resolve rules", "engine", "json report", "total")
                    else ""
                )
                print(
                    f"    {name:<20} {value:>10.3f}{unit}"
                    if unit
                    else f"    {name:<20} {value:>10.1f}"
                )


if __name__ == "__main__":
    main()
