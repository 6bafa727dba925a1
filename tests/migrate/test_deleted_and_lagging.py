"""Target entra against a tenant that moves under the migration, over real HTTP: a user
deleted since the plan (the wave and the rollback go on for everyone else), and replicas that
lag behind the writes (the verification re-read waits for them)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from licsync.config import Config
from licsync.emulator.server import Emulator
from licsync.migrate import Target
from licsync.outcomes import EntryOutcome, WriteOutcome
from tests.builders import catalogue_sku_id as sku_id
from tests.builders import user_id
from tests.migrate.helpers import E3, apply, effective, license_group, rollback
from tests.migrate.test_entra import _read
from tests.syncing import direct_licences


def test_a_user_deleted_since_the_plan_is_reported_and_the_wave_goes_on(
    entra: Emulator, config: Config, tmp_path: Path
) -> None:
    stale = _read(config)
    before = effective(entra)
    httpx.delete(f"{entra.url}/users/{user_id(1)}").raise_for_status()
    result = apply(config, Target.ENTRA, tmp_path, tenant=stale)

    e3 = sku_id(E3)
    assert str(result.outcomes[(user_id(1), e3)]) == "skipped: user deleted since the plan"
    assert result.outcomes[(user_id(2), e3)] == EntryOutcome(WriteOutcome.APPLIED)
    assert int(result.exit_code) == 0 and result.stopped is None and result.problems == []
    assert e3 not in direct_licences(entra)[user_id(2)]
    assert effective(entra)[user_id(2)] == before[user_id(2)]
    entries = json.loads((tmp_path / "rollback.json").read_text())["entries"]
    status = {e["userId"]: e["status"] for e in entries}
    assert status == {user_id(1): "skipped", user_id(2): "applied"}


def test_rollback_goes_on_past_a_user_deleted_since_the_migration(
    entra: Emulator, config: Config, tmp_path: Path
) -> None:
    directs = direct_licences(entra)
    assert int(apply(config, Target.ENTRA, tmp_path).exit_code) == 0
    httpx.delete(f"{entra.url}/users/{user_id(1)}").raise_for_status()
    back = rollback(config, tmp_path / "rollback.json")

    e3 = sku_id(E3)
    assert str(back.outcomes[(user_id(1), e3)]) == "skipped: user deleted since the migration"
    assert back.outcomes[(user_id(2), e3)] == EntryOutcome(WriteOutcome.APPLIED)
    assert int(back.exit_code) == 0 and back.problems == []
    assert direct_licences(entra)[user_id(2)] == directs[user_id(2)]


def test_verification_waits_for_the_replicas_and_sees_a_lost_plan(
    entra: Emulator, config: Config, tmp_path: Path
) -> None:
    """An admin narrows group 1 after the dry run, so removing user 1's direct E3 loses SWAY;
    right after the write a replica still serves the user as before it."""
    stale = _read(config)
    license_group(entra, 1, E3, ["SWAY"])
    entra.tenant.replication_lag = 1.5
    result = apply(config, Target.ENTRA, tmp_path, tenant=stale, wave_size=1)

    assert int(result.exit_code) == 10 and result.stopped
    assert [p.user_id for p in result.problems] == [user_id(1)]
    assert "lost SWAY" in result.problems[0].message
    assert result.waves_done == 1


def test_verification_under_lag_records_no_false_loss(
    entra: Emulator, config: Config, tmp_path: Path
) -> None:
    """The re-read waits for the writes to show, and then finds every plan still enabled."""
    before = effective(entra)
    entra.tenant.replication_lag = 1.5
    result = apply(config, Target.ENTRA, tmp_path)
    assert int(result.exit_code) == 0 and result.problems == []
    assert set(result.outcomes.values()) == {EntryOutcome(WriteOutcome.APPLIED)}
    assert effective(entra) == before
