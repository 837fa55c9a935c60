"""Termination signals as an exception, held back while a write must not be cut.

A job stopped by SIGTERM (scancel, a SLURM time limit or preemption), SIGINT or SIGHUP must leave no
half-written output. :func:`raise_on_termination` turns those signals into :class:`Interrupted` in the
main thread, so every ``finally`` (:func:`slidesnake.io.atomic_path`) removes its temporary output on
the way out. Some writes run partly in other threads: Zarr hands each write to its own I/O thread and
waits for it, so an exception raised in the waiting main thread would let that thread go on writing
into a folder that is being removed. :func:`interrupts_held` around such a write (and around the
removal itself) keeps the signal until the write has returned, then raises it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

#: What a job treats as "stop now": scancel and time limits (TERM), Ctrl-C (INT), a closed terminal (HUP).
TERMINATION = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class Interrupted(BaseException):  # noqa: N818 - not an error of the job's own making
    """A signal (SIGTERM from scancel, a time limit or preemption; SIGINT) ended the job.

    Parameters
    ----------
    signum : int
        The signal's number; the job exits with 128 + it, as the shell reports a killed process.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


class _Hold:
    """How deep the main thread is in :func:`interrupts_held` blocks, and the signal kept meanwhile."""

    depth = 0
    pending: int | None = None


def raise_on_termination() -> None:
    """Make SIGTERM, SIGINT and SIGHUP raise :class:`Interrupted` in the main thread (held where asked)."""
    for signum in TERMINATION:
        signal.signal(signum, _on_signal)


def _on_signal(signum: int, frame: object) -> None:
    if _Hold.depth:
        _Hold.pending = _Hold.pending or signum  # the first signal is the one reported
        return
    raise Interrupted(signum)


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Keep termination signals back for the block; raise the first one kept when it ends.

    Python runs signal handlers in the main thread only, so a block in another thread needs no
    holding (and gets none). Blocks nest; the signal is raised when the outermost one ends, also
    when the block raised (the interruption wins, the block's exception is its context).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _Hold.depth += 1
    try:
        yield
    finally:
        _Hold.depth -= 1
        if _Hold.depth == 0 and _Hold.pending is not None:
            signum, _Hold.pending = _Hold.pending, None
            raise Interrupted(signum)
