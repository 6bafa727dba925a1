"""A 100,000-entry ledger saves and loads fast enough for every run to load it whole."""

from __future__ import annotations

import time

from licsync.model import Ownership

SIZE = 100_000
SKUS = [f"sku-{i}" for i in range(4)]
GROUP_SETS = [("g-1",), ("g-1", "g-2"), ("g-3",)]
PRIORS = [None, None, frozenset(), frozenset({"plan-1", "plan-2"})]


def big_ledger() -> dict[tuple[str, str], Ownership]:
    ledger = {}
    for i in range(SIZE):
        user, sku = f"{i:08d}-0000-0000-0000-000000000000", SKUS[i % 4]
        ledger[(user, sku)] = Ownership(user, sku, GROUP_SETS[i % 3], PRIORS[i % 4])
    return ledger


def test_a_100k_ledger_saves_and_loads_in_well_under_a_second(store, backend, capsys):
    ledger = big_ledger()
    started = time.perf_counter()
    with store.transaction() as tx:
        tx.replace_ledger(ledger)
    saved = time.perf_counter()
    loaded = store.load_ledger()
    done = time.perf_counter()
    assert loaded == ledger
    save_s, load_s = saved - started, done - saved
    with capsys.disabled():
        print(f"\n[{backend.name}] 100k ledger: save {save_s:.3f}s, load {load_s:.3f}s")
    # Typically 0.3-0.7 s each on a 2-CPU CI machine; the bounds leave room for a busy runner
    # while still catching an accidental per-row query or decode.
    assert load_s < 2.0
    assert save_s < 5.0
