"""Writes the frozen schema-version-4 state files the migration tests upgrade.

Run once, when version 4 was current: `python -m tests.store.data.make_frozen_v4`. The files it
wrote are committed and must never be regenerated from a newer schema module; they are what a
licsync installation of that version left on disk: the version-3 data, upgraded, with an empty
intent journal (a run that finished).
"""

from __future__ import annotations

import sqlite3

from licsync.store.schema import STEPS
from tests.store.data.make_frozen_v1 import HERE, postgres_ids, rows, sqlite_ids
from tests.store.data.make_frozen_v2 import rows_v2
from tests.store.data.make_frozen_v3 import rows_v3

ROWS_V4 = ["UPDATE licsync_schema SET version = 4"]


def main() -> None:
    target = HERE / "state-v4.sqlite"
    target.unlink(missing_ok=True)
    conn = sqlite3.connect(target)
    steps = [*STEPS[1].sqlite, *rows(sqlite_ids), *STEPS[2].sqlite, *rows_v2()]
    for statement in [*steps, *STEPS[3].sqlite, *rows_v3(), *STEPS[4].sqlite, *ROWS_V4]:
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
    ]
    (HERE / "state-v4.postgresql.sql").write_text(
        "-- licsync state, schema version 4 (frozen: do not edit or regenerate)\n"
        + "".join(f"{s};\n" for s in statements)
    )


if __name__ == "__main__":
    main()
