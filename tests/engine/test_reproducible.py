"""A plan is the same in every process: nothing may depend on hash order or on the clock.

CPython randomises string hashes per process, so a decision that iterates a set of ids can differ
between two runs of the same plan; a test inside one process cannot see that."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from licsync.config import rules_toml
from licsync.emulator.generate import generate_rules, generate_tenant


@pytest.mark.slow
def test_the_json_report_is_byte_identical_across_hash_seeds(tmp_path: Path) -> None:
    snapshot = generate_tenant(users=10000, groups=300, seed=4)
    tenant, config = tmp_path / "tenant.json", tmp_path / "licsync.toml"
    tenant.write_bytes(orjson.dumps(snapshot))
    config.write_text(rules_toml(generate_rules(snapshot, 150, seed=4)), encoding="utf-8")
    reports = []
    for seed in ("1", "2"):
        out = tmp_path / f"plan-{seed}.json"
        command = [sys.executable, "-m", "licsync", "plan", "--snapshot", str(tenant)]
        command += ["--config", str(config), "--format", "json", "--output", str(out)]
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        assert done.returncode in (0, 10), done.stderr
        reports.append(out.read_bytes())
    assert orjson.loads(reports[0])["problems"], "the tenant should exercise conflicts and seats"
    assert reports[0] == reports[1]
