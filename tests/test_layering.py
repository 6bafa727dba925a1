"""Dependencies point one way: each package imports only the layers beneath it.

The rules are read from the source files (every `import` and `from … import`, including those
inside functions and `TYPE_CHECKING` blocks), so a forbidden import fails here even when no
test happens to execute it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "licsync"

# package (or module) → licsync modules it must never import (prefix match)
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "engine": ("licsync.",),  # except the model and itself, below
    "graph": (
        "licsync.config",
        "licsync.store",
        "licsync.reports",
        "licsync.connector",
        "licsync.commands",
        "licsync.migrate",
        "licsync.runtime",
        "licsync.engine",
        "licsync.emulator",
    ),
    "store": (
        "licsync.graph",
        "licsync.connector",
        "licsync.commands",
        "licsync.migrate",
        "licsync.reports",
        "licsync.runtime",
        "licsync.engine",
        "licsync.emulator",
    ),
    # reports render the migration's decisions (licsync.migrate.classify), nothing else of it
    "reports": (
        "licsync.graph",
        "licsync.connector",
        "licsync.commands",
        "licsync.migrate.run",
        "licsync.migrate.restore",
        "licsync.runtime",
        "licsync.emulator",
    ),
    "config": (
        "licsync.graph",
        "licsync.store",
        "licsync.connector",
        "licsync.commands",
        "licsync.migrate",
        "licsync.reports",
        "licsync.runtime",
        "licsync.emulator",
    ),
    "connector": ("licsync.commands", "licsync.migrate", "licsync.emulator", "licsync.reports"),
    "migrate": ("licsync.commands", "licsync.emulator"),
    "spend": ("licsync.commands", "licsync.emulator", "licsync.migrate", "licsync.engine"),
    "monitoring": ("licsync.commands", "licsync.migrate", "licsync.emulator"),
    "runtime.py": ("licsync.commands", "licsync.migrate", "licsync.connector", "licsync.emulator"),
    "tenancy.py": ("licsync.commands", "licsync.migrate", "licsync.connector", "licsync.emulator"),
    "model.py": ("licsync.",),
    "verification.py": (
        "licsync.graph",
        "licsync.store",
        "licsync.connector",
        "licsync.commands",
        "licsync.reports",
        "licsync.runtime",
        "licsync.emulator",
    ),
    "emulator": (
        "licsync.engine",
        "licsync.graph",
        "licsync.graphjson",
        "licsync.snapshot",
        "licsync.config",
        "licsync.connector",
        "licsync.store",
        "licsync.runtime",
        "licsync.migrate",
        "licsync.reports",
        "licsync.commands",
    ),
}
ALLOWED = {"engine": ("licsync.engine", "licsync.model")}


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every licsync import in `path`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return [(line, m) for line, m in found if m == "licsync" or m.startswith("licsync.")]


def violations(layer: str, root: Path = SRC) -> list[str]:
    """Every forbidden import of `layer` (a package folder or a module file under `root`)."""
    target = root / layer
    files = sorted(target.rglob("*.py")) if target.is_dir() else [target]
    allowed = ALLOWED.get(layer, ())
    bad = []
    for path in files:
        for line, module in imports_of(path):
            if module.startswith(allowed) and allowed:
                continue
            if any(module == f.rstrip(".") or module.startswith(f) for f in FORBIDDEN[layer]):
                bad.append(f"{path.relative_to(root)}:{line} imports {module}")
    return bad


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_what_lies_beneath(layer):
    assert violations(layer) == []


def test_commands_are_imported_only_by_the_cli():
    bad = [
        f"{path.relative_to(SRC)}:{line}"
        for path in SRC.rglob("*.py")
        if "commands" not in path.relative_to(SRC).parts and path.name != "cli.py"
        for line, module in imports_of(path)
        if module.startswith("licsync.commands")
    ]
    assert bad == []


def test_a_reintroduced_forbidden_import_is_caught(tmp_path):
    (tmp_path / "engine").mkdir()
    (tmp_path / "engine" / "compute.py").write_text(
        "from licsync.model import Plan\nfrom licsync.graph.client import GraphClient\n"
    )
    (tmp_path / "graph").mkdir()
    (tmp_path / "graph" / "client.py").write_text(
        "def f():\n    from licsync.store import open_store\n"
    )
    assert violations("engine", tmp_path) == ["engine/compute.py:2 imports licsync.graph.client"]
    assert violations("graph", tmp_path) == ["graph/client.py:2 imports licsync.store"]
