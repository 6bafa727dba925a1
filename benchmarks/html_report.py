"""Size and opening time of `licsync plan --format html` on generated tenants.

    python benchmarks/html_report.py [--users 10000 100000] [--screenshot docs/html-report.png]

For each size: generate a tenant and rules, plan, render the HTML report (time, size), then open
it in headless Chromium (Debian's `chromium`, driven by Playwright) and time until the page is
ready, and a search over every change. `--screenshot` also renders the demo tenant's report
(`licsync demo`'s defaults) and saves a screenshot of it for the docs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"


def build(
    folder: Path,
    users: int,
    groups: int,
    rules: int,
    seed: int,
    enough: bool = False,
    label: str = "",
) -> tuple[Path, float, int]:
    """Plan a generated tenant and write its HTML report; the report's path, render time and
    rows (changes and problems). `enough`: every SKU gets seats for everyone."""
    import orjson

    from licsync.commands.demo import demo_rules_toml
    from licsync.config import load_config
    from licsync.connector.planning import make_plan
    from licsync.emulator.generate import generate_tenant
    from licsync.reports.html_page import ReportContext
    from licsync.reports.html_report import plan_html
    from licsync.reports.names import Names
    from licsync.snapshot import tenant_from_json

    data = generate_tenant(users, groups, seed)
    if enough:
        for sku in data["subscribedSkus"]:
            sku["prepaidUnits"]["enabled"] += users
    config = folder / "licsync.toml"
    config.write_text(demo_rules_toml(data, rules, seed), encoding="utf-8")
    tenant = tenant_from_json(orjson.loads(orjson.dumps(data)))
    plan = make_plan(tenant, load_config(config))
    start = time.perf_counter()
    html = plan_html(
        plan,
        Names(tenant),
        ReportContext("plan", label or f"generated, {users:,} users", "licsync.toml"),
    )
    took = time.perf_counter() - start
    report = folder / f"report-{users}.html"
    report.write_bytes(html)
    rows = sum(
        len(u.add_licenses) + len(u.remove_licenses) + bool(u.usage_location) for u in plan.changes
    )
    return report, took, rows + len(plan.problems)


def open_report(report: Path, screenshot: Path | None = None) -> tuple[float, float, list[str]]:
    """Seconds until the page is ready and for one search; console errors."""
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 1900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        start = time.perf_counter()
        page.goto(report.as_uri())
        page.wait_for_selector("body[data-ready=true]", timeout=120_000)
        ready = time.perf_counter() - start
        if screenshot is not None:
            page.screenshot(path=str(screenshot))
        count = page.locator("#table-changes [data-role=count]")
        before = count.text_content()
        start = time.perf_counter()
        page.locator("#table-changes [data-role=search]").fill("user1")
        page.wait_for_function(
            "b => document.querySelector('#table-changes [data-role=count]').textContent != b",
            arg=before,
        )
        searched = time.perf_counter() - start
        browser.close()
    return ready, searched, errors


def main() -> None:
    import gc

    from licsync.cli import GC_THRESHOLD

    gc.set_threshold(*GC_THRESHOLD)  # as the licsync command runs
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--screenshot", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.screenshot is not None:
            report, _, _ = build(folder, 300, 30, 8, 1, label="the demo tenant")
            open_report(report, args.screenshot)
            print(f"screenshot of the demo tenant's report: {args.screenshot}")
        print("users    rules  seats    rows     render   size      open     search  errors")
        for users in args.users:
            for enough in (False, True):
                rules = max(8, users // 200)
                report, took, rows = build(folder, users, rules * 2, rules, 7, enough)
                ready, searched, errors = open_report(report)
                size = report.stat().st_size / 1e6
                print(
                    f"{users:>7,}  {rules:>5}  {'enough' if enough else 'demo  '}  {rows:>7,}  "
                    f"{took:5.2f} s  {size:6.1f} MB  {ready:5.2f} s  {searched:5.2f} s  "
                    f"{len(errors)}"
                )
            if errors:
                print("\n".join(errors), file=sys.stderr)


if __name__ == "__main__":
    main()
