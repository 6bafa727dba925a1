"""Activity from the Microsoft 365 usage report `getOffice365ActiveUserDetail(period='D180')`
(`Reports.Read.All`, no Entra ID P1 needed): per user principal name, the last date of any
activity (Exchange, OneDrive, SharePoint, Skype, Yammer, Teams) in the last 180 days.

When the tenant conceals user names in reports (`adminReportSettings.displayConcealedNames`,
the Microsoft 365 admin center's "Display concealed user, group, and site names in all
reports"), the report names users by a hash: nothing can be matched, so licsync stops.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from licsync.errors import InputError

if TYPE_CHECKING:
    from licsync.graph.client import GraphClient

REPORT = "/reports/getOffice365ActiveUserDetail(period='D180')"
PERIOD_DAYS = 180
UPN = "User Principal Name"
CONCEALED_HOW = (
    "the tenant conceals user names in usage reports: turn off adminReportSettings."
    "displayConcealedNames (Microsoft 365 admin center > Settings > Org settings > Reports: "
    '"Display concealed user, group, and site names in all reports"), or use --source signins'
)
_HASH = re.compile(r"[0-9A-Fa-f]{32}")


@dataclass(frozen=True, slots=True)
class UsageReport:
    """Last activity by user principal name (lower case); None: in the report, no activity in
    its period."""

    refreshed: date | None
    last_activity: dict[str, date | None]


def _date(text: str) -> date | None:
    text = text.strip()
    return date.fromisoformat(text[:10]) if text else None


def parse_usage(data: bytes) -> UsageReport:
    """The report's CSV (UTF-8 with a BOM); InputError when names are concealed."""
    text = data.decode("utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or UPN not in reader.fieldnames:
        raise InputError(f"the usage report has no {UPN!r} column: not the expected report")
    activity_columns = [c for c in reader.fieldnames if c.endswith("Last Activity Date")]
    found: dict[str, date | None] = {}
    refreshed = None
    concealed = 0
    for row in reader:
        upn = (row.get(UPN) or "").strip()
        if "@" not in upn and _HASH.fullmatch(upn):
            concealed += 1
            continue
        dates = [d for c in activity_columns if (d := _date(row.get(c) or ""))]
        found[upn.lower()] = max(dates) if dates else None
        refreshed = refreshed or _date(row.get("Report Refresh Date") or "")
    if concealed and not found:
        raise InputError(f"cannot match users to the usage report: {CONCEALED_HOW}")
    return UsageReport(refreshed, found)


async def read_usage(client: GraphClient) -> UsageReport:
    """The 180-day active user detail report through Graph."""
    return parse_usage(await client.download_report(REPORT))


def today() -> date:
    return datetime.now(UTC).date()
