"""One self-contained HTML page: headline cards, static sections and searchable tables.

Everything is inline (CSS, JavaScript, SVG, data), so the file opens offline and prints. Table
rows travel as JSON in the page, every cell an index into one table of distinct strings, and the
script puts one page of rows at a time into the DOM: a 100k-user report stays small and opens
without freezing the browser.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from importlib import resources

import orjson

from licsync import __version__


@dataclass(frozen=True, slots=True)
class ReportContext:
    """What the headline says about the run: which job, which tenant, which rules, when."""

    job: str
    tenant: str
    rules: str
    generated: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class Stat:
    """One headline number; `key` names the same number in the JSON report's summary."""

    label: str
    value: int | str
    key: str
    bad: bool = False


@dataclass(slots=True)
class HtmlTable:
    id: str
    title: str
    columns: tuple[str, ...]
    rows: Iterable[Sequence[str]]
    filters: tuple[str, ...] = ()  # columns offered as drop-down filters
    tags: tuple[str, ...] = ()  # columns drawn as coloured tags
    numeric: tuple[str, ...] = ()
    search: str = "users, products, groups"
    intro: str = ""  # HTML shown above the table


def _asset(name: str) -> str:
    return (resources.files("licsync.reports") / "assets" / name).read_text(encoding="utf-8")


def _script_json(value: object) -> bytes:
    """JSON safe inside a <script> element: no "<" can close it (JSON has "<" only in strings)."""
    return orjson.dumps(value).replace(b"<", b"\\u003c")


def render_page(
    context: ReportContext,
    stats: Sequence[Stat],
    sections: Sequence[str],
    tables: Sequence[HtmlTable],
) -> bytes:
    """The whole page as UTF-8 bytes."""
    strings: dict[str, int] = {}  # each distinct string once; cells hold its index
    add = strings.setdefault
    data_tables = []
    for table in tables:
        rows = [[add(cell, len(strings)) for cell in row] for row in table.rows]
        data_tables.append(
            {
                "id": table.id,
                "title": table.title,
                "columns": table.columns,
                "filters": table.filters,
                "tags": table.tags,
                "numeric": table.numeric,
                "search": table.search,
                "rows": rows,
            }
        )
    cards = "".join(
        f'<div class="card{" bad" if s.bad and s.value else ""}" data-key="{escape(s.key)}">'
        f"<b>{escape(str(s.value))}</b><small>{escape(s.label)}</small></div>"
        for s in stats
    )
    blocks = "".join(
        f'<h2 id="h-{t.id}">{escape(t.title)}</h2>{t.intro}<div id="table-{t.id}"></div>'
        for t in tables
    )
    when = context.generated.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    head = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>licsync {escape(context.job)}: {escape(context.tenant)}</title>"
        f"<style>{_asset('report.css')}</style></head><body>"
        f"<h1>licsync {escape(context.job)}</h1>"
        f'<div class="meta"><span>tenant <b>{escape(context.tenant)}</b></span>'
        f"<span>rules <b>{escape(context.rules)}</b></span><span>{when}</span>"
        f"<span>licsync {escape(__version__)}</span></div>"
        f'<div class="cards" id="headline">{cards}</div>'
    )
    data = {"strings": list(strings), "tables": data_tables}
    return b"".join(
        (
            (head + "".join(sections) + blocks).encode("utf-8"),
            b'<script type="application/json" id="report-data">',
            _script_json(data),
            b"</script><script>",
            _asset("report.js").encode("utf-8"),
            b"</script></body></html>\n",
        )
    )
