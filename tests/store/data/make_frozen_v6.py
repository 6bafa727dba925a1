"""Writes the frozen schema-version-6 state files the migration tests upgrade.

Run once, when version 6 was current: `python -m tests.store.data.make_frozen_v6`. The files it
wrote are committed and must never be regenerated from a newer schema module; they are what a
licsync installation of that version left on disk: the version-5 data, upgraded (outcomes in
the one vocabulary), with a run and a change of version 6 and no run history yet (no exit code,
phase or error; changes without what they replaced).
"""

from __future__ import annotations

import sqlite3

from licsync.store.schema import STEPS
from tests.store.data.make_frozen_v1 import HERE, postgres_ids, rows, sqlite_ids
from tests.store.data.make_frozen_v2 import rows_v2
from tests.store.data.make_frozen_v3 import rows_v3
from tests.store.data.make_frozen_v4 import ROWS_V4
from tests.store.data.make_frozen_v5 import ROWS_V5

T4 = "2025-01-05T03:04:05.000000+00:00"
ROWS_V6 = [
    f"INSERT INTO runs VALUES ('run-4', 'sync', 'stopped', '{T4}', '{T4}', NULL)",
    "UPDATE licsync_schema SET version = 6",
]


def main() -> None:
    target = HERE / "state-v6.sqlite"
    target.unlink(missing_ok=True)
    conn = sqlite3.connect(target)
    steps = [*STEPS[1].sqlite, *rows(sqlite_ids), *STEPS[2].sqlite, *rows_v2()]
    steps += [*STEPS[3].sqlite, *rows_v3(), *STEPS[4].sqlite, *ROWS_V4]
    steps += [*STEPS[5].sqlite, *ROWS_V5, *STEPS[6].sqlite, *ROWS_V6]
    for statement in steps:
        conn.execute(statement)
    conn.commit()
    conn.close()
    statements = [
        *STEPS[1].postgresql,
        *rows(postgres_ids),
        *STEPS[2].postgresql,
        *rows_v2(),
        *STEPS[3].postgresql,
        *rows_v3(),
        *STEPS[4].postgresql,
        *ROWS_V4,
        *STEPS[5].postgresql,
        *ROWS_V5,
        *STEPS[6].postgresql,
        *ROWS_V6,
    ]
    (HERE / "state-v6.postgresql.sql").write_text(
        "-- licsync state, schema version 6 (frozen: do not edit or regenerate)\n"
        + "".join(f"{s};\n" for s in statements)
    )


if __name__ == "__main__":
    main()
