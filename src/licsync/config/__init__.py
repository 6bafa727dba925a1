"""Configuration: the TOML file validated at the boundary (`settings`), the rules resolved
against a tenant (`rules`), and Microsoft's service-plan conflict and prerequisite data
(`service_rules`)."""

from licsync.config.rules import resolve_rules
from licsync.config.settings import Config, load_config, parse_config, rules_toml

__all__ = ["Config", "load_config", "parse_config", "resolve_rules", "rules_toml"]
