"""JSON `$batch` bodies and envelopes, built and read here (the SDK's batch helpers are not used).

A body holds at most 20 requests with unique ids and *relative* urls ("/users/{id}/assignLicense");
a JSON body always travels with its Content-Type header. The envelope is 200 even when items
fail, and items come back in any order: they are matched by id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_BATCH_SIZE = 20


@dataclass(frozen=True, slots=True)
class BatchRequest:
    """One inner request; `url` is relative to the version root: "/users/{id}/assignLicense"."""

    id: str
    method: str
    url: str
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        item: dict[str, Any] = {"id": self.id, "method": self.method.upper(), "url": self.url}
        headers = dict(self.headers)
        if self.body is not None:
            item["body"] = self.body
            if not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = "application/json"
        if headers:
            item["headers"] = headers
        return item


@dataclass(frozen=True, slots=True)
class BatchItemResponse:
    """One inner response; header names are lower-cased."""

    id: str
    status: int
    headers: Mapping[str, str]
    body: Any


def build_batch_body(requests: Sequence[BatchRequest]) -> dict[str, Any]:
    """The `$batch` request body; refuses more than 20 items, duplicate ids and absolute urls."""
    if not requests:
        raise ValueError("a $batch needs at least one request")
    if len(requests) > MAX_BATCH_SIZE:
        raise ValueError(f"a $batch holds at most {MAX_BATCH_SIZE} requests, got {len(requests)}")
    ids = [r.id for r in requests]
    if len(set(ids)) != len(ids):
        raise ValueError(f"$batch request ids must be unique, got {ids}")
    for r in requests:
        if "://" in r.url or not r.url.startswith("/"):
            raise ValueError(f"$batch urls are relative to the version root, got {r.url!r}")
    return {"requests": [r.to_json() for r in requests]}


def parse_batch_response(body: Any) -> dict[str, BatchItemResponse]:
    """Inner responses by id (whatever their order); malformed items are skipped."""
    responses = body.get("responses") if isinstance(body, dict) else None
    result: dict[str, BatchItemResponse] = {}
    for item in responses or ():
        if not isinstance(item, dict) or "id" not in item or "status" not in item:
            continue
        headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
        result[str(item["id"])] = BatchItemResponse(
            str(item["id"]), int(item["status"]), headers, item.get("body")
        )
    return result
