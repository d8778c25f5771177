"""The per-student files of a large batch (``results/`` and ``feedback/``), written by a helper
process on the second core while ``grade`` collates and writes the tables and the report.

After the last result, :func:`autograder.grading.write_outputs` is single-threaded work of about
half a millisecond per student for these files alone (issue 11). From :data:`HELPER_FROM`
results (packed, as ``grade`` keeps them), it hands them to a :class:`Helper`: a child process
started afresh (``subprocess``, never a fork of the grading process, whose other threads may
hold locks), which reads the packed results from its standard input, writes the files with the
same functions (:func:`~autograder.gradebook.write_results`, then
:func:`~autograder.feedback.write_feedback`), and answers with one JSON line.

What a failure in the helper becomes:

- a :class:`~autograder.errors.KitError` of those writers, or an ``OSError`` with an errno (disk
  full, permission denied), is raised again in ``grade`` as the same class with the same text;
- anything else (the helper could not start, crashed, was killed, or answered nonsense): ``grade``
  writes what the helper did not finish itself, as it would have without a helper, so no file is
  lost and any error is the writers' own.

Ctrl-C in a terminal reaches the whole foreground process group: the helper runs in a session
of its own, and ignores SIGINT anyway, so ``grade`` alone decides what a stop means (it completes
its outputs, see :func:`autograder.interrupts.deferred`). The helper is killed with the grading
process (Linux's parent-death signal), and always waited for or killed by :meth:`Helper.close`, so
none outlives ``grade``.

This module imports only the standard library until the helper runs.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import subprocess
import sys
import threading
from contextlib import suppress
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from autograder.pack.spec import Pack
    from autograder.results import PackedResults

log = logging.getLogger(__name__)

HELPER_FROM = 1000
"""Batches of at least this many results write their per-student files in a helper process (its
start, ~0.1 s of the other core, is then a small part of the ~0.4 s per 1,000 it takes over)."""
PHASES = ("results", "feedback")
"""What the helper writes, in order: ``results/``, then ``feedback/`` (the order of
``write_outputs``, so the first error is the one a single process would raise)."""

_CHILD = "import sys; sys.path.insert(0, sys.argv[1]); from autograder.studentfiles import serve; serve()"


class Helper:
    """A child process writing the ``results/`` and ``feedback/`` files of packed results."""

    def __init__(self, results: PackedResults, out: Path, *, pack: Pack) -> None:
        """Start the helper and send it the results (nothing is raised: a helper that cannot
        start or take them leaves the files to :meth:`finish`'s caller, see the module)."""
        from autograder.pack import registry

        self.count = len(results)
        self._process: subprocess.Popen[bytes] | None = None
        self._sender: threading.Thread | None = None
        packed = results.packed()
        if packed is None:
            return
        payload = pickle.dumps(
            (str(out), registry.reference(pack), *packed), protocol=pickle.HIGHEST_PROTOCOL
        )
        package_parent = str(Path(__file__).resolve().parents[1])
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-c", _CHILD, package_parent, str(os.getpid())],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # the terminal's Ctrl-C is grade's alone to handle
            )
        except (OSError, ValueError) as exc:  # no interpreter to start
            log.debug("no helper for the student files (%r): written here", exc)
            return
        # Sent by a thread: the pipe takes the payload (~0.3 MB per 1,000 results) only as fast
        # as the helper, which starts in ~0.1 s, reads it; this one goes on meanwhile.
        stdin = cast("IO[bytes]", self._process.stdin)  # a pipe: stdin=PIPE
        self._sender = threading.Thread(
            target=_send, args=(stdin, payload), name="student-files-sender", daemon=True
        )
        self._sender.start()

    @property
    def running(self) -> bool:
        """Whether the helper was started and not yet waited for."""
        return self._process is not None

    def finish(self) -> dict[str, BaseException | None | bool]:
        """Wait for the helper; what became of each of :data:`PHASES`: ``True`` (written),
        the exception to raise for it, or ``None`` (not done: write it here)."""
        process, self._process = self._process, None
        if process is None:
            return dict.fromkeys(PHASES)
        try:
            out = cast("IO[bytes]", process.stdout).read()
            process.wait()
        finally:
            self._end(process)
        try:
            reply = json.loads(out.decode()) if process.returncode == 0 else {}
        except ValueError:
            reply = {}
        if not isinstance(reply, dict):
            reply = {}
        outcome: dict[str, BaseException | None | bool] = {}
        for phase in PHASES:
            got = reply.get(phase)
            outcome[phase] = True if got is True else _error(got)
        if any(v is None for v in outcome.values()):
            log.debug("the helper exited with %s: its files written here", process.returncode)
        return outcome

    def close(self) -> None:
        """Kill the helper if it is still running (a failure elsewhere, an interrupt)."""
        process, self._process = self._process, None
        if process is not None:
            self._end(process)

    def _end(self, process: subprocess.Popen[bytes]) -> None:
        """Kill the process if it runs, wait for it and for the sender (its pipe broken if the
        process did not read it all), and close the pipes."""
        if process.poll() is None:
            with suppress(OSError):
                process.kill()
        process.wait()
        sender, self._sender = self._sender, None
        if sender is not None:
            sender.join()
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                with suppress(OSError, ValueError):
                    pipe.close()


def _send(stdin: IO[bytes], payload: bytes) -> None:
    """Write the payload to the helper and close its input (a helper gone before it read all:
    its reply says so)."""
    with suppress(OSError, ValueError):
        stdin.write(payload)
    with suppress(OSError, ValueError):
        stdin.close()


def _error(reply: Any) -> BaseException | None:
    """The exception a helper's error reply stands for (None: none that can be rebuilt)."""
    if not isinstance(reply, dict):
        return None
    kind, message = reply.get("kind"), reply.get("message")
    if kind == "OSError" and isinstance(reply.get("errno"), int):
        return OSError(reply["errno"], str(reply.get("strerror")), reply.get("filename"))
    if kind in ("GradebookError", "FeedbackError") and isinstance(message, str):
        from autograder.feedback import FeedbackError
        from autograder.gradebook import GradebookError

        return {"GradebookError": GradebookError, "FeedbackError": FeedbackError}[kind](message)
    return None


def _reply(exc: BaseException) -> dict[str, Any] | None:
    """The JSON a writer's exception is sent back as (None: not one to rebuild)."""
    from autograder.feedback import FeedbackError
    from autograder.gradebook import GradebookError

    if isinstance(exc, OSError) and isinstance(exc.errno, int):
        filename = exc.filename if isinstance(exc.filename, str) else None
        return {
            "kind": "OSError",
            "errno": exc.errno,
            "strerror": exc.strerror,
            "filename": filename,
        }
    if type(exc) in (GradebookError, FeedbackError):
        return {"kind": type(exc).__name__, "message": str(exc)}
    return None


def serve() -> None:
    """The helper's main: read the packed results from stdin, write the files, answer on
    stdout with ``{"results": true | error, "feedback": true | error}`` (a phase left out was
    not done)."""
    from autograder.interrupts import helper_of

    if not helper_of(int(sys.argv[2])):  # the grading process died already
        os._exit(1)
    data = sys.stdin.buffer.read()
    from autograder.feedback import write_feedback
    from autograder.gradebook import write_results
    from autograder.pack import registry
    from autograder.results import PackedResults

    out, reference, zdict, students, items = pickle.loads(data)
    # A PackedResults: the writers only iterate over it and index it, as they do a list.
    results = cast("list[dict]", PackedResults.from_packed(zdict, students, items))
    pack = registry.load(reference)
    writers = {
        "results": lambda: write_results(results, Path(out)),
        "feedback": lambda: write_feedback(results, Path(out), pack=pack),
    }
    reply: dict[str, Any] = {}
    for phase in PHASES:
        try:
            writers[phase]()
        except Exception as exc:  # noqa: BLE001 - sent back, or left to the parent
            error = _reply(exc)
            if error is not None:
                reply[phase] = error
            break
        reply[phase] = True
    sys.stdout.write(json.dumps(reply))
    sys.stdout.flush()
    os._exit(0)  # the parent waits for the end of the output: skip the teardown
