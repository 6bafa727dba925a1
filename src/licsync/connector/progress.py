"""A rich progress display on a terminal; silent otherwise (logs, pipes, tests)."""

from __future__ import annotations

import sys
from typing import Any


class Progress:
    """A rich progress display on a terminal; silent otherwise (logs, pipes, tests)."""

    def __init__(self, enabled: bool) -> None:
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}
        if enabled:
            from rich.console import Console
            from rich.progress import Progress

            self._progress = Progress(console=Console(file=sys.stderr), transient=True)

    def __enter__(self) -> Progress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def advance(self, what: str, n: int = 1, total: int | None = None) -> None:
        if self._progress is None:
            return
        task = self._tasks.get(what)
        if task is None:
            task = self._tasks[what] = self._progress.add_task(what, total=total)
        elif total is not None:
            self._progress.update(task, total=total)
        self._progress.advance(task, n)
