"""Every report format: CSV for Excel with one column vocabulary, tables that print text as
written and never wrap a name in a file, a self-contained HTML page, updates shown old -> new
with their cause."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path

import orjson
import pytest

from licsync.cli import main
from licsync.exitcodes import ExitCode
from licsync.reports.columns import COLUMNS
from licsync.reports.csv_report import COLUMNS as PLAN_COLUMNS
from licsync.reports.csv_report import WRITE_COLUMNS
from licsync.reports.migration import CSV_COLUMNS as MIGRATION_COLUMNS
from licsync.reports.records import PROBLEM_COLUMNS, RUN_COLUMNS
from tests.builders import TenantBuilder

DOCS = Path(__file__).resolve().parents[2] / "docs" / "report-format.md"
LONG = "maximilian.oberhausenschneider-wittgenstein"
RULES = """
[[group_licenses]]
group = "Sales"
licenses = [{ sku = "ENTERPRISEPACK", disabled_plans = ["SWAY"] }]
"""


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    b = TenantBuilder().sku("ENTERPRISEPACK", enabled=10)
    b.user("müller").user(LONG).user("nolocation", location=None)
    b.user("ann", direct={"ENTERPRISEPACK": ["SWAY", "YAMMER_ENTERPRISE"]})
    b.group("Sales", members=["müller", LONG, "nolocation", "ann"])
    snapshot = tmp_path / "tenant.json"
    snapshot.write_bytes(orjson.dumps(b.snapshot()))
    config = tmp_path / "licsync.toml"
    config.write_text(RULES, encoding="utf-8")
    return snapshot, config


def _plan(files: tuple[Path, Path], fmt: str, output: Path) -> int:
    snapshot, config = files
    command = ["plan", "--snapshot", str(snapshot), "--config", str(config), "--format", fmt]
    return main([*command, "--output", str(output)])


def test_csv_has_a_bom_and_every_change_old_to_new_with_its_cause(files, tmp_path) -> None:
    out = tmp_path / "plan.csv"
    assert _plan(files, "csv", out) == ExitCode.PROBLEMS
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # Excel on Windows reads UTF-8 only with it
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    by_user = {r["userPrincipalName"].split("@")[0]: r for r in rows}
    assert by_user["müller"]["action"] == "add" and by_user["müller"]["source"] == "rule: Sales"
    update = by_user["ann"]
    assert update["action"] == "update"
    assert update["previousDisabledPlans"] == "SWAY;YAMMER_ENTERPRISE"
    assert update["disabledPlans"] == "SWAY"  # the union: the rule enables Yammer
    assert update["source"] == "rule: Sales;direct"
    problem = by_user["nolocation"]
    assert problem["error"] == "ProhibitedInUsageLocationViolation" and problem["group"] == "Sales"


def test_every_csv_column_is_in_the_one_vocabulary_and_documented() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    headers = [PLAN_COLUMNS + WRITE_COLUMNS, MIGRATION_COLUMNS, PROBLEM_COLUMNS, RUN_COLUMNS]
    for columns in headers:
        for column in columns:
            assert column in COLUMNS, column
            assert f"`{column}`" in docs, f"{column} is not in docs/report-format.md"


def test_a_table_in_a_file_prints_brackets_and_never_wraps_a_name(files, tmp_path) -> None:
    out = tmp_path / "plan.txt"
    _plan(files, "table", out)
    text = out.read_text(encoding="utf-8")
    assert "[policy] usage_location" in text  # not swallowed as rich markup
    assert f"{LONG}@contoso.example" in text  # on one line
    assert "müller@contoso.example" in text


def test_the_html_report_is_one_self_contained_page(files, tmp_path) -> None:
    out = tmp_path / "plan.html"
    assert _plan(files, "html", out) == ExitCode.PROBLEMS
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    # nothing to fetch when opened: no external scripts, styles, images or fonts
    assert not re.search(r"<(script|img|link|iframe)[^>]+(src|href)=", page)
    assert "@import" not in page and "url(" not in page
    assert page.count("<script") == 2  # the data and the code, both inline
    assert "müller@contoso.example" in page and "Office 365 E3" in page
    assert "learn.microsoft.com/entra/identity/users/licensing-groups-resolve-problems" in page


def test_html_data_cannot_close_its_script_element(tmp_path) -> None:
    b = TenantBuilder().sku("ENTERPRISEPACK", enabled=10).user("x</script><b>boom")
    b.group("Sales", members=["x</script><b>boom"])
    snapshot = tmp_path / "tenant.json"
    snapshot.write_bytes(orjson.dumps(b.snapshot()))
    config = tmp_path / "licsync.toml"
    config.write_text(RULES, encoding="utf-8")
    out = tmp_path / "plan.html"
    _plan((snapshot, config), "html", out)
    page = out.read_text(encoding="utf-8")
    assert "</script><b>" not in page
    data = page.split('id="report-data">')[1].split("</script>")[0]
    assert "x</script><b>boom@contoso.example" in orjson.loads(data)["strings"]


def test_xlsx_holds_the_csv_rows_and_needs_an_output_file(files, tmp_path, capsys) -> None:
    csv_out, xlsx_out = tmp_path / "plan.csv", tmp_path / "plan.xlsx"
    _plan(files, "csv", csv_out)
    assert _plan(files, "xlsx", xlsx_out) == ExitCode.PROBLEMS
    rows = list(csv.reader(io.StringIO(csv_out.read_text(encoding="utf-8-sig"))))
    with zipfile.ZipFile(xlsx_out) as book:
        shared = book.read("xl/sharedStrings.xml").decode("utf-8")
        sheet = book.read("xl/worksheets/sheet1.xml").decode("utf-8")
    assert sheet.count("<row ") == len(rows)  # the header and every row
    for cell in {c for row in rows for c in row if c}:
        assert cell.replace("&", "&amp;") in shared, cell
    snapshot, config = files
    command = ["plan", "--snapshot", str(snapshot), "--config", str(config), "--format", "xlsx"]
    assert main(command) == ExitCode.BAD_INPUT
    assert "give --output PATH" in capsys.readouterr().err
