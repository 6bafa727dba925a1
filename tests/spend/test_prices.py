"""The price file: what Excel writes is read; every bad row is named by file and line."""

from __future__ import annotations

import codecs
from decimal import Decimal
from pathlib import Path

import pytest

from licsync.cli import main
from licsync.config import load_config
from licsync.errors import ConfigError, InputError
from licsync.exitcodes import ExitCode
from licsync.spend.prices import load_prices

E3 = "6fd2c87f-b296-42f0-b197-1e91e994b900"  # ENTERPRISEPACK's skuId


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"sku,price,currency,per\nENTERPRISEPACK,23.50,EUR,month\n", Decimal("23.50")),
        (
            codecs.BOM_UTF8 + b"SKU,Price,Currency,Per\r\nenterprisepack,282,eur,year\r\n",
            Decimal("23.5"),
        ),
        (
            "sku;price;currency;per\nENTERPRISEPACK;1.234,50;EUR;month\n".encode("utf-16"),
            Decimal("1234.50"),
        ),
        (b'sku,price,currency,per\nENTERPRISEPACK,"1,234.50",EUR,month\n', Decimal("1234.50")),
        (b"sku;price;currency;per\nENTERPRISEPACK;23.5;EUR;month\n", Decimal("23.5")),
    ],
    ids=["utf8", "bom-crlf-year", "utf16-semicolon-comma-decimal", "quoted-thousands", "dot"],
)
def test_excel_files_are_read(tmp_path: Path, data: bytes, expected: Decimal) -> None:
    path = tmp_path / "prices.csv"
    path.write_bytes(data)
    prices = load_prices(path)
    assert prices.currency == "EUR"
    assert prices.monthly == {"ENTERPRISEPACK": expected}


def test_a_guid_row_is_keyed_by_the_sku_id(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text(f"sku,price,currency,per\n{E3.upper()},10,USD,month\n", encoding="utf-8")
    assert load_prices(path).monthly == {E3: Decimal(10)}


def test_every_bad_row_is_named_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text(
        "sku,price,currency,per\n"
        "ENTERPRISEPACK,ten,EUR,month\n"  # 2
        "\n"
        "SPE_E3,10,EURO,month\n"  # 4
        "SPE_E5,10,EUR,week\n"  # 5
        "EMS,10,EUR\n"  # 6
        ",10,EUR,month\n"  # 7
        "POWER_BI_PRO,-1,EUR,month\n"  # 8
        "VISIOCLIENT,5,EUR,month\n"
        "visioclient,6,EUR,month\n",  # 10
        encoding="utf-8",
    )
    with pytest.raises(InputError) as caught:
        load_prices(path)
    lines = str(caught.value).splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == [
        f"{path}:{n}" for n in (2, 4, 5, 6, 7, 8, 10)
    ]
    assert 'price "ten" is not an amount' in lines[0]
    assert "ISO 4217" in lines[1] and '"month" or "year"' in lines[2]
    assert "priced twice (line 9)" in lines[6]


def test_mixed_currencies_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text(
        "sku,price,currency,per\nSPE_E3,10,EUR,month\nSPE_E5,12,USD,month\n", encoding="utf-8"
    )
    with pytest.raises(InputError, match=r"mixed currencies EUR \(line 2\), USD \(line 3\)"):
        load_prices(path)


def test_a_missing_column_names_the_header(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text("sku,price,currency\nSPE_E3,10,EUR\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"prices.csv:1: missing column\(s\) per"):
        load_prices(path)


def test_a_bad_price_file_is_a_config_error_and_the_plan_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "prices.csv").write_text(
        "sku,price,currency,per\nSPE_E3,abc,EUR,month\n", encoding="utf-8"
    )
    config = tmp_path / "licsync.toml"
    config.write_text('[guardrail]\nmax_removals = 5\n\n[prices]\nfile = "prices.csv"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert f'{config}:5: prices.file: {tmp_path / "prices.csv"}:2: price "abc"' in str(caught.value)
    snapshot = tmp_path / "tenant.json"
    snapshot.write_text('{"subscribedSkus": [], "users": [], "groups": []}')
    out = tmp_path / "plan.json"
    args = ["plan", "--config", str(config), "--snapshot", str(snapshot), "--output", str(out)]
    assert main(args) == ExitCode.BAD_INPUT
    assert not out.exists()
    assert "prices.csv:2" in capsys.readouterr().err


def test_group_by_must_name_a_property(tmp_path: Path) -> None:
    (tmp_path / "prices.csv").write_text("sku,price,currency,per\nSPE_E3,1,EUR,month\n")
    config = tmp_path / "licsync.toml"
    config.write_text('[prices]\nfile = "prices.csv"\ngroup_by = "dept name"\n')
    with pytest.raises(ConfigError, match=r"prices\.group_by"):
        load_config(config)
