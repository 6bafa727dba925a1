"""pydantic's validation errors in the administrator's words.

Every problem becomes an `Issue`: where it is (a key path such as
`group_licenses[2].licenses[0].sku`) and what is wrong, with the value found, what is allowed
and, for an unknown key, the closest known one. No pydantic wording reaches the user.
"""

from __future__ import annotations

import difflib
import json
import types
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

Loc = tuple[str | int, ...]
MAX_SHOWN = 60  # characters of a value quoted back


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem in an input file: where (key path) and what."""

    loc: Loc
    message: str

    @property
    def key(self) -> str:
        return key_path(self.loc)


def key_path(loc: Sequence[str | int]) -> str:
    """`("group_licenses", 2, "sku")` → `group_licenses[2].sku`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def shown(value: Any) -> str:
    """A value as the administrator wrote it (TOML/JSON spelling), cut to a readable length."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, (int, float)):
        text = repr(value)
    elif isinstance(value, dict):
        text = "a table"
    elif isinstance(value, (list, tuple)):
        text = "a list"
    else:
        text = type(value).__name__
    if len(text) > MAX_SHOWN:
        text = text[: MAX_SHOWN - 3] + "…" + (text[-1] if text[0] == '"' else "")
    return text


def close_matches(word: str, options: Sequence[str]) -> list[str]:
    """Up to three options spelled like `word`, closest first."""
    return difflib.get_close_matches(word, list(options), n=3, cutoff=0.6)


def closest(word: str, options: Sequence[str]) -> str:
    """`; closest: a, b` when some option is spelled like `word`, else ''."""
    matches = close_matches(word, options)
    return f"; closest: {', '.join(matches)}" if matches else ""


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model a field holds (directly, in a tuple or list, or optionally)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (tuple, list, Union, types.UnionType):
        for arg in get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def _keys_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """The keys the table at `loc` (the location of one of its keys) allows."""
    current: type[BaseModel] | None = model
    for part in loc[:-1]:
        if isinstance(part, int) or current is None:
            continue
        field = current.model_fields.get(part)
        current = _model_in(field.annotation) if field is not None else None
    return sorted(current.model_fields) if current is not None else []


_SIMPLE = {
    "missing": "is required",
    "bool_type": "must be true or false (a TOML boolean, without quotes)",
    "float_type": "must be a number, without quotes",
    "finite_number": "must be a finite number",
    "string_type": "must be text in quotes",
    "string_too_short": "must not be empty",
    "tuple_type": 'must be a list, such as ["A", "B"]',
    "list_type": 'must be a list, such as ["A", "B"]',
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
    "dict_type": "must be a table",
    "path_type": "must be a file path in quotes",
}
_BOUNDS = {
    "greater_than_equal": ("ge", "must be {} or more"),
    "greater_than": ("gt", "must be more than {}"),
    "less_than_equal": ("le", "must be {} or less"),
    "less_than": ("lt", "must be less than {}"),
}


def _message(error: Any, model: type[BaseModel], loc: Loc) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "extra_forbidden":
        allowed = _keys_at(model, loc)
        return (
            f"unknown key{closest(str(loc[-1]), allowed)}; "
            f"the keys allowed here are: {', '.join(allowed)}"
        )
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind in ("int_type", "int_parsing", "int_from_float"):
        message = "must be a whole number, without quotes"
    elif kind == "too_short":
        message = f"must list at least {ctx.get('min_length', 1)}"
    elif kind in _BOUNDS:
        name, template = _BOUNDS[kind]
        message = template.format(ctx.get(name))
    elif kind == "enum":
        message = f"must be one of {ctx.get('expected')}"
    else:
        message = _SIMPLE.get(kind, str(error["msg"]))
    if "input" in error and kind != "missing":
        message += f", got {shown(error['input'])}"
    return message


def issues(exc: ValidationError, model: type[BaseModel], prefix: Loc = ()) -> list[Issue]:
    """Every error of `exc` (raised validating `model`) as an Issue under `prefix`."""
    found: list[Issue] = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        found.append(Issue(prefix + loc, _message(error, model, loc)))
    return found
