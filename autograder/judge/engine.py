"""The judge engine: grade one submission with the checks here and the student's code elsewhere.

Per submission: start a sandboxed evaluator from the warm template process, run the notebook's
code cells one by one (a stuck cell is interrupted, as a TA would, and grading goes on), then run
every question's cases with :func:`autograder.checks.runner.run_case`, whose "functions" are
proxies that send inputs to the evaluator and get plain numbers back. A call that hangs or kills
the evaluator costs that call only: the evaluator is restarted and the finished cells replayed.

Requests are sent ahead of the answers where the order is known: the cells, the function
lookups, and a case's calls (announced by the runner), so the evaluator goes from one to the next
without a round trip through the judge. Each still has its own time limit, counted from the
answer before it; a request the evaluator reaches past the submission's deadline, or a call after
one that raised or was interrupted, is answered ``skipped`` and not run. The one difference from
asking one at a time: the calls of a case after a wrong (but normally returned) answer are made,
and their answers dropped.

Who pays for a broken pipe: the evaluator shares its process with the student's code, which can
write to the pipe, stop reading it or kill the process. So once the evaluator has said "ready",
whatever goes wrong on the pipe (a malformed, truncated or out-of-turn reply, a send or receive
past its deadline, the evaluator dying) is the submission's doing (:class:`EvaluatorGone`): it
costs the cell or call in flight, and after :data:`MAX_RESTARTS` restarts the remaining cells are
skipped and the remaining checks fail (status ``graded``, cached like any other result); so does
an evaluator that can no longer take the pack's givens it reported when it started. Only what
happens before any student code ran (an evaluator that cannot start, or starts without the
pack's givens) or on the judge's own side (an argument it cannot send) is a fault of the grading
side (:class:`~autograder.errors.JudgeFault`): an ``error`` row, never cached, retried by the
next run. A reply that repeats the number of an earlier request (the real reply arriving after a
forged one) is dropped.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import itertools
import json
import logging
import multiprocessing
import multiprocessing.forkserver
import os
import signal
import threading
import time
from collections.abc import Collection
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import numpy as np

from .. import interrupts
from ..advice import advice_notes
from ..checks.runner import CallsAhead, CallTimeout, call_timeout, run_case
from ..errors import JudgeFault, KitError
from ..intake import Submission, notebook_bytes
from ..pack import registry
from ..pack.spec import Pack
from ..results import CaseOutcome, Result, empty_result, graded_result
from . import cgroups, evaluator, protocol, sandbox
from .channel import Channel, ChannelClosed, FrameTimeout, FrameTooLarge
from .sandbox import Limits

log = logging.getLogger(__name__)

MAX_RESTARTS = 8
"""Evaluator restarts per submission before its remaining cells and calls are given up."""
PIPELINE_BYTES = 32 * 1024
"""Bytes of cells sent to an evaluator ahead of its answers (well within a socket's buffer, so
sending never waits for a busy evaluator)."""
STARTUP_TIMEOUT = 30.0
"""Seconds a new evaluator may take to say it is ready."""
UNSAFE_NOTE = (
    "graded with --unsafe-no-isolation: the code ran without the judge's sandbox, with the "
    "grader's own rights"
)
"""The note of every result judged without isolation at the TA's request."""


@dataclass(frozen=True)
class JudgeConfig:
    """Time limits and isolation of the judge engine (documented defaults)."""

    cell_timeout: float = 10.0
    """Seconds a top-level cell may run before it is interrupted."""
    call_timeout: float = field(default_factory=call_timeout)
    """Seconds one call of a student function may take (``MATH_PRIMER_CALL_TIMEOUT``, 10)."""
    submission_timeout: float = 300.0
    """Wall-clock seconds for the whole submission; later cells and calls are skipped."""
    grace: float = 2.0
    """Seconds between the interrupt and the kill of a stuck evaluator."""
    limits: Limits = field(default_factory=Limits)
    isolate: bool = True
    """Run student code in the sandbox (``sandbox.py``), or not at all: where the machine does not
    allow it, evaluators refuse to start. False runs it without isolation."""
    unisolated_note: str = UNSAFE_NOTE
    """With ``isolate=False``: the note every judged result carries."""


class EvaluatorGone(Exception):
    """The evaluator died, hung past the grace period or broke the protocol (the submission's
    doing: it costs the cell or call in flight)."""

    def __init__(self, message: str, *, hung: bool = False) -> None:
        super().__init__(message)
        self.hung = hung
        """Whether it was still busy (no reply at all) after its time limit and the grace."""


class StudentError(Exception):
    """An exception raised by the student's code in the evaluator, by type name and message."""

    def __init__(self, remote_type: str, message: str) -> None:
        super().__init__(message)
        self.remote_type = remote_type


_CONTEXT: multiprocessing.context.ForkServerContext | None = None
_CONTEXT_LOCK = threading.Lock()
_EVALUATOR_NUMBERS = itertools.count(1)
_TAG_PREFIX = ""
"""How this process's evaluator tags begin: empty in the grading process (its pid and a dash
then), the batch's pid, a dash and the worker's pid in a judge worker (:func:`join_template`)."""
THREAD_COUNTS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
"""The thread counts of numpy's BLAS (one each in the evaluators unless the TA set any)."""
PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
"""The folder holding the ``autograder`` package (the repository, or the zip's ``files/``)."""


def warm_context() -> multiprocessing.context.ForkServerContext:
    """The forkserver context whose template process has numpy and the evaluator preloaded.

    The template is started once, with this package importable (Python 3.11's forkserver ignores
    the parent's ``sys.path`` when preloading), so each evaluator costs a fork, not an import.
    Evaluators never re-run the grader's main module (``template.py``), whether it is
    ``python -m autograder``, a script or the ``dask worker`` command.
    """
    global _CONTEXT
    with _CONTEXT_LOCK:
        if _CONTEXT is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(
                [
                    "numpy",
                    "autograder.judge.evaluator",
                    "autograder.judge.magics",
                    "autograder.judge.template",  # last: finishes and freezes what was loaded
                ]
            )
            grader_environment = dict(os.environ)
            os.environ.clear()  # the template never sees the TA's environment (tokens, paths)
            os.environ.update(_template_environment(grader_environment))
            try:
                multiprocessing.forkserver.ensure_running()
            finally:
                os.environ.clear()
                os.environ.update(grader_environment)
            cgroups.sweep()
            _CONTEXT = context
    return _CONTEXT


def template_address() -> str:
    """Where the evaluators' template takes requests (a Unix socket of this user's); it is
    started first if need be."""
    warm_context()
    address = vars(multiprocessing.forkserver._forkserver).get("_forkserver_address")  # private
    if not isinstance(address, str):
        raise JudgeFault("the evaluators' template process has no address")
    return address


def join_template(address: str, batch: int) -> None:
    """In a judge worker (a child of the template, see ``pool.py``): start evaluators from the
    template at ``address``, the one this worker was forked from, rather than a template of its
    own; tag them with the ``batch``'s pid, so that they are found and swept with the batch's.

    Python's forkserver client checks that its server is alive by waiting for it as a child;
    the template is this worker's parent, so the check is whether it still is.
    """
    global _CONTEXT, _TAG_PREFIX
    server = multiprocessing.forkserver._forkserver
    template = os.getppid()

    def template_alive() -> None:
        if os.getppid() != template:
            raise JudgeFault("the evaluators' template process is gone")

    vars(server).update(  # the client's state (private in the standard library)
        _forkserver_address=address, _forkserver_pid=template, ensure_running=template_alive
    )
    with _CONTEXT_LOCK:
        _CONTEXT = multiprocessing.get_context("forkserver")
    _TAG_PREFIX = f"{batch}-{os.getpid()}."


def _template_environment(grader: dict[str, str]) -> dict[str, str]:
    """The template process's environment: the locale and thread counts the evaluator passes
    on, the interpreter's own settings, and this package on ``PYTHONPATH`` (Python 3.11's
    forkserver ignores the parent's ``sys.path`` when preloading).

    Unless the TA set a thread count, one BLAS/OpenMP thread each: evaluators run one per job
    (as root, each within one core's CPU quota), so more threads only contend, and OpenBLAS's
    idle helper thread in the template woke at every fork.
    """
    kept = evaluator.KEPT_ENVIRONMENT + ("PYTHONHOME", "PYTHONNOUSERSITE", "PYTHONHASHSEED")
    threads = (
        {} if any(name in grader for name in THREAD_COUNTS) else dict.fromkeys(THREAD_COUNTS, "1")
    )
    return {
        **threads,
        **{name: grader[name] for name in kept if name in grader},
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": os.pathsep.join(filter(None, [PACKAGE_ROOT, grader.get("PYTHONPATH")])),
    }


class Evaluator:
    """One evaluator process and the judge's end of its pipe (``conn``, a :class:`Channel`)."""

    def __init__(
        self, notebook_json: bytes, config: JudgeConfig, student: str, pack: Pack | None = None
    ) -> None:
        self._launch(notebook_json, config, student, pack)
        self._ready(pack)

    @classmethod
    def spare(cls, config: JudgeConfig, pack: Pack | None = None) -> Evaluator:
        """An evaluator started ahead of its submission: it sets up its sandbox meanwhile and
        runs nothing until :meth:`take` gives it the submission."""
        spare = cls.__new__(cls)
        spare._launch(None, config, None, pack)
        return spare

    def take(self, notebook_json: bytes, student: str, pack: Pack | None = None) -> None:
        """Give this spare its submission and wait until it is ready (else it is killed and
        :class:`JudgeFault` or :class:`EvaluatorGone` raised, as a new evaluator's start)."""
        frame = protocol.encode(
            {"op": "take", "student": student}, [np.frombuffer(notebook_json, dtype=np.uint8)]
        )
        try:
            self.conn.send_all([frame], timeout=STARTUP_TIMEOUT)
        except (FrameTimeout, ChannelClosed) as exc:
            self.kill()
            raise EvaluatorGone(
                f"the spare evaluator did not take its submission ({exc})"
            ) from None
        except BaseException:  # the batch is stopping
            self.kill()
            raise
        self._ready(pack)

    def _launch(
        self,
        notebook_json: bytes | None,
        config: JudgeConfig,
        student: str | None,
        pack: Pack | None,
    ) -> None:
        """Start the evaluator's process (a spare without ``notebook_json`` and ``student``)."""
        self.config = config
        self._seq = 0
        self.runner: int | None = None
        """The process that runs the student's code, once ready (see :meth:`_hold`)."""
        self.handle: int | None = None
        """A pidfd of :attr:`runner`, where the system has them."""
        context = warm_context()
        tag = f"{_TAG_PREFIX or f'{os.getpid()}-'}{next(_EVALUATOR_NUMBERS)}"
        self.cgroup = cgroups.dirs_for(tag) if config.isolate else {}
        try:
            cgroups.create(self.cgroup, config.limits)
        except sandbox.SandboxUnavailable as exc:
            cgroups.remove(self.cgroup, wait=0)
            raise JudgeFault(f"sandbox: {exc}") from None
        givens = None if pack is None else _str_or_none(registry.givens_file(pack))
        parent, child = context.Pipe(duplex=True)
        self.process = context.Process(
            target=evaluator.main,
            args=(
                child,
                notebook_json,
                config.limits,
                config.isolate,
                student,
                self.cgroup,
                tag,
                givens,
                "submission.ipynb" if pack is None else f"{pack.name}.ipynb",
                None if givens is None else _givens_program(givens),
            ),
            daemon=True,
        )
        try:
            self.process.start()
        except BaseException:  # no evaluator: its groups go at once
            cgroups.remove(self.cgroup, wait=0)
            raise
        child.close()
        self.conn = Channel(parent)

    def _ready(self, pack: Pack | None) -> None:
        """Wait for the evaluator to say it is ready; check what it loaded."""
        try:
            ready, _ = self._receive(timeout=STARTUP_TIMEOUT)
        except EvaluatorGone as exc:
            raise JudgeFault(f"the evaluator did not start ({exc})") from None
        except BaseException:  # the batch is stopping: no evaluator is left behind
            self.kill()
            raise
        if ready.get("status") != "ready":
            self.kill()
            raise JudgeFault(protocol.text(ready.get("error", "evaluator did not start")))
        missing = sorted(set(pack.givens) - set(ready.get("givens", []))) if pack else []
        if missing:  # checked before any student code ran: a fault of the pack or the kit
            self.kill()
            raise JudgeFault(f"the evaluator did not load the givens {', '.join(missing)}")
        self.isolation = protocol.text(ready.get("isolation", "?"))
        self.reason = protocol.text(ready.get("reason", ""))
        self._hold(ready.get("pid"))

    def _hold(self, pid: object) -> None:
        """Keep a handle on the process that runs the student's code, which the judge signals
        (``pid``, as its ready message says: PID 1 of the sandbox, a child of the process the
        judge started, or that process itself without isolation). A pidfd where the system has
        them; the pid itself stays reserved anyway while that child is not reaped (the process
        outside the namespaces never reaps it: ``evaluator._wait_outside``)."""
        started = self.process.pid
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
            pid = started
        if pid is None:  # not started: nothing to hold
            return
        if pid != started and _parent_of(pid) != started:
            self.kill()
            raise JudgeFault(f"the evaluator named process {pid}, not its own child")
        self.runner = pid
        try:
            self.handle = os.pidfd_open(pid)
        except (AttributeError, OSError):  # no pidfds (Linux before 5.3), or it is gone
            self.handle = None

    def signal_runner(self, number: int) -> None:
        """Send signal ``number`` to the process that runs the student's code (gone: nothing)."""
        with contextlib.suppress(OSError):  # ProcessLookupError: gone
            if self.handle is not None:
                signal.pidfd_send_signal(self.handle, number)
            elif self.runner is not None:
                os.kill(self.runner, number)

    def _receive(self, *, timeout: float) -> tuple[dict, list[np.ndarray]]:
        """One whole message within ``timeout`` seconds, decoded; else kill and raise."""
        try:
            data = self.conn.receive(timeout=timeout, max_bytes=protocol.MAX_MESSAGE_BYTES)
            return protocol.decode(data)
        except FrameTimeout as exc:
            self.kill()
            raise EvaluatorGone(str(exc), hung=not exc.started) from None
        except (ChannelClosed, FrameTooLarge, protocol.ProtocolError) as exc:
            self.kill()
            raise EvaluatorGone(f"evaluator died or broke the protocol ({exc})") from None
        except BaseException:  # the batch is stopping
            self.kill()
            raise

    def request(self, header: dict, arrays=(), *, timeout: float) -> tuple[dict, list]:
        """Send a request; on timeout interrupt, then kill. Returns the reply or raises
        :class:`EvaluatorGone` (the evaluator is dead afterwards).

        The request must be taken within ``timeout`` plus the grace, the reply must start within
        ``timeout`` (else the evaluator is interrupted) and be complete within the grace after
        that: a truncated frame or a pipe nobody reads costs this request, never the batch.
        """
        start = time.monotonic()
        seq, frame = self.frame(header, arrays)
        self.send(seq, frame, timeout=timeout)
        return self.reply(seq, timeout=timeout, start=start)

    def frame(self, header: dict, arrays=(), *, after: int = 0) -> tuple[int, bytes]:
        """The next request's number and its encoded frame (for :meth:`send`); ``after``: the
        number of requests framed before it and not sent yet."""
        seq = self._seq + 1 + after
        return seq, protocol.encode({**header, "seq": seq}, list(arrays))

    def send(self, seq: int, frame: bytes, *, timeout: float) -> None:
        """Send the frame of request ``seq`` (the next one, from :meth:`frame`); it must be taken
        within ``timeout`` plus the grace (else the evaluator is killed and
        :class:`EvaluatorGone` raised)."""
        self.send_all([(seq, frame)], timeout=timeout)

    def send_all(self, requests: list[tuple[int, bytes]], *, timeout: float) -> None:
        """:meth:`send` for several requests (numbered in order, from :meth:`frame`), taken
        together (one system call while they are small) within ``timeout`` plus the grace."""
        for seq, _ in requests:
            if seq != self._seq + 1:
                raise ValueError(f"request {seq} is not the next one ({self._seq + 1})")
            self._seq = seq
        frames = [frame for _, frame in requests]
        try:
            self.conn.send_all(frames, timeout=max(timeout, 0.0) + self.config.grace)
        except FrameTimeout as exc:
            self.kill()
            raise EvaluatorGone(str(exc)) from None
        except ChannelClosed as exc:
            self.kill()
            raise EvaluatorGone(f"evaluator is gone ({exc})") from None
        except BaseException:  # the batch is stopping
            self.kill()
            raise

    def reply(self, seq: int, *, timeout: float, start: float | None = None) -> tuple[dict, list]:
        """The reply to request ``seq``: it must start within ``timeout`` seconds of ``start``
        (default now: when the evaluator turns to this request) else the evaluator is interrupted,
        and be complete within the grace after that. Replies to earlier requests still in the
        pipe are dropped; a reply to a later one breaks the protocol."""
        start = time.monotonic() if start is None else start
        limit, interrupted = start + max(timeout, 0.0), False
        while True:
            if not interrupted and not self.conn.readable(limit - time.monotonic()):
                self.interrupt()
                limit, interrupted = time.monotonic() + self.config.grace, True
            frame_limit = limit if interrupted else time.monotonic() + self.config.grace
            reply, out = self._receive(timeout=frame_limit - time.monotonic())
            number = reply.get("seq")
            if not (isinstance(number, int) and number < seq):
                break  # else: a late reply to an earlier request (after a forged one): dropped
        if interrupted:
            reply.setdefault("status", "interrupted")
        if number != seq:
            self.kill()
            raise EvaluatorGone("evaluator answered out of turn")
        return reply, out

    def interrupt(self) -> None:
        self.signal_runner(signal.SIGINT)

    def retire(self) -> None:
        """Kill the evaluator (it is no longer needed) and leave the waiting for it and the
        removal of its cgroups to a thread: the judge goes on with its next submission while
        the evaluator's processes end. :func:`finish_retired` waits for all of them."""
        pid = self.process.pid
        self.signal_runner(signal.SIGKILL)  # the student's code stops (all of PID 1's namespace)
        if pid is not None and self.process.exitcode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
        with _RETIRING_LOCK:
            _RETIRING[:] = [future for future in _RETIRING if not future.done()]
            _RETIRING.append(_retirement().submit(self.kill))

    def kill(self) -> None:
        """Kill the evaluator and, with it, everything it started.

        With namespaces, the process the judge started is a parent outside the student's PID
        namespace and process group: PID 1 of the namespace gets SIGKILL, and with it every
        process in the namespace. Then SIGTERM, SIGKILL for the process the judge started and
        its process group (without namespaces, the one running the student's code); as root,
        whatever is left in the evaluator's cgroups is killed and the groups removed.
        """
        self.signal_runner(signal.SIGKILL)
        pid = self.process.pid
        if pid is not None and self.process.exitcode is None:
            for send, number in (
                (os.kill, signal.SIGTERM),
                (os.killpg, signal.SIGKILL),
                (os.kill, signal.SIGKILL),
            ):
                try:
                    send(pid, number)
                except (ProcessLookupError, PermissionError):
                    pass
                self.process.join(timeout=0.2 if number == signal.SIGTERM else 0)
                if self.process.exitcode is not None:
                    break
        self.process.join(timeout=5)
        self.conn.close()
        if self.handle is not None:
            os.close(self.handle)
            self.handle = None
        cgroups.remove(self.cgroup)


_RETIRING: list[Future] = []
"""Evaluators retired and not yet known to be gone (:meth:`Evaluator.retire`)."""
_RETIRING_LOCK = threading.Lock()


@functools.cache
def _retirement() -> ThreadPoolExecutor:
    """The thread that finishes retired evaluators (one per process, started on first use)."""
    return ThreadPoolExecutor(1, thread_name_prefix="evaluator-retirement")


def finish_retired() -> None:
    """Wait until every retired evaluator of this process is gone and its cgroups removed (its
    spares too, see :func:`keep_spares`: one still being started is waited for, then retired)."""
    with _SPARES_LOCK:
        pending = list(_SPARES)
        _SPARES.clear()
    for launch in pending:
        spare = None if launch.cancel() else _launched(launch)
        if spare is not None:
            spare.retire()
    with _RETIRING_LOCK:
        pending = list(_RETIRING)
        _RETIRING.clear()
    for future in pending:
        with contextlib.suppress(Exception):  # kill() reports nothing; it must not stop the rest
            future.result()


def _givens_program(path: str) -> bytes | None:
    """The givens file's :func:`evaluator.givens_program`, compiled once per version of the file
    (None if it cannot be: the evaluator then says why)."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return _compiled_givens(path, info.st_mtime_ns, info.st_size)


@functools.lru_cache(maxsize=16)
def _compiled_givens(path: str, _mtime_ns: int, _size: int) -> bytes | None:
    try:
        return evaluator.givens_program(path)
    except Exception:  # noqa: BLE001 - reported by the evaluator, which compiles it again
        return None


def _parent_of(pid: int) -> int | None:
    """A process's parent pid (None if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return int(stat.read().rpartition(b")")[2].split()[1])
    except (OSError, ValueError, IndexError):
        return None


_LANE = threading.local()
"""This thread's lane: whether it keeps a spare evaluator (``spares``), and the spare with the
settings it was started for (``spare``: the config and pack name, and the start of the
evaluator, a future of :func:`_launcher`)."""
_SPARES: set[Future] = set()
"""The start of every spare evaluator of this process not taken yet (the batch's end retires
them)."""
_SPARES_LOCK = threading.Lock()


def keep_spares(keep: bool = True) -> None:
    """From now on, each evaluator this thread starts has the next one started with it: a spare
    that sets up its sandbox while this submission is judged, and takes the next submission
    (:meth:`Evaluator.take`). For a lane of a batch (``pool.py``): one evaluator more at a time
    per lane, and one started for nothing at the batch's end (:func:`finish_retired` retires it).
    A spare runs no student code before it takes its submission, so ``--jobs`` submissions
    are still graded at a time. The spare is started by a thread of its own (:func:`_launcher`):
    the template's fork of it takes a few milliseconds, which the lane spends judging.
    ``keep=False``: no more spares in this thread."""
    _LANE.spares = keep


def _evaluator_for(session: Session) -> Evaluator:
    """A ready evaluator for ``session``'s submission: this lane's spare if it has one for the
    same settings, else a new one; then the lane's next spare is started."""
    key = (session.config, session.pack.name)
    spare_key, launch = getattr(_LANE, "spare", None) or (None, None)
    _LANE.spare = None
    evaluator = None
    spare = None if launch is None else _launched(launch)
    if launch is not None:
        with _SPARES_LOCK:
            _SPARES.discard(launch)
    if spare is not None:
        if spare_key == key and len(session.notebook_json) <= session.config.limits.file_bytes:
            with contextlib.suppress(EvaluatorGone, JudgeFault):  # a new one says what failed
                spare.take(session.notebook_json, session.student, session.pack)
                evaluator = spare
        if evaluator is None:
            spare.retire()
    if evaluator is None:
        evaluator = Evaluator(session.notebook_json, session.config, session.student, session.pack)
    if getattr(_LANE, "spares", False):
        launch = _launcher().submit(Evaluator.spare, session.config, session.pack)
        _LANE.spare = (key, launch)
        with _SPARES_LOCK:
            _SPARES.add(launch)
    return evaluator


@functools.cache
def _launcher() -> ThreadPoolExecutor:
    """The thread that starts this process's spare evaluators (:func:`keep_spares`), so that a
    lane goes on judging while the template forks its next evaluator."""
    return ThreadPoolExecutor(1, thread_name_prefix="evaluator-launch")


def _launched(launch: Future) -> Evaluator | None:
    """The spare evaluator ``launch`` started, or None if it could not be started (a new
    evaluator then says why). One that takes longer than :data:`STARTUP_TIMEOUT` to start is
    retired whenever it does."""
    try:
        return launch.result(timeout=STARTUP_TIMEOUT)
    except TimeoutError:
        launch.add_done_callback(_retire_late)
        return None
    except Exception:  # noqa: BLE001 - the lane starts an evaluator of its own instead
        return None


def _retire_late(launch: Future) -> None:
    if not launch.cancelled() and launch.exception() is None:
        launch.result().retire()


def _str_or_none(path: Path | None) -> str | None:
    return None if path is None else str(path)


class Placeholder:
    """A function whose body is still the template's ``...``."""

    template_placeholder = True

    def __call__(self, *args: object) -> None:
        return None


class Remote(CallsAhead):
    """A student function living in the evaluator: calling it sends the arguments there.

    An object rather than a closure, so that the runner's placeholder check (which reads the
    source of a function) has nothing to parse. The runner announces a case's calls
    (:meth:`call_ahead`): they are sent at once, and each call then only waits for its answer.
    """

    def __init__(self, session: Session, name: str) -> None:
        self.session = session
        self.name = name

    def __call__(self, *args: object) -> object:
        return self.session.call(self.name, args)

    def call_ahead(self, calls: list[tuple]) -> None:
        self.session.call_ahead(self.name, calls)


@dataclass(frozen=True)
class NotCallable:
    """A name bound to something that is not a function."""

    type_name: str


class Session:
    """The grading of one submission: its evaluator, its cells and its notes."""

    def __init__(
        self,
        notebook: nbformat.NotebookNode,
        config: JudgeConfig,
        student: str,
        pack: Pack,
        *,
        notebook_json: bytes | None = None,
    ) -> None:
        """``notebook_json``: the notebook's :func:`~autograder.intake.notebook_bytes` when the
        caller has them (a :class:`~autograder.intake.Submission` keeps them)."""
        self.config = config
        self.student = student
        self.pack = pack
        self.given_names = {id(value): name for name, value in pack.givens.items()}
        self.cells = [c["source"] for c in notebook.cells if c.get("cell_type") == "code"]
        # compact: nbformat's indent balloons
        self.notebook_json = notebook_json or notebook_bytes(notebook)
        self.deadline = time.monotonic() + config.submission_timeout
        self.finished: list[int] = []
        self.notes: list[str] = []
        self.restarts = 0
        self.evaluator: Evaluator | None = None
        self.gave_up: str | None = None
        """Why no evaluator is started any more (the restart budget is spent), if so."""
        self.ahead: collections.deque[Ahead] = collections.deque()
        """Calls sent to the evaluator before the runner made them (:meth:`call_ahead`)."""

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def start(self) -> None:
        """(Re)start the evaluator and replay the cells that finished before.

        Raises:
            EvaluatorGone: the restart budget is spent (the evaluator stays dead).
            JudgeFault: no evaluator could be started.
        """
        interrupts.check()  # a stopping batch starts no evaluator
        self.ahead.clear()
        if self.evaluator is not None:
            self.evaluator.kill()
            if self.gave_up is None and self.restarts >= MAX_RESTARTS:
                self.gave_up = f"gave up after {MAX_RESTARTS} evaluator restarts"
                self._note(f"{self.gave_up}: the remaining cells were skipped and checks failed")
            if self.gave_up is not None:
                raise EvaluatorGone(self.gave_up)
            self.restarts += 1
        self.evaluator = _evaluator_for(self)
        if not self.config.isolate:
            self._note(self.config.unisolated_note)
        for index in list(self.finished):
            self._run(index, replay=True)

    def _live(self) -> Evaluator:
        if self.evaluator is None:
            raise EvaluatorGone("no evaluator is running")
        return self.evaluator

    def _note(self, note: str) -> None:
        if note not in self.notes:
            self.notes.append(note)

    def _run(self, index: int, *, replay: bool = False) -> None:
        timeout = min(self.config.cell_timeout, self.remaining())
        try:
            reply, _ = self._live().request(
                {"op": "run", "source": self.cells[index], "index": index}, timeout=timeout
            )
        except EvaluatorGone as exc:
            self._cell_gone(index, exc)
            self.start()
            return
        self._cell_done(index, reply, timeout, replay=replay)

    def _cell_gone(self, index: int, exc: EvaluatorGone) -> None:
        if exc.hung:  # interrupted at the time limit, and still running
            self._note(
                f"cell {index + 1} was interrupted after {self.config.cell_timeout:g} s but "
                "kept running: it stopped the evaluator and was skipped"
            )
        else:
            self._note(f"cell {index + 1} stopped the evaluator ({exc}); it was skipped")
        if index in self.finished:
            self.finished.remove(index)

    def _cell_done(self, index: int, reply: dict, timeout: float, *, replay: bool) -> None:
        status = reply.get("status")
        if status == "interrupted":
            self._note(
                f"cell {index + 1} was interrupted after {self.config.cell_timeout:g} s"
                if timeout >= self.config.cell_timeout
                else f"cell {index + 1} was interrupted: submission time limit reached"
            )
            if index in self.finished:
                self.finished.remove(index)
        elif not replay:
            self.finished.append(index)

    def run_cells(self) -> None:
        """Run every code cell in order, as 'Run All' would, but never stuck on one.

        The cells are sent ahead (up to :data:`PIPELINE_BYTES` not yet answered), so the
        evaluator goes from one to the next without waiting for the judge; each still has its
        own time limit, counted from the answer to the previous one, when the evaluator turns to
        it. A cell the evaluator reaches past the submission's deadline is not run (it answers
        ``skipped``), as the judge would not have sent it.
        """
        sent: collections.deque[tuple[int, int, int]] = collections.deque()
        upcoming = 0  # the next cell to send
        while True:
            try:
                batch: list[tuple[int, bytes]] = []  # sent together: one system call
                while upcoming < len(self.cells) and self.remaining() > 0:
                    seq, frame = self._live().frame(
                        {
                            "op": "run",
                            "source": self.cells[upcoming],
                            "index": upcoming,
                            "not_after": self.deadline,
                        },
                        after=len(batch),
                    )
                    if sent and sum(size for _, _, size in sent) + len(frame) > PIPELINE_BYTES:
                        break
                    sent.append((upcoming, seq, len(frame)))
                    batch.append((seq, frame))
                    upcoming += 1
                if batch:
                    timeout = min(self.config.cell_timeout, self.remaining())
                    self._live().send_all(batch, timeout=timeout)
                if not sent:
                    if upcoming < len(self.cells):
                        self._note(f"cells {upcoming + 1}+ skipped: submission time limit reached")
                    return
                index, seq, _ = sent[0]
                timeout = min(self.config.cell_timeout, self.remaining())
                reply, _ = self._live().reply(seq, timeout=timeout)
            except EvaluatorGone as exc:  # blamed on the cell the evaluator was running
                index = sent[0][0]
                self._cell_gone(index, exc)
                try:
                    self.start()
                except EvaluatorGone:  # the restart budget is spent (noted)
                    return
                upcoming = index + 1
                sent.clear()
                continue
            sent.popleft()
            if reply.get("status") == "skipped":  # reached past the deadline: not run
                self._note(f"cells {index + 1}+ skipped: submission time limit reached")
                return
            self._cell_done(index, reply, timeout, replay=False)

    def function(self, name: str) -> object:
        """What the runner gets for a student function: a remote proxy or a stand-in."""
        return self.functions([name])[name]

    def functions(self, names: list[str]) -> dict[str, object]:
        """:meth:`function` for each name, the lookups sent ahead in one go (each answer still
        has its own time limit; a lookup that stops the evaluator costs that name only, the
        next ones go to the restarted evaluator)."""
        found: dict[str, object] = {}
        pending = list(dict.fromkeys(names))
        timeout = self.config.grace + 5
        while pending:
            if self.gave_up is not None:
                found.update((name, Remote(self, name)) for name in pending)
                break
            sent: list[tuple[str, int]] = []
            try:
                batch: list[tuple[int, bytes]] = []
                for name in pending:
                    seq, frame = self._live().frame(
                        {"op": "probe", "names": [name]}, after=len(batch)
                    )
                    sent.append((name, seq))
                    batch.append((seq, frame))
                self._live().send_all(batch, timeout=timeout)  # together: one system call
                for name, seq in sent:
                    reply, _ = self._live().reply(seq, timeout=timeout)
                    found[name] = self._looked_up(name, reply)
                    pending.remove(name)
            except EvaluatorGone as exc:
                name = pending.pop(0)  # the lookup the evaluator was answering
                try:
                    self.start()
                except EvaluatorGone:
                    pass  # the restart budget is spent (noted)
                if self.gave_up is None:
                    self._note(f"`{name}` could not be looked up ({exc})")
                found[name] = Remote(self, name)
        return found

    def _looked_up(self, name: str, reply: dict) -> object:
        probe = reply.get("probe")
        state = protocol.text(probe[0] if isinstance(probe, list) and probe else "missing")
        if state == "missing":
            return None
        if state.startswith("not_callable:"):
            return NotCallable(state.split(":", 1)[1])
        if state == "placeholder":
            return Placeholder()
        return Remote(self, name)

    def _request(self, header: dict, arrays=(), *, timeout: float) -> tuple[dict, list]:
        if self.gave_up is not None:
            raise EvaluatorGone(self.gave_up)
        try:
            return self._live().request(header, arrays, timeout=timeout)
        except EvaluatorGone:
            self.start()
            raise

    def _call_request(self, name: str, args: tuple) -> tuple[dict, list[np.ndarray]]:
        """The request calling ``name`` on ``args``, and its arrays.

        Raises:
            JudgeFault: an argument that is neither an array nor one of the pack's givens.
        """
        descriptions: list[dict[str, object]] = []
        arrays: list[np.ndarray] = []
        for arg in args:
            if callable(arg):
                given = self.given_names.get(id(arg))
                if given is None:
                    raise JudgeFault(
                        f"`{name}` would get {arg!r}, which is not in pack "
                        f"{self.pack.name!r}'s givens: the judge cannot send it"
                    )
                descriptions.append({"kind": "given", "name": given})
            else:
                arrays.append(np.asarray(arg))
                descriptions.append({"kind": "array", "index": len(arrays) - 1})
        return {"op": "call", "name": name, "args": descriptions}, arrays

    def call_ahead(self, name: str, calls: list[tuple]) -> None:
        """Send the next calls of ``name`` now (up to :data:`PIPELINE_BYTES`), so the evaluator
        goes from one to the next without waiting for the judge.

        Each one is made only if the one before returned normally (the evaluator skips the rest
        after an exception, an interrupt or the submission's deadline), and each answer still
        has its own time limit. The runner stops a case at its first wrong answer: the calls
        after it were made all the same, and their answers are dropped.
        """
        if self.ahead:
            self._drain()
        if self.gave_up is not None or self.evaluator is None:
            return
        previous, size = None, 0
        framed: list[tuple[int, bytes]] = []
        ahead: list[Ahead] = []
        for args in calls:
            try:
                request, arrays = self._call_request(name, args)
            except JudgeFault:  # raised again when the runner makes that call
                break
            request.update(not_after=self.deadline, unless=previous)
            seq, frame = self._live().frame(request, arrays, after=len(framed))
            size += len(frame)
            if ahead and size > PIPELINE_BYTES:
                break
            framed.append((seq, frame))
            ahead.append(Ahead(name, args, seq))
            previous = seq
        if not framed:
            return
        try:  # together: one system call
            self._live().send_all(framed, timeout=self.config.call_timeout)
        except EvaluatorGone:  # killed: the answers cannot come (the calls are made again)
            return
        self.ahead.extend(ahead)

    def _take_ahead(self, name: str, args: tuple) -> Ahead | None:
        """The call sent ahead that this one is (the next, with the same arguments), or None
        after waiting out every call sent ahead."""
        if self.ahead and self.ahead[0].matches(name, args):
            return self.ahead.popleft()
        self._drain()
        return None

    def _drain(self) -> None:
        """Wait for the answers of the calls sent ahead and not made by the runner (each with its
        time limit), and drop them."""
        while self.ahead:
            entry = self.ahead.popleft()
            try:
                self._live().reply(
                    entry.seq, timeout=min(self.config.call_timeout, self.remaining())
                )
            except EvaluatorGone:
                try:
                    self.start()
                except EvaluatorGone:
                    pass  # the restart budget is spent (noted)
                return

    def call(self, name: str, args: tuple) -> object:
        """Call the student's function in the evaluator; raise what the runner expects.

        Raises:
            JudgeFault: an argument that is neither an array nor one of the pack's givens (the
                grader's fault: the submission becomes an ``error`` row).
        """
        limit = min(self.config.call_timeout, self.remaining())
        if limit <= 0:
            raise CallTimeout(self.config.call_timeout)
        entry = self._take_ahead(name, args)
        try:
            if entry is not None:
                try:
                    reply, out = self._live().reply(entry.seq, timeout=limit)
                except EvaluatorGone:
                    self.start()
                    raise
            else:
                request, arrays = self._call_request(name, args)
                reply, out = self._request(request, arrays, timeout=limit)
        except EvaluatorGone as exc:
            if exc.hung:
                raise CallTimeout(self.config.call_timeout) from None
            raise StudentError(
                "EvaluatorDied", f"the process running your code died ({exc})"
            ) from None
        status = reply.get("status")
        if status == "interrupted":
            raise CallTimeout(self.config.call_timeout)
        if status == "judge_fault":  # its givens were all there when it started: student code
            raise StudentError(
                "EvaluatorBroken",
                f"the process running your code could not take `{name}`'s arguments any more: "
                + protocol.text(reply.get("error", "")),
            )
        if status != "ok":
            remote_type, _, message = protocol.text(reply.get("error", "")).partition(": ")
            raise StudentError(remote_type or "Error", message)
        return protocol.value_from(reply.get("value"), out)

    def close(self, *, background: bool = False) -> None:
        """Kill the evaluator; with ``background`` (the submission is judged), the rest of its
        end (waiting for it, removing its cgroups) is left to :func:`finish_retired`."""
        if self.evaluator is None:
            return
        if background:
            self.evaluator.retire()
        else:
            self.evaluator.kill()


@dataclass(frozen=True)
class Ahead:
    """A call sent to the evaluator before the runner made it."""

    name: str
    args: tuple
    seq: int

    def matches(self, name: str, args: tuple) -> bool:
        """Whether a call of ``name`` on ``args`` is this one (the runner passes copies)."""
        if name != self.name or len(args) != len(self.args):
            return False
        for mine, theirs in zip(self.args, args):
            if mine is theirs:  # the runner passes a remote function the arguments it announced
                continue
            if callable(mine) or callable(theirs):
                if mine is not theirs:
                    return False
                continue
            mine, theirs = np.asarray(mine), np.asarray(theirs)
            if mine.dtype != theirs.dtype or not np.array_equal(mine, theirs):
                return False
        return True


class IsolationUnavailable(KitError):
    """The judge cannot isolate student code on this machine (the message says why)."""


def check_isolation(config: JudgeConfig | None = None) -> None:
    """Start one sandboxed evaluator on an empty notebook, as grading would, and stop it.

    Raises:
        IsolationUnavailable: with the reason, when the sandbox cannot be built here.
    """
    problem = sandbox.unavailable_reason()
    if problem is None:
        empty = nbformat.writes(nbformat.v4.new_notebook()).encode()
        try:
            Evaluator(empty, config or JudgeConfig(), "isolation-check").kill()
        except JudgeFault as exc:
            problem = str(exc)
    if problem is not None:
        raise IsolationUnavailable(problem)


def judge_cases(
    notebook: nbformat.NotebookNode,
    student: str,
    config: JudgeConfig,
    *,
    pack: Pack,
    questions: Collection[str] | None = None,
    notebook_json: bytes | None = None,
) -> tuple[dict[str, list[CaseOutcome]], list[str]]:
    """Every hidden case of every question (or of ``questions`` only: a regrade of one question
    still runs every cell, but calls only that question's functions), judged; plus notes
    (interrupted cells, isolation). ``notebook_json``: the notebook's
    :func:`~autograder.intake.notebook_bytes`, when the caller has them.

    Raises:
        KitError: the grader could not do its part (:class:`JudgeFault`: e.g. no evaluator
            could be started).
        interrupts.Cancelled: the batch is stopping (the evaluator is killed first).
    """
    session = Session(notebook, config, student, pack, notebook_json=notebook_json)
    try:
        session.start()
        session.run_cells()
        chosen = [q for q in pack.questions if questions is None or q.id in questions]
        proxies = session.functions([name for q in chosen for name in q.function_names])
        outcomes: dict[str, list[CaseOutcome]] = {}
        memo: dict = {}  # the instances of this submission, each derived once
        for question in chosen:
            functions = [proxies[name] for name in question.function_names]
            outcomes[question.id] = []
            for case in question.cases:
                result = run_case(
                    question.id,
                    case.name,
                    *functions,
                    pack=pack,
                    key=student,
                    call_limit=None,
                    memo=memo,
                )
                outcomes[question.id].append(
                    CaseOutcome(case.name, case.points, result.passed, result.tags, result.text())
                )
    except BaseException:  # stopping, or the grading side failed: the evaluator is gone first
        session.close()
        raise
    session.close(background=True)
    return outcomes, session.notes


def _cells_only(data: bytes) -> nbformat.NotebookNode:
    """The notebook of a submission's JSON with attribute access down to its cells, which is all
    the judge and the advice read (:attr:`Submission.notebook` converts every nested dict)."""
    raw = json.loads(data)
    return nbformat.NotebookNode(raw, cells=[nbformat.NotebookNode(c) for c in raw["cells"]])


def grade_submission(
    submission: Submission,
    *,
    pack: Pack | str | Path,
    config: JudgeConfig | None = None,
    questions: Collection[str] | None = None,
) -> Result:
    """Grade one submission with the judge; never raises for anything the submission does.

    ``pack`` may be a pack's name (resolved here, e.g. on a Dask worker). With ``questions``,
    only those questions are judged; the others' entries say ``missing`` (a regrade keeps only
    the chosen questions' entries, see :mod:`autograder.regrade`).
    """
    pack = registry.load(pack)
    data = submission.notebook_json()
    if data is None:
        return empty_result(
            submission.student, "invalid", f"submission unusable: {submission.problem}", pack=pack
        )
    notebook = _cells_only(data)
    try:
        outcomes, notes = judge_cases(
            notebook,
            submission.student,
            config or JudgeConfig(),
            pack=pack,
            questions=questions,
            notebook_json=data,
        )
    except (EvaluatorGone, KitError) as exc:  # EvaluatorGone: never expected here
        log.warning("%s: %s", submission.student, exc)
        return empty_result(
            submission.student, "error", f"the judge could not grade: {exc}", pack=pack
        )
    advice = advice_notes(notebook, pack=pack)
    return graded_result(submission.student, outcomes, pack=pack, advice=advice, notes=notes)
