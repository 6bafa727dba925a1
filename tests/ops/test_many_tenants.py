"""Many tenants on one PostgreSQL server: one schema per tenant, separate `licsync sync`
processes at the same time, each against its own emulator (each its own tenant)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from licsync.cli import main
from licsync.exitcodes import ExitCode
from licsync.store import open_store
from tests.builders import small_snapshot
from tests.postgres import PG_SKIP, postgres_url
from tests.syncing import config_text

pytestmark = [pytest.mark.slow, pytest.mark.skipif(postgres_url() is None, reason=PG_SKIP)]

TENANTS = 3
RULES = [{"group": "Group 1", "licenses": [{"sku": "SPE_E3"}]}]


def tenant_snapshot(n: int) -> dict:
    """Tenant n: its own organization id, users, groups and UPN domain; n + 1 members of
    Group 1 for n + 1 seats less one (each tenant has one CountViolation)."""
    snapshot = small_snapshot(members={1: list(range(1, n + 3))}, seats={"SPE_E3": n + 1})
    text = json.dumps(snapshot)
    text = text.replace("00000000-0000-4000-8000-", f"0000000{n}-0000-4000-8000-")
    text = text.replace("99999999-0000-4000-8000-", f"9999999{n}-0000-4000-8000-")
    text = text.replace("@contoso.com", f"@tenant{n}.example")
    snapshot = json.loads(text)
    snapshot["organization"]["id"] = f"{n}{n}{n}{n}{n}{n}{n}{n}-0000-4000-8000-000000000000"
    return snapshot


@pytest.fixture
def schemas() -> list[str]:
    names = [f"licsync_t{n}_{uuid.uuid4().hex[:8]}" for n in range(TENANTS)]
    yield names
    with psycopg.connect(postgres_url(), autocommit=True) as conn:
        for name in names:
            conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def sync_all(configs: list[Path], env: dict[str, str]) -> list[dict]:
    """`licsync sync` for every tenant at once, one process each; their runs' counters (the
    `run` member of the JSON report)."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "licsync", "sync", "--config", str(c), "--format", "json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for c in configs
    ]
    summaries = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == ExitCode.PROBLEMS, err.decode()[-2000:]
        summaries.append(json.loads(out)["run"])
    return summaries


def test_tenants_sync_concurrently_into_their_own_schemas(
    emulator_factory,
    tmp_path: Path,
    schemas: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = postgres_url()
    assert url is not None
    env = {**os.environ, "LICSYNC_STATE_URL": url}  # the password only in the environment
    graphs, configs = [], []
    for n, schema in enumerate(schemas):
        graph = emulator_factory(tenant_snapshot(n))
        path = tmp_path / f"tenant{n}" / "licsync.toml"
        path.parent.mkdir()
        text = config_text(graph, Path("unused.db"), RULES).replace(
            '[state]\nurl = "unused.db"\n', f'[state]\nschema = "{schema}"\n'
        )
        path.write_text(text, encoding="utf-8")
        graphs.append(graph)
        configs.append(path)

    first = sync_all(configs, env)
    second = sync_all(configs, env)

    for n, (graph, schema) in enumerate(zip(graphs, schemas, strict=True)):
        assert first[n]["writes_succeeded"] == n + 1  # every seat there is, taken
        assert second[n]["read"] == "incremental" and second[n]["changes"] == 0  # converged
        assert graph.stats.writes == n + 1
        with open_store(url, schema=schema, read_only=True) as store:
            assert store.bound_tenant() == tenant_snapshot(n)["organization"]["id"]
            assert store.current_lease() is None  # each run released its own lease
            ledger_users = {user for user, _ in store.load_ledger()}
            assert {u[:8] for u in ledger_users} == {f"0000000{n}"}  # this tenant's users only
            assert len(store.list_runs()) == 2

    # the read commands show one tenant's records only
    monkeypatch.setenv("LICSYNC_STATE_URL", url)
    for n, config in enumerate(configs):
        capsys.readouterr()
        assert main(["problems", "--config", str(config), "--format", "json"]) == 10
        problems = json.loads(capsys.readouterr().out)
        assert main(["runs", "--config", str(config), "--format", "json"]) == 0
        runs = json.loads(capsys.readouterr().out)
        assert [p["userPrincipalName"].split("@")[1] for p in problems] == [f"tenant{n}.example"]
        assert [p["error"] for p in problems] == ["CountViolation"]
        assert {r["id"] for r in runs} <= {s["run_id"] for s in (first[n], second[n])}
        assert len(runs) == 2

    # one tenant's configuration pointed at another tenant's schema is refused
    crossed = configs[1].read_text().replace(schemas[1], schemas[0])
    configs[1].write_text(crossed)
    refused = subprocess.run(
        [sys.executable, "-m", "licsync", "sync", "--config", str(configs[1])],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == ExitCode.STATE
    assert "belongs to tenant 00000000-0000-4000-8000-000000000000" in refused.stderr
    assert url.split("@")[0].split(":")[-1] not in refused.stderr  # no password
