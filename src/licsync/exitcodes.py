"""Exit codes, documented in README for schedulers."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # nothing wrong; for sync: everything applied
    FAILURE = 1  # an unexpected error
    USAGE = 2  # wrong command-line arguments
    BAD_INPUT = 3  # invalid config, snapshot or file: nothing was written
    STATE = 4  # the state store is unusable or locked by another run
    GRAPH = 5  # Graph could not be reached or refused the credentials
    GUARDRAIL = 6  # the run would remove more licences than allowed: nothing was written
    PROBLEMS = 10  # the run completed, and some users have problem records
