"""CLI: the offline dry run in every format, and errors that name the file and the line."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from licsync.cli import main
from tests.builders import small_snapshot, user_id
from tests.migrate.helpers import E3
from tests.reports.browser import opened


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    snap = small_snapshot(users=3, members={1: [1, 2]}, direct={1: [(E3, [])], 3: [(E3, [])]})
    snapshot = tmp_path / "tenant.json"
    snapshot.write_text(json.dumps(snap), encoding="utf-8")
    config = tmp_path / "licsync.toml"
    config.write_text(
        f'[state]\nurl = "{tmp_path / "state.db"}"\n[[group_licenses]]\ngroup = "Group 1"\n'
        f'licenses = [{{ sku = "{E3}" }}]\n',
        encoding="utf-8",
    )
    return snapshot, config


def _plan(files: tuple[Path, Path], *extra: str) -> list[str]:
    return [
        "migrate",
        "plan",
        "--snapshot",
        str(files[0]),
        "--config",
        str(files[1]),
        "--target",
        "rules",
        *extra,
    ]


def test_plan_json_and_csv(files: tuple[Path, Path], tmp_path: Path) -> None:
    assert main(_plan(files, "--format", "json", "--output", str(tmp_path / "p.json"))) == 0
    doc = json.loads((tmp_path / "p.json").read_text())
    got = {e["id"]: e for e in doc["entries"]}
    assert got[user_id(1)]["action"] == "adopt" and "reason" not in got[user_id(1)]
    assert got[user_id(2)] | {} == {
        **got[user_id(2)],
        "action": "skip",
        "reason": "no direct assignment",
    }
    assert got[user_id(3)]["reason"] == f"not a member of any group that grants {E3}"
    assert doc["summary"]["adopt"] == 1 and doc["summary"]["skip"] == 2
    assert not (tmp_path / "state.db").exists()  # offline: the store is not touched
    assert main(_plan(files, "--format", "csv", "--output", str(tmp_path / "p.csv"))) == 0
    rows = list(csv.DictReader(io.StringIO((tmp_path / "p.csv").read_text("utf-8-sig"))))
    expected = {(e["id"], e["action"]) for e in got.values()}
    assert {(r["userId"], r["action"]) for r in rows} == expected


def test_html_report_opens_in_chromium(files: tuple[Path, Path], tmp_path: Path) -> None:
    report = tmp_path / "p.html"
    assert main(_plan(files, "--format", "html", "--output", str(report))) == 0
    errors: list[str] = []
    with opened(report, errors) as page:
        adopt = page.locator("#headline [data-key=adopt] b").text_content()
        assert adopt == "1"
        assert page.locator("#table-entries tbody tr").count() == 3
        actions = page.locator("#table-entries tbody .tag").all_text_contents()
        assert sorted(actions) == ["adopt", "skip", "skip"]
    assert errors == []


def test_table_report(files: tuple[Path, Path], tmp_path: Path) -> None:
    assert main(_plan(files, "--format", "table", "--output", str(tmp_path / "t.txt"))) == 0
    assert "user1@contoso.com" in (tmp_path / "t.txt").read_text()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("user1@contoso.com\nnobody@contoso.com\n", 'users.txt:2: no user "nobody@contoso.com"'),
        ("# wave 1\n\nuser1@contoso.com user2@contoso.com\n", 'users.txt:3: "user1@contoso.com'),
        ("# nobody\n", "users.txt: names no user"),
    ],
)
def test_bad_users_file_names_file_and_line(
    files: tuple[Path, Path], tmp_path: Path, capsys: Any, content: str, expected: str
) -> None:
    users = tmp_path / "users.txt"
    users.write_text(content, encoding="utf-8")
    assert main(_plan(files, "--users", str(users), "--format", "json")) == 3
    assert expected in capsys.readouterr().err


def test_missing_users_file(files: tuple[Path, Path], tmp_path: Path, capsys: Any) -> None:
    assert main(_plan(files, "--users", str(tmp_path / "nope.txt"))) == 3
    assert "nope.txt: cannot read the --users file" in capsys.readouterr().err


def test_bad_rollback_file(files: tuple[Path, Path], tmp_path: Path, capsys: Any) -> None:
    bad = tmp_path / "rb.json"
    bad.write_text(
        json.dumps(
            {
                "version": 1,
                "kind": "licsync-migrate-rollback",
                "entries": [{"userId": "x", "skuId": "y", "action": "adopt"}],
            }
        )
    )
    assert main(["migrate", "rollback", str(bad), "--config", str(files[1])]) == 3
    err = capsys.readouterr().err
    assert "rb.json: entries[0]: missing disabledPlans, status" in err
    assert not (tmp_path / "state.db").exists()


def test_limit_must_be_positive(files: tuple[Path, Path]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(_plan(files, "--limit", "0"))
    assert exc.value.code == 2


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_users_file_saved_by_windows_tools_is_read(
    files: tuple[Path, Path], tmp_path: Path, encoding: str
) -> None:
    users = tmp_path / "users.txt"
    users.write_text("user1@contoso.com\n", encoding=encoding)  # with a byte order mark
    out = tmp_path / "p.json"
    assert main(_plan(files, "--users", str(users), "--format", "json", "--output", str(out))) == 0
    assert {e["id"] for e in json.loads(out.read_text())["entries"]} == {user_id(1)}


def test_a_long_unknown_users_entry_is_cut_in_the_message(
    files: tuple[Path, Path], tmp_path: Path, capsys: Any
) -> None:
    users = tmp_path / "users.txt"
    users.write_text("x" * 100_000 + "@contoso.com\n", encoding="utf-8")
    assert main(_plan(files, "--users", str(users), "--format", "json")) == 3
    err = capsys.readouterr().err
    assert "users.txt:1: no user" in err and len(err) < 500
