"""`licsync unlock`: release the write lease of a run that died, refusing while it may live."""

from __future__ import annotations

import argparse

from licsync.commands.common import add_config_argument
from licsync.config import load_config
from licsync.errors import StateError
from licsync.exitcodes import ExitCode
from licsync.runtime import open_state, unlock


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "unlock",
        help="release the write lease of a run that died",
        description="Release the state store's write lease when its run is gone: the lease has "
        "expired, or the process that holds it no longer runs on this host. Refuses (exit 4) "
        "while the holder may be alive. A lease also expires by itself ([state] "
        "lease_ttl_seconds, 60 s by default); the next sync reconciles what the dead run sent.",
    )
    add_config_argument(parser, "its [state]")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    existing, settings = open_state(config, read_only=True)  # creates nothing
    if existing is None:
        raise StateError(f"no state store at {settings.url}: nothing to unlock")
    existing.close()
    store, _ = open_state(config)
    assert store is not None
    with store:
        print(unlock(store))
    return ExitCode.OK
