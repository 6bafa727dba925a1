"""JSON batching (`POST /$batch`): at most 20 requests, unique ids, dependsOn, 200 envelope.

Inner requests go through the same `Dispatcher.handle` (so each is throttled on its own), and
responses come back in a shuffled order, as Graph may return them.
"""

from __future__ import annotations

import random
from typing import Any
from urllib.parse import urlsplit

from licsync.emulator.routes import Dispatcher, Reply, Request, error_reply, parse_query

MAX_REQUESTS = 20


def _item(item_id: str, reply: Reply) -> dict[str, Any]:
    out: dict[str, Any] = {"id": item_id, "status": reply.status, "headers": dict(reply.headers)}
    if reply.body is not None:
        out["body"] = reply.body
    return out


def run_batch(dispatcher: Dispatcher, body: Any, base: str, rng: random.Random) -> Reply:
    """Execute a JSON batch; envelope errors are 400, inner failures live in the items."""
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        return error_reply(400, "BadRequest", "Invalid batch payload format.")
    if len(requests) > MAX_REQUESTS:
        return error_reply(
            400, "BadRequest", f"Batch request exceeds the maximum of {MAX_REQUESTS} requests."
        )
    by_id: dict[str, dict[str, Any]] = {}
    for raw in requests:
        if not isinstance(raw, dict) or not {"id", "method", "url"} <= raw.keys():
            return error_reply(400, "BadRequest", "Invalid batch payload format.")
        item_id = str(raw["id"])
        if item_id in by_id:
            return error_reply(400, "BadRequest", "Batch request contains duplicate ids.")
        by_id[item_id] = raw
    for raw in requests:
        for dep in raw.get("dependsOn") or []:
            if str(dep) not in by_id:
                return error_reply(400, "BadRequest", f"Request depends on unknown id '{dep}'.")
    done: dict[str, dict[str, Any]] = {}

    def run(item_id: str, trail: tuple[str, ...]) -> dict[str, Any]:
        if item_id in done:
            return done[item_id]
        raw = by_id[item_id]
        failed = False
        for dep in raw.get("dependsOn") or []:
            if str(dep) in trail:
                failed = True
                continue
            if run(str(dep), (*trail, item_id))["status"] >= 400:
                failed = True
        if failed:
            reply = error_reply(424, "FailedDependency", "Dependent request failed.")
        else:
            reply = _execute(dispatcher, raw, base)
        done[item_id] = _item(item_id, reply)
        return done[item_id]

    for item_id in by_id:
        run(item_id, ())
    responses = [done[i] for i in by_id]
    rng.shuffle(responses)
    return Reply(200, {"responses": responses}, {"Content-Type": "application/json"})


def _execute(dispatcher: Dispatcher, raw: dict[str, Any], base: str) -> Reply:
    url = str(raw["url"])
    if urlsplit(url).scheme:
        return error_reply(
            400, "BadRequest", "Invalid request URL: a batch request must use a relative URL."
        )
    parts = urlsplit("/" + url.lstrip("/"))
    headers = {str(k).lower(): str(v) for k, v in (raw.get("headers") or {}).items()}
    method = str(raw["method"]).upper()
    if method in ("POST", "PATCH", "PUT") and "body" in raw and "content-type" not in headers:
        return error_reply(
            400,
            "BadRequest",
            f"Write request id : {raw['id']} does not contain Content-Type header or body.",
        )
    request = Request(method, parts.path, parse_query(parts.query), headers, raw.get("body"), base)
    reply = dispatcher.handle(request, allow_drop=False)
    assert reply is not None  # drops are never drawn for inner requests
    return reply
