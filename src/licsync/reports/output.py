"""Writing a plan report in the format the operator chose."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from licsync.errors import InputError
from licsync.model import Plan
from licsync.reports.csv_report import plan_csv
from licsync.reports.json_report import write_plan_json
from licsync.reports.names import Names
from licsync.reports.table import render_plan

FORMATS = ("table", "json", "csv")

Writer = Callable[[bytes], object]


def default_format(output: Path | None) -> str:
    return "table" if output is None and sys.stdout.isatty() else "json"


def write_report(plan: Plan, names: Names, fmt: str, output: Path | None) -> None:
    if fmt == "table":
        show(lambda console: render_plan(plan, names, console), output)
    elif fmt == "json":
        stream(lambda write: write_plan_json(plan, names, write), output)
    else:
        emit(plan_csv(plan, names).encode("utf-8"), output)


def show(draw: Callable[[Console], None], output: Path | None) -> None:
    """Let `draw` print rich tables on standard output, or into `output` without colours."""
    if output is None:
        draw(Console(width=None if sys.stdout.isatty() else 160))
        return
    try:
        with output.open("w", encoding="utf-8") as handle:
            draw(Console(file=handle, width=160, color_system=None))
    except OSError as exc:
        raise InputError(f"{output}: cannot write report: {exc.strerror}") from None


def stream(produce: Callable[[Writer], None], output: Path | None) -> None:
    """Let `produce` write a report chunk by chunk to `output`, or to standard output."""
    if output is None:
        produce(sys.stdout.buffer.write)
        sys.stdout.flush()
        return
    try:
        with output.open("wb") as handle:
            produce(handle.write)
    except OSError as exc:
        raise InputError(f"{output}: cannot write report: {exc.strerror}") from None


def emit(data: bytes, output: Path | None) -> None:
    """Write a rendered report to `output`, or to standard output when none is given."""

    def produce(write: Writer) -> None:
        write(data)

    stream(produce, output)
