"""The tenant a store belongs to (schema version 4), and a PostgreSQL schema per store."""

from __future__ import annotations

import pytest

from licsync.errors import ConfigError, StateError
from licsync.store import StateSettings, open_store
from tests.postgres import postgres_url

T1 = "7f3d526c-b3c1-4479-ba74-197b5c5751ae"
T2 = "0b5c3f8e-2d4a-4c61-9e7f-5a1b2c3d4e5f"


def test_a_store_is_bound_once_and_refuses_another_tenant(store):
    assert store.bound_tenant() is None
    with store.transaction() as tx:
        tx.bind_tenant(T1.upper(), "run-1")
    assert store.bound_tenant() == T1
    with store.transaction() as tx:
        tx.bind_tenant(T1)  # the same tenant again: nothing changes
    refused = f"belongs to tenant {T1}, but Graph answers for tenant {T2}"
    with pytest.raises(StateError, match=refused), store.transaction() as tx:
        tx.bind_tenant(T2)
    assert store.bound_tenant() == T1


def test_schema_names_are_checked_and_need_postgresql():
    assert StateSettings.from_config({"url": "postgresql://h/db", "schema": "t_contoso"}, {})
    assert (
        StateSettings.from_config(
            {"url": "postgresql://h/db"}, {"LICSYNC_STATE_SCHEMA": "t_env"}
        ).db_schema
        == "t_env"
    )
    with pytest.raises(ConfigError, match=r"state\.schema: 'x; DROP' is not a schema name"):
        StateSettings.from_config({"url": "postgresql://h/db", "schema": "x; DROP"}, {})
    with pytest.raises(ConfigError, match=r"state\.schema: applies to a postgresql:// url only"):
        StateSettings.from_config({"url": "state.db", "schema": "t_contoso"}, {})


@pytest.mark.skipif(postgres_url() is None, reason="needs LICSYNC_TEST_POSTGRES_URL")
def test_each_schema_is_its_own_store():
    url = postgres_url()
    assert url is not None
    names = ("licsync_test_tenant_a", "licsync_test_tenant_b")
    try:
        for name, tenant in zip(names, (T1, T2), strict=True):
            with open_store(url, schema=name) as store:
                with store.transaction() as tx:
                    tx.bind_tenant(tenant)
                store.acquire_lease(f"holder-{name}", 60)  # one lease per schema
        for name, tenant in zip(names, (T1, T2), strict=True):
            with open_store(url, schema=name, read_only=True) as store:
                assert store.bound_tenant() == tenant
                assert store.current_lease().holder == f"holder-{name}"
                assert store.describe().endswith(f"(schema {name})")
    finally:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            for name in names:
                conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ('url = "state.db"\nschema = "Bad"', "state.schema: 'Bad' is not a schema name"),
        ('url = "state.db"\nschema = "t_a"', "state.schema: applies to a postgresql:// url only"),
        ('url = "mysql://root:hunter2@h/db"', "state.url: state url 'mysql://root:***@h/db'"),
    ],
)
def test_a_bad_state_table_is_a_configuration_error(tmp_path, capsys, state, message):
    from licsync.cli import main

    config = tmp_path / "licsync.toml"
    config.write_text(f"[state]\n{state}\n")
    assert main(["runs", "--config", str(config)]) == 3
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and "hunter2" not in err
    assert list(tmp_path.iterdir()) == [config]
