"""`licsync.toml`: typed settings validated at the boundary.

Every error names the file, the key (`group_licenses[2].licenses[0].sku`) and what is allowed.
Names in rules are resolved against the tenant later, by `licsync.config.rules`.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from licsync.config.filters import parse_filter
from licsync.config.lines import TomlLines
from licsync.config.service_rules import load_plan_rules
from licsync.countries import is_country, suggest_country
from licsync.engine.filters import CORE_GRAPH_PROPERTIES, PROPERTIES, properties
from licsync.engine.inputs import Policy, UsageLocationMode
from licsync.errors import ConfigError, InputError
from licsync.spend.prices import PriceList, load_prices
from licsync.textfile import read_text
from licsync.validation import Issue, issues, shown

# A number written as a number (an integer is fine), never a string, never inf or nan.
Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]
# A check of one table the config file carries for another part of licsync ([graph], [state]).
TableCheck = Callable[[Mapping[str, Any]], list[Issue]]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LicenseSpec(_Strict):
    sku: StrictStr = Field(min_length=1, description="SKU part number (ENTERPRISEPACK) or skuId")
    disabled_plans: tuple[StrictStr, ...] = Field(
        default=(), description="service plan names (SWAY) or ids to switch off"
    )


class GroupLicenses(_Strict):
    name: StrictStr | None = Field(default=None, min_length=1, description="what reports call it")
    group: StrictStr | None = Field(
        default=None, min_length=1, description="group display name or object id"
    )
    filter: StrictStr | None = Field(
        default=None, description="users selected with Entra's dynamic membership rule syntax"
    )
    nested: StrictBool = Field(default=False, description="also license members of nested groups")
    licenses: tuple[LicenseSpec, ...] = Field(min_length=1)

    @field_validator("filter")
    @classmethod
    def _filter(cls, value: str | None) -> str | None:
        if value is not None:
            parse_filter(value)  # a FilterError (a ValueError) names the column
        return value

    @model_validator(mode="after")
    def _selects_someone(self) -> GroupLicenses:
        if self.group is None and self.filter is None:
            raise ValueError("a rule needs a group, a filter, or both (group AND filter)")
        if self.group is None and self.name is None:
            raise ValueError('a rule with a filter and no group needs a name = "…" for reports')
        return self


class PolicySettings(_Strict):
    usage_location: StrictStr = Field(
        default="problem",
        description='"problem", "tenant", or an ISO 3166-1 alpha-2 country code',
    )
    license_disabled_accounts: StrictBool = True
    license_guests: StrictBool = True
    conflicts: Path | None = None
    dependencies: Path | None = None

    @field_validator("usage_location")
    @classmethod
    def _usage_location(cls, value: str) -> str:
        if value in ("problem", "tenant") or (len(value) == 2 and is_country(value)):
            return value
        guess = suggest_country(value)
        hint = f'did you mean "{guess}"? ' if guess else ""
        raise ValueError(
            f"{shown(value)} is not an ISO 3166-1 alpha-2 country code; {hint}"
            'allowed: "problem", "tenant" or a country code such as "US" or "GB"'
        )


class GuardrailSettings(_Strict):
    max_removals: StrictInt = Field(default=50, ge=0, description="removals a run may make unasked")
    max_removal_percent: Number = Field(default=5.0, ge=0, le=100)
    # a full read with this share fewer users, or rule-group members, than the last run's view
    # stops before any write (a read gone wrong looks like a mass exodus); 100 turns it off
    max_shrink_percent: Number = Field(default=50.0, ge=0, le=100)


class MetricsSettings(_Strict):
    """`[metrics]`: push each run's metrics to a Prometheus Pushgateway (optional). Basic-auth
    credentials come only from LICSYNC_PUSHGATEWAY_USERNAME / LICSYNC_PUSHGATEWAY_PASSWORD."""

    pushgateway_url: StrictStr | None = Field(default=None, pattern=r"^https?://\S+$")
    job: StrictStr = Field(default="licsync", min_length=1)
    timeout_seconds: Number = Field(default=10.0, gt=0)


class NotifySettings(_Strict):
    """`[notify]`: when to send a notification (through apprise, `licsync[notify]`) to the
    URLs in LICSYNC_NOTIFY_URLS (never in the file: they carry webhook tokens)."""

    on: tuple[Literal["failure", "new_problems", "problems"], ...] = ("failure", "new_problems")


class PriceSettings(_Strict):
    """`[prices]`: the customer's own prices (Graph has none), for cost in every report."""

    file: Path = Field(description="CSV with the columns sku, price, currency, per")
    group_by: StrictStr | None = Field(
        default=None,
        pattern=r"^[A-Za-z][A-Za-z0-9_]*$",
        description="a user property (department, companyName, …) to total the cost by",
    )


class Settings(_Strict):
    group_licenses: tuple[GroupLicenses, ...] = ()
    policy: PolicySettings = PolicySettings()
    guardrail: GuardrailSettings = GuardrailSettings()
    graph: dict[str, Any] = Field(default_factory=dict)
    state: dict[str, Any] = Field(default_factory=dict)
    metrics: MetricsSettings = MetricsSettings()
    notify: NotifySettings = NotifySettings()
    prices: PriceSettings | None = None


class Config:
    """A validated configuration file and where it came from."""

    def __init__(
        self,
        path: Path,
        settings: Settings,
        lines: TomlLines | None = None,
        prices: PriceList | None = None,
    ) -> None:
        self.path = path
        self.settings = settings
        self.lines = lines or TomlLines("")
        self._policy: Policy | None = None
        self._prices = prices

    def error(self, found: list[Issue]) -> ConfigError:
        """A ConfigError listing `found`, each with its line in this file where known."""
        return config_error(self.path, self.lines, found)

    def filter_properties(self) -> tuple[str, ...]:
        """The Graph user properties the rules' filters read beyond the reader's own, sorted."""
        found = {
            PROPERTIES[name.casefold()].graph
            for rule in self.settings.group_licenses
            if rule.filter is not None
            for name in properties(parse_filter(rule.filter))
        }
        return tuple(sorted(found - CORE_GRAPH_PROPERTIES))

    def policy(self) -> Policy:
        """The engine's typed policy, read once; relative table paths are beside the config."""
        if self._policy is None:
            self._policy = self._read_policy()
        return self._policy

    def prices(self) -> PriceList | None:
        """The price file `[prices] file` names (None without `[prices]`), read once."""
        if self._prices is None and self.settings.prices is not None:
            self._prices = load_prices(self.path.parent / self.settings.prices.file)
        return self._prices

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


def config_error(path: Path, lines: TomlLines, found: list[Issue]) -> ConfigError:
    """Every issue as `file:line: key: what is wrong` (the line where the scan found it)."""
    problems = []
    for issue in found:
        line = lines.line(issue.loc)
        where = f"{path}:{line}: " if line else ""
        problems.append(f"{where}{issue.key}: {issue.message}")
    return ConfigError(str(path), problems)


_TOML_POSITION = re.compile(r"^(.*) \(at line (\d+), column (\d+)\)$")


def _toml(text: str, path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = _TOML_POSITION.match(str(exc))
        if match is None:
            raise ConfigError(str(path), [f"not valid TOML: {exc}"]) from None
        what, line, column = match.groups()
        raise ConfigError(
            str(path), [f"{path}:{line}: not valid TOML at column {column}: {what}"]
        ) from None
    except RecursionError:
        raise ConfigError(str(path), ["not valid TOML: values nested too deeply"]) from None


def _table_file_issues(raw: Any, base: Path) -> list[Issue]:
    """Problems of the `[policy]` conflicts and dependencies files, when the table names them."""
    try:
        policy = PolicySettings.model_validate(raw if raw is not None else {})
    except ValidationError:  # reported with the rest of the file
        return []
    found: list[Issue] = []
    for key, conflicts, dependencies in (
        ("conflicts", policy.conflicts, None),
        ("dependencies", None, policy.dependencies),
    ):
        if conflicts or dependencies:
            try:
                load_plan_rules(
                    base / conflicts if conflicts else None,
                    base / dependencies if dependencies else None,
                )
            except InputError as exc:
                found.append(Issue(("policy", key), str(exc)))
    return found


def _read_prices(raw: Any, base: Path) -> tuple[PriceList | None, list[Issue]]:
    """The `[prices]` file, or the problems of it (every bad line), when the table names one."""
    try:
        prices = PriceSettings.model_validate(raw)
    except ValidationError:  # reported with the rest of the file
        return None, []
    try:
        return load_prices(base / prices.file), []
    except InputError as exc:
        return None, [Issue(("prices", "file"), str(exc))]


def parse_config(text: str, path: Path, checks: Mapping[str, TableCheck] | None = None) -> Config:
    """Validate TOML text; raise ConfigError listing every problem of the file at once.

    `checks` validate tables that other parts of licsync read (`graph`, `state`) in the same
    pass, so that one run reports everything."""
    data = _toml(text, path)
    lines = TomlLines(text)
    found: list[Issue] = []
    settings: Settings | None = None
    config: Config | None = None
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        found.extend(issues(exc, Settings))
    for table, check in (checks or {}).items():
        value = data.get(table)
        if isinstance(value, dict):
            found.extend(check(value))
    found.extend(_table_file_issues(data.get("policy"), path.parent))
    prices = None
    if isinstance(data.get("prices"), dict):
        prices, bad = _read_prices(data["prices"], path.parent)
        found.extend(bad)
    if settings is not None and not found:
        config = Config(path, settings, lines, prices)
    if found or config is None:
        raise config_error(path, lines, found)
    return config


def load_config(path: Path, checks: Mapping[str, TableCheck] | None = None) -> Config:
    """Read and validate a configuration file (see `parse_config`)."""
    try:
        text = read_text(path, "the configuration")
    except InputError as exc:
        raise ConfigError(str(path), [str(exc).removeprefix(f"{path}: ")]) from None
    return parse_config(text, path, checks)
