"""Nothing from outside is trusted blindly: `licsync sync` through a loopback proxy that
corrupts one Graph reply (a 200 that is not a page) or points a link or a redirect at another
server. Each run ends with exit 5 and one clear message; the other server sees nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from licsync.cli import main
from licsync.emulator.server import Emulator
from licsync.exitcodes import ExitCode
from tests.builders import group_id
from tests.loopback import Reply, Seen, serve
from tests.syncing import config_text

Alter = Callable[[Seen, Reply], Reply]
RULES = [{"group": group_id(1), "licenses": [{"sku": "SPE_E3"}]}]
SKIPTOKEN = "RFNwdAIAAQAAAD8xOTc2"  # part of a next link: never shown in messages


@pytest.fixture
def sink() -> Iterator[object]:
    """Another server on loopback: a host licsync must never talk to."""
    with serve(lambda seen: Reply(200, b'{"value": []}')) as server:
        yield server


def run_through(small: Emulator, tmp_path: Path, alter: Alter) -> int:
    """`licsync sync` against `small` through a proxy that passes each reply to `alter`."""
    upstream = httpx.URL(small.url)

    def respond(seen: Seen) -> Reply:
        answer = httpx.request(
            seen.method,
            upstream.copy_with(raw_path=seen.path.encode()),
            content=seen.body,
            headers={k: v for k, v in seen.headers.items() if k.lower() != "host"},
        )
        reply = Reply(answer.status_code, answer.content, {"Content-Type": "application/json"})
        return alter(seen, reply)

    with serve(respond) as proxy:
        url = f"http://127.0.0.1:{proxy.port}/v1.0"
        text = config_text(small, tmp_path / "state.db", RULES).replace(small.url, url)
        path = tmp_path / "licsync.toml"
        path.write_text(text, encoding="utf-8")
        return main(["sync", "--config", str(path)])


def on_users_list(change: Callable[[Reply], Reply]) -> Alter:
    """`change` the reply to the full `/users` listing; every other reply passes."""

    def alter(seen: Seen, reply: Reply) -> Reply:
        path = seen.path.split("?", 1)[0]
        return change(reply) if seen.method == "GET" and path == "/v1.0/users" else reply

    return alter


def with_body(body: bytes) -> Callable[[Reply], Reply]:
    return lambda reply: Reply(200, body, reply.headers)


def with_next_link(link: str) -> Callable[[Reply], Reply]:
    def change(reply: Reply) -> Reply:
        page = orjson.loads(reply.body)
        return Reply(200, orjson.dumps({**page, "@odata.nextLink": link}), reply.headers)

    return change


NOT_PAGES = {
    "error object": (b'{"error": {"code": "BadGateway", "message": "upstream"}}', "Graph error"),
    "list": (b"[]", "JSON list"),
    "empty body": (b"", "empty body"),
    "no value": (b'{"@odata.context": "users"}', "no 'value' list"),
    "value string": (b'{"value": "x"}', "'value' is a JSON string"),
    "item without id": (b'{"value": [{"displayName": "x"}]}', "item 0 has no 'id'"),
    "item of the wrong shape": (
        b'{"value": [{"id": "u1", "assignedLicenses": "x"}]}',
        "item 0 (id 'u1') has an unexpected shape",
    ),
}


@pytest.mark.parametrize("case", NOT_PAGES)
def test_a_200_that_is_not_a_page_is_an_error(
    small: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    body, expected = NOT_PAGES[case]
    code = run_through(small, tmp_path, on_users_list(with_body(body)))
    err = capsys.readouterr().err
    assert code == ExitCode.GRAPH
    assert "licsync: error: GET /users" in err and expected in err
    assert small.stats.writes == 0


def test_a_bad_next_page_is_named_without_its_query(
    small: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def alter(seen: Seen, reply: Reply) -> Reply:
        if SKIPTOKEN in seen.path:  # the second page
            return Reply(200, b"[]", reply.headers)
        link = f"http://{seen.headers['Host']}/v1.0/users?$skiptoken={SKIPTOKEN}"
        return on_users_list(with_next_link(link))(seen, reply)

    code = run_through(small, tmp_path, alter)
    err = capsys.readouterr().err
    assert code == ExitCode.GRAPH
    assert "/v1.0/users: not a Graph page: the reply is a JSON list" in err
    assert SKIPTOKEN not in err


@pytest.mark.parametrize("userinfo", [False, True])
def test_a_next_link_to_another_host_is_refused(
    small: Emulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    sink: object,
    userinfo: bool,
) -> None:
    def alter(seen: Seen, reply: Reply) -> Reply:
        host = seen.headers["Host"]
        other = f"127.0.0.1:{sink.port}"  # type: ignore[attr-defined]
        authority = f"{host}@{other}" if userinfo else other
        link = f"http://{authority}/v1.0/users?$skiptoken={SKIPTOKEN}"
        return on_users_list(with_next_link(link))(seen, reply)

    code = run_through(small, tmp_path, alter)
    err = capsys.readouterr().err
    assert code == ExitCode.GRAPH
    assert sink.seen == []  # type: ignore[attr-defined]
    expected = "carries userinfo" if userinfo else "not on the configured Graph endpoint"
    assert f"refused http://127.0.0.1:{sink.port}/v1.0/users" in err  # type: ignore[attr-defined]
    assert expected in err and SKIPTOKEN not in err


def test_a_redirect_is_not_followed(
    small: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], sink: object
) -> None:
    target = f"http://127.0.0.1:{sink.port}/v1.0/users"  # type: ignore[attr-defined]
    redirect = on_users_list(lambda reply: Reply(302, b"", {"Location": target}))
    code = run_through(small, tmp_path, redirect)
    err = capsys.readouterr().err
    assert code == ExitCode.GRAPH
    assert sink.seen == []  # type: ignore[attr-defined]
    assert f"answered 302 redirecting to {target}; licsync follows no redirects" in err
