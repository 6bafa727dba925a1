"""Parse a rule's `filter` (Entra's dynamic membership rule syntax for users) into the engine's
expression nodes, with errors that name the column and what is allowed.

The grammar is `filter.lark` beside this module (a LALR grammar for lark); the meaning of each
node is `licsync.engine.filters`.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from importlib.resources import files

from lark import (
    Lark,
    Token,
    Transformer,
    UnexpectedCharacters,
    UnexpectedInput,
    UnexpectedToken,
    v_args,
)
from lark.exceptions import VisitError
from lark.tree import Meta

from licsync.engine.filters import (
    PROPERTIES,
    And,
    Compare,
    Expr,
    Not,
    Op,
    Or,
    PropertyType,
    UserProperty,
)
from licsync.validation import close_matches

MAX_LENGTH = 3072  # Entra's limit on a membership rule's body
LIST_OPS = (Op.IN, Op.NOT_IN)
NULL_OPS = (Op.EQ, Op.NE)
OPS = {op.value.casefold(): op for op in Op}
# Graph's names for properties Entra's rules spell otherwise
GRAPH_NAMES = {p.graph.casefold(): p.name for p in PROPERTIES.values() if p.key is None}
UNSUPPORTED = {
    "memberof": "the memberOf operator (a preview feature in Entra); use `group` instead",
    "employeehiredate": "dateTime properties",
    "assignedplans": "assignedPlans (licences are what licsync computes, not a selector)",
    "dirsyncenabled": "dirSyncEnabled",
}
TOKEN_WORDS = {
    "PROPERTY": "a property such as user.department",
    "OPERATOR": "an operator such as -eq",
    "QUANTIFIER": "-any or -all",
    "STRING": 'a quoted string such as "Sales"',
    "NUMBER": "a number",
    "TRUE": "true",
    "FALSE": "false",
    "NULL": "null",
    "AND": "-and",
    "OR": "-or",
    "NOT": "-not",
    "LPAR": "(",
    "RPAR": ")",
    "LSQB": "[",
    "RSQB": "]",
    "COMMA": ",",
    "ITEM": "_",
    "$END": "the end of the filter",
}


class FilterError(ValueError):
    """A filter that cannot be used: `column` (1-based) and what is wrong and allowed."""

    def __init__(self, column: int, message: str) -> None:
        super().__init__(f"column {column}: {message}")
        self.column = column
        self.message = message


@cache
def _parser() -> Lark:
    grammar = files("licsync.config").joinpath("filter.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False)


@lru_cache(maxsize=1024)
def parse_filter(text: str) -> Expr:
    """The expression `text` means; FilterError names the column and what is allowed."""
    if len(text) > MAX_LENGTH:
        raise FilterError(MAX_LENGTH + 1, f"a filter may be at most {MAX_LENGTH} characters long")
    if not text.strip():
        raise FilterError(
            1, 'the filter is empty; write a rule such as user.department -eq "Sales"'
        )
    try:
        for token in _parser().lex(text):  # unknown properties first, wherever they stand
            if token.type == "PROPERTY":
                resolve_property(token)
    except UnexpectedInput:
        pass  # reported by the parse, with what was expected there
    try:
        tree = _parser().parse(text)
        expr: Expr = _Build(text).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, FilterError):
            raise exc.orig_exc from None
        raise
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None
    return expr


def _syntax_error(text: str, exc: UnexpectedInput) -> FilterError:
    column = max(getattr(exc, "column", 1) or 1, 1)
    if isinstance(exc, UnexpectedCharacters):
        position = exc.pos_in_stream or 0
        char = text[position] if position < len(text) else ""
        if char in "\"'":
            return FilterError(column, f"unbalanced quote {char}: a string is never closed")
        word = re.match(r"[-\u2013\u2014]?\w+", text[position:])
        found = word.group(0) if word else char
        if found.lstrip("-\u2013\u2014").isalpha() and found[0] in "-\u2013\u2014":
            return FilterError(column, _unknown_operator(found))
        return FilterError(column, f"unexpected {found!r}; {_expected(exc)}")
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        if token.type == "$END":
            return FilterError(len(text) + 1, f"unexpected end of the filter; {_expected(exc)}")
        found = repr(str(token))
        return FilterError(column, f"unexpected {found}; {_expected(exc)}")
    return FilterError(column, str(exc))


def _expected(exc: UnexpectedInput) -> str:
    names = sorted({TOKEN_WORDS.get(n, n) for n in getattr(exc, "expected", ()) or ()})
    return "expected " + " or ".join(names) if names else "not valid here"


def _unknown_operator(word: str) -> str:
    name = word.lstrip("-\u2013\u2014")
    near = close_matches(name.casefold(), list(OPS))
    hint = f"; did you mean -{OPS[near[0]].value}?" if near else ""
    allowed = ", ".join(f"-{op.value}" for op in Op)
    return f"unknown operator {word}{hint} (allowed: {allowed}, -any, -all, -and, -or, -not)"


def _op(token: Token) -> Op:
    return OPS[str(token).lstrip("-\u2013\u2014").casefold()]


def resolve_property(token: Token) -> UserProperty:
    """The supported property a `user.x` token names, or a FilterError saying what is."""
    column = token.column or 1
    prefix, _, name = str(token).partition(".")
    if prefix != "user":
        raise FilterError(column, f"{token}: licsync's filters select users: write user.<property>")
    found = PROPERTIES.get(name.casefold())
    if found is not None:
        return found
    key = name.casefold()
    if key in GRAPH_NAMES:
        raise FilterError(
            column,
            f"unknown property user.{name}: Entra's rules call Graph's {name} "
            f"user.{GRAPH_NAMES[key]}",
        )
    if key in UNSUPPORTED:
        raise FilterError(
            column, f"user.{name}: licsync's filters do not support {UNSUPPORTED[key]}"
        )
    names = sorted(p.name for p in PROPERTIES.values())
    near = close_matches(key, [n.casefold() for n in names])
    hint = (
        "; did you mean " + " or ".join(f"user.{PROPERTIES[n].name}" for n in near) if near else ""
    )
    raise FilterError(column, f"unknown property user.{name}{hint} (supported: {', '.join(names)})")


class _Build(Transformer[Token, Expr]):
    """The parse tree → the engine's nodes, checking each comparison against its property."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def string(self, items: list[Token]) -> str:
        raw = str(items[0])
        if raw[0] == "'":
            return raw[1:-1].replace("''", "'")
        return re.sub(r"`(.)", r"\1", raw[1:-1], flags=re.S)

    def number(self, items: list[Token]) -> str:
        return str(items[0])

    def true(self, _: list[Token]) -> bool:
        return True

    def false(self, _: list[Token]) -> bool:
        return False

    def null(self, _: list[Token]) -> None:
        return None

    def values(self, items: list[object]) -> tuple[str, ...]:
        if not all(isinstance(i, str) for i in items):
            raise FilterError(1, 'a list holds quoted strings only, such as ["FR", "DE"]')
        return tuple(items)  # type: ignore[arg-type]

    @v_args(meta=True)
    def comparison(self, meta: Meta, items: list[object]) -> Compare:
        prop, op, value = items
        return self._compare(meta, prop, op, value, None)  # type: ignore[arg-type]

    @v_args(meta=True)
    def quantified(self, meta: Meta, items: list[object]) -> Compare:
        prop, quantifier, _item, op, value = items
        assert isinstance(prop, Token) and isinstance(quantifier, Token)
        found = resolve_property(prop)
        if found.type is not PropertyType.COLLECTION:
            raise FilterError(
                quantifier.column or 1,
                f"{quantifier} applies to string collections (user.otherMails, "
                f"user.proxyAddresses), not to {found.type.value} user.{found.name}",
            )
        word = str(quantifier).lstrip("-\u2013\u2014").lower()
        return self._compare(meta, prop, op, value, word)  # type: ignore[arg-type]

    def _compare(
        self, meta: Meta, prop: Token, op_token: Token, value: object, quantifier: str | None
    ) -> Compare:
        found = resolve_property(prop)
        op = _op(op_token)
        column = op_token.column or 1
        if op is Op.MATCH or op is Op.NOT_MATCH:
            self._check_regex(column, value)
        if isinstance(value, tuple) and op not in LIST_OPS:
            raise FilterError(
                column, f"-{op.value} compares one value, not a list; use -in for a list"
            )
        if op in LIST_OPS and not isinstance(value, tuple):
            raise FilterError(column, f'-{op.value} needs a list of values, such as ["FR", "DE"]')
        if value is None and op not in NULL_OPS:
            raise FilterError(column, f"null compares with -eq or -ne only, not -{op.value}")
        if found.type is PropertyType.BOOLEAN and not (isinstance(value, bool) and op in NULL_OPS):
            raise FilterError(
                column,
                f"user.{found.name} is a boolean: compare it with -eq or -ne and true or false",
            )
        if isinstance(value, bool) and found.type is not PropertyType.BOOLEAN:
            raise FilterError(
                column, f'user.{found.name} is a string: compare it with a quoted value ("{value}")'
            )
        text = " ".join(self.text[meta.start_pos : meta.end_pos].split())
        collection = found.type is PropertyType.COLLECTION
        return Compare(found.name, op, value, quantifier, text, collection)  # type: ignore[arg-type]

    def _check_regex(self, column: int, value: object) -> None:
        if not isinstance(value, str):
            raise FilterError(column, "-match takes one quoted regular expression")
        try:
            re.compile(value)
        except re.error as exc:
            raise FilterError(column, f"not a valid regular expression {value!r}: {exc}") from None

    def or_(self, items: list[object]) -> Or:
        left, _, right = items
        return Or((*_flat(left, Or), right))  # type: ignore[arg-type]

    def and_(self, items: list[object]) -> And:
        left, _, right = items
        return And((*_flat(left, And), right))  # type: ignore[arg-type]

    def not_(self, items: list[object]) -> Not:
        return Not(items[1])  # type: ignore[arg-type]


def _flat(node: object, kind: type[And] | type[Or]) -> tuple[Expr, ...]:
    return node.operands if isinstance(node, kind) else (node,)  # type: ignore[return-value]
