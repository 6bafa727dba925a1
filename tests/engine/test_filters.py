"""Attribute filters: Entra's dynamic membership rule syntax, checked against an independent
evaluation.

Each expression (Microsoft Learn's examples, "Manage rules for dynamic membership groups", and
edge cases: nulls, case, -match, -any/-all, precedence, -not) is parsed and evaluated by licsync
on every user of a generated tenant, and compared with a predicate written here by hand over
the users' raw Graph JSON: two implementations, one answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from licsync.config.filters import FilterError, parse_filter
from licsync.emulator.generate import generate_tenant
from licsync.engine.filters import PROPERTIES, properties
from licsync.engine.membership import user_attributes
from licsync.snapshot import tenant_from_json

Raw = dict[str, Any]


def v(u: Raw, key: str) -> Any:
    if key.startswith("extensionAttribute"):
        return (u.get("onPremisesExtensionAttributes") or {}).get(key)
    return u.get(key)


def low(u: Raw, key: str) -> str | None:
    value = v(u, key)
    return None if value is None else str(value).lower()


def items(u: Raw, key: str) -> list[str]:
    return [x.lower() for x in (u.get(key) or [])]


def starts(u: Raw, key: str, prefix: str) -> bool:
    value = low(u, key)
    return value is not None and value.startswith(prefix.lower())


def matches(u: Raw, key: str, pattern: str) -> bool:
    value = v(u, key)
    return value is not None and re.search(pattern, value, re.I) is not None


# (filter, independent predicate over the raw user, what share it may select: "some", "all", "none")
CASES: list[tuple[str, Callable[[Raw], bool], str]] = [
    ('user.department -eq "Sales"', lambda u: low(u, "department") == "sales", "some"),
    ('user.department -eq "sALES"', lambda u: low(u, "department") == "sales", "some"),
    ('user.department -ne "Sales"', lambda u: low(u, "department") != "sales", "some"),
    (
        '(user.department -eq "Sales") -or (user.department -eq "Marketing")',
        lambda u: low(u, "department") in ("sales", "marketing"),
        "some",
    ),
    (
        '(user.department -eq "Sales") -and -not (user.jobTitle -startsWith "SDE")',
        lambda u: low(u, "department") == "sales" and not starts(u, "jobTitle", "sde"),
        "some",
    ),
    (
        'user.department \u2013eq "Marketing" \u2013and user.country \u2013eq "US"',
        lambda u: low(u, "department") == "marketing" and low(u, "country") == "us",
        "some",
    ),
    (
        'user.country \u2013eq "US" \u2013and (user.department \u2013eq "Marketing" '
        '\u2013or user.department \u2013eq "Sales")',
        lambda u: low(u, "country") == "us" and low(u, "department") in ("marketing", "sales"),
        "some",
    ),
    (
        'user.country -eq "US" -and user.department -eq "Marketing" '
        '-or user.department -eq "Sales"',
        lambda u: (
            (low(u, "country") == "us" and low(u, "department") == "marketing")
            or low(u, "department") == "sales"
        ),
        "some",
    ),
    (
        'user.department -eq "Sales" -or user.department -eq "HR" -and user.country -eq "DE"',
        lambda u: (
            low(u, "department") == "sales"
            or (low(u, "department") == "hr" and low(u, "country") == "de")
        ),
        "some",
    ),
    ('user.city -startsWith "Man"', lambda u: starts(u, "city", "man"), "some"),
    ('user.city -eq "Lagos"', lambda u: low(u, "city") == "lagos", "none"),
    ('user.city -match "^S"', lambda u: matches(u, "city", "^s"), "some"),
    ('user.displayName -match "^Da.*"', lambda u: matches(u, "displayName", "^da"), "some"),
    ('user.displayName -match ".*vid"', lambda u: matches(u, "displayName", "vid"), "none"),
    ('user.displayName -match "an"', lambda u: "an" in (low(u, "displayName") or ""), "some"),
    ("user.mail \u2013ne null", lambda u: v(u, "mail") is not None, "some"),
    ("user.mail -eq null", lambda u: v(u, "mail") is None, "some"),
    ("user.city -eq $null", lambda u: v(u, "city") is None, "some"),
    ('user.city -ne "null"', lambda u: low(u, "city") != "null", "all"),
    (
        'user.department -in ["Sales","Finance","HR"]',
        lambda u: low(u, "department") in ("sales", "finance", "hr"),
        "some",
    ),
    (
        'user.department -notIn ["Sales", "Finance"]',
        lambda u: low(u, "department") not in ("sales", "finance"),
        "some",
    ),
    ('user.country -in ["fr","de"]', lambda u: low(u, "country") in ("fr", "de"), "some"),
    (
        "user.givenName -in ['Ben', 'Dana']",
        lambda u: low(u, "givenName") in ("ben", "dana"),
        "some",
    ),
    (
        '(user.proxyAddresses -any (_ -startsWith "smtp:"))',
        lambda u: any(x.startswith("smtp:") for x in items(u, "proxyAddresses")),
        "some",
    ),
    (
        'user.proxyAddresses -any (_ -contains "contoso.example")',
        lambda u: any("contoso.example" in x for x in items(u, "proxyAddresses")),
        "some",
    ),
    (
        'user.proxyAddresses -all (_ -startsWith "SMTP:")',
        lambda u: all(x.startswith("smtp:") for x in items(u, "proxyAddresses")),
        "all",
    ),
    (
        'user.proxyAddresses -all (_ -notContains "contoso.example")',
        lambda u: all("contoso.example" not in x for x in items(u, "proxyAddresses")),
        "some",
    ),
    (
        'user.otherMails -any (_ -endsWith "@fabrikam.example")',
        lambda u: any(x.endswith("@fabrikam.example") for x in items(u, "otherMails")),
        "some",
    ),
    ("user.otherMails -all (_ -eq null)", lambda u: not items(u, "otherMails"), "some"),
    (
        'user.otherMails -any _ -match "fabrikam"',
        lambda u: any("fabrikam" in x for x in items(u, "otherMails")),
        "some",
    ),
    (
        'user.otherMails -startsWith "ben"',
        lambda u: any(x.startswith("ben") for x in items(u, "otherMails")),
        "some",
    ),
    (
        '(user.extensionAttribute15 -eq "Marketing")',
        lambda u: low(u, "extensionAttribute15") == "marketing",
        "some",
    ),
    (
        'user.extensionAttribute1 -startsWith "cc10"',
        lambda u: starts(u, "extensionAttribute1", "cc10"),
        "some",
    ),
    ("user.extensionAttribute7 -eq null", lambda u: v(u, "extensionAttribute7") is None, "all"),
    ("user.accountEnabled -eq true", lambda u: u.get("accountEnabled") is not False, "some"),
    (
        'user.accountEnabled -eq false -and user.department -eq "Sales"',
        lambda u: u.get("accountEnabled") is False and low(u, "department") == "sales",
        "some",
    ),
    ("user.accountEnabled -ne false", lambda u: u.get("accountEnabled") is not False, "some"),
    ("user.objectId -ne null", lambda u: True, "all"),
    (
        '(user.objectId -ne null) -and (user.userType -eq "Member")',
        lambda u: (u.get("userType") or "Member").lower() == "member",
        "some",
    ),
    ('user.userType -eq "guest"', lambda u: low(u, "userType") == "guest", "some"),
    ('user.usageLocation -eq "US"', lambda u: low(u, "usageLocation") == "us", "some"),
    ("user.usageLocation -eq null", lambda u: v(u, "usageLocation") is None, "some"),
    ("user.employeeId -ne null", lambda u: v(u, "employeeId") is not None, "some"),
    (
        'user.employeeType -eq "Contractor"',
        lambda u: low(u, "employeeType") == "contractor",
        "some",
    ),
    (
        'user.jobTitle -contains "engineer"',
        lambda u: "engineer" in (low(u, "jobTitle") or ""),
        "some",
    ),
    (
        'user.jobTitle -notContains "Engineer"',
        lambda u: "engineer" not in (low(u, "jobTitle") or ""),
        "some",
    ),
    ('user.jobTitle -notStartsWith "SDE"', lambda u: not starts(u, "jobTitle", "sde"), "some"),
    (
        'user.jobTitle -notMatch "^(Account|Sales)"',
        lambda u: not matches(u, "jobTitle", "^(account|sales)"),
        "some",
    ),
    (
        'user.companyName -endsWith "KAM"',
        lambda u: (low(u, "companyName") or "").endswith("kam"),
        "some",
    ),
    (
        'user.companyName -notEndsWith "kam"',
        lambda u: not (low(u, "companyName") or "").endswith("kam"),
        "some",
    ),
    (
        'user.physicalDeliveryOfficeName -eq "Remote"',
        lambda u: low(u, "officeLocation") == "remote",
        "some",
    ),
    (
        'user.userPrincipalName -contains "#EXT#"',
        lambda u: "#ext#" in low(u, "userPrincipalName"),
        "some",
    ),
    (
        '-not (user.department -eq "Sales" -or user.department -eq "HR")',
        lambda u: low(u, "department") not in ("sales", "hr"),
        "some",
    ),
    (
        '-not user.department -eq "Sales" -and user.country -eq "US"',
        lambda u: low(u, "department") != "sales" and low(u, "country") == "us",
        "some",
    ),
    (
        '-not -not user.department -eq "Sales"',
        lambda u: low(u, "department") == "sales",
        "some",
    ),
    ('user.mailNickName -startsWith "ben"', lambda u: starts(u, "mailNickname", "ben"), "some"),
    (
        'user.state -eq "WA" -or user.state -eq "NY"',
        lambda u: low(u, "state") in ("wa", "ny"),
        "some",
    ),
    (
        'user.department eq "Sales" and user.country -EQ "us"',
        lambda u: low(u, "department") == "sales" and low(u, "country") == "us",
        "some",
    ),
    ('user.surname -eq "MÜLLER"', lambda u: low(u, "surname") == "müller", "some"),
    (
        'user.city -eq "São Paulo" -or user.city -eq "München"',
        lambda u: low(u, "city") in ("são paulo", "münchen"),
        "some",
    ),
    ("user.surname -eq 'O''Brien'", lambda u: low(u, "surname") == "o'brien", "none"),
]


@pytest.fixture(scope="module")
def tenant_and_raw() -> tuple[Any, dict[str, Raw]]:
    snapshot = generate_tenant(users=600, groups=10, seed=11)
    wanted = sorted({p.graph for p in PROPERTIES.values()})
    tenant = tenant_from_json(snapshot, user_properties=wanted)
    return tenant, {u["id"].lower(): u for u in snapshot["users"]}


def test_the_case_list_is_long_enough() -> None:
    assert len(CASES) >= 40
    assert len({text for text, _, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(("text", "predicate", "share"), CASES, ids=[c[0] for c in CASES])
def test_licsync_agrees_with_an_independent_evaluation(
    tenant_and_raw: tuple[Any, dict[str, Raw]],
    text: str,
    predicate: Callable[[Raw], bool],
    share: str,
) -> None:
    from licsync.engine.filters import evaluate

    tenant, raw = tenant_and_raw
    expr = parse_filter(text)
    got = {uid for uid, user in tenant.users.items() if evaluate(expr, user_attributes(user))}
    want = {uid for uid, user in raw.items() if predicate(user)}
    assert got == want
    expected = {"none": len(got) == 0, "all": len(got) == len(raw), "some": 0 < len(got) < len(raw)}
    assert expected[share], f"{text} selected {len(got)} of {len(raw)}"


@pytest.mark.parametrize(
    ("text", "column", "words"),
    [
        ('user.officeLocation -eq "x"', 1, "user.physicalDeliveryOfficeName"),
        ('user.departmnet -eq "x"', 1, "did you mean user.department"),
        ('user.department -eq "Sales', 21, "unbalanced quote"),
        ('user.department -eq ["a", "b"]', 17, "use -in for a list"),
        ('user.department -in "a"', 17, "needs a list"),
        ("user.department -startsWith null", 17, "null compares with -eq or -ne only"),
        ('user.department -equals "x"', 17, "unknown operator -equals"),
        ('user.accountEnabled -eq "yes"', 21, "is a boolean"),
        ("user.department -eq true", 17, "is a string"),
        ('user.department -any (_ -eq "x")', 17, "applies to string collections"),
        ('user.department -match "("', 17, "not a valid regular expression"),
        ('device.deviceOSType -eq "iPad"', 1, "select users"),
        ('user.memberOf -any (group.objectId -in ["x"])', 1, "memberOf"),
        ('user.department -eq "x" -and', 29, "end of the filter"),
        ('(user.department -eq "x"', 25, "expected"),
        ("", 1, "empty"),
    ],
)
def test_bad_filters_name_the_column_and_what_is_allowed(
    text: str, column: int, words: str
) -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter(text)
    assert caught.value.column == column
    assert words in caught.value.message


def test_a_filter_reads_only_the_properties_it_names() -> None:
    expr = parse_filter(
        'user.department -eq "Sales" -and (user.extensionAttribute3 -ne null -or '
        'user.proxyAddresses -any (_ -startsWith "smtp:"))'
    )
    assert properties(expr) == {"department", "extensionAttribute3", "proxyAddresses"}


def test_the_clause_text_is_kept_for_explanations() -> None:
    expr = parse_filter('user.department   -eq "Sales" -and user.otherMails -any (_ -eq "a@b")')
    texts = [c.text for c in expr.operands]  # type: ignore[union-attr]
    assert texts == ['user.department -eq "Sales"', 'user.otherMails -any (_ -eq "a@b")']
