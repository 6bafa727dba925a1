"""A generated tenant written as a snapshot with its rules, then planned offline."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson

from licsync.commands.demo import demo_rules_toml
from licsync.config import load_config
from licsync.connector.planning import make_plan
from licsync.emulator.generate import generate_tenant
from licsync.model import Plan, Tenant
from licsync.reports.names import Names
from licsync.snapshot import load_snapshot


@dataclass(frozen=True)
class Planned:
    snapshot: Path
    config: Path
    tenant: Tenant
    plan: Plan

    @property
    def names(self) -> Names:
        return Names(self.tenant)


def planned(folder: Path, users: int, groups: int, rules: int, seed: int) -> Planned:
    """The demo's tenant and rules for these sizes (`licsync demo` uses 300, 30, 8, 1)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = generate_tenant(users, groups, seed)
    snapshot, config = folder / "tenant.json", folder / "licsync.toml"
    snapshot.write_bytes(orjson.dumps(data))
    config.write_text(demo_rules_toml(data, rules, seed), encoding="utf-8")
    tenant = load_snapshot(snapshot)
    return Planned(snapshot, config, tenant, make_plan(tenant, load_config(config)))
