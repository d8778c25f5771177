"""Judge lanes: a batch's judging spread over processes, one lane per job.

The judge's own work for a submission (its instances and references, the checks, the protocol)
is Python, so threads of one process share one core for it, however many jobs run: a second
thread only overlaps the evaluators' time. A :class:`JudgePool` of ``jobs`` lanes judges one
submission at a time in each: one lane in a thread of the grading process (which holds the pack
and the judge already), the others each in a worker process (:class:`Workers`).

Each worker is forked from the evaluators' template (``engine.warm_context``), so starting one
costs a fork and the judge's imports, not a new interpreter; and it asks that same template for
its evaluators (``engine.join_template``). The template stays the one process whose memory every
evaluator shares, and nothing a worker computes (references, oracles, other students' answers)
is ever in an evaluator's memory.

A worker takes the batch's stop as the grading process does (``interrupts``): Ctrl-C in a
terminal reaches every process of its group, a stop that reaches the grading process only is
passed on (:meth:`JudgePool.abandon_running`), and a worker whose grading process died (``kill
-9``) abandons its submission and exits (:func:`_watch_batch`), so no evaluator outlives a batch.
A worker's log records are handled by the grading process's handlers. If a worker dies (never
the student's doing: student code runs in the evaluators), its lanes judge in the grading process
from then on, so no submission becomes an error row for it.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.util
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from logging.handlers import QueueHandler, QueueListener
from typing import Any, Literal

from .. import interrupts
from . import engine

log = logging.getLogger(__name__)

WORKER_GRACE = 1.0
"""Seconds a worker whose grading process died gives its submission to be abandoned (its
evaluator killed) before it exits."""


class _ToOwnLogger(logging.Handler):
    """Hands a worker's record to the logger of the same name in the grading process."""

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger(record.name).handle(record)


class _Stoppable(Executor):
    """An executor whose ``with`` block, ended by the batch's stop, passes the stop on to what
    runs and waits for nothing; ended otherwise, waits for everything."""

    def abandon_running(self) -> None:
        """Tell what runs to abandon its submission."""

    def __exit__(self, *exc_info: object) -> Literal[False]:
        stopping = interrupts.stop_requested()
        if stopping:
            self.abandon_running()
        self.shutdown(wait=not stopping, cancel_futures=True)
        return False


class JudgePool(_Stoppable):
    """``jobs`` lanes that each judge one submission at a time (a ``concurrent.futures``
    executor): one in a thread of the grading process, the others each in a worker process.

    The grading process's own lane costs no process, and no memory, of its own: it already
    holds the pack and the judge, and it is otherwise idle but for storing results. Each lane
    takes the next submission when it is free, so a lane slowed by the grading process's other
    work (the cache, the progress bar) takes fewer.
    """

    def __init__(self, jobs: int) -> None:
        self._workers = Workers(max(1, jobs - 1))
        self._lanes = ThreadPoolExecutor(max(2, jobs), thread_name_prefix="judge-lane")
        self._local = threading.local()
        self._taken = threading.Lock()
        """Held for good by the first lane's thread: the one that judges here."""
        self._workers_lost = False
        """Whether a worker died: then every lane judges in this process (none is lost)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        return self._lanes.submit(self._judge, fn, args, kwargs)

    def _judge(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        here = getattr(self._local, "here", None)
        if here is None:
            here = self._local.here = self._taken.acquire(blocking=False)
            if here:
                engine.keep_spares()
        if here or self._workers_lost:
            return fn(*args, **kwargs)
        try:
            return self._workers.submit(fn, *args, **kwargs).result()
        except BrokenProcessPool:  # a worker died (the kit's fault, never a student's)
            if not self._workers_lost:
                log.warning("a judge worker process died: its lanes judge in this process now")
            self._workers_lost = True
            return fn(*args, **kwargs)

    def abandon_running(self) -> None:
        """Pass the batch's stop on to the workers (the grading process's lane has it)."""
        self._workers.abandon_running()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._lanes.shutdown(wait=wait, cancel_futures=cancel_futures)
        self._workers.shutdown(wait=wait, cancel_futures=cancel_futures)
        if wait:  # this process's lane's spare evaluator, and its retired ones, are gone
            engine.finish_retired()


class Workers(ProcessPoolExecutor, _Stoppable):
    """Judge worker processes: ``grade_one`` and the submissions are sent to them, their
    results come back."""

    def __init__(self, jobs: int) -> None:
        context = engine.warm_context()
        self._records: Any = context.Queue()
        self._listener = QueueListener(self._records, _ToOwnLogger())
        super().__init__(
            max_workers=jobs,
            mp_context=context,
            initializer=_start_worker,
            initargs=(
                engine.template_address(),
                os.getpid(),
                dict(os.environ),  # the TA's settings (the template has none of them)
                self._records,
                logging.getLogger().getEffectiveLevel(),
            ),
        )
        self._listener.start()

    def abandon_running(self) -> None:
        """Pass the batch's stop on to every worker: each abandons its submission (its
        evaluator killed, no result) and starts no other."""
        for process in list((self._processes or {}).values()):
            if process.pid is not None:
                with contextlib.suppress(ProcessLookupError):  # gone already
                    os.kill(process.pid, signal.SIGTERM)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        super().shutdown(wait=wait, cancel_futures=cancel_futures)
        with contextlib.suppress(Exception):  # the listener thread was already stopped
            self._listener.stop()


def _start_worker(
    address: str, batch: int, environment: dict[str, str], records: Any, level: int
) -> None:
    """A worker's set-up, before its first submission."""
    os.environ.clear()
    os.environ.update(environment)
    for signum in interrupts.STOP_SIGNALS:
        signal.signal(signum, _record_stop)
    root = logging.getLogger()
    root.handlers[:] = [QueueHandler(records)]
    root.setLevel(level)
    engine.join_template(address, batch)
    engine.keep_spares()  # calls run in this thread
    multiprocessing.util.Finalize(None, engine.finish_retired, exitpriority=10)
    threading.Thread(target=_watch_batch, name="batch-watch", daemon=True).start()


def _record_stop(signum: int, _frame: object) -> None:
    interrupts.request_stop(signum)


def _watch_batch() -> None:
    """Wait for the grading process to end; if it ends first (killed), stop and exit."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    parent.join()
    interrupts.request_stop(signal.SIGTERM)
    time.sleep(WORKER_GRACE)
    os._exit(1)
