"""Writes the frozen schema-version-5 state files the migration tests upgrade.

Run once, when version 5 was current: `python -m tests.store.data.make_frozen_v5`. The files it
wrote are committed and must never be regenerated from a newer schema module; they are what a
licsync installation of that version left on disk: the version-4 data, upgraded, with no tenant
bound yet and the outcome spellings of that version (a change `succeeded`, a run `aborted`).
"""

from __future__ import annotations

import sqlite3

from licsync.store.schema import STEPS
from tests.store.data.make_frozen_v1 import HERE, postgres_ids, rows, sqlite_ids
from tests.store.data.make_frozen_v2 import rows_v2
from tests.store.data.make_frozen_v3 import rows_v3
from tests.store.data.make_frozen_v4 import ROWS_V4

T3 = "2025-01-04T03:04:05.000000+00:00"
ROWS_V5 = [
    f"INSERT INTO runs VALUES ('run-3', 'migrate', 'aborted', '{T3}', '{T3}', NULL)",
    "UPDATE licsync_schema SET version = 5",
]


def main() -> None:
    target = HERE / "state-v5.sqlite"
    target.unlink(missing_ok=True)
    conn = sqlite3.connect(target)
    steps = [*STEPS[1].sqlite, *rows(sqlite_ids), *STEPS[2].sqlite, *rows_v2()]
    steps += [*STEPS[3].sqlite, *rows_v3(), *STEPS[4].sqlite, *ROWS_V4]
    for statement in [*steps, *STEPS[5].sqlite, *ROWS_V5]:
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
    ]
    (HERE / "state-v5.postgresql.sql").write_text(
        "-- licsync state, schema version 5 (frozen: do not edit or regenerate)\n"
        + "".join(f"{s};\n" for s in statements)
    )


if __name__ == "__main__":
    main()
