"""`licsync sync` end to end: real HTTP against the in-process Graph emulator, a real SQLite
state store, the real engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

import licsync.connector.sync
from licsync.cli import main
from licsync.emulator.generate import generate_rules
from licsync.emulator.server import Emulator
from licsync.errors import GuardrailError
from licsync.exitcodes import ExitCode
from licsync.model import LicenseError, Plan, Tenant
from licsync.outcomes import WriteOutcome
from licsync.snapshot import tenant_from_json
from licsync.store import open_store
from tests.builders import catalogue_plan_id as plan_id
from tests.builders import catalogue_sku_id as sku_id
from tests.builders import group_id, user_id
from tests.syncing import direct_licences, make_config, sync

E3 = "SPE_E3"


def expected_direct(tenant: Tenant, plan: Plan) -> dict[str, dict[str, frozenset[str]]]:
    """Each user's direct assignments once the plan's changes are applied."""
    result = {}
    for uid, user in tenant.users.items():
        result[uid] = dict(user.direct_licenses())
    for change in plan.changes:
        mine = result[change.user_id]
        for sku in change.remove_licenses:
            mine.pop(sku, None)
        for a in change.add_licenses:
            mine[a.sku_id] = a.disabled_plans
    return result


# --- a generated tenant ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated() -> Emulator:
    with Emulator(users=3000, groups=60, seed=11) as graph:
        with graph.tenant.lock:  # the generator leaves most SKUs nearly full: buy seats
            for sku in graph.tenant.skus.values():
                sku.enabled += 3000
        yield graph


@pytest.mark.slow
def test_first_sync_applies_exactly_the_plan_and_second_changes_nothing(
    generated: Emulator, tmp_path: Path
) -> None:
    rules = generate_rules(generated.snapshot(), 20, 11)
    config = make_config(tmp_path, generated, rules)

    preview = sync(config, dry_run=True)
    assert preview.plan.changes, "the generated rules should change something"
    with open_store(str(tmp_path / "state.db")) as store:
        assert store.list_runs() == [] and store.load_ledger() == {}

    first = sync(config)
    assert [c.user_id for c in first.plan.changes] == [c.user_id for c in preview.plan.changes]
    assert sum(len(c.add_licenses) for c in first.plan.changes) > 400
    assert any(r.get("nested") for r in rules)
    # Graph accepted every write: the engine predicted every refusal as a problem instead.
    assert first.failed_users == ()
    assert len(first.succeeded_users) == len(first.plan.changes)
    expected = expected_direct(first.tenant, first.plan)
    assert direct_licences(generated) == expected

    with open_store(str(tmp_path / "state.db")) as store:
        runs = store.list_runs()
        assert [r.id for r in runs] == [first.run_id]
        assert runs[0].summary["users_failed"] == 0
        ledger = store.load_ledger()
        assert ledger == first.plan.ledger
        changes = store.list_changes(run_id=first.run_id)
        assert changes and all(c.request_id and c.outcome is WriteOutcome.APPLIED for c in changes)
        open_problems = {(p.user_id, p.sku_id, p.error) for p in store.list_problems()}
        assert {(p.user_id, p.sku_id, p.error) for p in first.plan.problems} == open_problems
        assert store.current_lease() is None

    second = sync(config)  # nothing left to do
    assert second.plan.changes == () and second.outcomes == []
    assert direct_licences(generated) == expected
    with open_store(str(tmp_path / "state.db")) as store:
        assert store.load_ledger() == ledger


# --- membership changes on a small tenant ------------------------------------------------------

RULES = [
    {"group": "Group 1", "licenses": [{"sku": E3, "disabled_plans": ["SWAY"]}]},
    {"group": group_id(2), "licenses": [{"sku": E3, "disabled_plans": ["YAMMER_ENTERPRISE"]}]},
]


@pytest.mark.parametrize(
    "small",
    [
        {
            "members": {1: [1, 2, 3, 4], 2: [5]},
            "direct": {4: [(E3, ["WHITEBOARD_PLAN2"])]},
        }
    ],
    indirect=True,
)
def test_membership_changes_converge(small: Emulator, tmp_path: Path) -> None:
    config = make_config(tmp_path, small, RULES)
    e3 = sku_id(E3)
    sway, yammer = plan_id(E3, "SWAY"), plan_id(E3, "YAMMER_ENTERPRISE")
    whiteboard = plan_id(E3, "WHITEBOARD_PLAN2")

    first = sync(config)
    assert first.exit_code == ExitCode.OK
    lic = direct_licences(small)
    assert lic[user_id(1)] == {e3: frozenset({sway})}
    assert lic[user_id(5)] == {e3: frozenset({yammer})}
    # taken over: plans enabled by either source stay on; the prior is kept in the ledger
    assert lic[user_id(4)] == {e3: frozenset()}
    assert lic[user_id(6)] == {}

    small.tenant.add_member(group_id(1), user_id(6))  # join
    small.tenant.remove_member(group_id(1), user_id(2))  # leave
    small.tenant.remove_member(group_id(1), user_id(3))  # move to a group with other plans off
    small.tenant.add_member(group_id(2), user_id(3))
    small.tenant.remove_member(group_id(1), user_id(4))  # leave, keeping the direct licence

    second = sync(config)
    assert second.failed_users == ()
    lic = direct_licences(small)
    assert lic[user_id(6)] == {e3: frozenset({sway})}
    assert lic[user_id(2)] == {}
    assert lic[user_id(3)] == {e3: frozenset({yammer})}
    assert lic[user_id(4)] == {e3: frozenset({whiteboard})}
    assert lic[user_id(1)] == {e3: frozenset({sway})}

    third = sync(config)
    assert third.plan.changes == ()
    with open_store(str(tmp_path / "state.db")) as store:
        ledger = store.load_ledger()
        assert (user_id(4), e3) not in ledger
        assert (user_id(2), e3) not in ledger
        assert ledger[(user_id(3), e3)].groups == (group_id(2),)
        assert len(store.list_runs()) == 3


@pytest.mark.parametrize("small", [{"members": {1: [1, 2], 2: [3], 3: [4]}}], indirect=True)
def test_nested_rule_reads_child_groups_through_a_cycle(small: Emulator, tmp_path: Path) -> None:
    small.tenant.add_member(group_id(3), group_id(1))
    small.tenant.add_member(group_id(1), group_id(2))
    small.tenant.add_member(group_id(2), group_id(3))  # 3 → 1 → 2 → 3
    rules = [{"group": "Group 3", "nested": True, "licenses": [{"sku": "POWER_BI_PRO"}]}]
    config = make_config(tmp_path, small, rules)
    result = sync(config)
    bi = sku_id("POWER_BI_PRO")
    lic = direct_licences(small)
    assert {u for u in lic if bi in lic[u]} == {user_id(n) for n in (1, 2, 3, 4)}
    assert result.tenant.groups[group_id(2)].member_groups == (group_id(3),)
    # direct members stay direct: nesting is resolved by the engine, not the reader
    assert result.tenant.groups[group_id(1)].member_users == (user_id(1), user_id(2))


# --- the guardrail -----------------------------------------------------------------------------


@pytest.mark.parametrize("small", [{"members": {1: [1, 2, 3, 4, 5, 6]}}], indirect=True)
def test_guardrail_stops_before_any_write(small: Emulator, tmp_path: Path) -> None:
    config = make_config(tmp_path, small, RULES[:1], guardrail=(2, 100.0))
    sync(config)
    before = direct_licences(small)
    with open_store(str(tmp_path / "state.db")) as store:
        ledger, runs = store.load_ledger(), store.list_runs()

    for n in (1, 2, 3):
        small.tenant.remove_member(group_id(1), user_id(n))
    with pytest.raises(GuardrailError, match="--allow-removals 3"):
        sync(config)
    assert direct_licences(small) == before
    with open_store(str(tmp_path / "state.db")) as store:
        assert store.load_ledger() == ledger
        stopped, *earlier = store.list_runs()
        assert earlier == runs  # the stopped run is recorded, with nothing it wrote
        assert (stopped.status, stopped.exit_code, stopped.phase) == ("stopped", 6, "plan")
        assert stopped.error is not None and "--allow-removals 3" in stopped.error
        assert store.list_changes(run_id=stopped.id) == []
        assert store.current_lease() is None

    # too small an approval still stops; the right one goes through
    with pytest.raises(GuardrailError):
        sync(config, allow_removals=2)
    approved = sync(config, allow_removals=3)
    assert approved.guardrail.removals == 3
    assert all(direct_licences(small)[user_id(n)] == {} for n in (1, 2, 3))


@pytest.mark.parametrize("small", [{"members": {1: [1, 2]}}], indirect=True)
def test_a_rule_group_reading_empty_is_suspicious(small: Emulator, tmp_path: Path) -> None:
    config = make_config(tmp_path, small, RULES[:1])  # generous removal limits
    sync(config)
    before = direct_licences(small)
    for n in (1, 2):
        small.tenant.remove_member(group_id(1), user_id(n))
    with pytest.raises(GuardrailError, match="reads empty"):
        sync(config)
    assert direct_licences(small) == before
    sync(config, allow_removals=2)
    assert direct_licences(small)[user_id(1)] == {}


# --- problems ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "small", [{"members": {1: [1, 2, 3, 4]}, "seats": {"SPE_E3": 2}}], indirect=True
)
def test_problems_are_recorded_and_resolve_when_fixed(small: Emulator, tmp_path: Path) -> None:
    config = make_config(tmp_path, small, RULES[:1])
    e3 = sku_id(E3)
    first = sync(config)
    assert first.exit_code == ExitCode.PROBLEMS
    with open_store(str(tmp_path / "state.db")) as store:
        problems = store.list_problems()
    assert len(problems) == 2
    assert {p.error for p in problems} == {LicenseError.COUNT_VIOLATION}
    assert {p.sku_id for p in problems} == {e3}
    short = {p.user_id for p in problems}
    assert all(direct_licences(small)[u] == {} for u in short)

    again = sync(config)  # still short: the same records, one more attempt
    assert again.exit_code == ExitCode.PROBLEMS
    with open_store(str(tmp_path / "state.db")) as store:
        problems = store.list_problems()
    assert len(problems) == 2 and all(p.attempts == 2 for p in problems)

    with small.tenant.lock:
        small.tenant.skus[e3].enabled = 10  # the operator buys seats
    fixed = sync(config)
    assert fixed.exit_code == ExitCode.OK
    assert set(fixed.succeeded_users) == short
    with open_store(str(tmp_path / "state.db")) as store:
        assert store.list_problems() == []
        resolved = store.list_problems(include_resolved=True)
    assert {p.user_id for p in resolved} == short
    assert all(p.resolved_run_id == fixed.run_id for p in resolved)
    assert all(direct_licences(small)[u] == {e3: frozenset({plan_id(E3, "SWAY")})} for u in short)


@pytest.mark.parametrize("small", [{"members": {1: [1, 2]}, "seats": {E3: 2}}], indirect=True)
def test_a_refused_write_becomes_a_problem_and_keeps_the_old_ledger(
    small: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone takes a seat between licsync's read and its writes: Graph refuses one user."""
    config = make_config(tmp_path, small, RULES[:1])
    e3 = sku_id(E3)
    real_read = licsync.connector.sync.read_tenant

    async def read_then_steal(*args: Any, **kwargs: Any) -> Tenant:
        tenant = await real_read(*args, **kwargs)
        body = {"addLicenses": [{"skuId": e3, "disabledPlans": []}], "removeLicenses": []}
        small.tenant.assign_user_license(user_id(9), body)
        return tenant

    monkeypatch.setattr(licsync.connector.sync, "read_tenant", read_then_steal)
    result = sync(config)
    monkeypatch.undo()
    assert len(result.plan.changes) == 2
    assert len(result.succeeded_users) == 1 and len(result.failed_users) == 1
    assert result.exit_code == ExitCode.PROBLEMS
    loser = result.failed_users[0]
    with open_store(str(tmp_path / "state.db")) as store:
        problems = store.list_problems()
        ledger = store.load_ledger()
        changes = store.list_changes(user_id=loser)
    assert [(p.user_id, p.sku_id, p.error) for p in problems] == [
        (loser, e3, LicenseError.COUNT_VIOLATION)
    ]
    assert (loser, e3) not in ledger and (result.succeeded_users[0], e3) in ledger
    assert [(c.outcome, c.request_id is not None) for c in changes] == [(WriteOutcome.FAILED, True)]

    with small.tenant.lock:
        small.tenant.skus[e3].enabled = 3
    fixed = sync(config)
    assert fixed.succeeded_users == (loser,)
    with open_store(str(tmp_path / "state.db")) as store:
        assert store.list_problems() == []
        assert (loser, e3) in store.load_ledger()


# --- the command line --------------------------------------------------------------------------


@pytest.mark.parametrize("small", [{"members": {1: [1, 2, 3]}}], indirect=True)
def test_cli_dry_run_then_sync(
    small: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config(tmp_path, small, RULES[:1], guardrail=(1, 100.0))
    path = str(config.path)
    assert main(["sync", "--config", path, "--dry-run", "--format", "json"]) == ExitCode.OK
    report = orjson.loads(capsys.readouterr().out)
    assert isinstance(report, dict)
    assert direct_licences(small)[user_id(1)] == {}
    assert not open_store(str(tmp_path / "state.db")).list_runs()

    assert main(["sync", "--config", path, "--format", "json"]) == ExitCode.OK
    captured = capsys.readouterr()
    report = orjson.loads(captured.out)
    assert report["run"]["writes_succeeded"] == 3
    assert len(report["writes"]) == 3  # the sync's report lists every write with its outcome
    assert {w["outcome"] for w in report["writes"]} == {"applied"}
    assert all(w["requestId"] and w["httpStatus"] == 200 for w in report["writes"])
    assert "client_secret" not in captured.err
    assert '"event": "licence.write"' in captured.err  # JSON log lines, stderr not a terminal

    for n in (1, 2):
        small.tenant.remove_member(group_id(1), user_id(n))
    assert main(["sync", "--config", path]) == ExitCode.GUARDRAIL
    assert "--allow-removals 2" in capsys.readouterr().err
    assert main(["sync", "--config", path, "--allow-removals", "2"]) == ExitCode.OK


def test_plan_against_graph_is_the_offline_plan_of_the_same_tenant(
    generated: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`licsync plan --config` reads Graph; `--snapshot` of what Graph serves gives the same
    report, and the same exit code; neither writes anything."""
    config = make_config(tmp_path, generated, generate_rules(generated.snapshot(), 20, 11))
    snapshot = tmp_path / "tenant.json"
    generated.save(snapshot)
    writes = generated.stats.writes
    args = ["plan", "--config", str(config.path), "--format", "json"]
    online_code = main(args)
    online = orjson.loads(capsys.readouterr().out)
    offline_code = main([*args, "--snapshot", str(snapshot)])
    offline = orjson.loads(capsys.readouterr().out)
    assert online["problems"] and online_code == offline_code == ExitCode.PROBLEMS
    assert online == offline
    assert not (tmp_path / "state.db").exists() and generated.stats.writes == writes


def test_snapshot_saves_what_licsync_reads_and_replays_in_the_emulator(
    generated: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`licsync snapshot` writes the tenant as read through Graph: planning the file offline
    gives the report planning Graph gives; with --all-groups, the emulator replays the file as
    the same tenant."""
    config = make_config(tmp_path, generated, generate_rules(generated.snapshot(), 20, 11))
    saved, everything = tmp_path / "saved.json", tmp_path / "all.json"
    assert main(["snapshot", "--config", str(config.path), "--output", str(saved)]) == 0
    args = ["plan", "--config", str(config.path), "--format", "json"]
    main(args)
    online = orjson.loads(capsys.readouterr().out)
    main([*args, "--snapshot", str(saved)])
    assert orjson.loads(capsys.readouterr().out) == online

    command = ["snapshot", "--config", str(config.path), "--output", str(everything)]
    assert main([*command, "--all-groups"]) == 0
    original = generated.snapshot()
    with Emulator(everything) as replay:
        again = replay.snapshot()
    # every property licsync reads (not lastUpdatedDateTime and other extras) is the same
    assert tenant_from_json(again).users == tenant_from_json(original).users

    def members(snapshot: dict[str, Any]) -> dict[str, list[str]]:  # devices are not kept
        kinds = ("#microsoft.graph.user", "#microsoft.graph.group")
        return {
            g["id"]: sorted(m["id"] for m in g["members"] if m["@odata.type"] in kinds)
            for g in snapshot["groups"]
        }

    assert members(again) == members(original)
    assert not (tmp_path / "state.db").exists()


@pytest.mark.parametrize("small", [{"members": {1: [1, 2]}}], indirect=True)
@pytest.mark.parametrize("debug", ["", "--debug", "LICSYNC_LOG_LEVEL=debug"])
def test_a_bug_in_the_write_path_is_exit_1_with_one_line_never_a_graph_refusal(
    small: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    debug: str,
) -> None:
    from licsync.connector.licence_writes import AssignLicense

    def broken(self: AssignLicense) -> Any:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(AssignLicense, "request", broken)
    if debug.startswith("LICSYNC_LOG_LEVEL"):
        monkeypatch.setenv(*debug.split("="))
    config = make_config(tmp_path, small, RULES[:1])
    args = ["sync", "--config", str(config.path), "--format", "json"]
    code = main(["--debug", *args] if debug == "--debug" else args)

    assert code == ExitCode.FAILURE
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("licsync: ")]
    assert lines == [
        "licsync: error: unexpected ZeroDivisionError: division by zero "
        "(a bug in licsync; --debug logs the traceback)"
    ]
    assert "Graph refused" not in err and "writes stopped" not in err
    assert ("Traceback (most recent call last)" in err) is bool(debug)
    assert ("in broken" in err) is bool(debug)
