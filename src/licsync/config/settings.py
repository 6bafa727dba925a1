"""`licsync.toml`: typed settings validated at the boundary.

Every error names the file, the key (`group_licenses[2].licenses[0].sku`) and what is allowed.
Names in rules are resolved against the tenant later, by `licsync.config.rules`.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from licsync.config.service_rules import load_plan_rules
from licsync.engine.inputs import Policy, UsageLocationMode
from licsync.errors import ConfigError

_COUNTRY = re.compile(r"^[A-Za-z]{2}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LicenseSpec(_Strict):
    sku: str = Field(min_length=1, description="SKU part number (ENTERPRISEPACK) or skuId")
    disabled_plans: tuple[str, ...] = Field(
        default=(), description="service plan names (SWAY) or ids to switch off"
    )


class GroupLicenses(_Strict):
    group: str = Field(min_length=1, description="group display name or object id")
    nested: bool = Field(default=False, description="also license members of nested groups")
    licenses: tuple[LicenseSpec, ...] = Field(min_length=1)


class PolicySettings(_Strict):
    usage_location: str = Field(
        default="problem",
        description='"problem", "tenant", or a two-letter country code',
    )
    license_disabled_accounts: bool = True
    license_guests: bool = True
    conflicts: Path | None = None
    dependencies: Path | None = None

    @field_validator("usage_location")
    @classmethod
    def _usage_location(cls, value: str) -> str:
        if value in ("problem", "tenant") or _COUNTRY.match(value):
            return value
        raise ValueError('must be "problem", "tenant" or a two-letter country code such as "US"')


class GuardrailSettings(_Strict):
    max_removals: int = Field(default=50, ge=0, description="removals a run may make unasked")
    max_removal_percent: float = Field(default=5.0, ge=0, le=100)
    # a full read with this share fewer users, or rule-group members, than the last run's view
    # stops before any write (a read gone wrong looks like a mass exodus); 100 turns it off
    max_shrink_percent: float = Field(default=50.0, ge=0, le=100)


class Settings(_Strict):
    group_licenses: tuple[GroupLicenses, ...] = ()
    policy: PolicySettings = PolicySettings()
    guardrail: GuardrailSettings = GuardrailSettings()
    graph: dict[str, Any] = Field(default_factory=dict)
    state: dict[str, Any] = Field(default_factory=dict)


class Config:
    """A validated configuration file and where it came from."""

    def __init__(self, path: Path, settings: Settings) -> None:
        self.path = path
        self.settings = settings
        self._policy: Policy | None = None

    def policy(self) -> Policy:
        """The engine's typed policy, read once; relative table paths are beside the config."""
        if self._policy is None:
            self._policy = self._read_policy()
        return self._policy

    def _read_policy(self) -> Policy:
        raw = self.settings.policy
        base = self.path.parent
        plan_rules = load_plan_rules(
            base / raw.conflicts if raw.conflicts else None,
            base / raw.dependencies if raw.dependencies else None,
        )
        if raw.usage_location in ("problem", "tenant"):
            mode, code = UsageLocationMode(raw.usage_location), None
        else:
            mode, code = UsageLocationMode.FIXED, raw.usage_location.upper()
        return Policy(
            usage_location=mode,
            usage_location_code=code,
            license_disabled_accounts=raw.license_disabled_accounts,
            license_guests=raw.license_guests,
            plan_rules=plan_rules,
        )


def rules_toml(rules: list[dict[str, Any]]) -> str:
    """Render `[[group_licenses]]` tables from rule dicts (`group`, `nested`, `licenses`)."""
    blocks = []
    for rule in rules:
        licenses = ", ".join(
            f"{{ sku = {json.dumps(item['sku'])}, "
            f"disabled_plans = {json.dumps(list(item.get('disabled_plans', ())))} }}"
            for item in rule["licenses"]
        )
        blocks.append(
            f"[[group_licenses]]\ngroup = {json.dumps(rule['group'])}\n"
            f"nested = {str(rule.get('nested', False)).lower()}\nlicenses = [{licenses}]\n"
        )
    return "\n".join(blocks)


def _key(location: tuple[Any, ...]) -> str:
    key = ""
    for part in location:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    return key or "(top level)"


def parse_config(text: str, path: Path) -> Config:
    """Validate TOML text; raise ConfigError listing every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [f"not valid TOML: {exc}"]) from None
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown key; check the spelling against config/licsync.example.toml"
            problems.append(f"{_key(error['loc'])}: {message}")
        raise ConfigError(str(path), problems) from None
    return Config(path, settings)


def load_config(path: Path) -> Config:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read: {exc.strerror}"]) from None
    return parse_config(text, path)
