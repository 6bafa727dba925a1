"""The client secret never reaches what licsync prints, even when the token endpoint echoes
the request: a real `licsync sync` process against a TLS token endpoint on loopback."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, quote, quote_plus

import pytest
import structlog

from licsync import redact
from licsync.commands.common import configure_logging
from licsync.exitcodes import ExitCode
from licsync.graph.settings import load_graph_settings
from tests.loopback import Reply, Seen, serve

pytestmark = pytest.mark.slow

SECRET = "Xq8~s3cr+t/Val=ue&z!9"  # characters that form- and percent-encoding change
LOWER_HEX = re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), quote_plus(SECRET))  # %2b
SPELLINGS = (SECRET, quote_plus(SECRET), quote(SECRET, safe=""), LOWER_HEX)
TENANT = "8d3b8a2c-0f4e-4d8a-9c3a-2b6f1e7d5a40"
CLIENT = "c0ffee00-1111-4222-8333-444455556666"


@pytest.fixture(autouse=True)
def _no_secrets() -> Iterator[None]:
    yield
    redact.forget_all()
    structlog.reset_defaults()


def echo_401(seen: Seen) -> Reply:
    """What a token endpoint (or a proxy in front of it) did: echo the form post."""
    posted = parse_qs(seen.body.decode())
    description = (
        f"AADSTS7000215: Invalid client secret provided: '{posted['client_secret'][0]}'. "
        f"Request body: {seen.body.decode()}"
    )
    body = {"error": "invalid_client", "error_description": description, "error_codes": [7000215]}
    return Reply(401, json.dumps(body).encode(), {"Content-Type": "application/json"})


def echo_html_500(seen: Seen) -> Reply:
    page = f"<html><body><h1>500</h1><pre>{seen.body.decode()}</pre></body></html>"
    return Reply(500, page.encode(), {"Content-Type": "text/html"})


@pytest.mark.parametrize(
    ("echo", "source"),
    [
        (echo_401, "environment"),
        (echo_401, "client_secret_file"),
        (echo_html_500, "client_secret_file"),  # azure-identity retries it: 7 s, run once
    ],
)
def test_an_echoed_secret_is_never_printed(
    tmp_path: Path, tls_files: tuple[Path, Path], echo: object, source: str
) -> None:
    ca, server = tls_files
    with serve(echo, tls=server) as login:  # type: ignore[arg-type]
        secret_line = ""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LICSYNC_", "AZURE_"))}
        env["SSL_CERT_FILE"] = str(ca)  # azure-identity (aiohttp) trusts the test CA
        if source == "environment":
            env["LICSYNC_GRAPH_CLIENT_SECRET"] = SECRET
        else:
            (tmp_path / "secret").write_text(SECRET + "\n", encoding="utf-8")
            secret_line = f'client_secret_file = "{tmp_path / "secret"}"\n'
        config = tmp_path / "licsync.toml"
        config.write_text(
            f'[graph]\nurl = "http://127.0.0.1:9/v1.0"\ntenant_id = "{TENANT}"\n'
            f'client_id = "{CLIENT}"\nauthority = "127.0.0.1:{login.port}"\n{secret_line}'
            f'[state]\nurl = "{tmp_path / "state.db"}"\n'
            '[[group_licenses]]\ngroup = "99999999-0000-4000-8000-000000000001"\n'
            '[[group_licenses.licenses]]\nsku = "SPE_E3"\n',
            encoding="utf-8",
        )
        run = subprocess.run(
            [sys.executable, "-m", "licsync", "sync", "--config", str(config)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
    posted = login.seen[0].body.decode()
    assert quote_plus(SECRET) in posted  # the endpoint did get (and echo) the secret
    output = run.stdout + run.stderr
    assert run.returncode == ExitCode.GRAPH, output
    assert "Traceback" not in output
    # the first request: the tenant check's /organization (the reads' /…/delta ones follow)
    assert re.search(r"licsync: error: GET /organization: cannot get an access token ", run.stderr)
    assert ("***" in run.stderr) is (echo is echo_401)  # the 401's own words are kept
    for spelling in SPELLINGS:
        assert spelling not in output


def test_every_spelling_is_masked() -> None:
    redact.register(SECRET)
    text = " | ".join([*SPELLINGS, json.dumps({"s": SECRET})])
    assert redact.redact(text).count("***") == len(SPELLINGS) + 1
    assert SECRET[:6] in redact.redact(SECRET[:6])  # a part alone is not the secret


def test_logs_are_masked(capsys: pytest.CaptureFixture[str]) -> None:
    load_graph_settings(
        {"tenant_id": TENANT, "client_id": CLIENT},
        env={"LICSYNC_GRAPH_CLIENT_SECRET": SECRET},
    )
    configure_logging()
    structlog.get_logger("licsync.test").warning("token.failed", body=f"secret={SECRET}")
    try:
        raise RuntimeError(f"echo {quote_plus(SECRET)}")
    except RuntimeError:
        # licsync keeps azure's loggers at ERROR (cli.main): what still gets through is masked
        logging.getLogger("azure.identity").error("get_token failed: %s", SECRET, exc_info=True)
    err = capsys.readouterr().err
    assert "token.failed" in err and "get_token failed: ***" in err and "echo ***" in err
    for spelling in SPELLINGS:
        assert spelling not in err
