"""Stopping a batch on Ctrl-C (SIGINT) or SIGTERM: within seconds, keeping every finished result.

The CLI wraps each command in :func:`handle_signals`. Outside :func:`deferred`, a signal stops the
command at once by raising :class:`Interrupted` (discovery and the build: nothing graded yet).
Inside it (``grading.grade`` from the first submission to the last output file) the handler
only records the signal, and the code polls :func:`stop_requested`:

- the grading loop starts no new submission, cancels the queued ones and returns what finished
  (every finished result is already in ``OUT/.cache``); ``grade`` then writes no output at all
  and raises :class:`~autograder.grading.GradingInterrupted`, so ``gradebook.csv`` and the
  other outputs stay exactly as they were before the run;
- each grading thread notices the stop within :data:`POLL_SECONDS` wherever it waits (the judge's
  pipe, ``otter run``, ``otter grade``), kills its own evaluator or subprocess and raises
  :class:`Cancelled`, so a submission cut short never yields a (wrong) result;
- a signal while the outputs are being written lets the writing finish first (all submissions
  are graded by then); the CLI then exits with the signal's status.

The state is per process (signals are): one batch at a time.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

POLL_SECONDS = 0.1
"""Longest time a grading thread waits without checking for a stop."""
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""The signals that stop a batch: Ctrl-C in a terminal, and ``kill``/a scheduler's stop."""

_requested: int | None = None
_deferring = 0


class Interrupted(BaseException):
    """A stop signal arrived outside the grading loop (raised by the signal handler).

    A ``BaseException``, like ``KeyboardInterrupt``: ``except Exception`` does not swallow it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Cancelled(BaseException):
    """Raised in a grading thread: the batch is stopping and this submission was abandoned.

    Its grading is incomplete (its evaluator was killed), so it must give no result at all.
    """


def stop_requested() -> bool:
    """Whether a stop signal arrived (it stays so until the next batch: see :func:`deferred`)."""
    return _requested is not None


def requested_signal() -> int | None:
    """The stop signal that arrived (SIGINT or SIGTERM), if any."""
    return _requested


def check() -> None:
    """Raise :class:`Cancelled` if the batch is stopping (called by grading threads)."""
    if _requested is not None:
        raise Cancelled(signal.Signals(_requested).name)


def request_stop(signum: int = signal.SIGINT) -> None:
    """Stop the batch as if ``signum`` had arrived (e.g. a ``KeyboardInterrupt`` caught late)."""
    global _requested
    if _requested is None:
        _requested = signum


def reset() -> None:
    """Forget a stop (a new batch begins)."""
    global _requested
    _requested = None


def exit_status(signum: int) -> int:
    """The shell's exit status of a command stopped by ``signum``: 130 for SIGINT, 143 for
    SIGTERM."""
    return 128 + signum


def _handler(signum: int, frame: object) -> None:
    request_stop(signum)
    if not _deferring:
        raise Interrupted(signum)


@contextmanager
def handle_signals() -> Iterator[None]:
    """Within: SIGINT and SIGTERM stop as described above; the previous handlers come back after.

    Must be entered in the main thread (where Python runs signal handlers).
    """
    reset()
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum in STOP_SIGNALS:
        signal.signal(signum, _handler)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def deferred() -> Iterator[None]:
    """Within: a stop signal is only recorded, for the code to poll :func:`stop_requested`.

    A stop stays recorded after the section (grading threads still running must see it); the
    next batch forgets it by calling :func:`reset` before its first deferred section.
    """
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1


PR_SET_PDEATHSIG = 1
"""``prctl``'s option: the signal this process gets when its parent dies (Linux)."""


def helper_of(parent: int) -> bool:
    """In a helper process the grading process started (``intake_pool``, ``studentfiles``):
    ignore Ctrl-C (the grading process alone decides what a stop means, and ends its helpers),
    and be killed when the grading process dies, even by ``kill -9`` (Linux's parent-death
    signal). False if ``parent`` is not this process's parent any more (it died already)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    return os.getppid() == parent
