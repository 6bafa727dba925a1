"""Text files as administrators save them."""

from __future__ import annotations

import codecs
from pathlib import Path

from licsync.errors import InputError


def read_text(path: Path, what: str) -> str:
    """A text file as administrators save it: UTF-8 (with or without a BOM) or UTF-16 with a
    BOM (Windows PowerShell's default); InputError names the file otherwise."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read {what}: {exc.strerror}") from None
    try:
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return data.decode("utf-16")
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: not UTF-8 text (byte {exc.start}); save {what} as UTF-8"
        ) from None
