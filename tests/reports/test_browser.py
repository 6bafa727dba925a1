"""The HTML report in a real browser: it opens without errors or network requests, its headline
equals the JSON report's summary, and its search and filters find what they should."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from licsync.reports.changes import change_rows
from licsync.reports.html_page import ReportContext
from licsync.reports.html_report import plan_html
from licsync.reports.json_report import plan_document
from tests.reports.browser import opened
from tests.reports.planned import planned

pytestmark = pytest.mark.slow  # headless Chromium


def _write(folder: Path, planned_tenant) -> Path:
    report = folder / "report.html"
    context = ReportContext("plan", "demo", str(planned_tenant.config))
    report.write_bytes(plan_html(planned_tenant.plan, planned_tenant.names, context))
    return report


def _count(page, table: str) -> str:
    return page.locator(f"#table-{table} [data-role=count]").text_content()


def _set_count(page, table: str, before: str) -> str:
    """The row count once the table has redrawn after a filter change (debounced search)."""
    selector = f"#table-{table} [data-role=count]"
    page.wait_for_function(
        "([s, b]) => document.querySelector(s).textContent != b", arg=[selector, before]
    )
    return _count(page, table)


def test_the_demo_report_opens_and_its_headline_matches_the_json_report(demo, tmp_path) -> None:
    report = _write(tmp_path, demo)
    summary = plan_document(demo.plan, demo.names)["summary"]
    errors: list[str] = []
    with opened(report, errors) as page:
        cards = page.locator("#headline .card")
        shown = {
            cards.nth(i).get_attribute("data-key"): int(cards.nth(i).locator("b").text_content())
            for i in range(cards.count())
        }
        assert shown and all(shown[k] == summary[k] for k in shown), (shown, summary)
        assert page.locator(".seat svg").count() >= 5
        screenshot = tmp_path / "report.png"
        page.screenshot(path=str(screenshot))
    assert errors == []
    assert screenshot.read_bytes().startswith(b"\x89PNG") and screenshot.stat().st_size > 20_000


def test_the_search_and_filters_find_the_right_rows(demo, tmp_path) -> None:
    rows = list(change_rows(demo.plan, demo.names))
    user = rows[0].user_principal_name
    mine = sum(1 for r in rows if r.user_principal_name == user)
    errors: list[str] = []
    with opened(_write(tmp_path, demo), errors) as page:
        total = len(rows)
        assert _count(page, "changes") == f"{total} of {total} rows"
        search = page.locator("#table-changes [data-role=search]")
        search.fill(user)
        assert _set_count(page, "changes", f"{total} of {total} rows") == f"{mine} of {total} rows"
        cells = page.locator("#table-changes tbody td:first-child").all_text_contents()
        assert cells and set(cells) == {user}
        search.fill("")
        _set_count(page, "changes", f"{mine} of {total} rows")
        kinds = Counter(p.error.value for p in demo.plan.problems)
        error, count = kinds.most_common(1)[0]
        problems = len(demo.plan.problems)
        select = page.locator("#table-problems select[data-column=Error]")
        value = select.locator("option", has_text=error).get_attribute("value")
        select.select_option(value)
        assert _count(page, "problems") == f"{count} of {problems} rows"
        tags = page.locator("#table-problems tbody .tag").all_text_contents()
        assert tags and set(tags) == {error}
        assert len(tags) == min(count, 100)  # one page of 100 rows at most in the DOM
    assert errors == []


def test_a_100k_user_report_opens_without_errors(tmp_path) -> None:
    big = planned(tmp_path, 100_000, 1000, 500, 7)
    report = _write(tmp_path, big)
    assert report.stat().st_size < 20_000_000
    errors: list[str] = []
    with opened(report, errors) as page:
        total = len(big.plan.problems)
        assert _count(page, "problems") == f"{total} of {total} rows"
        assert page.locator("#table-problems tbody tr").count() == 100
        page.locator("#table-problems [data-role=next]").click()
        assert page.locator("#table-problems [data-role=page]").text_content().startswith("page 2")
    assert errors == []
