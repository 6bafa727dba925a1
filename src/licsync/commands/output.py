"""Writing a plan report in the format the operator chose."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
from rich.console import Console

from licsync.errors import InputError
from licsync.model import Plan
from licsync.reports.csv_report import plan_csv
from licsync.reports.json_report import plan_document
from licsync.reports.names import Names
from licsync.reports.table import render_plan

FORMATS = ("table", "json", "csv")


def default_format(output: Path | None) -> str:
    return "table" if output is None and sys.stdout.isatty() else "json"


def write_report(plan: Plan, names: Names, fmt: str, output: Path | None) -> None:
    if fmt == "table":
        if output is None:
            render_plan(plan, names, Console(width=None if sys.stdout.isatty() else 160))
            return
        with output.open("w", encoding="utf-8") as handle:
            render_plan(plan, names, Console(file=handle, width=160, color_system=None))
        return
    if fmt == "json":
        data = orjson.dumps(plan_document(plan, names), option=orjson.OPT_INDENT_2) + b"\n"
    else:
        data = plan_csv(plan, names).encode("utf-8")
    emit(data, output)


def emit(data: bytes, output: Path | None) -> None:
    """Write a rendered report to `output`, or to standard output when none is given."""
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    try:
        output.write_bytes(data)
    except OSError as exc:
        raise InputError(f"{output}: cannot write report: {exc.strerror}") from None
