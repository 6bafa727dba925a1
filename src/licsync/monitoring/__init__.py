"""What a scheduled run tells the outside: its summary as Prometheus metrics (a textfile for
node-exporter, a Pushgateway push) and notifications on failure or new problems."""

from licsync.monitoring.metrics import publish_metrics, registry_for, write_metrics_file
from licsync.monitoring.notify import check_notify, notify
from licsync.monitoring.report import RunEvents, RunReport, report_for

__all__ = [
    "RunEvents",
    "RunReport",
    "check_notify",
    "notify",
    "publish_metrics",
    "registry_for",
    "report_for",
    "write_metrics_file",
]
