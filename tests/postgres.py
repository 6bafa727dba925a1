"""The PostgreSQL server the store tests use when one is given (`.ci/postgres.sh` starts one)."""

from __future__ import annotations

import os

PG_ENV = "LICSYNC_TEST_POSTGRES_URL"
PG_SKIP = (
    f"PostgreSQL contract tests need {PG_ENV}; start a server with "
    f"`export {PG_ENV}=$(bash .ci/postgres.sh)`"
)


def postgres_url() -> str | None:
    return os.environ.get(PG_ENV) or None
