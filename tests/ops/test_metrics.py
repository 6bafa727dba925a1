"""`licsync sync --metrics-file`, the Pushgateway push and notifications, against the emulator
over real HTTP; the exposition is read back with prometheus-client's own parser."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from licsync.cli import main
from licsync.exitcodes import ExitCode
from tests.builders import ORG_ID, small_snapshot
from tests.syncing import config_text

RULES = [{"group": "Group 1", "licenses": [{"sku": "SPE_E3"}]}]
SHORT = {"members": {1: [1, 2, 3]}, "seats": {"SPE_E3": 2}}  # one user gets no seat


def samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, labels) -> value, parsed by prometheus-client."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(path.read_text())
        for s in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float:
    return found[(f"licsync_sync_{name}", tuple(sorted({"tenant": ORG_ID, **labels}.items())))]


def write_config(tmp_path: Path, graph, extra: str = "") -> Path:
    path = tmp_path / "licsync.toml"
    path.write_text(config_text(graph, tmp_path / "state.db", RULES) + extra, encoding="utf-8")
    return path


def test_the_metrics_file_describes_each_run(emulator_factory, tmp_path: Path) -> None:
    graph = emulator_factory(small_snapshot(**SHORT))
    config = write_config(tmp_path, graph)
    metrics = tmp_path / "licsync.prom"
    argv = ["sync", "--config", str(config), "--metrics-file", str(metrics)]

    assert main(argv) == ExitCode.PROBLEMS
    first = samples(metrics)
    assert value(first, "exit_code") == 10 and value(first, "success") == 1
    assert value(first, "outcome", outcome="problems") == 1
    assert value(first, "outcome", outcome="ok") == 0
    assert value(first, "read_incremental") == 0 and value(first, "read_users") == 10
    assert value(first, "writes", result="ok") == graph.stats.writes == 2
    assert value(first, "writes", result="failed") == 0
    assert value(first, "problems_open") == value(first, "problems_new") == 1
    assert value(first, "seats_short", sku="SPE_E3") == 1
    assert value(first, "duration_seconds") > 0

    assert main(argv) == ExitCode.PROBLEMS
    second = samples(metrics)
    assert value(second, "read_incremental") == 1
    assert value(second, "writes", result="ok") == 0
    assert (value(second, "problems_open"), value(second, "problems_new")) == (1, 0)
    assert value(second, "last_run_timestamp_seconds") >= value(first, "last_run_timestamp_seconds")


def test_a_failed_run_still_writes_its_metrics(emulator_factory, tmp_path: Path) -> None:
    graph = emulator_factory(small_snapshot(**SHORT))
    config = write_config(tmp_path, graph)
    assert main(["sync", "--config", str(config)]) == ExitCode.PROBLEMS
    other = small_snapshot(**SHORT)
    other["organization"]["id"] = "0b5c3f8e-2d4a-4c61-9e7f-5a1b2c3d4e5f"
    config = write_config(tmp_path, emulator_factory(other))  # the same store, another tenant
    metrics = tmp_path / "licsync.prom"
    code = main(["sync", "--config", str(config), "--metrics-file", str(metrics)])
    assert code == ExitCode.STATE
    found = samples(metrics)
    labels = {"tenant": "unknown"}
    assert found[("licsync_sync_exit_code", tuple(labels.items()))] == 4
    assert found[("licsync_sync_success", tuple(labels.items()))] == 0
    assert found[("licsync_sync_outcome", (("outcome", "state_error"), *labels.items()))] == 1
    assert not any(name == "licsync_sync_problems_open" for name, _ in found)  # unknown


def test_metrics_are_pushed_to_the_pushgateway_with_basic_auth(
    emulator_factory, tmp_path: Path, receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LICSYNC_PUSHGATEWAY_USERNAME", "ops")
    monkeypatch.setenv("LICSYNC_PUSHGATEWAY_PASSWORD", "pw-from-env")
    graph = emulator_factory(small_snapshot(**SHORT))
    config = write_config(
        tmp_path, graph, f'\n[metrics]\npushgateway_url = "{receiver.url}"\njob = "licsync-a"\n'
    )
    assert main(["sync", "--config", str(config)]) == ExitCode.PROBLEMS
    (push,) = [r for r in receiver.requests if r.path.startswith("/metrics")]
    assert push.method == "PUT"
    assert push.path == f"/metrics/job/licsync-a/tenant/{ORG_ID}"
    assert push.headers["Authorization"] == "Basic " + base64.b64encode(b"ops:pw-from-env").decode()
    families = {f.name: f for f in text_string_to_metric_families(push.body.decode())}
    assert families["licsync_sync_exit_code"].samples[0].value == 10


def test_an_unreachable_pushgateway_does_not_change_the_outcome(
    emulator_factory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    graph = emulator_factory(small_snapshot(**SHORT))
    config = write_config(tmp_path, graph, '\n[metrics]\npushgateway_url = "http://127.0.0.1:9"\n')
    assert main(["sync", "--config", str(config)]) == ExitCode.PROBLEMS
    assert "metrics.push_failed" in capsys.readouterr().err


def test_new_problems_and_failures_are_notified(
    emulator_factory, tmp_path: Path, receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LICSYNC_NOTIFY_URLS", f"json://{receiver.url.split('://')[1]}/hook")
    graph = emulator_factory(small_snapshot(**SHORT))
    config = write_config(tmp_path, graph)
    assert main(["sync", "--config", str(config)]) == ExitCode.PROBLEMS
    (first,) = receiver.requests
    message = json.loads(first.body)
    assert (first.method, first.path) == ("POST", "/hook")
    assert message["title"] == "licsync sync: 1 new problem record(s)"
    assert f"tenant: {ORG_ID}" in message["message"] and message["type"] == "warning"

    assert main(["sync", "--config", str(config)]) == ExitCode.PROBLEMS
    assert len(receiver.requests) == 1  # the same problem is not news

    graph.stop()  # Graph unreachable now
    config.write_text(config.read_text().replace("write_rate = 100", "max_attempts = 1"))
    assert main(["sync", "--config", str(config)]) == ExitCode.GRAPH
    failure = json.loads(receiver.requests[-1].body)
    assert failure["title"] == "licsync sync: failed (graph_error, exit 5)"
    assert failure["type"] == "failure" and "error: " in failure["message"]


def test_unusable_notification_urls_are_refused_before_the_run(
    emulator_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("LICSYNC_NOTIFY_URLS", "nosuchservice://token@host")
    graph = emulator_factory(small_snapshot(**SHORT))
    assert main(["sync", "--config", str(write_config(tmp_path, graph))]) == ExitCode.BAD_INPUT
    err = capsys.readouterr().err
    assert "URL #1 is not one apprise knows" in err and "token" not in err
    assert graph.stats.count("") == 0


def test_throttling_is_counted_from_the_429s_graph_sent(emulator_factory, tmp_path: Path) -> None:
    from licsync.emulator.throttle import FaultConfig

    faults = FaultConfig(rate=0.3, kinds=(429,), retry_after=0.05, seed=3)
    graph = emulator_factory(small_snapshot(**SHORT), faults=faults)
    config = write_config(tmp_path, graph)
    metrics = tmp_path / "licsync.prom"
    assert main(["sync", "--config", str(config), "--metrics-file", str(metrics)]) == 10
    found = samples(metrics)
    assert graph.stats.faults > 0
    assert value(found, "throttled") == graph.stats.faults  # every 429 it sent, counted once
    assert value(found, "throttle_wait_seconds") > 0


def test_a_dry_run_reports_its_predicted_problems(emulator_factory, tmp_path: Path) -> None:
    graph = emulator_factory(small_snapshot(**SHORT))
    metrics = tmp_path / "licsync.prom"
    argv = ["sync", "--config", str(write_config(tmp_path, graph)), "--dry-run"]
    assert main([*argv, "--metrics-file", str(metrics), "--output", str(tmp_path / "r")]) == 10
    found = samples(metrics)
    assert value(found, "dry_run") == 1 and value(found, "problems_open") == 1
    assert value(found, "writes", result="ok") == 0 and graph.stats.writes == 0


def test_an_unexpected_error_is_reported_as_failed(
    emulator_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import licsync.commands.sync as command

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(command, "run_sync", broken)
    metrics = tmp_path / "licsync.prom"
    config = write_config(tmp_path, emulator_factory(small_snapshot(**SHORT)))
    assert main(["sync", "--config", str(config), "--metrics-file", str(metrics)]) == 1
    found = samples(metrics)
    labels = (("outcome", "failed"), ("tenant", "unknown"))
    assert found[("licsync_sync_outcome", labels)] == 1
    assert found[("licsync_sync_exit_code", (("tenant", "unknown"),))] == 1


def test_seat_gauges_equal_the_reports_figures_and_the_last_success_stays(
    emulator_factory, tmp_path: Path
) -> None:
    """Group 1 licenses E3 (two seats for three members: one short) and Power BI, which the
    short user therefore does not get either (all or nothing per group: blocked)."""
    seats = {"SPE_E3": 2, "POWER_BI_PRO": 9}
    graph = emulator_factory(small_snapshot(members={1: [1, 2, 3]}, seats=seats))
    rules = [{"group": "Group 1", "licenses": [{"sku": "SPE_E3"}, {"sku": "POWER_BI_PRO"}]}]
    config = tmp_path / "licsync.toml"
    config.write_text(config_text(graph, tmp_path / "state.db", rules), encoding="utf-8")
    metrics, report = tmp_path / "licsync.prom", tmp_path / "report.json"
    argv = ["sync", "--config", str(config), "--metrics-file", str(metrics)]
    assert main([*argv, "--format", "json", "--output", str(report)]) == ExitCode.PROBLEMS
    found = samples(metrics)
    skus = {s["skuPartNumber"]: s for s in json.loads(report.read_text())["skus"]}
    assert (skus["SPE_E3"]["short"], skus["POWER_BI_PRO"]["blocked"]) == (1, 1)
    for part, sku in skus.items():
        assert value(found, "seats_short", sku=part) == sku["short"]
        assert value(found, "seats_blocked", sku=part) == sku["blocked"]
    tenant = (("tenant", ORG_ID),)
    status = {s: found[("licsync_last_run_status", (("status", s), *tenant))] for s in
              ("succeeded", "failed", "stopped", "interrupted")}  # fmt: skip
    assert status == {"succeeded": 1, "failed": 0, "stopped": 0, "interrupted": 0}
    succeeded_at = found[("licsync_last_success_timestamp_seconds", tenant)]
    assert succeeded_at > 0

    unreachable = config.read_text().replace(graph.url, "http://127.0.0.1:9/v1.0")
    config.write_text(unreachable.replace("write_rate", "max_attempts = 1\nwrite_rate"))
    assert main(argv) == ExitCode.GRAPH  # Graph unreachable: the run failed
    found = samples(metrics)
    unknown = (("tenant", "unknown"),)  # Graph never said which tenant
    assert found[("licsync_last_run_status", (("status", "failed"), *unknown))] == 1
    assert found[("licsync_last_run_status", (("status", "succeeded"), *unknown))] == 0
    assert found[("licsync_last_success_timestamp_seconds", unknown)] == succeeded_at
