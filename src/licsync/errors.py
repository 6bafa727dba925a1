"""One root exception, split by how the caller must react."""

from __future__ import annotations

from licsync.exitcodes import ExitCode


class LicsyncError(Exception):
    """Root of every error licsync raises on purpose."""

    exit_code = ExitCode.FAILURE


class InputError(LicsyncError):
    """Bad input from the operator (config, snapshot, command line): tell them, change nothing."""

    exit_code = ExitCode.BAD_INPUT


class UsageError(LicsyncError):
    """A command line argparse could not judge alone (exit 2)."""

    exit_code = ExitCode.USAGE


class ConfigError(InputError):
    """The configuration is invalid; each line of `problems` names the file, the key and the fix."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{path}: {len(problems)} configuration error(s):\n{lines}")


class SnapshotError(InputError):
    """A tenant snapshot that cannot be read; the message names the file and the object."""


class StateError(LicsyncError):
    """The state store is unusable (unknown schema version, lease held by another run)."""

    exit_code = ExitCode.STATE


class GuardrailError(LicsyncError):
    """The run would remove more than allowed (or a rule group reads suspiciously empty)."""

    exit_code = ExitCode.GUARDRAIL
