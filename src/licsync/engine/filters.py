"""Attribute filters: a subset of Entra's dynamic membership rule syntax for users, evaluated.

`licsync.config.filters` parses a rule's `filter` into these nodes once, at load time; the engine
evaluates them against the user attributes the reader selected. Semantics follow Microsoft Learn,
"Manage rules for dynamic membership groups": string comparisons and regular expressions ignore
case; `null` is what Graph returns for an unset property (`-eq null` is true, every other
positive operator false, each negated operator the negation of its positive one); a string
collection compared without `-any`/`-all` matches when any item does; `-all` over an empty
collection is true, `-any` false.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

Scalar = str | bool | None
AttributeValue = str | bool | tuple[str, ...] | None
Attributes = tuple[tuple[str, AttributeValue], ...]  # (rule property name, value), sorted


class PropertyType(StrEnum):
    STRING = "string"
    BOOLEAN = "boolean"
    COLLECTION = "string collection"


@dataclass(frozen=True, slots=True)
class UserProperty:
    """A user property a filter may name: Entra's rule name, and where Graph returns it."""

    name: str  # as a rule writes it: user.physicalDeliveryOfficeName
    graph: str  # the Graph property to `$select`: officeLocation
    type: PropertyType = PropertyType.STRING
    key: str | None = None  # the member of `graph` that holds it (extension attributes)


def _properties() -> dict[str, UserProperty]:
    s, b, c = PropertyType.STRING, PropertyType.BOOLEAN, PropertyType.COLLECTION
    found = [
        UserProperty("accountEnabled", "accountEnabled", b),
        UserProperty("city", "city"),
        UserProperty("companyName", "companyName"),
        UserProperty("country", "country"),
        UserProperty("department", "department"),
        UserProperty("displayName", "displayName"),
        UserProperty("employeeId", "employeeId"),
        UserProperty("employeeType", "employeeType"),
        UserProperty("givenName", "givenName"),
        UserProperty("jobTitle", "jobTitle"),
        UserProperty("mail", "mail"),
        UserProperty("mailNickName", "mailNickname"),
        UserProperty("mobile", "mobilePhone"),
        UserProperty("objectId", "id"),
        UserProperty("physicalDeliveryOfficeName", "officeLocation"),
        UserProperty("postalCode", "postalCode"),
        UserProperty("preferredLanguage", "preferredLanguage"),
        UserProperty("state", "state"),
        UserProperty("streetAddress", "streetAddress"),
        UserProperty("surname", "surname"),
        UserProperty("usageLocation", "usageLocation"),
        UserProperty("userPrincipalName", "userPrincipalName"),
        UserProperty("userType", "userType", s),
        UserProperty("otherMails", "otherMails", c),
        UserProperty("proxyAddresses", "proxyAddresses", c),
    ]
    found.extend(
        UserProperty(
            f"extensionAttribute{n}", "onPremisesExtensionAttributes", s, f"extensionAttribute{n}"
        )
        for n in range(1, 16)
    )
    return {p.name.casefold(): p for p in found}


PROPERTIES: Mapping[str, UserProperty] = _properties()  # keyed by the casefolded rule name
# Graph properties every read selects anyway (the User model's own fields)
CORE_GRAPH_PROPERTIES = frozenset(
    {"id", "userPrincipalName", "accountEnabled", "usageLocation", "userType"}
)


class Op(StrEnum):
    """A comparison operator, as Entra spells it (without its hyphen)."""

    EQ = "eq"
    NE = "ne"
    STARTS_WITH = "startsWith"
    NOT_STARTS_WITH = "notStartsWith"
    ENDS_WITH = "endsWith"
    NOT_ENDS_WITH = "notEndsWith"
    CONTAINS = "contains"
    NOT_CONTAINS = "notContains"
    MATCH = "match"
    NOT_MATCH = "notMatch"
    IN = "in"
    NOT_IN = "notIn"


NEGATIONS = {
    Op.NE: Op.EQ,
    Op.NOT_STARTS_WITH: Op.STARTS_WITH,
    Op.NOT_ENDS_WITH: Op.ENDS_WITH,
    Op.NOT_CONTAINS: Op.CONTAINS,
    Op.NOT_MATCH: Op.MATCH,
    Op.NOT_IN: Op.IN,
}


@dataclass(frozen=True, slots=True)
class Compare:
    """`user.<prop> -<op> <value>`, or over a collection `user.<prop> -any (_ -<op> <value>)`."""

    prop: str  # the rule property name, canonical spelling
    op: Op
    value: str | bool | tuple[str, ...] | None
    quantifier: str | None = None  # "any" or "all"
    text: str = ""  # the clause as written, for explanations
    collection: bool = False  # the property is a string collection (unset: empty)


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Expr, ...]


Expr = Compare | Not | And | Or


def properties(expr: Expr) -> frozenset[str]:
    """The rule property names `expr` reads."""
    return frozenset(c.prop for c in clauses(expr))


def clauses(expr: Expr) -> Iterator[Compare]:
    """Every comparison in `expr`, left to right."""
    if isinstance(expr, Compare):
        yield expr
    elif isinstance(expr, Not):
        yield from clauses(expr.operand)
    else:
        for operand in expr.operands:
            yield from clauses(operand)


def evaluate(expr: Expr, attributes: Mapping[str, AttributeValue]) -> bool:
    """Whether a user with `attributes` (rule property name → value) satisfies `expr`."""
    if isinstance(expr, Compare):
        return holds(expr, attributes.get(expr.prop))
    if isinstance(expr, Not):
        return not evaluate(expr.operand, attributes)
    if isinstance(expr, And):
        return all(evaluate(e, attributes) for e in expr.operands)
    return any(evaluate(e, attributes) for e in expr.operands)


Decisions = Callable[[Sequence[bool]], frozenset[int]]


def _python(expr: Expr, index: Mapping[Compare, int]) -> str:
    """`expr` as a Python expression over `t`, the sequence of its comparisons' truths."""
    if isinstance(expr, Compare):
        return f"t[{index[expr]}]"
    if isinstance(expr, Not):
        return f"(not {_python(expr.operand, index)})"
    joiner = " and " if isinstance(expr, And) else " or "
    return "(" + joiner.join(_python(e, index) for e in expr.operands) + ")"


def compile_decisions(exprs: Sequence[Expr], index: Mapping[Compare, int]) -> Decisions:
    """One function that decides every expression of `exprs` at once from the truths of their
    comparisons (`index[clause]`: the position of each in the sequence it is given) and returns
    the positions of those that hold. It is generated Python (the way `dataclasses` builds its
    methods): the source holds only `t[i]`, `not`, `and`, `or`, parentheses and integers, never a
    value from a rule, and it is a hundred times faster than walking the trees."""
    if not exprs:
        return lambda _: frozenset()
    body = ", ".join(_python(e, index) for e in exprs)
    source = f"lambda t: frozenset(i for i, hit in enumerate(({body},)) if hit)"
    decide: Decisions = eval(
        compile(source, "<licsync filters>", "eval"),
        {"__builtins__": {}, "frozenset": frozenset, "enumerate": enumerate},
    )
    return decide


def holds(clause: Compare, actual: AttributeValue) -> bool:
    """Whether one comparison holds for the property's value `actual`."""
    if clause.collection or isinstance(actual, tuple):
        values = actual if isinstance(actual, tuple) else ()
        items = [_compare(clause.op, item, clause.value) for item in values]
        return all(items) if clause.quantifier == "all" else any(items)
    return _compare(clause.op, actual, clause.value)


def _compare(op: Op, actual: Scalar, expected: object) -> bool:
    positive = NEGATIONS.get(op)
    if positive is not None:
        return not _compare(positive, actual, expected)
    if expected is None or actual is None:
        return op is Op.EQ and expected is None and actual is None
    if isinstance(expected, bool) or isinstance(actual, bool):
        return op is Op.EQ and _as_text(actual) == _as_text(expected)
    left = actual.casefold()
    if op is Op.IN:
        return any(left == item.casefold() for item in expected)  # type: ignore[attr-defined]
    if op is Op.MATCH:
        return _regex(str(expected)).search(actual) is not None
    right = str(expected).casefold()
    if op is Op.EQ:
        return left == right
    if op is Op.STARTS_WITH:
        return left.startswith(right)
    if op is Op.ENDS_WITH:
        return left.endswith(right)
    return right in left  # CONTAINS


def _as_text(value: object) -> str:
    return str(value).casefold()


@lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)
