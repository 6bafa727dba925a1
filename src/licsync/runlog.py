"""A run's history, from its first second: its row in the state store, the phase it reached and
how long each took, how it ended; and the signals that stop it.

    runlog = RunLog(store, run_id, "sync")
    runlog.start()                          # status `running`, phase `start`
    runlog.enter(RunPhase.READ)             # … plan, write, record
    tx.end_run(run_id, runlog.end(RunStatus.SUCCEEDED, summary, exit_code=0))
    runlog.fail(exc)                        # any error: status, exit code and one line of cause

SIGTERM (Kubernetes, Docker, systemd at a deadline) and SIGINT (Ctrl-C) stop a run gracefully
(`StopSignals`): no new `$batch` is sent, the writes in flight end and are recorded, and the run
ends `stopped` with exit code 128 + the signal (143, 130). A second signal stops at once (the
write-ahead journal lets the next run reconcile what was in flight).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import Any

import structlog

from licsync.errors import GuardrailError, LicsyncError
from licsync.exitcodes import ExitCode
from licsync.outcomes import RunStatus
from licsync.redact import redact
from licsync.store import RunEnd, RunPhase, StateStore

log = structlog.get_logger("licsync.run")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
MAX_ERROR = 500  # characters of a run's error line


class Stopped(LicsyncError):
    """A signal stopped the run before its writes began: nothing was written."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}: nothing was written")
        self.exit_code = 128 + signum  # type: ignore[assignment]


def error_line(exc: BaseException) -> str:
    """One line of cause for a failed run, secrets masked."""
    text = str(exc) if isinstance(exc, LicsyncError) else f"{type(exc).__name__}: {exc}"
    line = " ".join(redact(text).split())
    return line if len(line) <= MAX_ERROR else line[: MAX_ERROR - 1] + "…"


def ending(exc: BaseException) -> tuple[RunStatus, int]:
    """The status and exit code of a run ended by `exc`."""
    if isinstance(exc, GuardrailError | Stopped):
        return RunStatus.STOPPED, int(exc.exit_code)
    if isinstance(exc, LicsyncError):
        return RunStatus.FAILED, int(exc.exit_code)
    if isinstance(exc, KeyboardInterrupt | asyncio.CancelledError):
        return RunStatus.STOPPED, 128 + signal.SIGINT
    return RunStatus.FAILED, int(ExitCode.FAILURE)


class RunLog:
    """One run's row: started at once, its phase kept current, ended exactly once."""

    def __init__(
        self,
        store: StateStore,
        run_id: str,
        kind: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.run_id, self.kind = store, run_id, kind
        self._clock = clock
        self._phase = RunPhase.START
        self._since = clock()
        self._seconds: dict[str, float] = {}

    def start(self) -> None:
        """Record the run (`running`, phase `start`); raises StateError if the store refuses."""
        with self.store.transaction() as tx:
            tx.start_run(self.kind, self.run_id)
            tx.set_run_phase(self.run_id, RunPhase.START)

    def _lap(self) -> None:
        now = self._clock()
        self._seconds[self._phase] = self._seconds.get(self._phase, 0.0) + now - self._since
        self._since = now

    def enter(self, phase: RunPhase) -> None:
        """The run moves on to `phase` (recorded at once: a killed run says where it died)."""
        self._lap()
        self._phase = phase
        with self.store.transaction() as tx:
            tx.set_run_phase(self.run_id, phase)

    @property
    def phases(self) -> dict[str, float]:
        """Seconds spent in each phase so far."""
        self._lap()
        return {p: round(s, 3) for p, s in self._seconds.items()}

    def end(
        self,
        status: RunStatus,
        summary: Mapping[str, Any] | None = None,
        *,
        exit_code: int,
        error: str | None = None,
    ) -> RunEnd:
        """How the run ended, for `StateTransaction.end_run` (in the run's last transaction)."""
        return RunEnd(status, summary, exit_code, error, self.phases)

    def running(self) -> bool:
        run = self.store.get_run(self.run_id)
        return run is not None and run.status is RunStatus.RUNNING

    def close(self, status: RunStatus, exit_code: int, error: str | None = None) -> None:
        """End the run unless it has ended already (best effort: the error that got here is
        the one reported)."""
        with suppress(Exception):
            if self.running():
                with self.store.transaction() as tx:
                    tx.end_run(self.run_id, self.end(status, exit_code=exit_code, error=error))

    def fail(self, exc: BaseException) -> None:
        """End the run as `exc` ended it."""
        status, code = ending(exc)
        self.close(status, code, error_line(exc))
        log.warning(
            "run.ended", run_id=self.run_id, status=str(status), exit_code=code, phase=self._phase
        )


class StopSignals:
    """SIGTERM and SIGINT while a run is on: the first asks it to stop (`reason`, and
    `on_stop` is called), a second stops the process at once, as the signal would."""

    def __init__(self, on_stop: Callable[[], None] = lambda: None) -> None:
        self.signum: int | None = None
        self.on_stop = on_stop
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def reason(self) -> str | None:
        if self.signum is None:
            return None
        return f"stopped by {signal.Signals(self.signum).name}"

    @property
    def exit_code(self) -> int | None:
        return None if self.signum is None else 128 + self.signum

    def install(self) -> None:
        """Handle the signals in the running loop (only the main thread can; elsewhere, as in
        tests that run a sync in a thread, they keep their default)."""
        loop = asyncio.get_running_loop()
        try:
            for signum in STOP_SIGNALS:
                loop.add_signal_handler(signum, self._received, signum)
        except (ValueError, RuntimeError, NotImplementedError):
            return
        self._loop = loop

    def uninstall(self) -> None:
        if self._loop is not None:
            for signum in STOP_SIGNALS:
                self._loop.remove_signal_handler(signum)
            self._loop = None

    def _received(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if self.signum is not None:
            log.warning("run.stopped_at_once", signal=name)
            self.uninstall()
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.signum = signum
        log.warning(
            "run.stopping",
            signal=name,
            detail="sending nothing more; the writes in flight end and are recorded (a second "
            "signal stops at once)",
        )
        self.on_stop()
