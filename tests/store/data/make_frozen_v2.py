"""Writes the frozen schema-version-2 state files the migration tests upgrade.

Run once, when version 2 was current: `python tests/store/data/make_frozen_v2.py`. The files it
wrote are committed and must never be regenerated from a newer schema module; they are what a
licsync installation of that version left on disk: the version-1 data, upgraded, plus a
pending link.
"""

from __future__ import annotations

import sqlite3

from licsync.store.schema import STEPS
from tests.store.data.make_frozen_v1 import HERE, T1, postgres_ids, rows, sqlite_ids


def rows_v2() -> list[str]:
    """What version 2 added to the v1 data: a link the failed run-2 held but never committed."""
    return [
        "UPDATE licsync_schema SET version = 2",
        "INSERT INTO delta_links (resource, pending_link, pending_run_id, pending_at) VALUES "
        "('groups', 'https://graph.microsoft.com/v1.0/groups/delta?$deltatoken=v2', "
        f"'run-2', '{T1}')",
    ]


def main() -> None:
    target = HERE / "state-v2.sqlite"
    target.unlink(missing_ok=True)
    conn = sqlite3.connect(target)
    for statement in [*STEPS[1].sqlite, *rows(sqlite_ids), *STEPS[2].sqlite, *rows_v2()]:
        conn.execute(statement)
    conn.commit()
    conn.close()
    statements = [*STEPS[1].postgresql, *rows(postgres_ids), *STEPS[2].postgresql, *rows_v2()]
    (HERE / "state-v2.postgresql.sql").write_text(
        "-- licsync state, schema version 2 (frozen: do not edit or regenerate)\n"
        + "".join(f"{s};\n" for s in statements)
    )


if __name__ == "__main__":
    main()
