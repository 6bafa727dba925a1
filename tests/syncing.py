"""Run licsync against an emulator: a config pointing at it, one sync, and what the emulator's
tenant holds afterwards."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from licsync.config import Config, parse_config
from licsync.connector.sync import SyncResult, run_sync
from licsync.emulator.server import Emulator
from licsync.graph import WriteBudget


def config_text(
    emulator: Emulator,
    state: Path,
    rules: list[dict[str, Any]],
    *,
    guardrail: tuple[int, float] = (100_000, 100.0),
    usage_location: str = "tenant",
    graph: dict[str, Any] | None = None,
) -> str:
    """The config's text; `graph` replaces the `[graph]` table's url and auth."""
    table = graph or {"url": emulator.url, "auth": "none"}
    lines = [
        "[graph]\n"
        + "".join(f"{k} = {json.dumps(v)}\n" for k, v in table.items())
        + "write_rate = 100\n",
        f'[state]\nurl = "{state}"\n',
        f'[policy]\nusage_location = "{usage_location}"\n',
        f"[guardrail]\nmax_removals = {guardrail[0]}\nmax_removal_percent = {guardrail[1]}\n",
    ]
    for rule in rules:
        lines.append(
            f"[[group_licenses]]\ngroup = {json.dumps(rule['group'])}\n"
            f"nested = {str(rule.get('nested', False)).lower()}\n"
        )
        for lic in rule["licenses"]:
            lines.append(
                f"[[group_licenses.licenses]]\nsku = {json.dumps(lic['sku'])}\n"
                f"disabled_plans = {json.dumps(list(lic.get('disabled_plans', [])))}\n"
            )
    return "\n".join(lines)


def make_config(
    tmp_path: Path, emulator: Emulator, rules: list[dict[str, Any]], **kw: Any
) -> Config:
    path = tmp_path / "licsync.toml"
    path.write_text(config_text(emulator, tmp_path / "state.db", rules, **kw), encoding="utf-8")
    return parse_config(path.read_text(encoding="utf-8"), path)


def sync(config: Config, **kw: Any) -> SyncResult:
    """One `run_sync` with an unthrottled write budget (the emulator is local)."""
    kw.setdefault("budget", WriteBudget(100_000))
    kw.setdefault("progress", False)
    return asyncio.run(run_sync(config, **kw))


def direct_licences(emulator: Emulator) -> dict[str, dict[str, frozenset[str]]]:
    """Every user's direct assignments in the emulator: user → sku → disabled plans."""
    with emulator.tenant.lock:
        return {
            uid: {s.sku: frozenset(s.disabled) for s in user.sources if s.group is None}
            for uid, user in emulator.tenant.users.items()
        }


def buy_seats(graph: Emulator, extra: int) -> Emulator:
    """Add `extra` seats to every SKU (the generator leaves most SKUs nearly full)."""
    with graph.tenant.lock:
        for sku in graph.tenant.skus.values():
            sku.enabled += extra
    return graph
