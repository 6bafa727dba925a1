"""The pieces of `migrate apply` that judge a wave's writes."""

from __future__ import annotations

from pathlib import Path

from licsync.graph import Action, WriteResult
from licsync.migrate import Decision, MigrateAction
from licsync.migrate.run import _gone, _stop_reason
from tests.builders import TenantBuilder, object_id

E3 = "ENTERPRISEPACK"


def test_an_ambiguous_write_is_judged_by_the_re_read() -> None:
    """A write whose retries ran out may have landed: the re-read decides whether the rollback
    file must restore it; a refusal or a job never sent changed nothing."""
    b = TenantBuilder().sku(E3, 20)
    b.user("kept", direct={E3: []}, inherited=[("E1", E3, [])])
    b.user("gone", inherited=[("E1", E3, [])])
    b.group("E1", members=["kept", "gone"], entra={E3: []})
    tenant = b.tenant()
    kept, gone = (tenant.users[object_id(n)] for n in ("kept", "gone"))
    d = Decision(kept.id, kept.user_principal_name, b.sku_id(E3), MigrateAction.REMOVE_DIRECT)

    def outcome(action: Action) -> WriteResult:
        return WriteResult(kept.id, action, 503, None, "", None, 5)

    assert _gone(d, outcome(Action.RETRY), gone) and not _gone(d, outcome(Action.RETRY), kept)
    assert not _gone(d, outcome(Action.PROBLEM), gone)
    assert not _gone(d, outcome(Action.SKIPPED), gone)
    assert _gone(d, outcome(Action.SUCCESS), kept)


def test_a_fatal_answer_stops_the_run_after_its_wave(tmp_path: Path) -> None:
    ok = WriteResult("u1", Action.SUCCESS, 200, None, "", None, 1)
    fatal = WriteResult("u2", Action.FATAL, 403, None, "Insufficient privileges", None, 1)
    path = tmp_path / "rb.json"
    assert _stop_reason(1, 3, [], {"u1": ok}, path) is None
    reason = _stop_reason(1, 3, [], {"u1": ok, "u2": fatal}, path)
    assert reason is not None and "Graph refused the writes (Insufficient privileges)" in reason
    assert f"licsync migrate rollback {path}" in reason
