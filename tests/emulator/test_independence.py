"""The emulator is an independent second implementation: it never imports licsync's own stack."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("licsync.engine", "licsync.graph", "licsync.snapshot", "licsync.config")


def test_emulator_imports_none_of_engine_graph_snapshot_config():
    code = (
        "import sys, licsync.emulator.server, licsync.emulator.cli, licsync.emulator.generate\n"
        "print('\\n'.join(sorted(m for m in sys.modules if m.startswith('licsync'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert not [m for m in loaded if m.startswith(FORBIDDEN)], loaded
