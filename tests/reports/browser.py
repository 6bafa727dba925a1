"""Headless Chromium for the report tests: Debian's `chromium`, driven by Playwright (no
browser download). `.ci/run` installs it; elsewhere the tests skip when it is missing."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("LICSYNC_TEST_CHROMIUM") or shutil.which("chromium") or ""


@contextmanager
def opened(report: Path, errors: list[str]) -> Iterator[Any]:
    """A Chromium page showing `report`, ready; console errors and page errors go to `errors`."""
    if not CHROMIUM:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on(
                "request",
                lambda r: (
                    None
                    if r.url.startswith(("file:", "data:"))
                    else errors.append(f"network request: {r.url}")
                ),
            )
            page.goto(report.as_uri())
            page.wait_for_selector("body[data-ready=true]", timeout=60_000)
            yield page
        finally:
            browser.close()
