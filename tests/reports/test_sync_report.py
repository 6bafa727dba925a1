"""A real sync reports what it did: every write with its outcome, Graph's request id and the
problem, in table, JSON, CSV and HTML (the HTML one opened in Chromium)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import orjson
import pytest

import licsync.connector.sync
from licsync.commands.common import write_sync_report
from licsync.connector.progress import Progress
from licsync.connector.sync import SyncResult
from licsync.model import Tenant
from tests.builders import catalogue_sku_id as sku_id
from tests.builders import small_snapshot, user_id
from tests.reports.browser import opened
from tests.syncing import make_config, sync

E3 = "SPE_E3"


@pytest.fixture
def refused(emulator_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A sync of two users where Graph refuses one: someone takes the last seat between
    licsync's read and its writes."""
    graph = emulator_factory(small_snapshot(seats={E3: 2}, members={1: [1, 2]}))
    rule = {"group": "Group 1", "licenses": [{"sku": E3}]}
    config = make_config(tmp_path, graph, [rule])
    real_read = licsync.connector.sync.read_tenant

    async def read_then_steal(*args: Any, **kwargs: Any) -> Tenant:
        tenant = await real_read(*args, **kwargs)
        body = {"addLicenses": [{"skuId": sku_id(E3), "disabledPlans": []}], "removeLicenses": []}
        graph.tenant.assign_user_license(user_id(9), body)
        return tenant

    monkeypatch.setattr(licsync.connector.sync, "read_tenant", read_then_steal)
    result = sync(config)
    monkeypatch.undo()
    assert len(result.outcomes) == 2 and len(result.failed_users) == 1
    return config, result


def _report(refused, fmt: str, output: Path) -> bytes:
    config, result = refused
    write_sync_report(result, config, fmt, output)
    return output.read_bytes()


def test_the_json_report_lists_every_write_with_its_outcome(refused, tmp_path) -> None:
    _, result = refused
    doc = orjson.loads(_report(refused, "json", tmp_path / "sync.json"))
    assert doc["version"] == 1 and doc["run"] == orjson.loads(orjson.dumps(result.summary()))
    writes = {w["userId"]: w for w in doc["writes"]}
    assert len(writes) == 2
    ok, bad = writes[result.succeeded_users[0]], writes[result.failed_users[0]]
    assert (ok["outcome"], ok["httpStatus"], ok["error"]) == ("applied", 200, None)
    assert (bad["outcome"], bad["error"]) == ("failed", "CountViolation")
    assert bad["requestId"] and ok["requestId"] and bad["message"]


def test_the_csv_and_table_reports_say_what_each_write_did(refused, tmp_path) -> None:
    _, result = refused
    data = _report(refused, "csv", tmp_path / "sync.csv").decode("utf-8-sig")
    rows = {r["userId"]: r for r in csv.DictReader(io.StringIO(data))}
    assert rows[result.succeeded_users[0]]["outcome"] == "applied"
    failed = rows[result.failed_users[0]]
    assert (failed["outcome"], failed["error"]) == ("failed", "CountViolation")
    assert failed["requestId"] and failed["httpStatus"]
    table = _report(refused, "table", tmp_path / "sync.txt").decode("utf-8")
    assert "Writes (2): 1 applied, 1 failed" in table
    assert "writes_succeeded: 1" in table


def test_the_html_report_of_a_sync_opens_with_its_writes(refused, tmp_path) -> None:
    result: SyncResult = refused[1]
    report = tmp_path / "sync.html"
    _report(refused, "html", report)
    errors: list[str] = []
    with opened(report, errors) as page:
        applied = page.locator("#headline [data-key=writesSucceeded] b").text_content()
        assert int(applied) == result.summary()["writes_succeeded"] == 1
        assert page.locator("#table-writes tbody tr").count() == 2
        outcomes = page.locator("#table-changes tbody .tag.failed").count()
        assert outcomes == 1
    assert errors == []


@pytest.mark.parametrize("shown", [True, False])
def test_a_progress_bar_counts_the_writes_only_when_asked(
    emulator_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shown: bool
) -> None:
    graph = emulator_factory(small_snapshot(seats={E3: 10}, members={1: [1, 2, 3]}))
    config = make_config(tmp_path, graph, [{"group": "Group 1", "licenses": [{"sku": E3}]}])
    seen: list[tuple[str, int | None]] = []
    real = Progress.advance

    def advance(self: Progress, what: str, n: int = 1, total: int | None = None) -> None:
        if self._progress is not None:
            seen.append((what, total))
        real(self, what, n, total)

    monkeypatch.setattr(Progress, "advance", advance)
    result = sync(config, progress=shown)
    assert len(result.outcomes) == 3
    expected = [("writes", 3)] * 3 if shown else []
    assert [s for s in seen if s[0] == "writes"] == expected
