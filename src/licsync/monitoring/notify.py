"""Notifications on a failed run or new problems, through apprise (`pip install
'licsync[notify]'`): Teams, Slack, e-mail and ~100 other services by URL. The URLs come only
from LICSYNC_NOTIFY_URLS (comma or space separated): they carry webhook tokens and passwords."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from types import ModuleType

import structlog

from licsync.errors import InputError
from licsync.monitoring.report import RunReport

log = structlog.get_logger("licsync.notify")

ENV_NOTIFY_URLS = "LICSYNC_NOTIFY_URLS"


def notify_urls(environ: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    return [u for u in re.split(r"[\s,]+", env.get(ENV_NOTIFY_URLS, "")) if u]


def _apprise() -> ModuleType:
    """apprise, with its own logger silenced: its lines quote the URLs, tokens included
    (licsync logs each notification's outcome itself)."""
    try:
        import apprise
    except ImportError:
        raise InputError(
            f"{ENV_NOTIFY_URLS} is set, but notifications need apprise: "
            "pip install 'licsync[notify]'"
        ) from None
    logging.getLogger("apprise").disabled = True
    return apprise


def check_notify(environ: Mapping[str, str] | None = None) -> None:
    """Refuse up front (exit 3) notification URLs that apprise is missing for or cannot read."""
    urls = notify_urls(environ)
    if not urls:
        return
    apprise = _apprise()
    for index, url in enumerate(urls, 1):
        if not apprise.Apprise().add(url):
            raise InputError(
                f"{ENV_NOTIFY_URLS}: URL #{index} is not one apprise knows (its scheme is "
                f"{url.split('://', 1)[0]!r}); see apprise's list of services"
            )


def _reasons(report: RunReport, on: Iterable[str]) -> list[str]:
    wanted = set(on)
    reasons = []
    if "failure" in wanted and report.failed:
        reasons.append(f"failed ({report.outcome}, exit {report.exit_code})")
    if "new_problems" in wanted and report.problems_new:
        reasons.append(f"{report.problems_new} new problem record(s)")
    if "problems" in wanted and report.problems_open and not report.failed:
        reasons.append(f"{report.problems_open} open problem record(s)")
    return reasons


def notify(report: RunReport, on: Iterable[str], environ: Mapping[str, str] | None = None) -> bool:
    """Send one notification when the report matches `on`; returns whether one was sent. A
    service that refuses it is logged, never raised: the run's outcome stands."""
    urls = notify_urls(environ)
    reasons = _reasons(report, on)
    if not urls or not reasons or report.dry_run:
        return False
    apprise = _apprise()

    sender = apprise.Apprise()
    for url in urls:
        sender.add(url)
    lines = [
        f"tenant: {report.tenant}",
        f"outcome: {report.outcome} (exit {report.exit_code})",
        f"writes: {report.writes_ok} ok, {report.writes_failed} failed",
        f"problems: {report.problems_open} open, {report.problems_new} new",
    ]
    if report.error:
        lines.append(f"error: {report.error}")
    failed = report.failed
    sent = sender.notify(
        title=f"licsync sync: {'; '.join(reasons)}",
        body="\n".join(lines),
        notify_type=apprise.NotifyType.FAILURE if failed else apprise.NotifyType.WARNING,
    )
    log.info("notify.sent" if sent else "notify.failed", reasons=reasons, services=len(urls))
    return bool(sent)
