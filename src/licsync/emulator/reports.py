"""Microsoft 365 usage reports: `GET /reports/getOffice365ActiveUserDetail(period='D180')` and
the tenant's report settings (`/admin/reportSettings`).

As Graph does (https://learn.microsoft.com/graph/api/reportroot-getoffice365activeuserdetail):
the function answers `302 Found` with a `Location` of a preauthenticated download url (no
`Authorization` header needed, valid a few minutes), which serves the CSV with a UTF-8 byte-order
mark. A user's activity dates are the date of their last successful sign-in when it falls in the
period, else empty. With `displayConcealedNames` on (adminReportSettings, "If set to true, all
reports conceal user information such as usernames, groups, and sites"), names are replaced by
a hash, as the Microsoft 365 admin center does.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import secrets
from datetime import UTC, date, datetime, timedelta
from typing import Any

COLUMNS = (
    "Report Refresh Date",
    "User Principal Name",
    "Display Name",
    "Is Deleted",
    "Deleted Date",
    "Has Exchange License",
    "Has OneDrive License",
    "Has SharePoint License",
    "Has Skype For Business License",
    "Has Yammer License",
    "Has Teams License",
    "Exchange Last Activity Date",
    "OneDrive Last Activity Date",
    "SharePoint Last Activity Date",
    "Skype For Business Last Activity Date",
    "Yammer Last Activity Date",
    "Teams Last Activity Date",
    "Exchange License Assign Date",
    "OneDrive License Assign Date",
    "SharePoint License Assign Date",
    "Skype For Business License Assign Date",
    "Yammer License Assign Date",
    "Teams License Assign Date",
    "Assigned Products",
)
PERIODS = {"D7": 7, "D30": 30, "D90": 90, "D180": 180}
PERIOD = re.compile(r"^\(period='([^']*)'\)$")
DOWNLOAD_PREFIX = "/_emulator/reports/"


def concealed(name: str) -> str:
    """A name as concealed reports show it: a hash that says nothing of the user."""
    return hashlib.md5(name.lower().encode(), usedforsecurity=False).hexdigest().upper()


def _last_sign_in(user: Any) -> date | None:
    activity = user.extra.get("signInActivity") or {}
    text = activity.get("lastSuccessfulSignInDateTime")
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).date()


def active_user_detail(tenant: Any, days: int, today: date | None = None) -> bytes:
    """The CSV of getOffice365ActiveUserDetail over the last `days` days, with a BOM."""
    today = today or datetime.now(UTC).date()
    hide = bool(tenant.report_settings.get("displayConcealedNames"))
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for user in tenant.user_list():
        held = sorted(tenant.skus[s].part_number for s in user.held() if s in tenant.skus)
        last = _last_sign_in(user)
        seen = last.isoformat() if last is not None and last >= today - timedelta(days) else ""
        licensed = "True" if held else "False"
        name, upn = user.display_name, user.upn
        if hide:
            name = upn = concealed(user.upn)
        writer.writerow(
            [today.isoformat(), upn, name, "False", "", *[licensed] * 6]
            + [seen, "", "", "", "", seen]
            + [""] * 6
            + ["+".join(held)]
        )
    return out.getvalue().encode("utf-8")


def new_download() -> str:
    """A fresh preauthenticated download path."""
    return DOWNLOAD_PREFIX + secrets.token_urlsafe(16)
