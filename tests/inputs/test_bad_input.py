"""Every bad input gets one clear message, all at once, exit 3, and nothing is written.

Each test here is one point of issue 12, run through the command line as an administrator would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from licsync.cli import main
from licsync.errors import ConfigError
from licsync.graph.auth import build_credential
from licsync.graph.settings import load_graph_settings
from tests.builders import TenantBuilder

RULE = '[[group_licenses]]\ngroup = "Sales"\nlicenses = [{ sku = "ENTERPRISEPACK" }]\n'
PYDANTIC_WORDS = ("Input should", "Extra inputs", "Tuple should", "Value error", "pydantic")


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    b = TenantBuilder().sku("ENTERPRISEPACK", enabled=5).sku("EMSPREMIUM").user("ann")
    b.group("Sales", members=["ann"])
    path = tmp_path / "tenant.json"
    path.write_bytes(orjson.dumps(b.snapshot()))
    return path


def plan(tmp_path: Path, snapshot: Path, config_text: str | bytes, capsys: Any) -> tuple[int, str]:
    """`licsync plan --snapshot` on a config file; (exit code, stderr). Nothing may be written."""
    config = tmp_path / "licsync.toml"
    if isinstance(config_text, str):
        config.write_text(config_text, encoding="utf-8")
    else:
        config.write_bytes(config_text)
    out = tmp_path / "plan.json"
    code = main(
        ["plan", "--snapshot", str(snapshot), "--config", str(config), "--output", str(out)]
    )
    err = capsys.readouterr().err
    if code == 3:
        assert not out.exists()  # nothing computed or written
    assert "Traceback" not in err
    return code, err


def test_every_problem_of_the_file_is_reported_at_once_with_its_line(tmp_path, snapshot, capsys):
    text = (
        "[[group_licenses]]\n"  # 1
        'group = "Sales"\n'  # 2
        "nested = 1\n"  # 3
        "licenses = []\n"  # 4
        "[policy]\n"  # 5
        'usage_location = "UK"\n'  # 6
        "[guardrail]\n"  # 7
        'max_removals = "50"\n'  # 8
        "[graph]\n"  # 9
        'url = "https://graph.microsoft.com:99999/v1.0"\n'  # 10
        "max_atempts = 3\n"  # 11
        "[state]\n"  # 12
        'url = "mysql://root:hunter2@db/licsync"\n'  # 13
    )
    code, err = plan(tmp_path, snapshot, text, capsys)
    assert code == 3
    config = tmp_path / "licsync.toml"
    for line, key in [
        (3, "group_licenses[0].nested"),
        (4, "group_licenses[0].licenses"),
        (6, "policy.usage_location"),
        (8, "guardrail.max_removals"),
        (10, "graph.url"),
        (11, "graph.max_atempts"),
        (13, "state.url"),
    ]:
        assert f"{config}:{line}: {key}: " in err, (key, err)
    assert "7 configuration error(s)" in err
    assert "hunter2" not in err
    assert not any(word in err for word in PYDANTIC_WORDS), err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[[group_licenses]]\ngroup = "Sales"\nlicenses = []\n', "must list at least 1"),
        (
            '[[group_licenses]]\ngroup = "Sales"\nlicences = [{ sku = "A" }]\n',
            "unknown key; closest: licenses; the keys allowed here are: "
            "filter, group, licenses, name, nested",
        ),
        ("[graph]\nwrite_rates = 5\n", "unknown key; closest: write_rate"),
        ("[state]\nlease_ttl = 5\n", "unknown key; closest: lease_ttl_seconds"),
        ("[policy]\nconflicts = 5\n", "must be a file path in quotes, got 5"),
        ('group_licenses = "Sales"\n', "must be a list"),
    ],
)
def test_messages_are_in_the_administrators_words(tmp_path, snapshot, capsys, text, expected):
    code, err = plan(tmp_path, snapshot, text, capsys)
    assert code == 3
    assert expected in err, err
    assert not any(word in err for word in PYDANTIC_WORDS), err


@pytest.mark.parametrize(
    ("sku", "expected"),
    [
        ("ENTERPRISEPAK", "closest: ENTERPRISEPACK"),
        ("enterprise pack", "closest: ENTERPRISEPACK"),
        ("Office 365 E3", "write the part number, not the product name; it is ENTERPRISEPACK"),
        ("SPE_E3", "(Microsoft 365 E3 is not bought here; subscribed: EMSPREMIUM, ENTERPRISEPACK)"),
    ],
)
def test_an_unknown_part_number_gets_a_suggestion(tmp_path, snapshot, capsys, sku, expected):
    text = f'[[group_licenses]]\ngroup = "Sales"\nlicenses = [{{ sku = "{sku}" }}]\n'
    code, err = plan(tmp_path, snapshot, text, capsys)
    assert code == 3
    assert "group_licenses[0].licenses[0].sku: the tenant has no subscribed SKU" in err
    assert expected in err, err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (RULE.replace("licenses =", 'nested = "yes"\nlicenses ='), "must be true or false"),
        ('[policy]\nlicense_guests = "no"\n', "must be true or false"),
        ("[policy]\nlicense_disabled_accounts = 0\n", "must be true or false"),
        ('[guardrail]\nmax_removals = "50"\n', 'must be a whole number, without quotes, got "50"'),
        ("[guardrail]\nmax_removals = 2.5\n", "must be a whole number"),
        ("[guardrail]\nmax_removal_percent = nan\n", "must be a finite number"),
        ('[graph]\nmax_attempts = "6"\n', "must be a whole number"),
        ("[graph]\nmax_total_wait_seconds = inf\n", "must be a finite number"),
        ("[graph]\nwrite_rate = true\n", "must be a number"),
        ('[graph]\nurl = "https://graph.microsoft.com:99999/v1.0"\n', "port must be 1 to 65535"),
        ('[state]\nlease_ttl_seconds = "900"\n', "must be a number"),
        ("[state]\nlease_ttl_seconds = inf\n", "must be a finite number"),
    ],
)
def test_booleans_and_numbers_are_strict(tmp_path, snapshot, capsys, text, expected):
    code, err = plan(tmp_path, snapshot, text, capsys)
    assert code == 3
    assert expected in err, err


@pytest.mark.parametrize(
    ("code", "suggestion"), [("UK", "GB"), ("EL", "GR"), ("GBR", "GB"), ("Germany", "DE")]
)
def test_usage_location_must_be_an_iso_code_with_a_suggestion(
    tmp_path, snapshot, capsys, code, suggestion
):
    exit_code, err = plan(tmp_path, snapshot, f'[policy]\nusage_location = "{code}"\n', capsys)
    assert exit_code == 3
    assert "not an ISO 3166-1 alpha-2 country code" in err
    assert f'did you mean "{suggestion}"?' in err


def test_an_unknown_two_letter_code_is_refused_and_a_known_one_in_any_case_accepted(
    tmp_path, snapshot, capsys
):
    assert plan(tmp_path, snapshot, '[policy]\nusage_location = "XX"\n', capsys)[0] == 3
    assert plan(tmp_path, snapshot, RULE + '[policy]\nusage_location = "gb"\n', capsys)[0] == 0


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be"])
def test_configs_saved_by_windows_tools_are_read(tmp_path, snapshot, capsys, encoding):
    data = RULE.encode(encoding)
    if encoding in ("utf-16-le", "utf-16-be"):  # with their byte order mark, as PowerShell writes
        data = "\ufeff".encode(encoding) + data
    code, err = plan(tmp_path, snapshot, data, capsys)
    assert code == 0, err


def test_a_config_in_another_encoding_names_the_file(tmp_path, snapshot, capsys):
    code, err = plan(tmp_path, snapshot, RULE.encode() + b"# caf\xe9\n", capsys)
    assert code == 3
    assert "licsync.toml" in err and "not UTF-8 text" in err and "save the configuration" in err


def test_toml_syntax_errors_name_the_line(tmp_path, snapshot, capsys):
    code, err = plan(tmp_path, snapshot, RULE + "[policy\n", capsys)
    assert code == 3
    assert f"{tmp_path / 'licsync.toml'}:4: not valid TOML at column" in err


@pytest.mark.parametrize("command", [["problems"], ["runs"], ["sync", "--dry-run"]])
def test_an_unknown_state_url_is_a_config_error_not_a_traceback(tmp_path, capsys, command):
    config = tmp_path / "licsync.toml"
    config.write_text('[state]\nurl = "mysql://root:hunter2@db/licsync"\n', encoding="utf-8")
    assert main([*command, "--config", str(config)]) == 3
    err = capsys.readouterr().err
    assert "state.url: state url 'mysql://root:***@db/licsync': unknown scheme 'mysql'" in err
    assert "hunter2" not in err and "Traceback" not in err


def test_an_unknown_state_url_from_the_environment_names_the_variable(
    tmp_path, capsys, monkeypatch
):
    config = tmp_path / "licsync.toml"
    config.write_text("", encoding="utf-8")
    monkeypatch.setenv("LICSYNC_STATE_URL", "mysql://db/licsync")
    assert main(["runs", "--config", str(config)]) == 3
    assert "LICSYNC_STATE_URL" in capsys.readouterr().err


def test_the_workload_identity_error_names_the_file_given(tmp_path):
    settings = load_graph_settings(
        {"auth": "workload_identity"}, env={}, path=str(tmp_path / "site.toml")
    )
    with pytest.raises(ConfigError) as caught:
        build_credential(settings)
    assert caught.value.path == str(tmp_path / "site.toml")
    assert "licsync.toml" not in str(caught.value)


def test_a_snapshot_plan_writes_no_store_even_with_a_state_table(tmp_path, snapshot, capsys):
    text = RULE + f'[state]\nurl = "{tmp_path / "state.db"}"\n[guardrail]\nmax_removals = -1\n'
    assert plan(tmp_path, snapshot, text, capsys)[0] == 3
    assert not (tmp_path / "state.db").exists()


def test_a_bad_dependency_table_is_reported_with_the_rest(tmp_path, snapshot, capsys):
    table = tmp_path / "deps.json"
    table.write_text(json.dumps({"dependencies": [{"plan": "A", "requires_any_of": "B"}]}))
    text = f'[policy]\ndependencies = "{table}"\n[guardrail]\nmax_removals = -1\n'
    code, err = plan(tmp_path, snapshot, text, capsys)
    assert code == 3
    assert "2 configuration error(s)" in err
    assert "policy.dependencies: " in err and "requires_any_of" in err
