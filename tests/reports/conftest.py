"""Generated tenants planned once per test session (tests/reports/planned.py)."""

from __future__ import annotations

import pytest

from tests.reports.planned import Planned, planned


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Planned:
    """The demo tenant (`licsync demo`'s defaults), planned offline."""
    return planned(tmp_path_factory.mktemp("demo"), 300, 30, 8, 1)


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Planned:
    """A larger generated tenant with more rules: seats run out, conflicts, usage locations."""
    return planned(tmp_path_factory.mktemp("generated"), 4000, 150, 60, 7)
