"""`licsync explain`: why a user gets (or does not get) each licence, from the plan.

For every SKU the user holds or any source would give: each source (rule group, Entra group,
the user's own direct assignment) with its disabled plans and verdict, the licence the user ends
up with (enabled plans are the union over the sources that apply), the seat decision, what
licsync writes, and the problems that block it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from licsync.engine.filters import AttributeValue, clauses, evaluate, holds
from licsync.engine.inputs import Rule
from licsync.engine.membership import user_attributes
from licsync.errors import InputError
from licsync.model import LicenseError, Plan, User, UserPlan, guid
from licsync.reports.changes import source_label
from licsync.reports.names import Names
from licsync.reports.remedies import REMEDIES

EXPLAIN_VERSION = 1
SEATS = {
    (False, True): "gets a new seat",
    (True, True): "keeps its seat",
    (True, False): "loses its seat (freed)",
    (False, False): "not licensed",
}


def _seat(held: bool, after: bool, blocked: bool) -> str:
    if not held and not after and blocked:
        return "no new seat: blocked (below)"
    return SEATS[(held, after)]


def find_user(names: Names, who: str) -> User:
    """The user named by UPN (any case) or object id; InputError when there is none."""
    users = names.tenant.users
    found = users.get(guid(who))
    if found is None:
        wanted = who.strip().casefold()
        found = next(
            (u for u in users.values() if u.user_principal_name.casefold() == wanted), None
        )
    if found is None:
        raise InputError(f"no user {who!r} in the tenant: give a userPrincipalName or an object id")
    return found


def find_sku(names: Names, sku: str) -> str:
    """The SKU id named by part number (any case) or id; InputError when the tenant has none."""
    skus = names.tenant.skus
    if guid(sku) in skus:
        return guid(sku)
    for s in skus.values():
        if s.part_number.casefold() == sku.strip().casefold():
            return s.id
    known = ", ".join(sorted(s.part_number for s in skus.values()))
    raise InputError(f"no SKU {sku!r} among the tenant's subscribed SKUs ({known})")


def _user_plan(plan: Plan, user: User) -> UserPlan | None:
    return next((u for u in plan.users if u.user_id == user.id), None)


def _filter(rule: Rule | None, values: dict[str, AttributeValue]) -> dict[str, Any] | None:
    """What a rule's filter asked and, clause by clause, what the user's attributes answered."""
    if rule is None or rule.filter is None:
        return None
    return {
        "matched": evaluate(rule.filter, values),
        "clauses": [
            {
                "clause": c.text,
                "matched": holds(c, values.get(c.prop)),
                "property": c.prop,
                "value": list(v) if isinstance(v := values.get(c.prop), tuple) else v,
            }
            for c in clauses(rule.filter)
        ],
    }


def explain(
    plan: Plan,
    names: Names,
    user: User,
    sku_id: str | None = None,
    rules: Sequence[Rule] = (),
) -> dict[str, Any]:
    """The explanation as a JSON-ready dict (format in docs/report-format.md); `rules`: the
    resolved rules, whose filters are explained clause by clause."""
    by_source = {r.source_id: r for r in rules}
    values = user_attributes(user)
    user_plan = _user_plan(plan, user)
    states = user_plan.states if user_plan else ()
    after = {a.sku_id: a.disabled_plans for a in user_plan.assigned_licenses} if user_plan else {}
    adds = {a.sku_id: a for a in user_plan.add_licenses} if user_plan else {}
    removes = set(user_plan.remove_licenses) if user_plan else set()
    held = {a.sku_id: a.disabled_plans for a in user.assigned_licenses}
    problems = [p for p in plan.problems if p.user_id == user.id]
    skus = set(held) | set(after) | {s.sku_id for s in states}
    if sku_id is not None:
        skus &= {sku_id}
    entries = []
    for sku in sorted(skus, key=names.part_number):
        sources = []
        for s in states:
            if s.sku_id != sku:
                continue
            why = next(
                (
                    p.message
                    for p in problems
                    if p.sku_id == sku and p.group_id == s.group_id and p.error is s.error
                ),
                None,
            )
            sources.append(
                {
                    "source": s.kind.value,
                    "groupId": s.group_id,
                    "name": source_label(s.kind, s.group_id, names),
                    "disabledPlans": names.plan_list(s.disabled_plans),
                    "state": s.state,
                    "error": s.error.value if s.error else None,
                    "message": why,
                    "filter": _filter(by_source.get(s.group_id or ""), values),
                }
            )
        blocked = [
            {
                "error": p.error.value,
                "group": names.group(p.group_id),
                "message": p.message,
                "remedy": REMEDIES[p.error].remedy,
            }
            for p in problems
            if p.sku_id == sku
        ]
        if sku in removes:
            write = "remove"
        elif sku in adds:
            write = "update" if sku in user.direct_licenses() else "add"
        else:
            write = "none"
        entries.append(
            {
                "skuId": sku,
                "skuPartNumber": names.part_number(sku),
                "productName": names.product(sku),
                "before": names.plan_list(held[sku]) if sku in held else None,
                "sources": sources,
                "after": names.plan_list(after[sku]) if sku in after else None,
                "seat": _seat(sku in held, sku in after, bool(blocked)),
                "write": write,
                "blockedBy": blocked,
            }
        )
    return {
        "version": EXPLAIN_VERSION,
        "userId": user.id,
        "userPrincipalName": user.user_principal_name,
        "usageLocation": user.usage_location,
        "setUsageLocation": user_plan.usage_location if user_plan else None,
        "skus": entries,
    }


def _plans(disabled: list[str] | None) -> str:
    if disabled is None:
        return "no licence"
    return "disabled: " + ", ".join(disabled) if disabled else "all plans on"


def _because(found: dict[str, Any]) -> str:
    """The filter's clauses with what each found: `user.department -eq "Sales" (department =
    "Sales"): yes`."""
    parts = []
    for c in found["clauses"]:
        value = "null" if c["value"] is None else c["value"]
        parts.append(
            f"{c['clause']} ({c['property']} = {value!r}): {'yes' if c['matched'] else 'no'}"
        )
    return "; ".join(parts)


def render_explain(doc: dict[str, Any], console: Console) -> None:
    """The explanation as one table per SKU."""
    parts: list = [
        Text(
            f"{doc['userPrincipalName']} ({doc['userId']}), usage location "
            f"{doc['usageLocation'] or 'none'}"
            + (f" → {doc['setUsageLocation']}" if doc["setUsageLocation"] else ""),
            style="bold",
        )
    ]
    if not doc["skus"]:
        parts.append(Text("No licence held and no source gives one."))
    for entry in doc["skus"]:
        title = f"{entry['skuPartNumber']} ({entry['productName']}): {entry['seat']}"
        table = Table(title=title, title_justify="left")
        for column in ("Source", "Plans", "State", "Why"):
            table.add_column(column, overflow="fold")
        for s in entry["sources"]:
            why = Text(s["message"] or "", style="red" if s["error"] else "")
            state = s["state"] + (f" ({s['error']})" if s["error"] else "")
            table.add_row(Text(s["name"]), Text(_plans(s["disabledPlans"])), Text(state), why)
            if s.get("filter"):
                table.add_row(Text("  because"), Text(_because(s["filter"])), Text(""), Text(""))
        table.caption = (
            f"before: {_plans(entry['before'])}; after (union of the sources that apply): "
            f"{_plans(entry['after'])}; licsync writes: {entry['write']}"
        )
        table.caption_justify = "left"
        parts.append(table)
        for b in entry["blockedBy"]:
            line = f"blocked by {b['error']} ({b['group']}): {b['message']}. {b['remedy']}"
            if b["error"] == LicenseError.OTHER.value:
                line = f"blocked by its partner ({b['group']}): {b['message']}"
            parts.append(Text(line, style="red"))
    console.print(Group(*parts))
