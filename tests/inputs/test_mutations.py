"""Mutated configurations and snapshots, as an administrator's hands and tools produce them.

Whatever the mutation (a value of another type, an unknown or missing key, another encoding, a
truncated file, huge or negative numbers, unicode, duplicate or non-GUID ids), `licsync plan`
ends with exit 3 or a valid plan: never a traceback, never a hang, never a file written on a
failure.
"""

from __future__ import annotations

import contextlib
import io
import json
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from licsync.cli import main
from tests.builders import TenantBuilder

SECONDS_PER_CASE = 20  # a hang fails the case instead of the suite

CONFIG: dict[str, Any] = {
    "group_licenses": [
        {
            "group": "Sales",
            "nested": False,
            "licenses": [
                {"sku": "ENTERPRISEPACK", "disabled_plans": ["SWAY", "YAMMER_ENTERPRISE"]},
                {"sku": "EMSPREMIUM"},
            ],
        },
        {"group": "Engineering", "nested": True, "licenses": [{"sku": "ENTERPRISEPACK"}]},
    ],
    "policy": {"usage_location": "tenant", "license_guests": True},
    "guardrail": {"max_removals": 50, "max_removal_percent": 5.0},
    "graph": {"url": "https://graph.microsoft.com/v1.0", "auth": "managed_identity"},
    "state": {"url": "state.db", "lease_ttl_seconds": 900.0},
}


def _snapshot() -> dict[str, Any]:
    b = TenantBuilder().sku("ENTERPRISEPACK", enabled=3).sku("EMSPREMIUM", enabled=10)
    b.user("ann", direct={"ENTERPRISEPACK": ["SWAY"]}).user("ben", location=None)
    b.user("cat", guest=True).user("dan", inherited=[("Licensed", "EMSPREMIUM", [])])
    b.group("Sales", members=["ann", "ben", "cat"]).group("Child", members=["dan"])
    b.group("Engineering", members=["dan"], groups=["Child"])
    b.group("Licensed", members=["dan"], entra={"EMSPREMIUM": []})
    return b.snapshot()


SNAPSHOT = _snapshot()

VALUES = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["", "yes", "50", "../../etc/passwd", "UK", "http://host:99999/v1.0"]),
    st.lists(st.text(max_size=4), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield from _paths(value, (*prefix, index))


def _mutated(data: st.DataObject, doc: Any, *, json_values: bool) -> Any:
    """`doc` with one to three edits: a value replaced, a key removed or added, a list item
    duplicated (duplicate ids) or an id replaced by any text."""
    doc = json.loads(json.dumps(doc))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(list(_paths(doc))))
        if not path:
            continue
        *parents, last = path
        parent = doc
        for part in parents:
            parent = parent[part]
        action = data.draw(st.sampled_from(["replace", "remove", "add", "duplicate"]))
        if action == "replace":
            value = data.draw(st.one_of(VALUES, st.none()) if json_values else VALUES)
            if value is None and not json_values:
                action = "remove"
            else:
                parent[last] = value
        if action == "remove":
            parent.pop(last)
        elif action == "add" and isinstance(parent, dict):
            parent[data.draw(st.text(min_size=1, max_size=8))] = data.draw(VALUES)
        elif action == "duplicate" and isinstance(parent, list):
            parent.append(json.loads(json.dumps(parent[last])))
    return doc


def _damaged(data: st.DataObject, raw: bytes) -> bytes:
    """The file's bytes, maybe cut short or with a stray character."""
    choice = data.draw(st.sampled_from(["as is", "truncated", "inserted"]))
    if choice == "truncated" and raw:
        return raw[: data.draw(st.integers(0, len(raw) - 1))]
    if choice == "inserted":
        at = data.draw(st.integers(0, len(raw)))
        char = data.draw(st.characters(codec="utf-8")).encode("utf-8")
        return raw[:at] + char + raw[at:]
    return raw


@contextlib.contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    def hang(*_: Any) -> None:
        raise TimeoutError(f"licsync plan ran for more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _plan(config: bytes, snapshot: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        (base / "licsync.toml").write_bytes(config)
        (base / "tenant.json").write_bytes(snapshot)
        out = base / "plan.json"
        args = ["--config", str(base / "licsync.toml"), "--snapshot", str(base / "tenant.json")]
        err = io.StringIO()
        with _deadline(SECONDS_PER_CASE), contextlib.redirect_stderr(err):
            code = main(["plan", *args, "--format", "json", "--output", str(out)])
        assert "Traceback" not in err.getvalue()
        assert code in (0, 3, 10), err.getvalue()
        if code == 3:
            assert err.getvalue().startswith("licsync: error: "), err.getvalue()
            assert not out.exists()
        else:
            assert json.loads(out.read_text(encoding="utf-8"))["version"] == 1
        assert sorted(p.name for p in base.iterdir()) == sorted(
            ["licsync.toml", "tenant.json"] + (["plan.json"] if code != 3 else [])
        )


CASES = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)


@pytest.mark.slow
@CASES
@given(st.data())
def test_a_mutated_config_is_exit_3_or_a_valid_plan(data: st.DataObject) -> None:
    config = tomli_w.dumps(_mutated(data, CONFIG, json_values=False))
    encoding = data.draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1"]))
    raw = _damaged(data, config.encode(encoding, errors="replace"))
    _plan(raw, json.dumps(SNAPSHOT).encode())


@pytest.mark.slow
@CASES
@given(st.data())
def test_a_mutated_snapshot_is_exit_3_or_a_valid_plan(data: st.DataObject) -> None:
    snapshot = json.dumps(_mutated(data, SNAPSHOT, json_values=True)).encode()
    _plan(tomli_w.dumps(CONFIG).encode(), _damaged(data, snapshot))


def test_the_unmutated_files_plan() -> None:
    """The starting point is valid: mutations start from a working plan."""
    _plan(tomli_w.dumps(CONFIG).encode(), json.dumps(SNAPSHOT).encode())
