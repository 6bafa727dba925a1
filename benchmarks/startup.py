"""Start-up time of the CLI, and whether it loads the Graph SDK (msgraph, kiota, azure).

    .venv/bin/python benchmarks/startup.py [--repeat 7]

Each command runs in a fresh interpreter `--repeat` times (best kept); a second run of each
lists the SDK packages left in `sys.modules`. Goal 5 of docs/performance.md: `licsync --help` and
read-only commands load none of them (`python -X importtime -m licsync --help` shows where the
rest of the time goes).
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
from licsync.emulator.generate import generate_rules, generate_tenant

HELP = (["--help"], ["plan", "--help"], ["sync", "--help"])

PROBE = """
import sys
from licsync.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
sdk = {"msgraph", "msgraph_core", "kiota_http", "kiota_abstractions", "azure"}
loaded = sorted({m.split(".")[0] for m in sys.modules} & sdk)
print(" ".join(loaded) or "none", file=sys.stderr)
"""


def import_seconds(command: list[str]) -> float:
    """What `python -X importtime` counts for the command: the top-level imports, summed."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "licsync", *command],
        capture_output=True,
        text=True,
    )
    total = 0
    for line in out.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[1].strip().isdigit() and not parts[2].startswith("  "):
            total += int(parts[1])  # microseconds, cumulative, depth 0
    return total / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    snapshot = generate_tenant(users=200, groups=20, seed=1)
    (tmp / "tenant.json").write_text(json.dumps(snapshot))
    (tmp / "licsync.toml").write_text(rules_toml(generate_rules(snapshot, 5, seed=1)))
    plan = ["plan", "--snapshot", str(tmp / "tenant.json"), "--config", str(tmp / "licsync.toml")]
    print(f"  {'command':<34}{'best of ' + str(args.repeat):>12}{'imports':>12}  Graph SDK loaded")
    for command in (*HELP, [*plan, "--output", str(tmp / "plan.txt")]):
        times = []
        for _ in range(args.repeat):
            mark = time.perf_counter()
            subprocess.run([sys.executable, "-m", "licsync", *command], capture_output=True)
            times.append(time.perf_counter() - mark)
        imports = import_seconds(command)
        probe = subprocess.run(
            [sys.executable, "-c", PROBE, *command], capture_output=True, text=True
        )
        loaded = probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else "?"
        shown = "licsync " + " ".join(command[:2]) + (" (200 users)" if len(command) > 2 else "")
        print(f"  {shown:<34}{min(times):>10.3f} s{imports:>10.3f} s  {loaded}")


if __name__ == "__main__":
    main()
