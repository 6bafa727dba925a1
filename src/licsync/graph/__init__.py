"""The only package that speaks HTTP to Microsoft Graph.

Public API: settings (`load_graph_settings`), the client (`GraphClient`), paging
(`Paginator`), classification (`classify`, `Action`, `Verdict`), retries (`RetryPolicy`),
the write budget (`WriteBudget`) and batched writes (`send_writes`, `WriteJob`, `WriteOutcome`).
"""

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
from licsync.graph.writes import WriteJob, WriteOutcome, send_writes

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
    "WriteOutcome",
    "classify",
    "load_graph_settings",
    "send_writes",
]
