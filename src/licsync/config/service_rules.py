"""Load the service-plan conflict and dependency tables (data, never code).

Defaults are the tables shipped with licsync: Microsoft's published list of mutually exclusive
service plans and the prerequisites Microsoft states in its docs (see the files' own notes).
Exchange Online Plan 1 and Plan 2 are not in the conflict table: they stack since 2023.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from licsync.engine.inputs import PlanRules
from licsync.errors import InputError


def _read(path: Path | None, default_name: str) -> tuple[str, Any]:
    if path is None:
        source = resources.files("licsync") / "data" / default_name
        return default_name, json.loads(source.read_text(encoding="utf-8"))
    try:
        return str(path), json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON: {exc}") from None
    except (RecursionError, UnicodeDecodeError):
        raise InputError(f"{path}: not a JSON table licsync can read") from None


def load_plan_rules(conflicts: Path | None = None, dependencies: Path | None = None) -> PlanRules:
    """Read both tables; a custom file must have the shipped file's shape."""
    name, data = _read(conflicts, "mutually_exclusive_service_plans.json")
    try:
        conflict_sets = tuple(_names(g["plans"]) for g in data["groups"])
    except (KeyError, TypeError):
        raise InputError(
            f"{name}: expected {{'groups': [{{'plans': {{NAME: ID, ...}}}}, ...]}}"
        ) from None
    name, data = _read(dependencies, "service_plan_dependencies.json")
    try:
        needs = {_name(d["plan"]): _names(d["requires_any_of"]) for d in data["dependencies"]}
    except (KeyError, TypeError):
        raise InputError(
            f"{name}: expected {{'dependencies': [{{'plan': NAME, 'requires_any_of': [NAME]}}]}}"
        ) from None
    return PlanRules(conflicts=conflict_sets, dependencies=needs)


def _name(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(value)
    return value


def _names(values: Any) -> frozenset[str]:
    """Plan names from a list (or an object's keys); a string is refused, not split."""
    if not isinstance(values, (list, dict)):
        raise TypeError(values)
    return frozenset(_name(v) for v in values)
