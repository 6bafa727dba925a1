"""The rollback file: every direct assignment a migration removed or adopted, as it was.

    {"version": 1, "kind": "licsync-migrate-rollback", "runId": "…", "target": "entra",
     "entries": [{"userId", "userPrincipalName", "skuId", "action": "remove-direct" | "adopt",
                  "disabledPlans": [plan ids], "status": a WriteOutcome (pending, applied,
                  failed, skipped), "ledgerBefore": null | {"groups": […], "priorDirect": […] |
                  null}, "ledgerAfter": {…}}]}

It is written before the first Graph or store write (every entry `pending`) and rewritten after
each wave, atomically, so a crash leaves a file that still restores everything that may have run.
Files written before the outcome vocabulary say `not-applied` for `skipped`; they are read as such.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from licsync.errors import InputError
from licsync.files import open_private
from licsync.migrate.classify import MigrateAction
from licsync.model import Ownership, guid
from licsync.outcomes import WriteOutcome

VERSION = 1
KIND = "licsync-migrate-rollback"
RESTORABLE = (WriteOutcome.PENDING, WriteOutcome.APPLIED)  # pending: stopped before knowing
_OLD_STATUS = {"not-applied": WriteOutcome.SKIPPED}  # files of licsync before the vocabulary


@dataclass(frozen=True, slots=True)
class RollbackEntry:
    user_id: str
    user_principal_name: str
    sku_id: str
    action: MigrateAction
    disabled_plans: frozenset[str]
    status: WriteOutcome = WriteOutcome.PENDING
    ledger_before: Ownership | None = None
    ledger_after: Ownership | None = None

    def with_status(self, status: WriteOutcome) -> RollbackEntry:
        return replace(self, status=status)


def _ownership_json(entry: Ownership | None) -> dict[str, Any] | None:
    if entry is None:
        return None
    prior = None if entry.prior_direct is None else sorted(entry.prior_direct)
    return {"groups": sorted(entry.groups), "priorDirect": prior}


def _entry_json(e: RollbackEntry) -> dict[str, Any]:
    item: dict[str, Any] = {
        "userId": e.user_id,
        "userPrincipalName": e.user_principal_name,
        "skuId": e.sku_id,
        "action": e.action.value,
        "disabledPlans": sorted(e.disabled_plans),
        "status": e.status.value,
    }
    if e.action is MigrateAction.ADOPT:
        item["ledgerBefore"] = _ownership_json(e.ledger_before)
        item["ledgerAfter"] = _ownership_json(e.ledger_after)
    return item


def write_rollback(
    path: Path, run_id: str, target: str, entries: list[RollbackEntry], *, new: bool = False
) -> None:
    """Write the file atomically (a temporary file beside it, then a rename). `new`: the first
    write of a run, which never replaces an existing file (an earlier wave's record)."""
    if new and path.exists():
        raise InputError(
            f"{path}: a rollback file is there already (an earlier run's?); it is kept: "
            "choose another --rollback-file"
        )
    doc = {
        "version": VERSION,
        "kind": KIND,
        "runId": run_id,
        "target": target,
        "entries": [_entry_json(e) for e in entries],
    }
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open_private(tmp) as handle:
            handle.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
        os.replace(tmp, path)
    except OSError as exc:
        raise InputError(f"{path}: cannot write the rollback file: {exc.strerror}") from None


def _ids(where: str, value: Any) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: expected a list of ids")
    return frozenset(guid(v) for v in value)


def _ownership(where: str, user: str, sku: str, value: Any) -> Ownership | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected an object or null")
    prior = value.get("priorDirect")
    groups = tuple(sorted(_ids(f"{where}.groups", value.get("groups"))))
    prior_set = None if prior is None else _ids(f"{where}.priorDirect", prior)
    return Ownership(user, sku, groups, prior_set)


def _status(where: str, value: Any) -> WriteOutcome:
    try:
        return _OLD_STATUS.get(value) or WriteOutcome(value)
    except ValueError:
        raise ValueError(
            f"{where}.status: {value!r} is not one of {', '.join(WriteOutcome)}"
        ) from None


def _parse_entry(where: str, raw: Any) -> RollbackEntry:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected an object")
    missing = [k for k in ("userId", "skuId", "action", "disabledPlans", "status") if k not in raw]
    if missing:
        raise ValueError(f"{where}: missing {', '.join(missing)}")
    try:
        action = MigrateAction(raw["action"])
    except ValueError:
        raise ValueError(
            f"{where}.action: {raw['action']!r} is not adopt or remove-direct"
        ) from None
    if action is MigrateAction.SKIP:
        raise ValueError(f"{where}.action: skip entries are never in a rollback file")
    user, sku = guid(str(raw["userId"])), guid(str(raw["skuId"]))
    before = after = None
    if action is MigrateAction.ADOPT:
        before = _ownership(f"{where}.ledgerBefore", user, sku, raw.get("ledgerBefore"))
        after = _ownership(f"{where}.ledgerAfter", user, sku, raw.get("ledgerAfter"))
        if after is None:
            raise ValueError(f"{where}.ledgerAfter: missing for an adopt entry")
    return RollbackEntry(
        user,
        str(raw.get("userPrincipalName", user)),
        sku,
        action,
        _ids(f"{where}.disabledPlans", raw["disabledPlans"]),
        _status(where, raw["status"]),
        before,
        after,
    )


def read_rollback(path: Path) -> tuple[str, str, list[RollbackEntry]]:
    """(run id, target, entries); InputError names the file and the entry at fault."""
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise InputError(f"{path}: cannot read the rollback file: {exc.strerror}") from None
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{path}: not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise InputError(f"{path}: not a licsync migration rollback file (kind {KIND!r})")
    if data.get("version") != VERSION:
        raise InputError(f"{path}: rollback file version {data.get('version')!r}; expected 1")
    raw_entries = data.get("entries")
    if not isinstance(raw_entries, list):
        raise InputError(f"{path}: entries: expected a list")
    try:
        entries = [_parse_entry(f"entries[{i}]", raw) for i, raw in enumerate(raw_entries)]
    except ValueError as exc:
        raise InputError(f"{path}: {exc}") from None
    return str(data.get("runId", "")), str(data.get("target", "")), entries
