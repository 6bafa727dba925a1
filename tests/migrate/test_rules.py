"""Target rules end to end: adopt into the ledger with no Graph write; rollback restores the
ledger; a later leave removes the adopted licence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from licsync.migrate import Target
from licsync.outcomes import EntryOutcome, WriteOutcome
from licsync.store import open_store
from tests.builders import catalogue_sku_id as sku_id
from tests.builders import group_id, small_snapshot, user_id
from tests.migrate.helpers import E3, apply, cli_apply, consumed, effective, reread, rollback
from tests.syncing import direct_licences, make_config, sync


def _ledger(tmp_path: Path) -> dict:
    store = open_store(str(tmp_path / "state.db"))
    try:
        return store.load_ledger()
    finally:
        store.close()


def test_adopt_then_rollback(emulator_factory: Any, tmp_path: Path) -> None:
    snap = small_snapshot(
        users=4,
        members={1: [1, 2, 3], 2: [2]},
        direct={1: [(E3, ["SWAY"])], 2: [(E3, [])], 3: [(E3, [])], 4: [(E3, [])]},
    )
    graph = emulator_factory(snap)
    rules = [
        {"group": "Group 1", "licenses": [{"sku": E3, "disabled_plans": ["SWAY"]}]},
        {"group": "Group 2", "licenses": [{"sku": E3}]},
    ]
    config = make_config(tmp_path, graph, rules)
    before, seats, directs = effective(graph), consumed(graph), direct_licences(graph)
    read_before = reread(config)
    graph.stats.reset()

    result = apply(config, Target.RULES, tmp_path)
    outcomes = {k[0]: str(v) for k, v in result.outcomes.items()}
    assert outcomes == {user_id(1): "applied", user_id(2): "applied"}
    reasons = {d.user_id: d.reason for d in result.decisions}
    assert reasons[user_id(3)] == "direct assignment enables SWAY, which no group source enables"
    assert reasons[user_id(4)] == f"not a member of any group that grants {E3}"
    assert graph.stats.writes == 0
    assert effective(graph) == before and consumed(graph) == seats
    ledger = _ledger(tmp_path)
    assert set(ledger) == {(user_id(1), sku_id(E3)), (user_id(2), sku_id(E3))}
    assert all(e.prior_direct is None for e in ledger.values())
    assert ledger[(user_id(2), sku_id(E3))].groups == tuple(sorted((group_id(1), group_id(2))))

    assert reread(config) == read_before
    adopted = _ledger(tmp_path)
    sync(config)  # the next sync finds the adopted licences as the rules want them
    assert effective(graph) == before and consumed(graph) == seats
    after_sync = _ledger(tmp_path)  # (it takes user 3's E3 over, keeping the prior direct)
    assert {k: after_sync[k] for k in adopted} == adopted and graph.stats.writes == 0

    back = rollback(config, tmp_path / "rollback.json")
    assert int(back.exit_code) == 0, back.problems
    assert set(back.outcomes.values()) == {EntryOutcome(WriteOutcome.APPLIED)}
    assert not set(adopted) & set(_ledger(tmp_path))
    assert direct_licences(graph) == directs and graph.stats.writes == 0
    assert effective(graph) == before and consumed(graph) == seats
    assert reread(config) == read_before

    again = rollback(config, tmp_path / "rollback.json")  # safe to run twice
    assert int(again.exit_code) == 0, again.problems
    assert set(again.outcomes.values()) == {EntryOutcome(WriteOutcome.SKIPPED, "already restored")}
    assert not set(adopted) & set(_ledger(tmp_path)) and graph.stats.writes == 0


def test_adopted_licence_leaves_with_the_group(emulator_factory: Any, tmp_path: Path) -> None:
    graph = emulator_factory(
        small_snapshot(users=2, members={1: [1, 2]}, direct={1: [(E3, [])], 2: [(E3, [])]})
    )
    config = make_config(tmp_path, graph, [{"group": "Group 1", "licenses": [{"sku": E3}]}])
    code = cli_apply(
        config,
        "rules",
        tmp_path / "rb.json",
        "--users",
        str(_users(tmp_path, user_id(1))),
        "--format",
        "csv",
        "--output",
        str(tmp_path / "r.csv"),
    )
    assert code == 0
    assert "user1@contoso.com" in (tmp_path / "r.csv").read_text()
    graph.tenant.remove_member(group_id(1), user_id(1))
    graph.tenant.remove_member(group_id(1), user_id(2))
    sync(config, allow_removals=10)
    after = direct_licences(graph)
    assert sku_id(E3) not in after[user_id(1)]  # adopted: licsync's now, so it left with the group
    assert sku_id(E3) in after[user_id(2)]  # not adopted: the admin's own assignment stays


def _users(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "users.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_rollback_undoes_what_a_later_sync_widened(emulator_factory: Any, tmp_path: Path) -> None:
    """The group grants SWAY, the direct assignment switched it off: after the adoption a sync
    switches it on (licsync's now); the rollback puts the direct assignment back exactly."""
    graph = emulator_factory(
        small_snapshot(users=1, members={1: [1]}, direct={1: [(E3, ["SWAY"])]})
    )
    config = make_config(tmp_path, graph, [{"group": "Group 1", "licenses": [{"sku": E3}]}])
    before, seats, directs = effective(graph), consumed(graph), direct_licences(graph)
    adopted = apply(config, Target.RULES, tmp_path).outcomes
    assert adopted == {(user_id(1), sku_id(E3)): EntryOutcome(WriteOutcome.APPLIED)}
    sync(config)
    assert direct_licences(graph)[user_id(1)][sku_id(E3)] == frozenset()  # SWAY on now

    back = rollback(config, tmp_path / "rollback.json")
    assert int(back.exit_code) == 0, back.problems
    assert back.outcomes == {(user_id(1), sku_id(E3)): EntryOutcome(WriteOutcome.APPLIED)}
    assert direct_licences(graph) == directs and _ledger(tmp_path) == {}
    assert effective(graph) == before and consumed(graph) == seats
    again = rollback(config, tmp_path / "rollback.json")
    assert again.outcomes == {
        (user_id(1), sku_id(E3)): EntryOutcome(WriteOutcome.SKIPPED, "already restored")
    }
