"""One-off migration from direct licences to group licences (`licsync migrate`).

`classify` (pure: which user/SKU moves, and why not), `select` (waves), `report` (JSON, CSV,
table), `run` (plan and apply through Graph and the store), `rollbackfile` and `restore`
(`migrate rollback`), `session` (lease, client, re-reads shared by apply and rollback).
"""

from licsync.migrate.classify import Decision, MigrateAction, Target, classify

__all__ = ["Decision", "MigrateAction", "Target", "classify"]
