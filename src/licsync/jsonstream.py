"""Walk a large JSON document one top-level member and one array element at a time.

A 100k-user tenant snapshot is ~60 MB of JSON: decoding it whole holds every user's dict at once
(and orjson a parse tree of the whole input besides). `JsonCursor` decodes one element at a time
with the standard library's C scanner, so the caller can turn each into a model object and let
the dict go. Errors are `json.JSONDecodeError`s with the line and column.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


class JsonCursor:
    """A position in a JSON text, moved forward by the methods below."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self) -> str:
        """The next non-space character ("" at the end)."""
        self.pos = _SPACE.match(self.text, self.pos).end()  # type: ignore[union-attr]
        return self.text[self.pos : self.pos + 1]

    def _expect(self, char: str) -> None:
        if self.peek() != char:
            raise json.JSONDecodeError(f"Expecting '{char}'", self.text, self.pos)
        self.pos += 1

    def value(self) -> Any:
        """Decode the whole value at the cursor."""
        self.peek()
        value, self.pos = _DECODER.raw_decode(self.text, self.pos)
        return value

    def _sequence(self, close: str) -> Iterator[None]:
        """Yield before each element of the array or object just opened; consume the close."""
        if self.peek() == close:
            self.pos += 1
            return
        while True:
            yield
            if self.peek() == ",":
                self.pos += 1
                continue
            self._expect(close)
            return

    def elements(self) -> Iterator[Any]:
        """The elements of the array at the cursor, decoded one by one (the hot loop of a
        large snapshot, hence written out)."""
        self._expect("[")
        text, space, decode = self.text, _SPACE.match, _DECODER.raw_decode
        pos = space(text, self.pos).end()  # type: ignore[union-attr]
        if text.startswith("]", pos):
            self.pos = pos + 1
            return
        while True:
            value, self.pos = decode(text, pos)
            yield value
            pos = space(text, self.pos).end()  # type: ignore[union-attr]
            if text.startswith(",", pos):
                pos = space(text, pos + 1).end()  # type: ignore[union-attr]
            elif text.startswith("]", pos):
                self.pos = pos + 1
                return
            else:
                raise json.JSONDecodeError("Expecting ',' or ']'", text, pos)

    def members(self) -> Iterator[str]:
        """The keys of the object at the cursor; the caller must consume each key's value
        (`value()`, `elements()`, ...) before asking for the next key."""
        self._expect("{")
        for _ in self._sequence("}"):
            key = self.value()
            if not isinstance(key, str):
                raise json.JSONDecodeError("Expecting property name", self.text, self.pos)
            self._expect(":")
            yield key

    def end(self) -> None:
        """Check that nothing but white space follows."""
        if self.peek():
            raise json.JSONDecodeError("Extra data", self.text, self.pos)
