"""Reading a large batch of submissions on two cores (see ``intake.scan``).

:func:`intake.scan` reads the chosen file of each student in order. With :class:`PoolReader`
this process still reads from the front of that list, in order, as it always did, while a helper
process reads chunks of files from the back; when this process reaches the helper's part it
takes the helper's results in order. It never waits for the helper: a file whose result has not
come yet is read here (and the helper's result for it, if it comes, is not used); the helper is
given files only once it has started (about 0.3 s).

The helper is a new interpreter (:mod:`subprocess`, with this process's ``sys.path``), never a
fork of this one: the grading process already holds threads when it reads the batch. It is in a
process group of its own and ignores Ctrl-C (this process stops, see ``interrupts.py``, and
kills it), dies with this process, and is killed when the reading is done, whatever happened.

What comes out is what reading in this process gives:

- the same :class:`~autograder.intake.Submission` objects: the helper packs each notebook with
  this process's preset dictionary (the first notebook packed here, sent before any chunk), so
  the packed bytes, and the cache keys made from them, are the same;
- the same log records and warnings, in the same order: the helper records what each read logs
  or warns, and this process replays it when that submission's turn comes (after the log lines
  ``scan`` writes before it, before those it writes after); warnings go through this process's
  filters and once-only registries;
- the same errors: a helper that dies or cannot start leaves its files to this process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import subprocess
import sys
import threading
import warnings
from multiprocessing.connection import Connection
from pathlib import Path
from types import ModuleType
from typing import Any, Self, cast

from . import intake, interrupts
from .intake import Submission, _read_submission, _Reader

CHUNK = 32
"""Most files the helper is given at a time."""
CHUNK_PATH_BYTES = 8 * 1024
"""Most bytes of file names in one chunk (each message fits the pipe's buffer many times)."""
IN_FLIGHT = 2
"""Chunks the helper holds at a time: one to read, the next waiting."""
PIPE_BYTES = 1024 * 1024
"""Buffer asked for each pipe (Linux's default is 64 KB; the first message holds 32 KB)."""

_HELPER = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
    "from autograder.intake_pool import serve; serve(*map(int, sys.argv[2:]))"
)

_READY = "ready"
"""The helper's first message, once it can read."""

Result = tuple[str, bytes | None, str | None, Any, list[logging.LogRecord], list[tuple]]
"""What the helper sends per file: source, packed notebook, problem, marks, log records and
warnings (message, category, file name, line)."""


class PoolReader(_Reader):
    """Reads ``to_read`` (student, path), in order, with a helper process reading from the back.

    Use as a context manager: the helper is started on entry and killed on exit.
    """

    def __init__(self, to_read: list[tuple[str, Path]], *, max_bytes: int) -> None:
        super().__init__(max_bytes=max_bytes)
        self._items = to_read
        self._next = 0
        """Position of the next :meth:`read`."""
        self._floor = len(to_read)
        """Positions from here on are the helper's."""
        self._results: dict[int, Result] = {}
        self._pending = 0
        self._helper: subprocess.Popen | None = None
        self._inbox: Connection | None = None
        """The helper's requests (this process writes)."""
        self._outbox: Connection | None = None
        """The helper's results (this process reads)."""
        self._dictionary_sent = False
        self._ready = False
        """Whether the helper has started (and imported what it needs): no chunk before."""

    def __enter__(self) -> Self:
        self._start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def read(self, student: str, path: Path) -> Submission:
        position = self._next
        self._next += 1
        if position >= self._floor and self._items[position] == (student, path):
            self._drain()
            result = self._results.pop(position, None)
            if result is not None:
                return _submission(student, path, result)
            # Not read yet (a slow or dead helper): read here rather than wait; the helper's
            # result for it, if it comes, is never used.
        submission = _read_submission(student, path, max_bytes=self.max_bytes)
        self._feed()
        return submission

    def _start(self) -> None:
        if not sys.executable:
            return
        inbox_read, inbox_write = os.pipe()
        outbox_read, outbox_write = os.pipe()
        for fd in (inbox_write, outbox_write):
            with contextlib.suppress(OSError, AttributeError):
                import fcntl

                fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        path = [entry for entry in sys.path if isinstance(entry, str)]
        command = [sys.executable, "-c", _HELPER, json.dumps(path)]
        command += [str(inbox_read), str(outbox_write), str(os.getpid())]
        try:
            self._helper = subprocess.Popen(
                command,
                pass_fds=(inbox_read, outbox_write),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                process_group=0,  # a Ctrl-C in the terminal is this process's to handle
            )
        except OSError:  # no helper: every file is read here (nothing logged: same lines)
            os.close(inbox_write)
            os.close(outbox_read)
            return
        finally:
            os.close(inbox_read)
            os.close(outbox_write)
        self._inbox = Connection(inbox_write, readable=False)
        self._outbox = Connection(outbox_read, writable=False)

    def _stop(self) -> None:
        helper, self._helper = self._helper, None
        for connection in (self._inbox, self._outbox):
            if connection is not None:
                connection.close()
        self._inbox = self._outbox = None
        if helper is not None:
            with contextlib.suppress(OSError):
                helper.kill()
            helper.wait()

    def _feed(self) -> None:
        """Take the helper's finished chunks and give it more, without waiting."""
        self._drain()
        if self._inbox is None or not self._ready:
            return
        try:
            if not self._dictionary_sent:
                if not intake._DICTIONARY:  # no notebook packed yet: the helper must wait
                    return
                self._inbox.send_bytes(_dumps(("dictionary", intake._DICTIONARY[0])))
                self._dictionary_sent = True
            while self._pending < IN_FLIGHT:
                low = self._floor - CHUNK
                if low - self._next < CHUNK:  # this process reaches them soon: it reads them
                    return
                chunk, size = [], 0
                for position in range(self._floor - 1, low - 1, -1):
                    student, path = self._items[position]
                    size += len(os.fsencode(path)) + len(student.encode("utf-8", "replace"))
                    chunk.append((position, student, os.fspath(path)))
                    if size > CHUNK_PATH_BYTES:
                        break
                self._floor = chunk[-1][0]
                self._inbox.send_bytes(_dumps(("read", chunk[::-1], self.max_bytes)))
                self._pending += 1
        except OSError:
            self._lost()

    def _drain(self) -> None:
        """Take what the helper has sent (its readiness, results), without waiting."""
        try:
            while self._outbox is not None and self._outbox.poll(0):
                self._receive()
        except OSError:
            self._lost()

    def _receive(self) -> None:
        """Take the helper's next message (waiting for it)."""
        try:
            message = pickle.loads(cast(Connection, self._outbox).recv_bytes())
        except (OSError, EOFError, pickle.UnpicklingError):
            self._lost()
            return
        if message == _READY:
            self._ready = True
        else:
            self._pending -= 1
            self._results.update(message)

    def _lost(self) -> None:
        """The helper died (or its pipes broke): what it did not send is read here (nothing is
        logged: the log is the same as when this process reads every file)."""
        self._stop()


def _dumps(message: object) -> bytes:
    return pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)


def _submission(student: str, path: Path, result: Result) -> Submission:
    """The helper's result as this process's Submission; its log records and warnings replayed."""
    source, packed, problem, marks, records, caught = result
    for record in records:
        record.process, record.thread = os.getpid(), threading.get_ident()
        record.threadName = threading.current_thread().name
        target = logging.getLogger(record.name)
        if target.isEnabledFor(record.levelno):
            target.handle(record)
    for message, category, filename, lineno in caught:
        module = _module_named_by(filename)
        warnings.warn_explicit(
            message,
            category,
            filename,
            lineno,
            module=module.__name__ if module is not None else None,
            registry=vars(module).setdefault("__warningregistry__", {}) if module else None,
        )
    if marks is not None:
        named, defined = marks
        marks = (named, tuple(map(sys.intern, defined)))
    return Submission(
        student,
        path if source == os.fspath(path) else Path(source),
        packed,
        problem,
        zdict=intake._DICTIONARY[0] if packed is not None else b"",
        marks=marks,
    )


def _module_named_by(filename: str) -> ModuleType | None:
    """The loaded module from ``filename`` (whose once-only warning registry a warning issued
    there updates), or None."""
    for module in list(sys.modules.values()):
        if getattr(module, "__file__", None) == filename:
            return module
    return None


class _Recorder(logging.Handler):
    """Keeps every log record (the helper's root handler), made picklable."""

    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        record.msg, record.args = record.getMessage(), None
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.exc_info = None
        self.records.append(record)


def serve(inbox_fd: int, outbox_fd: int, parent: int) -> None:
    """The helper process: read the files of each chunk it is sent, send back what reading
    gives (see the module docstring), until its requests pipe closes."""
    if not interrupts.helper_of(parent):  # Ctrl-C stops the parent, which kills it
        return
    inbox = Connection(inbox_fd, writable=False)
    outbox = Connection(outbox_fd, readable=False)
    recorder = _Recorder()
    root = logging.getLogger()
    root.handlers[:] = [recorder]
    root.setLevel(1)
    outbox.send_bytes(_dumps(_READY))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        while True:
            try:
                message = pickle.loads(inbox.recv_bytes())
            except (EOFError, OSError):
                return
            if message[0] == "dictionary":
                intake._DICTIONARY[:] = [message[1]]
                continue
            _, chunk, max_bytes = message
            results = {}
            for position, student, path in chunk:
                recorder.records.clear()
                caught.clear()
                submission = _read_submission(student, Path(path), max_bytes=max_bytes)
                results[position] = (
                    os.fspath(submission.source),
                    submission.packed,
                    submission.problem,
                    submission.marks,
                    list(recorder.records),
                    [(str(w.message), w.category, w.filename, w.lineno) for w in caught],
                )
            outbox.send_bytes(_dumps(results))
