"""Installed size of licsync's dependency set, per distribution, largest first.

    python benchmarks/install_size.py [--venv DIR] [--top N]

Without --venv it measures a fresh virtual environment made the way the Dockerfile makes
/opt/licsync (`pip install ".[postgres,notify]"` into a new venv), then deletes it. Sizes are
the bytes of each distribution's installed files (its RECORD), without `__pycache__`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = "postgres,notify"

# Run inside the measured environment: distribution -> installed bytes.
MEASURE = """
import json, pathlib
from importlib import metadata
sizes = {}
for dist in metadata.distributions():
    total = 0
    for f in dist.files or ():
        if "__pycache__" in f.parts:
            continue
        path = pathlib.Path(dist.locate_file(f))
        if path.is_file():
            total += path.stat().st_size
    sizes[dist.metadata["Name"]] = total
print(json.dumps(sizes))
"""


def make_venv(target: Path) -> Path:
    """A fresh venv with licsync installed as the Dockerfile installs it."""
    subprocess.run([sys.executable, "-m", "venv", str(target)], check=True)
    python = target / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"{ROOT}[{EXTRAS}]"],
        check=True,
    )
    return python


def measure(python: Path) -> dict[str, int]:
    out = subprocess.run([str(python), "-c", MEASURE], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, help="measure this environment instead")
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        python = args.venv / "bin" / "python" if args.venv else make_venv(Path(tmp) / "venv")
        sizes = measure(python)
    total = sum(sizes.values())
    print(f"{len(sizes)} distributions, {total / 2**20:.1f} MiB installed")
    for name, size in sorted(sizes.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"  {name:40} {size / 2**20:7.1f} MiB  {100 * size / total:5.1f} %")


if __name__ == "__main__":
    main()
