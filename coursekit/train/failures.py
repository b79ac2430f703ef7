"""How a training run stops early: its errors, its interrupts and their exit statuses.

``coursekit train`` exits with

====  ==================================================================================
0     the run finished (or was already finished: resuming it changes nothing)
1     the run started and failed (``RunFailedError``: a non-finite loss or gradient, a
      checkpoint, metrics row or final adapter that could not be written); every checkpoint
      already written is intact and the message names the newest
2     bad input, refused before anything was changed (``CoursekitError``, ``ValueError``)
130   interrupted by SIGINT (Ctrl-C) or SIGTERM (``TrainingInterrupted``): the checkpoint
      being written was finished first, and the message says how to resume
====  ==================================================================================

``interruptible()`` turns SIGINT and SIGTERM into ``KeyboardInterrupt`` while a run trains,
except inside ``critical()`` sections (a checkpoint or the final adapter being written),
where the signal is held until the section has finished.

Guide: docs/training.md ("When a run stops early").
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from coursekit.errors import CoursekitError

EXIT_FAILED = 1
"""Exit status of a run that started and failed (``RunFailedError``)."""
EXIT_INTERRUPTED = 130
"""Exit status of a run stopped by SIGINT or SIGTERM (128 + SIGINT, for both)."""


class RunFailedError(CoursekitError):
    """A run started and could not go on; what it had saved is intact (exit status 1)."""


class NonFiniteError(RunFailedError):
    """A step's loss or gradient norm was NaN or infinite (``TrainConfig.on_nonfinite="stop"``)."""


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped a run between two writes; ``str()`` says how to resume."""


def resume_hint(output: str | Path) -> str:
    """Return the one command that continues the run in ``output``."""
    return f"coursekit train --output {output} --resume"


def newest_checkpoint(output: str | Path) -> Path | None:
    """Return the newest ``<output>/checkpoints/step-N``, or None when there is none."""
    from coursekit.train.checkpoint import Checkpointer

    steps = Checkpointer(Path(output) / "checkpoints", every=0, keep_last=1).steps()
    return steps[0] if steps else None


def checkpoint_note(output: str | Path) -> str:
    """Return "the newest checkpoint, <path>, is intact" (or that there is none yet)."""
    newest = newest_checkpoint(output)
    if newest is None:
        return "no checkpoint was written yet (--save-every)"
    return f"the newest checkpoint, {newest}, is intact"


class SignalGuard:
    """Raise ``KeyboardInterrupt`` on SIGINT/SIGTERM, but never inside a ``critical()`` block.

    Attributes:
        received: the name of the last signal received (``"SIGINT"``), or None.
    """

    def __init__(self) -> None:
        self.received: str | None = None
        self._depth = 0
        self._pending = False

    def handle(self, signum: int, frame: object) -> None:
        """The signal handler: interrupt now, or after the critical section."""
        self.received = signal.Signals(signum).name
        if self._depth:
            self._pending = True
            return
        raise KeyboardInterrupt(self.received)

    @contextlib.contextmanager
    def critical(self, *, deliver: bool = True) -> Iterator[None]:
        """Hold SIGINT/SIGTERM while the block runs, then interrupt if one came.

        Args:
            deliver: False drops a signal held during the block (the last write of a run
                that is then complete); ``received`` still names it.
        """
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if not self._depth and self._pending:
            self._pending = False
            if deliver:
                raise KeyboardInterrupt(self.received)


_active: SignalGuard | None = None


@contextlib.contextmanager
def interruptible() -> Iterator[SignalGuard]:
    """Install a ``SignalGuard`` for SIGINT and SIGTERM; restore the old handlers after.

    Re-entrant (an inner call yields the active guard). Outside the main thread signals
    cannot be handled: the guard is returned uninstalled and its ``critical()`` only counts.
    """
    global _active
    if _active is not None:
        yield _active
        return
    guard = SignalGuard()
    if threading.current_thread() is not threading.main_thread():
        yield guard
        return
    previous = {sig: signal.signal(sig, guard.handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    _active = guard
    try:
        yield guard
    finally:
        _active = None
        for sig, handler in previous.items():
            signal.signal(sig, handler)
