"""Files licsync creates hold user names and licences: they are private to the owner (0600).

`open_private` is the one way licsync writes a file (reports, `--output`, snapshots, rollback
files); the state store's SQLite file is made private by `make_private` right after SQLite
creates it, before its WAL and shared-memory files exist (SQLite gives those the same mode).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any, Literal

PRIVATE = 0o600


def open_private(path: Path, mode: Literal["w", "wb"] = "wb", **kwargs: Any) -> IO[Any]:
    """`path` opened for writing, created or truncated, mode 0600 (an existing file is
    narrowed to 0600 too: its old content is replaced)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE)
    os.fchmod(fd, PRIVATE)
    return os.fdopen(fd, mode, **kwargs)


def make_private(path: str | Path) -> None:
    """Narrow a file licsync has just created to 0600."""
    os.chmod(path, PRIVATE)
