"""The classification table, row by row, with Graph's own messages and samples."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from licsync.connector.licence_writes import LICENSE_RULES
from licsync.graph.classify import Action, classify, classify_exception, parse_retry_after
from licsync.model import LicenseError as LE


def graph_error(message: str, code: str = "Request_BadRequest") -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {"date": "2025-02-13T10:17:06", "request-id": "rid-1"},
        }
    }


INHERITED = (
    "User license is inherited from a group membership "
    "and it cannot be removed directly from the user."
)

TABLE = [
    # status, headers, message (or body), action, licence error, retry_after
    (200, {}, {"id": "u"}, Action.SUCCESS, None, None),
    (204, {}, None, Action.SUCCESS, None, None),
    (
        429,
        {"Retry-After": "10"},
        graph_error("Please retry again later.", "TooManyRequests"),
        Action.THROTTLED,
        None,
        10.0,
    ),
    (
        429,
        {"retry-after": "2.128"},
        graph_error("Please retry again later.", "TooManyRequests"),
        Action.THROTTLED,
        None,
        2.128,
    ),
    (
        429,
        {},
        graph_error("Please retry again later.", "TooManyRequests"),
        Action.THROTTLED,
        None,
        None,
    ),
    (
        503,
        {"Retry-After": "5"},
        graph_error("Service unavailable", "serviceNotAvailable"),
        Action.RETRY,
        None,
        5.0,
    ),
    (504, {}, None, Action.RETRY, None, None),
    (502, {}, None, Action.RETRY, None, None),
    (
        401,
        {},
        graph_error("Access token has expired.", "InvalidAuthenticationToken"),
        Action.AUTH,
        None,
        None,
    ),
    (
        403,
        {},
        graph_error(
            "Insufficient privileges to complete the operation.", "Authorization_RequestDenied"
        ),
        Action.PROBLEM,  # one user's write; writes.py stops after a run of them
        LE.ACCESS_DENIED,
        None,
    ),
    (
        400,
        {},
        graph_error("License assignment cannot be done for user with invalid usage location."),
        Action.PROBLEM,
        LE.PROHIBITED_IN_USAGE_LOCATION_VIOLATION,
        None,
    ),
    (
        400,
        {},
        graph_error(
            "Subscription 45715bb8-13f9-4bf6-927f-ef96c102d394 "
            "does not have any available licenses."
        ),
        Action.PROBLEM,
        LE.COUNT_VIOLATION,
        None,
    ),
    (
        400,
        {},
        graph_error(
            "License assignment failed because service plans 9aaf7827-d63c-4b61-89c3-182f06f82e5c,"
            "efb87545-963c-4e0d-99df-69c6916d9eb0 are mutually exclusive"
        ),
        Action.PROBLEM,
        LE.MUTUALLY_EXCLUSIVE_VIOLATION,
        None,
    ),
    (
        400,
        {},
        graph_error(
            "Service plans EXCHANGE_S_STANDARD and EXCHANGE_S_ENTERPRISE "
            "cannot be assigned at the same time."
        ),
        Action.PROBLEM,
        LE.MUTUALLY_EXCLUSIVE_VIOLATION,
        None,
    ),
    (
        400,
        {},
        graph_error(
            "License assignment failed because service plan 57ff2da0-773e-42df-b2af-ffb7a2317929 "
            "depends on the service plan(s) 5dbe027f-2339-4123-9542-606e4d348a72"
        ),
        Action.PROBLEM,
        LE.DEPENDENCY_VIOLATION,
        None,
    ),
    # Duplicate proxy addresses: Entra's "Resolve group license assignment problems" page and
    # Exchange Online's '"Proxy address <address> is already being used"' article.
    (
        400,
        {},
        graph_error("Proxy address is already being used"),
        Action.PROBLEM,
        LE.UNIQUENESS_VIOLATION,
        None,
    ),
    (
        400,
        {},
        graph_error("Proxy address smtp:ann@contoso.com is already being used."),
        Action.PROBLEM,
        LE.UNIQUENESS_VIOLATION,
        None,
    ),
    (
        400,
        {},
        graph_error(
            "License 45715bb8-13f9-4bf6-927f-ef96c102d394 "
            "does not correspond to a valid company License."
        ),
        Action.PROBLEM,
        LE.OTHER,
        None,
    ),
    (
        400,
        {},
        graph_error("License 6fd2c87f-b296-42f0-b197-1e91e994b900 cannot be assigned to a user."),
        Action.PROBLEM,
        LE.OTHER,
        None,
    ),
    (
        400,
        {},
        graph_error(INHERITED),
        Action.PROBLEM,
        LE.OTHER,
        None,
    ),
    (
        400,
        {},
        graph_error("Invalid value specified for property 'skuId'."),
        Action.PROBLEM,
        None,
        None,
    ),
    (
        404,
        {},
        graph_error("Resource 'x' does not exist.", "Request_ResourceNotFound"),
        Action.PROBLEM,
        None,
        None,
    ),
    (
        405,
        {},
        graph_error("Specified HTTP method is not allowed for the request target."),
        Action.FATAL,
        None,
        None,
    ),
    (418, {}, None, Action.FATAL, None, None),
]


@pytest.mark.parametrize(("status", "headers", "body", "action", "error", "wait"), TABLE)
def test_table(
    status: int, headers: dict, body: Any, action: Action, error: LE | None, wait: float | None
) -> None:
    verdict = classify(status, headers, body, LICENSE_RULES)
    assert (verdict.action, verdict.error_type, verdict.retry_after) == (action, error, wait)
    if action is Action.PROBLEM and error is not None:
        assert verdict.reason  # a specific reason text for every licence refusal
    if isinstance(body, dict) and "error" in body:
        assert verdict.request_id == "rid-1"


def test_licence_other_reasons_are_specific() -> None:
    reasons = {
        classify(400, {}, graph_error(m), LICENSE_RULES).reason
        for m in (
            "License x does not correspond to a valid company License.",
            "License x cannot be assigned to a user.",
            INHERITED,
        )
    }
    assert len(reasons) == 3


def test_throttling_sample(samples: Callable[[str], Any]) -> None:
    sample = samples("throttling_429.json")
    waits = []
    for variant in sample["variants"]:
        verdict = classify(variant["status"], variant["headers"], variant["body"])
        assert verdict.action is Action.THROTTLED
        assert verdict.request_id == "94fb3b52-452a-4535-a601-69e0a90e3aa2"
        waits.append(verdict.retry_after)
    assert waits == [10.0, 2.128]


def test_batch_sample_items(samples: Callable[[str], Any]) -> None:
    responses = samples("json_batch.json")["response"]["body"]["responses"]
    actions = {
        r["id"]: classify(r["status"], r["headers"], r.get("body")).action for r in responses
    }
    assert actions == {
        "1": Action.SUCCESS,
        "2": Action.FATAL,  # 403 with an empty code
        "3": Action.FATAL,  # 403 Authorization_RequestDenied
        "4": Action.FATAL,  # 405: a bug in licsync, retrying cannot help
        "5": Action.SUCCESS,
    }
    item3 = next(r for r in responses if r["id"] == "3")
    assert classify(item3["status"], item3["headers"], item3["body"]).request_id == (
        "93b6f17e-c05d-4f45-ad2a-6665c708d8a0"
    )


def test_header_request_id_preferred() -> None:
    assert classify(200, {"request-id": "hdr"}, None).request_id == "hdr"


def test_transport_errors_are_transient() -> None:
    assert classify_exception(httpx.ConnectError("refused")).action is Action.RETRY
    assert classify_exception(httpx.ReadTimeout("slow")).action is Action.RETRY
    assert classify_exception(ValueError("bug")).action is Action.FATAL


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("10", 10.0),
        ("2.128", 2.128),
        ("", None),
        (None, None),
        ("soon", None),
        ("-1", 0.0),
        ("nan", None),
        ("inf", None),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value) == seconds


def test_retry_after_http_date() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 28.0 < (parse_retry_after(later) or 0) <= 30.0  # an HTTP date counts in whole seconds
