"""An emulator serving HTTPS with HTTP/2 that issues and checks bearer tokens, and the
`[graph]` settings of an app registration that uses it (client secret, trusted test CA)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from licsync.emulator.auth import TokenIssuer
from licsync.emulator.server import Emulator
from licsync.graph import GraphSettings, load_graph_settings

CLIENT_ID = "3c1e9a70-5d2b-4c7e-9a3f-0e6d2b1c4f58"
SECRET = "emulator-test-secret-Zq8~"


def secure_emulator(
    factory: Any, tls_files: tuple[Path, Path], snapshot: Any = None, **kwargs: Any
) -> Emulator:
    """A started emulator on HTTPS + HTTP/2 whose Graph API needs a token from its own token
    endpoint (`emulator.app.auth`, a `TokenIssuer` for CLIENT_ID / SECRET)."""
    _, server_pem = tls_files
    lifetime = kwargs.pop("token_lifetime", 3600.0)
    graph: Emulator = factory(snapshot, tls=(server_pem, server_pem), **kwargs)
    graph.app.auth = TokenIssuer(graph.tenant.tenant_id, CLIENT_ID, SECRET, lifetime)
    return graph


def graph_table(graph: Emulator, tls_files: tuple[Path, Path]) -> dict[str, Any]:
    """The `[graph]` table for `graph` (the secret comes from the environment)."""
    return {
        "url": graph.url,
        "auth": "client_secret",
        "tenant_id": graph.tenant.tenant_id,
        "client_id": CLIENT_ID,
        "authority": graph.authority,
        "ca_file": str(tls_files[0]),
    }


def secure_settings(graph: Emulator, tls_files: tuple[Path, Path], **extra: Any) -> GraphSettings:
    env = {"LICSYNC_GRAPH_CLIENT_SECRET": extra.pop("secret", SECRET)}
    return load_graph_settings({**graph_table(graph, tls_files), **extra}, env=env)
