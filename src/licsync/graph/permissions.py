"""Which application permission a Graph request needs: named in the message of a 403.

Least-privileged application permissions from the permissions table of each API's page on
learn.microsoft.com (Graph v1.0), for the requests licsync sends.
"""

from __future__ import annotations

import re

# (method, path pattern) → permission to grant; the first match wins.
PERMISSIONS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("POST", re.compile(r"^/users/[^/]+/assignLicense$"), "LicenseAssignment.ReadWrite.All"),
    # Update user: usageLocation needs User.ReadWrite.All (the table's least privileged
    # User.ManageIdentities.All covers only the identities property).
    ("PATCH", re.compile(r"^/users/[^/]+$"), "User.ReadWrite.All"),
    ("POST", re.compile(r"^/users/[^/]+/reprocessLicenseAssignment$"), "User.ReadWrite.All"),
    ("POST", re.compile(r"^/groups/[^/]+/assignLicense$"), "LicenseAssignment.ReadWrite.All"),
    (
        "GET",
        re.compile(r"^/groups/[^/]+/(members|transitiveMembers)"),
        "GroupMember.Read.All (and Member.Read.Hidden for groups with hidden membership)",
    ),
    ("GET", re.compile(r"^/groups"), "Group.Read.All"),
    ("GET", re.compile(r"^/users"), "User.Read.All"),
    ("GET", re.compile(r"^/subscribedSkus"), "Organization.Read.All"),
    ("GET", re.compile(r"^/directory/subscriptions"), "Organization.Read.All"),
    ("GET", re.compile(r"^/reports/"), "Reports.Read.All"),
    ("GET", re.compile(r"^/admin/reportSettings"), "ReportSettings.Read.All"),
    ("GET", re.compile(r"^/organization"), "Organization.Read.All"),
)


def permission_for(what: str) -> str | None:
    """The permission for `what` ("METHOD /path" or "METHOD https://…/v1.0/path"); None if
    licsync does not know it."""
    method, _, target = what.partition(" ")
    path = re.sub(r"^https?://[^/]+/[^/]+", "", target.split("?", 1)[0])
    path = "/" + path.lstrip("/")
    for verb, pattern, permission in PERMISSIONS:
        if verb == method.upper() and pattern.search(path):
            return permission
    return None


def missing_permission_hint(what: str) -> str:
    """The sentence telling the operator what to grant after a 403 on `what`."""
    permission = permission_for(what)
    grant = (
        f"grant the app the {permission} application permission"
        if permission
        else ("grant the app the application permissions listed in README (Graph permissions)")
    )
    return f"the app lacks a Graph permission: {grant} with admin consent"
