"""Configuration errors name the file, the key and the fix; nothing is computed from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from licsync.config import load_config, parse_config
from licsync.config.rules import resolve_rules
from licsync.errors import ConfigError
from licsync.graph import load_graph_settings
from tests.builders import TenantBuilder

PATH = Path("site/licsync.toml")


def problems_of(toml: str, builder: TenantBuilder | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config = parse_config(toml, PATH)
        if builder is not None:
            resolve_rules(builder.tenant(), config)
    assert str(PATH) in str(caught.value)
    return caught.value.problems


def tenant() -> TenantBuilder:
    b = TenantBuilder().sku("ENTERPRISEPACK").sku("EMSPREMIUM")
    b.sku("PROJECT_MADEIRA_PREVIEW_IW_SKU", applies_to="Company")
    b.group("Sales").group("Sales Team").group("Twin").group("Twin 2")
    b.groups["Twin 2"]["displayName"] = "Twin"  # two groups share one display name
    b.group("Newsletter", security=False)
    b.group("Licensed", entra={"EMSPREMIUM": []})
    return b


def test_the_example_config_is_valid():
    config = load_config(Path(__file__).parents[2] / "config" / "licsync.example.toml")
    assert len(config.settings.group_licenses) == 3
    assert config.filter_properties() == ("country", "department")
    assert config.policy().usage_location.value == "problem"
    env = {"LICSYNC_GRAPH_CLIENT_SECRET": "from-the-environment"}
    graph = load_graph_settings(config.settings.graph, env=env, path=str(config.path))
    assert graph.auth == "client_secret" and graph.url == "https://graph.microsoft.com/v1.0"


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            "[[group_licenses]]\ngroup = 'x'\nlicenses = []\n",
            "group_licenses[0].licenses: must list at least 1",
        ),
        (
            "[[group_licenses]]\ngroup = 'x'\nlicences = [{sku='A'}]\n",
            "group_licenses[0].licences: unknown key",
        ),
        (
            "[policy]\nusage_location = 'USA'\n",
            'policy.usage_location: "USA" is not an ISO 3166-1 alpha-2 country code; '
            'did you mean "US"',
        ),
        ("[[group_licenses]\n", "not valid TOML"),
    ],
)
def test_structural_errors_name_the_key(toml, expected):
    assert any(expected in p for p in problems_of(toml))


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (
            "group = 'Sales'\nlicenses = [{ sku = 'ENTERPRISEPAK' }]",
            'group_licenses[0].licenses[0].sku: the tenant has no subscribed SKU "ENTERPRISEPAK"; '
            "closest: ENTERPRISEPACK",
        ),
        (
            "group = 'Sales'\nlicenses = [{ sku = 'ENTERPRISEPACK', disabled_plans = ['SWAYY'] }]",
            'group_licenses[0].licenses[0].disabled_plans[0]: unknown service plan "SWAYY"; '
            "closest: SWAY",
        ),
        (
            "group = 'Sales'\nlicenses = [{ sku = 'EMSPREMIUM', disabled_plans = ['SWAY'] }]",
            'service plan "SWAY" is not part of EMSPREMIUM',
        ),
        (
            "group = 'Sales'\nlicenses = [{ sku = 'PROJECT_MADEIRA_PREVIEW_IW_SKU' }]",
            "applies to Company, not to users",
        ),
        (
            "group = 'Sale'\nlicenses = [{ sku = 'EMSPREMIUM' }]",
            'no group named "Sale"; closest: Sales',
        ),
        ("group = 'Twin'\nlicenses = [{ sku = 'EMSPREMIUM' }]", '"Twin" names 2 groups'),
        ("group = 'Newsletter'\nlicenses = [{ sku = 'EMSPREMIUM' }]", "is not security-enabled"),
        (
            "group = 'Licensed'\nlicenses = [{ sku = 'EMSPREMIUM' }]",
            "already has licences assigned by Entra",
        ),
        (
            "group = 'Sales'\nlicenses = [{ sku = 'EMSPREMIUM' }, { sku = 'emspremium' }]",
            "EMSPREMIUM is listed twice",
        ),
    ],
)
def test_names_resolve_against_the_tenant_with_clear_errors(rule, expected):
    problems = problems_of(f"[[group_licenses]]\n{rule}\n", tenant())
    assert any(expected in p for p in problems), problems


def test_every_problem_is_reported_at_once_and_ids_work_like_names():
    b = tenant()
    sales_id = b.groups["Sales"]["id"].upper()
    sku_id = b.sku_id("EMSPREMIUM").upper()
    toml = (
        f"[[group_licenses]]\ngroup = '{sales_id}'\nlicenses = [{{ sku = '{sku_id}' }}]\n"
        "[[group_licenses]]\ngroup = 'Nope'\nlicenses = [{ sku = 'NOPE' }]\n"
        "[[group_licenses]]\ngroup = 'Sales'\nlicenses = [{ sku = 'ENTERPRISEPACK' }]\n"
    )
    problems = problems_of(toml, b)
    assert len(problems) == 3
    assert (
        'group_licenses[2].group: "Sales" already has a rule at group_licenses[0]' in (problems[2])
    )


def test_a_missing_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")


def test_problems_carry_the_line_of_their_key_in_every_toml_spelling():
    toml = (
        "[[group_licenses]]\n"  # 1
        'group = "Sales"  # the sales team\n'  # 2
        "licenses = [\n"  # 3
        '  { sku = "E3", disabled_plans = ["SWAY",\n'  # 4
        '      "[not a bracket]"] },\n'  # 5
        "  { sku = 5 },\n"  # 6
        "]\n"  # 7
        "[[group_licenses]]\n"  # 8
        'group = "Engineering"\n'  # 9
        "[[group_licenses.licenses]]\n"  # 10
        'sku = "E3"\n'  # 11
        "nested = 3\n"  # 12
        "[group_licenses.extra]\n"  # 13
        "'quoted key' = 1\n"  # 14
    )
    problems = problems_of(toml)
    lines = {p.split(": ")[1]: p.split(": ")[0] for p in problems}
    assert lines["group_licenses[0].licenses[1].sku"] == f"{PATH}:6"
    assert lines["group_licenses[1].licenses[0].nested"] == f"{PATH}:12"
    assert lines["group_licenses[1].extra"] == f"{PATH}:13"
