"""Where each key of a TOML file is: line numbers for error messages.

`tomllib` gives values, not positions. This light scan of the text finds the line of every
table header, every `key =` and every inline table of a multi-line array
(`licenses = [` … `{ sku = … },` …), keyed by the path pydantic reports
(`("group_licenses", 2, "licenses", 0)`). A problem is placed on the line of the longest known
prefix of its path.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

Path = tuple[str | int, ...]
_BARE = r"(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')"
_HEADER = re.compile(rf"^\s*(\[\[?)\s*({_BARE}(?:\s*\.\s*{_BARE})*)\s*\]\]?")
_KEY = re.compile(rf"^\s*({_BARE}(?:\s*\.\s*{_BARE})*)\s*=(.*)$")
_PART = re.compile(_BARE)
_STRING = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'[^']*'")


def _parts(dotted: str) -> tuple[str, ...]:
    return tuple(p.strip("\"'") for p in _PART.findall(dotted))


class TomlLines:
    """Line numbers (1-based) of the keys of one TOML text."""

    def __init__(self, text: str) -> None:
        self.lines: dict[Path, int] = {}
        self._table: Path = ()
        self._counts: dict[Path, int] = {}
        self._array: Path | None = None  # the multi-line array being read
        self._depth = self._items = 0
        for number, raw in enumerate(text.splitlines(), start=1):
            self._line(number, raw)

    def _line(self, number: int, raw: str) -> None:
        if self._array is not None:
            self._brackets(_STRING.sub('""', raw).split("#", 1)[0], number)
            return
        header = _HEADER.match(raw)
        if header:
            names = _parts(header.group(2))
            table = self._within_arrays(names)
            if header.group(1) == "[[":
                index = self._counts.get(table, 0)
                self._counts[table] = index + 1
                self._table = (*table, index)
            else:
                self._table = table
            self.lines.setdefault(self._table, number)
            return
        key = _KEY.match(raw)
        if key:
            path: Path = (*self._table, *_parts(key.group(1)))
            self.lines.setdefault(path, number)
            value = _STRING.sub('""', key.group(2)).split("#", 1)[0].strip()
            if value.startswith("["):
                self._array, self._depth, self._items = path, 0, 0
                self._brackets(value, number)

    def _within_arrays(self, names: tuple[str, ...]) -> Path:
        """`[[a.b]]` inside the last `[[a]]`: the path `("a", <its index>, "b")`."""
        path: Path = ()
        for position, name in enumerate(names):
            path = (*path, name)
            if position < len(names) - 1 and path in self._counts:
                path = (*path, self._counts[path] - 1)
        return path

    def _brackets(self, text: str, number: int) -> None:
        """Follow a multi-line array: each inline table directly in it is one item."""
        assert self._array is not None
        for char in text:
            if char in "[{":
                if self._depth == 1 and char == "{":
                    self.lines.setdefault((*self._array, self._items), number)
                    self._items += 1
                self._depth += 1
            elif char in "]}":
                self._depth -= 1
                if self._depth == 0:
                    self._array = None
                    return

    def line(self, loc: Sequence[str | int]) -> int | None:
        """The line of `loc`, or of its longest prefix that has one."""
        for end in range(len(loc), 0, -1):
            found = self.lines.get(tuple(loc[:end]))
            if found is not None:
                return found
        return None
