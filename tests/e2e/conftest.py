"""End-to-end fixtures: the in-process Graph emulator over real HTTP, a config pointing at it,
and helpers to run `licsync sync` and look at the emulator's tenant afterwards."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from licsync.config import Config, parse_config
from licsync.connector.sync import SyncResult, run_sync
from licsync.emulator.server import Emulator
from licsync.graph import WriteBudget
from tests.builders import catalogue_plan_id as plan_id
from tests.builders import catalogue_sku_id as sku_id
from tests.builders import subscribed_sku_json

ORG_ID = "7f3d526c-b3c1-4479-ba74-197b5c5751ae"


def user_id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def group_id(n: int) -> str:
    return f"99999999-0000-4000-8000-{n:012d}"


def small_snapshot(
    *,
    users: int = 10,
    seats: dict[str, int] | None = None,
    members: dict[int, list[int]] | None = None,
    direct: dict[int, list[tuple[str, list[str]]]] | None = None,
) -> dict[str, Any]:
    """`users` users (all located in US), groups 1..3 with the given user members, and the SKUs
    in `seats`. `direct` gives users direct licences: part number and disabled plan names."""
    seats = seats if seats is not None else {"SPE_E3": 100, "POWER_BI_PRO": 100}
    members = members or {}
    direct = direct or {}
    consumed: dict[str, int] = {}
    user_objs = []
    for n in range(1, users + 1):
        licences = [
            {"skuId": sku_id(p), "disabledPlans": [plan_id(p, d) for d in off]}
            for p, off in direct.get(n, [])
        ]
        for p, _ in direct.get(n, []):
            consumed[p] = consumed.get(p, 0) + 1
        user_objs.append(
            {
                "id": user_id(n),
                "userPrincipalName": f"user{n}@contoso.com",
                "accountEnabled": True,
                "usageLocation": "US",
                "userType": "Member",
                "assignedLicenses": licences,
                "licenseAssignmentStates": [
                    {**lic, "assignedByGroup": None, "state": "Active", "error": "None"}
                    for lic in licences
                ],
            }
        )
    groups = [
        {
            "id": group_id(g),
            "displayName": f"Group {g}",
            "securityEnabled": True,
            "mailEnabled": False,
            "groupTypes": [],
            "assignedLicenses": [],
            "members": [
                {"@odata.type": "#microsoft.graph.user", "id": user_id(m)}
                for m in members.get(g, [])
            ],
        }
        for g in (1, 2, 3)
    ]
    return {
        "organization": {"id": ORG_ID, "displayName": "Contoso", "countryLetterCode": "US"},
        "subscribedSkus": [
            subscribed_sku_json(ORG_ID, p, n, consumed.get(p, 0)) for p, n in seats.items()
        ],
        "users": user_objs,
        "groups": groups,
    }


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


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """`licsync sync` configures structlog globally: undo it for the tests that follow."""
    yield
    structlog.reset_defaults()


@pytest.fixture
def small(request: pytest.FixtureRequest, emulator_factory: Any) -> Emulator:
    """A fresh emulator over `small_snapshot(**params)` (indirect parametrisation) per test."""
    params = getattr(request, "param", {})
    return emulator_factory(small_snapshot(**params))
