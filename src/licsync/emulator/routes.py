"""Graph v1.0 resources over the in-memory tenant: one `Dispatcher.handle` per (inner) request.

Transport-free: the ASGI app and `$batch` both call `handle`, so an inner batch request gets the
same routing, throttling and faults as a top-level one.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from operator import attrgetter, methodcaller
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from licsync.emulator.reports import PERIOD, PERIODS, active_user_detail, new_download
from licsync.emulator.state import (
    GraphError,
    GroupRecord,
    Tenant,
    UserRecord,
    bad_request,
)
from licsync.emulator.throttle import (
    Faults,
    Stats,
    Throttle,
    format_retry_after,
    request_cost,
    route_name,
)

WRITE_METHODS = ("POST", "PATCH", "DELETE", "PUT")

JSON_TYPE = (
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;"
    "charset=utf-8"
)
DEFAULT_PAGE, MAX_PAGE = 100, 999
DEFAULT_USER = [
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
]
OTHER_USER = [
    "accountEnabled",
    "usageLocation",
    "userType",
    "assignedLicenses",
    "licenseAssignmentStates",
    "department",
    "companyName",
    "city",
    "country",
    "createdDateTime",
    "deletedDateTime",
    "employeeId",
    "onPremisesSyncEnabled",
    "proxyAddresses",
    "otherMails",
    "assignedPlans",
    "employeeType",
    "state",
    "postalCode",
    "streetAddress",
    "mailNickname",
    "onPremisesExtensionAttributes",
    "signInActivity",
]
DEFAULT_GROUP = [
    "id",
    "deletedDateTime",
    "classification",
    "createdDateTime",
    "description",
    "displayName",
    "groupTypes",
    "mail",
    "mailEnabled",
    "mailNickname",
    "securityEnabled",
    "membershipRule",
    "membershipRuleProcessingState",
    "visibility",
]
OTHER_GROUP = [
    "assignedLicenses",
    "members",
    "hasMembersWithLicenseErrors",
    "isAssignableToRole",
    "licenseProcessingState",
]
FILTER_SKU = re.compile(
    r"^\s*assignedLicenses/any\((\w+):\s*\1/skuId\s+eq\s+'?([0-9a-fA-F-]{36})'?\)\s*$"
)
FILTER_IDS = re.compile(r"^\s*id\s+in\s+\(([^)]*)\)\s*$")


@dataclass(slots=True)
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def error_reply(status: int, code: str, message: str, request_id: str = "") -> Reply:
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
                "request-id": request_id or str(uuid.uuid4()),
                "client-request-id": request_id or str(uuid.uuid4()),
            },
        }
    }
    return Reply(status, body, {"Content-Type": "application/json"})


_USER_FIELDS: dict[str, Callable[[UserRecord], Any]] = {
    "id": attrgetter("id"),
    "userPrincipalName": attrgetter("upn"),
    "displayName": attrgetter("display_name"),
    "accountEnabled": attrgetter("account_enabled"),
    "usageLocation": attrgetter("usage_location"),
    "userType": attrgetter("user_type"),
    "assignedLicenses": attrgetter("licenses"),
    "licenseAssignmentStates": methodcaller("states_json"),
    "businessPhones": lambda u: u.extra.get("businessPhones", []),
}


@lru_cache(maxsize=256)
def _user_renderer(select: tuple[str, ...]) -> Callable[[UserRecord], dict[str, Any]]:
    def extra(name: str) -> Callable[[UserRecord], Any]:
        return lambda user: user.extra.get(name)

    getters = tuple((name, _USER_FIELDS.get(name) or extra(name)) for name in select)
    return lambda user: {name: get(user) for name, get in getters}


def user_json(user: UserRecord, select: list[str] | None) -> dict[str, Any]:
    """A user as Graph returns it: default properties, or exactly the `$select`ed ones."""
    return _user_renderer(tuple(select or DEFAULT_USER))(user)


def user_renderer(select: list[str] | None) -> Callable[[UserRecord], dict[str, Any]]:
    return _user_renderer(tuple(select or DEFAULT_USER))


def group_json(
    group: GroupRecord, select: list[str] | None, tenant: Tenant | None = None
) -> dict[str, Any]:
    """A group as Graph returns it; `tenant` answers the properties Entra computes."""
    out: dict[str, Any] = {}
    for name in select or DEFAULT_GROUP:
        if name == "id":
            out["id"] = group.id
        elif name == "displayName":
            out[name] = group.display_name
        elif name == "securityEnabled":
            out[name] = group.security_enabled
        elif name == "mailEnabled":
            out[name] = group.mail_enabled
        elif name == "groupTypes":
            out[name] = list(group.group_types)
        elif name == "assignedLicenses":
            out[name] = group.licenses_json()
        elif name == "members":
            continue
        elif name == "resourceBehaviorOptions":
            out[name] = group.extra.get(name, [])
        elif name == "licenseProcessingState" and tenant is not None:
            out[name] = {"state": tenant.processing_state(group)}
        elif name == "hasMembersWithLicenseErrors" and tenant is not None:
            out[name] = tenant.has_members_with_license_errors(group)
        else:
            out[name] = group.extra.get(name)
    return out


def parse_select(query: dict[str, str], allowed: set[str], type_name: str) -> list[str] | None:
    raw = query.get("$select")
    if raw is None:
        return None
    names = [n.strip() for n in raw.split(",") if n.strip()]
    for name in names:
        if name not in allowed:
            raise bad_request(f"Could not find a property named '{name}' on type '{type_name}'.")
    if "id" not in names:
        names.append("id")
    return names


def page_size(query: dict[str, str], headers: dict[str, str]) -> int:
    top = query.get("$top")
    if top is None:
        prefer = headers.get("prefer", "")
        found = re.search(r"odata\.maxpagesize=(\d+)", prefer)
        return min(int(found.group(1)), MAX_PAGE) if found else DEFAULT_PAGE
    if not top.isdigit() or not 1 <= int(top) <= MAX_PAGE:
        raise bad_request(
            f"Invalid page size specified: '{top}'. Must be between 1 and 999 inclusive."
        )
    return int(top)


@dataclass(slots=True)
class Request:
    method: str
    path: str  # after /v1.0, e.g. /users/{id}
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: Any
    base: str  # absolute base URL ending in /v1.0


@dataclass(slots=True)
class DeltaRound:
    kind: str
    entries: list[tuple[str, list[dict[str, Any]] | None]]
    upto: int
    select: list[str] | None
    size: int
    members: bool
    token: str = ""


class Dispatcher:
    """Routes one request to the tenant, after throttling and fault injection."""

    def __init__(
        self,
        tenant: Tenant,
        throttle: Throttle,
        faults: Faults,
        stats: Stats,
        member_chunk: int = 500,
    ) -> None:
        self.tenant = tenant
        self.throttle = throttle
        self.faults = faults
        self.stats = stats
        self.member_chunk = member_chunk
        self.rounds: dict[str, DeltaRound] = {}
        self.downloads: dict[str, bytes] = {}  # preauthenticated report downloads
        self.routes: list[tuple[str, re.Pattern[str], Callable[..., Reply]]] = [
            ("GET", re.compile(r"^/organization$"), self.get_organization),
            ("GET", re.compile(r"^/subscribedSkus$"), self.list_skus),
            ("GET", re.compile(r"^/subscribedSkus/([^/]+)$"), self.get_sku),
            ("GET", re.compile(r"^/directory/subscriptions$"), self.list_subscriptions),
            ("GET", re.compile(r"^/admin/reportSettings$"), self.get_report_settings),
            ("PATCH", re.compile(r"^/admin/reportSettings$"), self.patch_report_settings),
            (
                "GET",
                re.compile(r"^/reports/getOffice365ActiveUserDetail(\(.*\))$"),
                self.active_user_detail,
            ),
            ("GET", re.compile(r"^/directory/subscriptions/([^/]+)$"), self.get_subscription),
            ("GET", re.compile(r"^/users$"), self.list_users),
            ("GET", re.compile(r"^/users/delta(?:\(\))?$"), self.users_delta),
            ("GET", re.compile(r"^/users/([^/]+)$"), self.get_user),
            (
                "GET",
                re.compile(r"^/users/([^/]+)/memberOf(/(?:microsoft\.)?graph\.group)?$"),
                self.member_of,
            ),
            ("PATCH", re.compile(r"^/users/([^/]+)$"), self.patch_user),
            ("DELETE", re.compile(r"^/users/([^/]+)$"), self.delete_user),
            ("DELETE", re.compile(r"^/groups/([^/]+)$"), self.delete_group),
            ("POST", re.compile(r"^/users/([^/]+)/assignLicense$"), self.assign_user),
            ("POST", re.compile(r"^/users/([^/]+)/reprocessLicenseAssignment$"), self.reprocess),
            ("GET", re.compile(r"^/groups$"), self.list_groups),
            ("GET", re.compile(r"^/groups/delta(?:\(\))?$"), self.groups_delta),
            ("GET", re.compile(r"^/groups/([^/]+)$"), self.get_group),
            (
                "GET",
                re.compile(
                    r"^/groups/([^/]+)/(members|transitiveMembers)(/(?:microsoft\.)?graph\.user)?$"
                ),
                self.list_members,
            ),
            ("POST", re.compile(r"^/groups/([^/]+)/members/\$ref$"), self.add_member),
            ("DELETE", re.compile(r"^/groups/([^/]+)/members/([^/]+)/\$ref$"), self.remove_member),
            ("POST", re.compile(r"^/groups/([^/]+)/assignLicense$"), self.assign_group),
            ("POST", re.compile(r"^/directory/deletedItems/([^/]+)/restore$"), self.restore),
        ]

    # ----- entry point --------------------------------------------------------------------
    def handle(self, req: Request, allow_drop: bool = True) -> Reply | None:
        """Answer one request; None means "drop the connection" (fault injection)."""
        route = route_name(req.method, req.path)
        request_id = req.headers.get("client-request-id") or str(uuid.uuid4())
        reply = self._handle(req, request_id, allow_drop)
        if reply is None:
            self.stats.add("dropped")
            self.stats.record(route, 0)
            return None
        reply.headers.setdefault("request-id", request_id)
        reply.headers.setdefault("client-request-id", request_id)
        self.stats.record(route, reply.status)
        if req.method in WRITE_METHODS and 200 <= reply.status < 300:
            self.stats.applied_write(route, reply.headers["request-id"])
        return reply

    def _handle(self, req: Request, request_id: str, allow_drop: bool) -> Reply | None:
        self.tenant.settle()  # group processing whose delay has passed
        write = req.method in WRITE_METHODS
        cost = request_cost(req.method, req.path, req.query)
        verdict = self.throttle.check(cost, write)
        if verdict.retry_after is not None:
            self.stats.add("throttled")
            if verdict.early:
                self.stats.add("early_retries")
            reply = error_reply(429, "TooManyRequests", "Please retry again later.", request_id)
            reply.body["error"]["innerError"].update(
                {"code": "429", "message": "Please retry after", "status": "429"}
            )
            reply.headers.update(
                {
                    "Retry-After": format_retry_after(verdict.retry_after),
                    "x-ms-throttle-scope": f"Tenant_Application/{'Write' if write else 'ReadWrite'}"
                    f"/00000000-0000-0000-0000-000000000000/{self.tenant.tenant_id}",
                    "x-ms-throttle-information": verdict.information,
                }
            )
            return reply
        if write:
            self.stats.add("writes")
        fault = self.faults.draw(allow_drop)
        if fault is not None:
            self.stats.add("faults")
            if fault == "drop":
                return None
            return self._fault_reply(int(fault), request_id, self.faults.config.retry_after)
        for method, pattern, handler in self.routes:
            found = pattern.match(req.path)
            if found and method == req.method:
                try:
                    reply = handler(req, *found.groups())
                except GraphError as exc:
                    return error_reply(exc.status, exc.code, exc.message, request_id)
                reply.headers.setdefault("x-ms-resource-unit", str(cost))
                if reply.body is not None:
                    reply.headers.setdefault("Content-Type", JSON_TYPE)
                return reply
        if any(p.match(req.path) for _, p, _ in self.routes):
            return error_reply(
                405,
                "Request_BadRequest",
                "Specified HTTP method is not allowed for the request target.",
                request_id,
            )
        return error_reply(
            400,
            "BadRequest",
            f"Resource not found for the segment '{req.path.strip('/').split('/')[0]}'.",
            request_id,
        )

    @staticmethod
    def _fault_reply(status: int, request_id: str, retry_after: float) -> Reply:
        if status == 429:
            reply = error_reply(429, "TooManyRequests", "Please retry again later.", request_id)
            reply.headers["Retry-After"] = f"{retry_after:g}"
            return reply
        codes = {500: "InternalServerError", 503: "ServiceUnavailable", 504: "GatewayTimeout"}
        return error_reply(status, codes.get(status, "UnknownError"), "Injected fault.", request_id)

    # ----- helpers ------------------------------------------------------------------------
    def _page(
        self, req: Request, items: list[Any], render: Callable[[Any], dict], context: str
    ) -> Reply:
        size = page_size(req.query, req.headers)
        token = req.query.get("$skiptoken", "0")
        start = int(token) if token.isdigit() else 0
        chunk = items[start : start + size]
        body: dict[str, Any] = {"@odata.context": f"{req.base}/$metadata#{context}"}
        if start == 0 and req.query.get("$count", "").lower() == "true":
            body["@odata.count"] = len(items)
        if start + size < len(items):
            query = {k: v for k, v in req.query.items() if k != "$skiptoken"}
            query["$skiptoken"] = str(start + size)
            body["@odata.nextLink"] = (
                f"{req.base}{req.path}?{urlencode(query, quote_via=quote, safe='$,()')}"
            )
        body["value"] = [render(item) for item in chunk]
        return Reply(200, body)

    @staticmethod
    def _context(name: str, select: list[str] | None) -> str:
        return f"{name}({','.join(select)})" if select else name

    # ----- organization and SKUs ----------------------------------------------------------
    def get_organization(self, req: Request) -> Reply:
        org = dict(self.tenant.organization)
        return Reply(200, {"@odata.context": f"{req.base}/$metadata#organization", "value": [org]})

    def list_skus(self, req: Request) -> Reply:
        if "$filter" in req.query:
            raise bad_request("Query option '$filter' is not supported for subscribedSkus.")
        with self.tenant.lock:
            value = [s.to_json(self.tenant.tenant_id) for s in self.tenant.skus.values()]
        return Reply(
            200, {"@odata.context": f"{req.base}/$metadata#subscribedSkus", "value": value}
        )

    def get_sku(self, req: Request, sku_key: str) -> Reply:
        sku_id = sku_key.rsplit("_", 1)[-1].lower()
        with self.tenant.lock:
            sku = self.tenant.skus.get(sku_id)
            if sku is None:
                raise GraphError(
                    404, "Request_ResourceNotFound", f"Resource '{sku_key}' does not exist."
                )
            body = {"@odata.context": f"{req.base}/$metadata#subscribedSkus/$entity"}
            body.update(sku.to_json(self.tenant.tenant_id))
        return Reply(200, body)

    def list_subscriptions(self, req: Request) -> Reply:
        self._require("Organization.Read.All")
        with self.tenant.lock:
            subscriptions = [dict(s) for s in self.tenant.subscriptions]
        return self._page(req, subscriptions, dict, "directory/subscriptions")

    def get_subscription(self, req: Request, key: str) -> Reply:
        with self.tenant.lock:
            found = next(
                (
                    s
                    for s in self.tenant.subscriptions
                    if key.lower() in (str(s["id"]).lower(), str(s["commerceSubscriptionId"]))
                ),
                None,
            )
        if found is None:
            raise GraphError(404, "Request_ResourceNotFound", f"Resource '{key}' does not exist.")
        body = {"@odata.context": f"{req.base}/$metadata#directory/subscriptions/$entity"}
        body.update(found)
        return Reply(200, body)

    # ----- usage reports ------------------------------------------------------------------
    def get_report_settings(self, req: Request) -> Reply:
        self._require("ReportSettings.Read.All")
        body = {
            "@odata.context": f"{req.base}/$metadata#admin/reportSettings/$entity",
            "@odata.type": "#microsoft.graph.adminReportSettings",
            "id": "",
            **self.tenant.report_settings,
        }
        return Reply(200, body)

    def patch_report_settings(self, req: Request) -> Reply:
        self._require("ReportSettings.ReadWrite.All")
        value = req.body.get("displayConcealedNames") if isinstance(req.body, dict) else None
        if not isinstance(value, bool):
            raise bad_request("Invalid request body.")
        with self.tenant.lock:
            self.tenant.report_settings["displayConcealedNames"] = value
        return Reply(204)

    def active_user_detail(self, req: Request, arguments: str) -> Reply:
        """302 to a preauthenticated download of the CSV (served by `download`)."""
        self._require("Reports.Read.All")
        found = PERIOD.match(arguments)
        if found is None or found.group(1) not in PERIODS:
            raise bad_request(
                "Invalid value for period; the supported values are D7, D30, D90 and D180."
            )
        with self.tenant.lock:
            data = active_user_detail(self.tenant, PERIODS[found.group(1)])
        path = new_download()
        self.downloads[path] = data
        host = req.base.removesuffix("/v1.0")
        return Reply(302, None, {"Location": host + path, "Content-Type": "text/plain"})

    def download(self, path: str) -> Reply:
        """A report download (no token needed); 404 once fetched or unknown."""
        data = self.downloads.pop(path, None)
        if data is None:
            return error_reply(404, "NotFound", "The download link has expired.")
        return Reply(200, data, {"Content-Type": "application/octet-stream"})

    # ----- users --------------------------------------------------------------------------
    def _user_select(self, req: Request) -> list[str] | None:
        allowed = set(DEFAULT_USER) | set(OTHER_USER) | {"extensionAttributes"}
        select = parse_select(req.query, allowed, "microsoft.graph.user")
        if select and "signInActivity" in select:
            self._require("AuditLog.Read.All")
        return select

    def _require(self, permission: str) -> None:
        """Graph's 403 when the app lacks `permission` (`Tenant.denied_permissions`)."""
        if permission in self.tenant.denied_permissions:
            raise GraphError(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            )

    def list_users(self, req: Request) -> Reply:
        select = self._user_select(req)
        with self.tenant.lock:
            users = self.tenant.user_list()
            flt = req.query.get("$filter")
            if flt:
                users = self._filter_users(users, flt)
            if self.tenant.replication_lag > 0:
                users = [self.tenant.replica(u) for u in users]
            return self._page(req, users, user_renderer(select), self._context("users", select))

    def _filter_users(self, users: list[UserRecord], flt: str) -> list[UserRecord]:
        found = FILTER_SKU.match(flt)
        if found:
            sku = found.group(2).lower()
            return [u for u in users if any(a["skuId"] == sku for a in u.licenses)]
        found = FILTER_IDS.match(flt)
        if found:
            ids = [i.strip().strip("'\"").lower() for i in found.group(1).split(",") if i.strip()]
            if len(ids) > 15:
                raise bad_request(
                    "Too many child clauses specified in search filter expression "
                    "containing 'OR' operators: 16. Max allowed: 15."
                )
            return [self.tenant.users[i] for i in ids if i in self.tenant.users]
        raise GraphError(400, "Request_UnsupportedQuery", f"Unsupported Query. '{flt}'")

    def get_user(self, req: Request, user_id: str) -> Reply:
        select = self._user_select(req)
        with self.tenant.lock:
            user = self.tenant.replica(self.tenant.user(user_id))
            body = {
                "@odata.context": f"{req.base}/$metadata#{self._context('users', select)}/$entity"
            }
            body.update(user_json(user, select))
        return Reply(200, body)

    def member_of(self, req: Request, user_id: str, cast: str | None) -> Reply:
        """`GET /users/{id}/memberOf[/microsoft.graph.group]`: the user's direct groups."""
        select = self._group_select(req)
        with self.tenant.lock:
            user = self.tenant.user(user_id)
            groups = [self.tenant.groups[g] for g in sorted(self.tenant.member_of.get(user.id, ()))]

            def render(group: GroupRecord) -> dict[str, Any]:
                return {
                    "@odata.type": "#microsoft.graph.group",
                    **group_json(group, select, self.tenant),
                }

            return self._page(req, groups, render, "groups" if cast else "directoryObjects")

    def restore(self, req: Request, object_id: str) -> Reply:
        """`POST /directory/deletedItems/{id}/restore` (users): 200 with the restored object."""
        with self.tenant.lock:
            user = self.tenant.restore(object_id)
            body = {
                "@odata.context": f"{req.base}/$metadata#directoryObjects/$entity",
                "@odata.type": "#microsoft.graph.user",
                **user_json(user, None),
            }
        return Reply(200, body)

    def patch_user(self, req: Request, user_id: str) -> Reply:
        self.tenant.patch_user(user_id, req.body)
        return Reply(204)

    def delete_user(self, req: Request, user_id: str) -> Reply:
        self.tenant.delete_user(user_id)
        return Reply(204)

    def delete_group(self, req: Request, group_id: str) -> Reply:
        self.tenant.delete_group(group_id)
        return Reply(204)

    def assign_user(self, req: Request, user_id: str) -> Reply:
        with self.tenant.lock:
            return _user_entity(req, self.tenant.assign_user_license(user_id, req.body))

    def reprocess(self, req: Request, user_id: str) -> Reply:
        with self.tenant.lock:
            return _user_entity(req, self.tenant.reprocess(user_id))

    # ----- groups -------------------------------------------------------------------------
    def _group_select(self, req: Request) -> list[str] | None:
        allowed = set(DEFAULT_GROUP) | set(OTHER_GROUP) | {"resourceBehaviorOptions"}
        return parse_select(req.query, allowed, "microsoft.graph.group")

    def list_groups(self, req: Request) -> Reply:
        select = self._group_select(req)
        with self.tenant.lock:
            groups = list(self.tenant.groups.values())
            flt = req.query.get("$filter")
            if flt:
                if re.fullmatch(r"\s*assignedLicenses/any\(\)\s*", flt):
                    groups = [g for g in groups if g.licenses]
                elif found := FILTER_IDS.match(flt):
                    ids = [i.strip().strip("'\"").lower() for i in found.group(1).split(",")]
                    groups = [self.tenant.groups[i] for i in ids if i in self.tenant.groups]
                else:
                    raise GraphError(400, "Request_UnsupportedQuery", f"Unsupported Query. '{flt}'")
            return self._page(
                req,
                groups,
                lambda g: group_json(g, select, self.tenant),
                self._context("groups", select),
            )

    def get_group(self, req: Request, group_id: str) -> Reply:
        select = self._group_select(req)
        with self.tenant.lock:
            group = self.tenant.group(group_id)
            body = {
                "@odata.context": f"{req.base}/$metadata#{self._context('groups', select)}/$entity"
            }
            body.update(group_json(group, select, self.tenant))
        return Reply(200, body)

    def list_members(self, req: Request, group_id: str, which: str, cast: str | None) -> Reply:
        with self.tenant.lock:
            group = self.tenant.group(group_id)
            members = group.members if which == "members" else self.tenant.transitive_members(group)
            if cast:
                select = self._user_select(req)
                users = [
                    self.tenant.users[m]
                    for m, k in members.items()
                    if k == "user" and m in self.tenant.users
                ]
                return self._page(
                    req, users, lambda u: user_json(u, select), self._context("users", select)
                )
            raw = req.query.get("$select")
            select = [n.strip() for n in raw.split(",")] if raw else None
            if select and "id" not in select:
                select.append("id")
            return self._page(
                req,
                list(members.items()),
                lambda m: self._member_json(m, select),
                "directoryObjects",
            )

    def _member_json(self, member: tuple[str, str], select: list[str] | None) -> dict[str, Any]:
        member_id, kind = member
        out: dict[str, Any] = {"@odata.type": f"#microsoft.graph.{kind}"}
        if kind == "user" and member_id in self.tenant.users:
            out.update(user_json(self.tenant.users[member_id], select))
        elif kind == "group" and member_id in self.tenant.groups:
            out.update(group_json(self.tenant.groups[member_id], select, self.tenant))
        else:
            out["id"] = member_id
        return out

    def add_member(self, req: Request, group_id: str) -> Reply:
        body = req.body
        ref = body.get("@odata.id") if isinstance(body, dict) else None
        if not isinstance(ref, str):
            raise bad_request("Invalid request body: '@odata.id' is required.")
        member = ref.rstrip("/").rsplit("/", 1)[-1]
        member = re.sub(r"^.*\('?([^')]+)'?\)$", r"\1", member)
        self.tenant.add_member(group_id, member)
        return Reply(204)

    def remove_member(self, req: Request, group_id: str, member_id: str) -> Reply:
        self.tenant.remove_member(group_id, member_id)
        return Reply(204)

    def assign_group(self, req: Request, group_id: str) -> Reply:
        group = self.tenant.assign_group_license(group_id, req.body)
        body = {
            "@odata.context": f"{req.base}/$metadata#groups/$entity",
            "id": group.id,
            "createdDateTime": group.extra.get("createdDateTime"),
            "groupTypes": list(group.group_types),
            "securityEnabled": group.security_enabled,
        }
        headers = {
            "Location": f"{req.base}/directoryObjects/{group.id}/Microsoft.DirectoryServices.Group"
        }
        return Reply(202, body, headers)

    # ----- delta --------------------------------------------------------------------------
    def users_delta(self, req: Request) -> Reply:
        return self._delta(req, "users")

    def groups_delta(self, req: Request) -> Reply:
        return self._delta(req, "groups")

    def _delta(self, req: Request, kind: str) -> Reply:
        skip = req.query.get("$skiptoken")
        with self.tenant.lock:
            if skip:
                rid, _, offset = skip.partition(".")
                current = self.rounds.get(rid)
                if current is None or current.kind != kind or not offset.isdigit():
                    raise bad_request("The skip token is invalid or has expired.")
                return self._delta_page(req, rid, current, int(offset))
            since = 0
            token = req.query.get("$deltatoken")
            query = req.query
            if token == "latest":
                since = self.tenant.seq
            elif token:
                since, query = _read_delta_token(token, req.query)
                if since < self.tenant.delta_floor:
                    raise GraphError(
                        400,
                        "syncStateNotFound",
                        "The sync state generation is not found. The delta token is expired "
                        "and data must be synchronized again.",
                    )
            if kind == "users":
                select = self._user_select(Request(req.method, req.path, query, {}, None, ""))
                objects: list[Any] = [
                    u for u in self.tenant.users.values() if u.version > since or since == 0
                ]
            else:
                select = self._group_select(Request(req.method, req.path, query, {}, None, ""))
                objects = [
                    g for g in self.tenant.groups.values() if g.version > since or since == 0
                ]
            removed = [
                i for i, (k, seq) in self.tenant.removed.items() if k == kind and 0 < since < seq
            ]
            with_members = kind == "groups" and (
                (select is not None and "members" in select)
                or "members" in query.get("$expand", "")
            )
            entries: list[tuple[str, list[dict[str, Any]] | None]] = []
            for obj in objects:
                if not with_members:
                    entries.append((obj.id, None))
                    continue
                changes = self._member_changes(obj, since)
                if not changes:
                    entries.append((obj.id, [] if since == 0 else None))
                for i in range(0, len(changes), self.member_chunk):
                    entries.append((obj.id, changes[i : i + self.member_chunk]))
            entries.extend((object_id, None) for object_id in removed)
            size = page_size(
                {"$top": req.query["$top"]} if "$top" in req.query else {}, req.headers
            )
            rid = secrets.token_urlsafe(8)
            current = DeltaRound(kind, entries, self.tenant.seq, select, size, with_members)
            current.token = _delta_token(self.tenant.seq, query)
            if len(self.rounds) > 256:
                self.rounds.pop(next(iter(self.rounds)))
            self.rounds[rid] = current
            return self._delta_page(req, rid, current, 0)

    def _member_changes(self, group: GroupRecord, since: int) -> list[dict[str, Any]]:
        if since == 0:
            return [
                {"@odata.type": f"#microsoft.graph.{k}", "id": m} for m, k in group.members.items()
            ]
        last: dict[str, tuple[str, bool]] = {}
        for seq, member, kind, added in group.member_log:
            if seq > since:
                last[member] = (kind, added)
        out = []
        for member, (kind, added) in last.items():
            item: dict[str, Any] = {"@odata.type": f"#microsoft.graph.{kind}", "id": member}
            if not added:
                item["@removed"] = {"reason": "deleted"}
            out.append(item)
        return out

    def _delta_page(self, req: Request, rid: str, current: DeltaRound, offset: int) -> Reply:
        """One page: at most `size` objects and `member_chunk` member changes, so the parts of a
        split group land on successive pages (the same group repeated, as Graph does)."""
        select = [n for n in current.select or [] if n != "members"] or None
        value: list[dict[str, Any]] = []
        end, members_on_page = offset, 0
        while end < len(current.entries) and len(value) < current.size:
            obj_id, members = current.entries[end]
            count = len(members or ())
            if value and members_on_page + count > self.member_chunk:
                break
            item: dict[str, Any]
            if obj_id in self.tenant.removed:  # in the recycle bin: restorable for 30 days
                item = {"id": obj_id, "@removed": {"reason": "changed"}}
            elif current.kind == "users":
                item = user_json(self.tenant.users[obj_id], select)
            else:
                item = group_json(self.tenant.groups[obj_id], select, self.tenant)
                if members is not None:
                    item["members@delta"] = members
            value.append(item)
            members_on_page += count
            end += 1
        body: dict[str, Any] = {"@odata.context": f"{req.base}/$metadata#{current.kind}"}
        if end < len(current.entries):
            body["@odata.nextLink"] = f"{req.base}/{current.kind}/delta?$skiptoken={rid}.{end}"
        else:
            body["@odata.deltaLink"] = (
                f"{req.base}/{current.kind}/delta?$deltatoken={current.token}"
            )
        body["value"] = value
        return Reply(200, body)


def _user_entity(req: Request, user: UserRecord) -> Reply:
    """The user Graph returns from assignLicense and reprocessLicenseAssignment."""
    body: dict[str, Any] = {"@odata.context": f"{req.base}/$metadata#users/$entity"}
    body.update(user_json(user, None))
    body["accountEnabled"] = user.account_enabled
    body["assignedLicenses"] = user.licenses
    return Reply(200, body)


def parse_query(raw: str) -> dict[str, str]:
    return dict(parse_qsl(raw, keep_blank_values=True))


def _delta_token(upto: int, query: dict[str, str]) -> str:
    """An opaque delta token: the change sequence reached plus the round's $select/$expand."""
    kept = {k: v for k, v in query.items() if k in ("$select", "$expand")}
    if not kept:
        return str(upto)
    return f"{upto}.{base64.urlsafe_b64encode(urlencode(kept).encode()).decode().rstrip('=')}"


def _read_delta_token(token: str, query: dict[str, str]) -> tuple[int, dict[str, str]]:
    head, _, tail = token.partition(".")
    if not head.isdigit():
        raise bad_request("The delta token is invalid.")
    merged = dict(query)
    if tail:
        try:
            raw = base64.urlsafe_b64decode(tail + "=" * (-len(tail) % 4)).decode()
        except ValueError as exc:
            raise bad_request("The delta token is invalid.") from exc
        merged.update(parse_qsl(raw))
    return int(head), merged
