"""Writes the frozen schema-version-1 state files the migration tests upgrade.

Run once, when version 1 was current: `python tests/store/data/make_frozen_v1.py`. The files it
wrote are committed and must never be regenerated from a newer schema module; they are what a
licsync installation of that version left on disk.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from licsync.store.schema import STEPS

HERE = Path(__file__).parent
T0 = "2025-01-02T03:04:05.000000+00:00"
T1 = "2025-01-03T03:04:05.000000+00:00"
U1, U2 = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
SKU = "c7df2760-2c81-4ef7-b578-5b5392b571df"
G1, G2 = "aaaaaaaa-0000-0000-0000-000000000001", "aaaaaaaa-0000-0000-0000-000000000002"
PLAN = "9aaf7827-d63c-4b61-89c3-182f06f82e5c"


def rows(ids: str) -> list[str]:
    """The data a v1 installation held; `ids` formats a list of ids for the dialect."""
    return [
        "INSERT INTO licsync_schema (version) VALUES (1)",
        "INSERT INTO runs VALUES ('run-1', 'sync', 'succeeded', "
        f"'{T0}', '{T0}', '{{\"changes\": 2}}')",
        f"INSERT INTO runs VALUES ('run-2', 'sync', 'failed', '{T1}', '{T1}', NULL)",
        f"INSERT INTO ownership VALUES ('{U1}', '{SKU}', {ids([G1, G2])}, NULL)",
        f"INSERT INTO ownership VALUES ('{U2}', '{SKU}', {ids([G1])}, {ids([PLAN])})",
        "INSERT INTO changes (run_id, user_id, sku_id, action, disabled_plans, usage_location, "
        f"outcome, request_id, at) VALUES ('run-1', '{U1}', '{SKU}', 'add', {ids([])}, NULL, "
        f"'succeeded', 'req-1', '{T0}')",
        "INSERT INTO problems (user_id, user_principal_name, sku_id, group_id, error, message, "
        "first_seen, last_seen, attempts, last_run_id) VALUES "
        f"('{U2}', 'b@contoso.com', '{SKU}', '{G1}', 'CountViolation', 'no seats', "
        f"'{T0}', '{T1}', 2, 'run-2')",
        "INSERT INTO delta_links VALUES ('users', "
        f"'https://graph.microsoft.com/v1.0/users/delta?$deltatoken=v1', '{T0}', 'run-1')",
    ]


def sqlite_ids(values: list[str]) -> str:
    return "'[" + ",".join(f'"{v}"' for v in values) + "]'"


def postgres_ids(values: list[str]) -> str:
    return "'{" + ",".join(values) + "}'"


def main() -> None:
    target = HERE / "state-v1.sqlite"
    target.unlink(missing_ok=True)
    conn = sqlite3.connect(target)
    for statement in [*STEPS[1].sqlite, *rows(sqlite_ids)]:
        conn.execute(statement)
    conn.commit()
    conn.close()
    statements = [*STEPS[1].postgresql, *rows(postgres_ids)]
    (HERE / "state-v1.postgresql.sql").write_text(
        "-- licsync state, schema version 1 (frozen: do not edit or regenerate)\n"
        + "".join(f"{s};\n" for s in statements)
    )


if __name__ == "__main__":
    main()
