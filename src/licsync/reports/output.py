"""Writing a report in the format the operator chose."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

from licsync.errors import InputError
from licsync.files import open_private
from licsync.model import Plan
from licsync.reports.csv_report import plan_csv_rows
from licsync.reports.html_page import ReportContext
from licsync.reports.html_report import plan_html
from licsync.reports.json_report import write_plan_json
from licsync.reports.names import Names
from licsync.reports.table import render_plan, render_sync
from licsync.reports.writes import WriteResult, write_rows
from licsync.spend.costs import Spend

FORMATS = ("table", "json", "csv", "xlsx", "html")
FILE_WIDTH = 10_000  # a table written to a file is as wide as its content: no wrapped names
BOM = "\ufeff"  # so that Excel reads the CSV as UTF-8

Writer = Callable[[bytes], object]


def default_format(output: Path | None) -> str:
    return "table" if output is None and sys.stdout.isatty() else "json"


def write_report(
    plan: Plan,
    names: Names,
    fmt: str,
    output: Path | None,
    context: ReportContext | None = None,
    outcomes: Sequence[WriteResult] | None = None,
    run: Mapping[str, Any] | None = None,
    spend: Spend | None = None,
) -> None:
    """A plan's report; `context` heads the HTML one; `outcomes` (what each write did) and
    `run` (the sync's counters) make it the report of a sync that wrote; `spend` adds cost
    and renewals."""
    writes = None if outcomes is None else write_rows(plan, outcomes)
    if fmt == "table":
        if writes is None:
            show(lambda console: render_plan(plan, names, console, spend=spend), output)
        else:
            show(
                lambda console: render_sync(plan, names, console, writes, run or {}, spend=spend),
                output,
            )
    elif fmt == "json":
        stream(lambda write: write_plan_json(plan, names, write, writes, run, spend), output)
    elif fmt == "html":
        context = context or ReportContext("plan", "tenant", "rules")
        emit(plan_html(plan, names, context, writes, spend), output)
    else:
        emit(sheet_bytes(fmt, *plan_csv_rows(plan, names, writes, spend)), output)


def write_document(
    doc: object,
    fmt: str,
    output: Path | None,
    *,
    table: Callable[[Console], None],
    html: Callable[[], bytes],
    sheet: Callable[[], tuple[Sequence[str], Iterable[Sequence[object]]]],
) -> None:
    """A report that is a JSON document (`doc`) in `fmt`: a table drawn by `table`, the document
    itself, the page `html` makes, or the columns and rows `sheet` gives as CSV or xlsx."""
    if fmt == "table":
        show(table, output)
    elif fmt == "json":
        emit(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n", output)
    elif fmt == "html":
        emit(html(), output)
    else:
        emit(sheet_bytes(fmt, *sheet()), output)


def sheet_bytes(fmt: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """Rows for a spreadsheet: `fmt` "xlsx" or "csv"."""
    return xlsx_bytes(columns, rows) if fmt == "xlsx" else csv_bytes(columns, rows)


def xlsx_bytes(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """An Excel workbook of one sheet: the header row bold, frozen and filterable."""
    import xlsxwriter  # only when asked for

    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_numbers": False})
    sheet = book.add_worksheet("licsync")
    sheet.write_row(0, 0, columns, book.add_format({"bold": True}))
    count = 0
    for count, row in enumerate(rows, start=1):
        sheet.write_row(count, 0, ["" if v is None else v for v in row])
    sheet.autofilter(0, 0, count, len(columns) - 1)
    sheet.freeze_panes(1, 0)
    book.close()
    return buffer.getvalue()


def csv_bytes(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """CSV for spreadsheets: UTF-8 with a byte-order mark, a header row, "\\n" line ends."""
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def show(draw: Callable[[Console], None], output: Path | None) -> None:
    """Let `draw` print rich tables on standard output, or into `output` without colours."""
    if output is None:
        draw(Console(width=None if sys.stdout.isatty() else FILE_WIDTH))
        return
    try:
        with open_private(output, "w", encoding="utf-8") as handle:
            draw(Console(file=handle, width=FILE_WIDTH, color_system=None))
    except OSError as exc:
        raise InputError(f"{output}: cannot write report: {exc.strerror}") from None


def stream(produce: Callable[[Writer], object], output: Path | None) -> None:
    """Let `produce` write a report chunk by chunk to `output`, or to standard output."""
    if output is None:
        produce(sys.stdout.buffer.write)
        sys.stdout.flush()
        return
    try:
        with open_private(output) as handle:
            produce(handle.write)
    except OSError as exc:
        raise InputError(f"{output}: cannot write report: {exc.strerror}") from None


def emit(data: bytes, output: Path | None) -> None:
    """Write a rendered report to `output`, or to standard output when none is given."""

    def produce(write: Writer) -> None:
        write(data)

    stream(produce, output)


def check_output(fmt: str | None, output: Path | None) -> None:
    """An xlsx workbook goes to a file, never to a terminal or a pipe (checked before any
    work, so a sync never writes to the tenant and then fails to report)."""
    if fmt == "xlsx" and output is None:
        raise InputError("--format xlsx writes a workbook: give --output PATH (plan.xlsx)")
