"""`[state]` settings, state urls, and keeping a PostgreSQL password out of sight."""

from __future__ import annotations

import os

import pytest
from pydantic import BaseModel, ValidationError

from licsync.errors import StateError
from licsync.store import StateSettings, open_store, redact_url
from licsync.store.urls import parse_state_url

SECRET = "s3cr%40t-pw"  # percent-encoded "s3cr@t-pw"
PG = f"postgresql://licsync:{SECRET}@db.example:5432/licsync"


@pytest.mark.parametrize(
    ("url", "backend", "location"),
    [
        ("licsync-state.db", "sqlite", "licsync-state.db"),
        ("/var/lib/licsync/state.db", "sqlite", "/var/lib/licsync/state.db"),
        ("sqlite:///state.db", "sqlite", "state.db"),
        ("sqlite:////var/lib/state.db", "sqlite", "/var/lib/state.db"),
        ("postgresql://h/db", "postgresql", "postgresql://h/db"),
        ("postgres://h/db", "postgresql", "postgresql://h/db"),
        ("postgresql+psycopg://h/db", "postgresql", "postgresql://h/db"),
    ],
)
def test_urls_select_the_backend(url, backend, location):
    target = parse_state_url(url)
    assert (target.backend, target.location) == (backend, location)


@pytest.mark.parametrize("url", ["", "sqlite://", "mysql://root:hunter2@h/db"])
def test_unusable_urls_are_refused_without_their_password(url):
    with pytest.raises(StateError) as caught:
        parse_state_url(url)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (PG, "postgresql://licsync:***@db.example:5432/licsync"),
        ("postgresql://licsync@h/db", "postgresql://licsync@h/db"),
        (
            "postgresql://h/db?password=pw&sslmode=require",
            "postgresql://h/db?password=***&sslmode=require",
        ),
        ("state.db", "state.db"),
    ],
)
def test_redaction_hides_passwords_only(url, shown):
    assert redact_url(url) == shown


def test_settings_default_and_environment_override():
    assert StateSettings().url == "licsync-state.db"
    assert StateSettings.from_config({"url": "a.db"}, environ={}).url == "a.db"
    env = {"LICSYNC_STATE_URL": PG}
    settings = StateSettings.from_config({"url": "a.db"}, environ=env)
    assert (settings.url, settings.backend) == (PG, "postgresql")
    assert (
        StateSettings.from_config(None, environ={"LICSYNC_STATE_URL": " "}).url
        == "licsync-state.db"
    )


def test_settings_read_the_process_environment(monkeypatch):
    monkeypatch.setenv("LICSYNC_STATE_URL", "sqlite:///from-env.db")
    assert StateSettings.from_config({}).url == "sqlite:///from-env.db"


def test_settings_never_show_the_password():
    settings = StateSettings(url=PG)
    for text in (repr(settings), str(settings), settings.safe_url):
        assert SECRET not in text and "s3cr@t" not in text
    assert "licsync:***@db.example" in repr(settings)


def test_validation_errors_do_not_echo_the_url():
    class Config(BaseModel):
        state: StateSettings

    for build in (
        lambda: StateSettings(url="mysql://root:hunter2@h/db"),
        lambda: Config.model_validate({"state": {"url": "mysql://root:hunter2@h/db"}}),
    ):
        with pytest.raises(ValidationError) as caught:
            build()
        assert "hunter2" not in str(caught.value)
        assert "unknown scheme 'mysql'" in str(caught.value)


def test_an_unreachable_server_is_a_state_error_without_the_password():
    with pytest.raises(StateError) as caught:
        open_store(f"postgresql://licsync:{SECRET}@127.0.0.1:1/licsync?connect_timeout=2")
    message = str(caught.value)
    assert "cannot connect to postgresql://licsync:***@127.0.0.1:1/licsync" in message
    assert SECRET not in message and "s3cr@t" not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_a_wrong_password_is_a_state_error_without_the_password():
    real = os.environ.get("LICSYNC_TEST_POSTGRES_URL")
    if not real:
        pytest.skip("needs LICSYNC_TEST_POSTGRES_URL (bash .ci/postgres.sh)")
    from urllib.parse import urlsplit

    parts = urlsplit(real)
    wrong = real.replace(f":{parts.password}@", ":Wr0ngPassw0rd@")
    with pytest.raises(StateError) as caught:
        open_store(wrong)
    assert "Wr0ngPassw0rd" not in str(caught.value)
    assert "password authentication failed" in str(caught.value)


def test_a_store_repr_names_the_database_but_not_the_password(backend, store):
    from urllib.parse import urlsplit

    password = urlsplit(backend.url).password
    if password:
        assert password not in repr(store)
        assert ":***@" in repr(store)
    assert f"schema v{store.schema_version}" in repr(store)


def test_a_sqlite_path_in_a_missing_directory_is_a_state_error(tmp_path):
    with pytest.raises(StateError, match="does not exist"):
        open_store(str(tmp_path / "nowhere" / "state.db"))


def test_a_file_that_is_not_a_database_is_a_state_error(tmp_path):
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StateError, match="not a database"):
        open_store(str(path))


def test_a_relative_sqlite_path_resolves_against_the_config_directory(tmp_path):
    conf = tmp_path / "conf"
    for url in ("state.db", "sqlite:///sub/state.db"):
        settings = StateSettings.from_config({"url": url}, environ={}, base_dir=conf)
        assert settings.url == str(conf / url.removeprefix("sqlite:///"))
    absolute = str(tmp_path / "abs.db")
    assert StateSettings.from_config({"url": absolute}, environ={}, base_dir=conf).url == absolute
    default = StateSettings.from_config({}, environ={}, base_dir=conf)
    assert default.url == str(conf / "licsync-state.db")
    pg = "postgresql://licsync@db/ops"
    assert StateSettings.from_config({"url": pg}, environ={}, base_dir=conf).url == pg
    # the environment's path is the operator's, relative to where licsync runs
    env = StateSettings.from_config({}, environ={"LICSYNC_STATE_URL": "here.db"}, base_dir=conf)
    assert env.url == "here.db"


@pytest.mark.parametrize("url", ["~/state.db", "sqlite:///~/state.db"])
def test_a_home_relative_sqlite_path_is_expanded_everywhere(tmp_path, monkeypatch, url):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert parse_state_url(url).location == str(tmp_path / "state.db")
    with open_store(url) as store:
        store.load_ledger()
    assert (tmp_path / "state.db").exists()
    with open_store(url, read_only=True) as store:  # the same file, found read-only too
        assert store.load_ledger() == {}
