"""Writes the frozen schema-version-3 state files the migration tests upgrade.

Run once, when version 3 was current: `python tests/store/data/make_frozen_v3.py`. The files it
wrote are committed and must never be regenerated from a newer schema module; they are what a
licsync installation of that version left on disk: the version-2 data, upgraded, plus one row of
the cached tenant view.
"""

from __future__ import annotations

import sqlite3

from licsync.store.schema import STEPS
from tests.store.data.make_frozen_v1 import HERE, postgres_ids, rows, sqlite_ids
from tests.store.data.make_frozen_v2 import rows_v2

U1 = "11111111-1111-1111-1111-111111111111"


def rows_v3() -> list[str]:
    """What version 3 added: a cached user."""
    return [
        "UPDATE licsync_schema SET version = 3",
        f"INSERT INTO tenant_cache (kind, object_id, data) VALUES ('user', '{U1}', "
        f'\'{{"id":"{U1}"}}\')',
    ]


def main() -> None:
    target = HERE / "state-v3.sqlite"
    target.unlink(missing_ok=True)
    conn = sqlite3.connect(target)
    steps = [*STEPS[1].sqlite, *rows(sqlite_ids), *STEPS[2].sqlite, *rows_v2()]
    for statement in [*steps, *STEPS[3].sqlite, *rows_v3()]:
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
    ]
    (HERE / "state-v3.postgresql.sql").write_text(
        "-- licsync state, schema version 3 (frozen: do not edit or regenerate)\n"
        + "".join(f"{s};\n" for s in statements)
    )


if __name__ == "__main__":
    main()
