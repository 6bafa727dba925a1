"""Graph errors, split by how the caller must react; each carries the classifier's verdict."""

from __future__ import annotations

from typing import TYPE_CHECKING

from licsync.errors import LicsyncError
from licsync.exitcodes import ExitCode

if TYPE_CHECKING:
    from licsync.graph.classify import Verdict


class GraphError(LicsyncError):
    """A Graph request that did not succeed; `verdict` says what Graph answered."""

    exit_code = ExitCode.GRAPH

    def __init__(self, message: str, verdict: Verdict | None = None) -> None:
        self.verdict = verdict
        super().__init__(message)

    @property
    def retry_after(self) -> float | None:
        return self.verdict.retry_after if self.verdict else None

    @property
    def request_id(self) -> str | None:
        return self.verdict.request_id if self.verdict else None


class GraphTransientError(GraphError):
    """503/504/transport failure: safe to retry after a back-off."""


class GraphThrottledError(GraphError):
    """429: retry no earlier than `retry_after` seconds (None: back off exponentially)."""


class GraphAuthError(GraphError):
    """401: the token was refused; retried once with a fresh token, then fatal."""


class GraphProblemError(GraphError):
    """A per-object refusal (400/404 …): record a problem, the run goes on."""


class GraphFatalError(GraphError):
    """403 and other refusals that will not change by retrying: stop the run."""


class GraphCredentialError(GraphFatalError):
    """azure-identity could not get an access token (wrong secret, no consent, unreachable
    login endpoint, no managed identity here …)."""


class GraphPagingError(GraphFatalError):
    """A paged read went wrong (a next link repeated): stop rather than loop."""


class GraphSecurityError(GraphFatalError):
    """A url or redirect leading away from the configured Graph endpoint: refused, not sent."""
