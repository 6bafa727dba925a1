"""Secrets never leave the process: one registry of secret values and one `redact()`.

`load_graph_settings` registers the client secret (from the environment or
`client_secret_file`) as soon as it reads it. Everything licsync prints goes through
`redact()`: the command line's error messages, every structlog event (`redact_event`) and
every stdlib log record, azure-identity's included (`RedactingFilter`). A secret is also
replaced in the spellings a token endpoint or a proxy echoes back: form-encoded (`+`, `%2B`),
percent-encoded and JSON-escaped.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, MutableMapping
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_LENGTH = 4  # shorter values would mask ordinary words
_PERCENT = re.compile(r"%[0-9A-F]{2}")
_secrets: set[str] = set()


def register(secret: str) -> None:
    """Mask `secret` (and its encoded spellings) in everything `redact()` sees from now on."""
    if len(secret) < MIN_LENGTH:
        return
    spellings = {secret, quote_plus(secret), quote(secret, safe=""), json.dumps(secret)[1:-1]}
    _secrets.update(spellings)
    _secrets.update(_PERCENT.sub(lambda m: m.group().lower(), s) for s in spellings)  # %2b


def forget_all() -> None:
    """Drop every registered secret (tests)."""
    _secrets.clear()


def redact(text: str) -> str:
    """`text` with every registered secret replaced by `***`."""
    for secret in sorted(_secrets, key=len, reverse=True):  # longest first: encodings win
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    if isinstance(value, BaseException):
        return redact(str(value))
    return value


def redact_event(
    _logger: object, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor (after `format_exc_info`): secrets masked in every value."""
    if not _secrets:
        return event
    return {key: _scrub(value) for key, value in event.items()}


class RedactingFilter(logging.Filter):
    """A handler filter: the record's final message (and exception text) with secrets masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            record.msg = redact(record.getMessage())
            record.args = None
            if record.exc_info:
                record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
                record.exc_info = None
        return True
