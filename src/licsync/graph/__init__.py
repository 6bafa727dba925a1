"""The only package that speaks HTTP to Microsoft Graph.

Public API: settings (`load_graph_settings`), the client (`GraphClient`), paging
(`Paginator`), classification (`classify`, `Action`, `Verdict`), retries (`RetryPolicy`),
the write budget (`WriteBudget`) and batched writes (`send_writes`, `WriteJob`, `WriteResult`).

Names are imported on first use (PEP 562), so that importing `licsync.graph.settings` (the CLI,
read-only commands) does not load msgraph-sdk, kiota and azure-identity.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from licsync.graph.budget import WriteBudget
    from licsync.graph.classify import Action, Verdict, classify
    from licsync.graph.client import GraphClient
    from licsync.graph.errors import (
        GraphAuthError,
        GraphError,
        GraphFatalError,
        GraphPagingError,
        GraphProblemError,
        GraphThrottledError,
        GraphTransientError,
    )
    from licsync.graph.paging import Paginator
    from licsync.graph.retry import RetryPolicy
    from licsync.graph.settings import AuthKind, GraphSettings, load_graph_settings
    from licsync.graph.writes import WriteJob, WriteResult, send_writes

_HOMES = {
    "WriteBudget": "budget",
    "Action": "classify",
    "Verdict": "classify",
    "classify": "classify",
    "GraphClient": "client",
    "GraphAuthError": "errors",
    "GraphError": "errors",
    "GraphFatalError": "errors",
    "GraphPagingError": "errors",
    "GraphProblemError": "errors",
    "GraphThrottledError": "errors",
    "GraphTransientError": "errors",
    "Paginator": "paging",
    "RetryPolicy": "retry",
    "AuthKind": "settings",
    "GraphSettings": "settings",
    "load_graph_settings": "settings",
    "WriteJob": "writes",
    "WriteResult": "writes",
    "send_writes": "writes",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)


__all__ = [
    "Action",
    "AuthKind",
    "GraphAuthError",
    "GraphClient",
    "GraphError",
    "GraphFatalError",
    "GraphPagingError",
    "GraphProblemError",
    "GraphSettings",
    "GraphThrottledError",
    "GraphTransientError",
    "Paginator",
    "RetryPolicy",
    "Verdict",
    "WriteBudget",
    "WriteJob",
    "WriteResult",
    "classify",
    "load_graph_settings",
    "send_writes",
]
