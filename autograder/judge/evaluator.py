"""The evaluator: runs inside the sandbox, executes the student's cells, calls their functions.

This is the kit's code, but it shares its process with untrusted student code, so nothing it
sends is trusted by the judge: it answers with plain numbers only (see ``protocol.py``). It is
imported by the warm template process (the forkserver) before any submission arrives.
"""

from __future__ import annotations

import builtins
import contextlib
import ctypes
import io
import linecache
import marshal
import os
import shutil
import signal
import sys
import time
import types
from typing import Any

import numpy as np

from ..givens import SEED_ENV, is_placeholder
from . import cgroups, protocol, sandbox

OUTPUT_LIMIT = 1_000_000
"""Characters of student output kept in memory (the rest is discarded)."""


class _Sink(io.TextIOBase):
    """stdout/stderr replacement that keeps a bounded amount of text."""

    def __init__(self) -> None:
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.size += len(text)
        return len(text)


class _ShellStub:
    """What ``get_ipython()`` returns: magics and shell commands are neutralised."""

    def run_line_magic(self, *args, **kwargs) -> None:
        return None

    def run_cell_magic(self, name: str, line: str, cell: str) -> None:
        if name in ("time", "capture"):
            exec(compile(cell, "<cell magic>", "exec"), _NAMESPACE)  # noqa: S102 (student code)

    def system(self, *args, **kwargs) -> None:
        return None

    def getoutput(self, *args, **kwargs) -> list:
        return []

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: None


_OUTSIDE: dict[str, int] = {}
"""``pid``: PID 1's own pid as the judge sees it (outside its PID namespace); ``parent``: the
template that forked this evaluator."""
_NAMESPACE: dict = {}
_GIVENS: dict = {}
"""What the judge may hand to student code: ``GIVENS`` of the pack's ``givens.py``."""


def givens_program(path: str) -> bytes:
    """A pack's ``givens.py``, compiled and marshalled: what :func:`load_givens` runs (the judge
    compiles it once per file rather than every evaluator compiling it again)."""
    with open(path, "rb") as source:
        return marshal.dumps(compile(source.read(), path, "exec"))


def load_givens(path: str | None, program: bytes | None = None) -> dict:
    """``GIVENS`` from a pack's ``givens.py`` (run by itself: nothing else of the pack or of the
    checks comes into this process); ``program``: the file's :func:`givens_program`, if the
    judge sends it."""
    if not path:
        return {}
    module: dict = {"__name__": "_pack_givens", "__file__": path, "__builtins__": builtins}
    exec(marshal.loads(program or givens_program(path)), module)  # noqa: S102 (the pack's own)
    return dict(module.get("GIVENS", {}))


def _fresh_namespace() -> dict:
    """The student's globals, with IPython's ``get_ipython``/``display`` and Otter stubbed: the
    notebook's ``grader = otter.Notebook(...)`` and ``grader.check(...)`` cells become no-ops."""
    _NAMESPACE.clear()
    stub = _ShellStub()
    otter_stub = types.ModuleType("otter")
    vars(otter_stub)["Notebook"] = lambda *args, **kwargs: _ShellStub()
    sys.modules["otter"] = otter_stub
    _NAMESPACE.update(
        {
            "__name__": "__main__",
            "__builtins__": builtins,
            "get_ipython": lambda: stub,
            "display": lambda *args, **kwargs: None,
        }
    )
    return _NAMESPACE


def transform(source: str) -> str:
    """IPython syntax (``%magic``, ``!cmd``, ``?``) to plain Python calls on the stub shell."""
    from .magics import TRANSFORMER  # preloaded by the template, or by main() before the sandbox

    if TRANSFORMER is None:
        return source
    try:
        return TRANSFORMER.transform_cell(source)
    except Exception:  # noqa: BLE001 - leave it to compile() to report
        return source


def _compiled(source: str, filename: str) -> types.CodeType:
    """A cell's code, compiled from what :func:`transform` makes of it (shown by ``linecache``).

    A cell without IPython syntax skips the transformer (:func:`magics.plain_python`, the same
    text); one that then does not compile is transformed after all, so that its error is exactly
    the one the transformer's text gives.
    """
    from .magics import TRANSFORMER, plain_python

    python = plain_python(source) if TRANSFORMER is not None else None
    if python is not None:
        _cache_source(filename, python)
        with contextlib.suppress(Exception):  # reported from the transformer's text below
            return compile(python, filename, "exec")
    python = transform(source)
    _cache_source(filename, python)
    return compile(python, filename, "exec")


def _cache_source(filename: str, python: str) -> None:
    linecache.cache[filename] = (len(python), None, python.splitlines(True), filename)


def _error_text(exc: BaseException) -> str:
    return protocol.text(f"{type(exc).__name__}: {exc}")


def run_cell(source: str, index: int) -> dict:
    """Execute one cell; report ok, error or interrupted (never raise)."""
    try:
        code = _compiled(source, f"<cell {index}>")
        exec(code, _NAMESPACE)  # noqa: S102 (the evaluator runs student code)
    except KeyboardInterrupt:
        return {"status": "interrupted"}
    except BaseException as exc:  # noqa: BLE001 - SystemExit too: a cell cannot end grading
        return {"status": "error", "error": _error_text(exc)}
    return {"status": "ok"}


def probe(name: str) -> str:
    """How a function name looks in the student's namespace."""
    value = _NAMESPACE.get(name)
    if value is None:
        return "missing"
    if not callable(value):
        return "not_callable:" + type(value).__name__[:100]
    try:
        return "placeholder" if is_placeholder(value) else "ok"
    except BaseException:  # noqa: BLE001
        return "ok"


class UnknownGiven(Exception):
    """The judge asked to hand out a value this pack's ``givens.py`` does not register."""


def _argument(description: dict, arrays: list[np.ndarray]) -> object:
    if description.get("kind") == "given":
        name = description.get("name")
        if name not in _GIVENS:
            raise UnknownGiven(f"no given {name!r} in the pack's givens.py")
        return _GIVENS[name]
    return protocol.value_from(description, arrays)


def call(name: str, args: list[dict], arrays: list[np.ndarray]) -> tuple[dict, list[np.ndarray]]:
    """Call a student's function; describe the answer as plain data."""
    function: Any = _NAMESPACE.get(name)  # whatever the student bound (TypeError if no function)
    try:
        arguments = [_argument(a, arrays) for a in args]
    except (UnknownGiven, protocol.ProtocolError) as exc:
        return {"status": "judge_fault", "error": _error_text(exc)}, []
    try:
        answer = function(*arguments)
    except KeyboardInterrupt:
        return {"status": "interrupted"}, []
    except BaseException as exc:  # noqa: BLE001 - SystemExit too
        return {"status": "error", "error": _error_text(exc)}, []
    out: list[np.ndarray] = []
    try:
        value = protocol.describe_value(answer, out)
    except BaseException as exc:  # noqa: BLE001
        return {"status": "error", "error": _error_text(exc)}, []
    return {"status": "ok", "value": value}, out


def _past(deadline: object) -> bool:
    """Whether the judge's deadline (its ``time.monotonic()``, the same clock) has passed."""
    try:
        return isinstance(deadline, (int, float)) and time.monotonic() >= deadline
    except TypeError:
        return False


def _next_request(conn) -> tuple[dict, list[np.ndarray]]:
    """The judge's next request, decoded; the judge gone or the pipe broken: the evaluator ends.
    An interrupt that arrives between requests is nothing to answer."""
    while True:
        try:
            return protocol.decode(conn.recv_bytes(), max_bytes=2**40, max_header=2**40)
        except (EOFError, OSError, protocol.ProtocolError):
            os._exit(0)
        except KeyboardInterrupt:
            continue


def serve(conn) -> None:
    """Answer the judge's requests until it says exit or goes away.

    A call sent ahead names the request before it (``unless``): it is skipped when that one did
    not return normally, as the judge would not have made it.
    """
    failed = None
    while True:
        request, arrays = _next_request(conn)
        op, seq = request.get("op"), request.get("seq")
        reply: dict
        out: list[np.ndarray]
        if op == "exit":
            os._exit(0)
        try:
            if op == "run" and _past(request.get("not_after")):
                reply, out = {"status": "skipped"}, []  # the judge's deadline: it is not run
            elif op == "run":
                reply, out = run_cell(request["source"], request["index"]), []
            elif op == "probe":
                reply, out = {"status": "ok", "probe": [probe(n) for n in request["names"]]}, []
            elif op == "call" and (
                _past(request.get("not_after"))
                or (request.get("unless") is not None and request.get("unless") == failed)
            ):
                reply, out = {"status": "skipped"}, []  # sent ahead, but the one before failed
            elif op == "call":
                reply, out = call(request["name"], request["args"], arrays)
            else:
                reply, out = {"status": "error", "error": f"unknown op {op!r}"}, []
        except KeyboardInterrupt:
            reply, out = {"status": "interrupted"}, []
        if reply.get("status") != "ok":
            failed = seq
        try:
            conn.send_bytes(protocol.encode({**reply, "seq": seq}, out))
        except KeyboardInterrupt:
            failed = seq
            conn.send_bytes(protocol.encode({"status": "interrupted", "seq": seq}))


def _quiet_standard_streams() -> None:
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    sys.stdin = io.StringIO("")
    sys.stdout = sys.stderr = _Sink()


def _close_fds_except(keep: int) -> None:
    """Close every inherited descriptor but the pipe to the judge: among them the forkserver's
    "alive" pipe, which would keep the forkserver (and through it this process) alive after the
    judge died."""
    top = os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 65536
    os.closerange(3, keep)
    os.closerange(keep + 1, max(top, keep + 2))


KEPT_ENVIRONMENT = (
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
)
"""Variables passed on to the student's code (locale and thread counts); nothing else of the
grader's environment is."""


_BYTES_DATA = bytes.__basicsize__ - 1
"""Offset of a bytes object's data from its address (CPython: after the header, before the
closing NUL that ``__basicsize__`` counts)."""


def _zero(secret: bytes) -> None:
    """Overwrite a bytes object in place before it is dropped (so no copy lingers in memory)."""
    if isinstance(secret, bytes) and secret:  # its data, in place (CPython's layout)
        ctypes.memset(id(secret) + _BYTES_DATA, 0, len(secret))


def forget_the_judge(student: str) -> None:
    """Drop what the forkserver handed over about the judge: its environment, command line and
    working folder, and the multiprocessing authkey (the process object's and the preparation
    data's copies are overwritten; the red team's ``judge_secrets`` looks for any other live
    one). The student's code gets a minimal environment.

    The environment is edited, not rebuilt: the template's is already nearly the student's,
    and each variable dropped or set is Python work in every evaluator."""
    current = dict(os.environ)
    wanted = {"PATH": "/usr/bin:/bin", "HOME": "/work", "TMPDIR": "/tmp"}
    wanted.update((name, current[name]) for name in KEPT_ENVIRONMENT if name in current)
    wanted[SEED_ENV] = student
    for name in current.keys() - wanted.keys():
        del os.environ[name]
    for name, value in wanted.items():
        if current.get(name) != value:
            os.environ[name] = value
    sys.argv = [""]
    sys.orig_argv = [sys.executable]
    import multiprocessing.process
    import multiprocessing.spawn

    process = multiprocessing.process.current_process()
    stale = [process.authkey]
    frame: types.FrameType | None = sys._getframe()
    while frame is not None:  # the preparation data spawn._main still holds on its stack
        if frame.f_code is multiprocessing.spawn._main.__code__:
            data = frame.f_locals.get("preparation_data")
            if isinstance(data, dict):
                stale.append(data.get("authkey", b""))
                data.clear()
        frame = frame.f_back
    process.authkey = os.urandom(32)
    vars(multiprocessing.process)["ORIGINAL_DIR"] = None  # private: not in the stubs
    for key in stale:
        _zero(key)


def _refuse(conn, stage: str, exc: BaseException) -> None:
    """Tell the judge why the evaluator cannot start, and end."""
    conn.send_bytes(protocol.encode({"status": "error", "error": f"{stage}: {exc}"}))
    os._exit(1)


SLEEPER = shutil.which("sleep", path="/usr/bin:/bin") or "/bin/sleep"
"""What the process outside the namespaces becomes once PID 1 is forked (``sleep infinity``):
it only has to stay PID 1's parent, holding no memory of the template's."""


def _wait_outside(child: int) -> None:
    """The process the judge started, once PID 1 (``child``) is forked: it stays PID 1's parent,
    so that PID 1 dies with it (the parent-death signal) and its pid is never reused while the
    judge may signal it (it stays a zombie until this process dies: nothing here reaps it). The
    judge signals PID 1 itself (``engine.Evaluator``); this process becomes ``sleep``, so it
    holds none of the template's memory. Without ``sleep``, it waits in Python."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # nothing of the grader's (a pipe it reads to its end) is held here
        os.dup2(devnull, fd)
    os.close(devnull)
    with contextlib.suppress(OSError):
        os.execv(SLEEPER, [SLEEPER, "infinity"])
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    os.waitid(os.P_PID, child, os.WEXITED | os.WNOWAIT)
    signal.pause()  # until the judge kills it


def _isolate(
    conn, notebook_json: bytes | None, limits: sandbox.Limits, cgroup: dict, tag: str, name: str
) -> None:
    """Enter the sandbox (see ``sandbox.py``); returns in the process that runs the student's
    code, PID 1 of its own namespaces. The process the judge started stays outside, waiting."""
    try:
        problem = sandbox.unavailable_reason()
        if problem:
            raise sandbox.SandboxUnavailable(problem)
        root = sandbox.mount_point()
        if os.geteuid() == 0:  # build the root first: uid 65534 may not reach root's Python
            if cgroup:
                cgroups.join(cgroup)
            sandbox.private_mount_namespace()
            sandbox.build_root(root, notebook_json, tag=tag, limits=limits, name=name)
            sandbox.become_nobody()
            sandbox.set_dumpable(True)  # a change of uid clears it; writing uid_map needs it
            sandbox.enter_namespaces()  # the mounts are copied, locked read-only
            sandbox.set_dumpable(False)
        else:
            sandbox.enter_namespaces()
            sandbox.build_root(root, notebook_json, tag=tag, limits=limits, name=name)
        sandbox.set_parent_death_signal(signal.SIGKILL)  # a change of uid clears it too
    except (sandbox.SandboxUnavailable, OSError) as exc:
        _refuse(conn, "sandbox", exc)
    if os.getppid() != _OUTSIDE["parent"]:  # the template died while the signal was unset
        os._exit(0)
    child = sandbox.fork()  # the child is PID 1 of the new PID namespace
    if child:
        conn.close()
        _wait_outside(child)
    sandbox.set_parent_death_signal(signal.SIGKILL)
    os.setpgid(0, 0)  # a group apart from the waiting parent: kill(0, ...) cannot reach it
    _OUTSIDE["pid"] = sandbox.outside_pid()
    try:
        sandbox.enter_root(root)
        sandbox.apply_limits(limits)
        sandbox.fresh_session_keyring()
        sandbox.drop_capabilities()
        sandbox.install_seccomp()
    except (sandbox.SandboxUnavailable, OSError, ValueError) as exc:
        _refuse(conn, "sandbox", exc)


def take_submission(conn, name: str) -> tuple[str, bytes]:
    """A spare evaluator's wait for its submission: the judge's ``take`` request names the
    student and carries the notebook, which is written to ``name`` in the working folder (the
    sandbox's /work). The judge gone first: the evaluator ends."""
    while True:
        request, arrays = _next_request(conn)
        student = request.get("student")
        if request.get("op") == "take" and isinstance(student, str) and len(arrays) == 1:
            notebook_json = arrays[0].tobytes()
            try:
                with open(name, "wb") as notebook:
                    notebook.write(notebook_json)
            except OSError as exc:  # the judge starts an evaluator of its own for this one
                _refuse(conn, "notebook", exc)
            return student, notebook_json
        os._exit(0)  # the judge sends nothing else first


def main(
    conn,
    notebook_json: bytes | None,
    limits: sandbox.Limits,
    isolate: bool,
    student: str | None,
    cgroup: dict | None = None,
    tag: str = "",
    givens: str | None = None,
    notebook_name: str = "submission.ipynb",
    program: bytes | None = None,
) -> None:
    """Entry point of an evaluator process (started from the warm forkserver).

    With ``isolate``, the student's code runs in the sandbox or not at all (the judge gets an
    ``error`` saying why); without, in a fresh folder with resource limits only. ``givens`` is
    the path of the pack's ``givens.py``, ``program`` its :func:`givens_program` (compiled here,
    before the sandbox is entered, if the judge does not send it); ``notebook_name`` the file
    name the notebook gets in the evaluator's working directory.

    Without ``student`` (and ``notebook_json``), a *spare*: the evaluator is started ahead of its
    submission, and after the sandbox is set up waits for it (:func:`take_submission`), so that
    a lane's next evaluator is ready when its current submission is judged.

    What only the process that runs the student's code needs (the givens, forgetting the judge)
    is done in that process, not in the one outside the namespaces, which runs no student code
    and which nothing in the sandbox can reach: each page of the template's memory that both
    wrote would be copied twice.
    """
    sandbox.set_parent_death_signal(signal.SIGKILL)
    _OUTSIDE["parent"] = os.getppid()  # the template: it must still be the parent once the
    # signal is set again after a change of uid (else this evaluator would outlive it)
    _close_fds_except(conn.fileno())
    if givens and program is None:
        try:
            program = givens_program(givens)
        except Exception as exc:  # noqa: BLE001 - a broken pack file is the grader's fault
            _refuse(conn, "givens", exc)
    from . import magics  # noqa: F401 - IPython's transformer, imported before the sandbox

    try:
        os.setsid()
    except OSError:
        pass
    if isolate:
        _isolate(conn, notebook_json, limits, cgroup or {}, tag, notebook_name)
        isolation, reason = "namespaces", ""
    else:
        isolation, reason = "none", "isolation disabled"
        sandbox.fallback_workdir(notebook_json, name=notebook_name)
        try:
            sandbox.apply_limits(limits)
            if sandbox.pyseccomp is not None:  # keyrings, locks: no isolation, but no harm
                sandbox.install_seccomp()
        except (sandbox.SandboxUnavailable, OSError, ValueError) as exc:
            _refuse(conn, "limits", exc)
    sandbox.set_parent_death_signal(signal.SIGKILL)
    forget_the_judge(student or "")
    try:
        _GIVENS.clear()
        _GIVENS.update(load_givens(givens, program))
    except Exception as exc:  # noqa: BLE001 - a broken pack file is the grader's fault
        _refuse(conn, "givens", exc)
    if student is None:  # a spare: its submission comes now
        student, notebook_json = take_submission(conn, notebook_name)
        os.environ[SEED_ENV] = student
    _quiet_standard_streams()
    _fresh_namespace()
    ready = {
        "status": "ready",
        "isolation": isolation,
        "reason": reason,
        "givens": sorted(_GIVENS),
        "pid": _OUTSIDE.get("pid", os.getpid()),  # whom the judge signals
    }
    conn.send_bytes(protocol.encode(ready))
    serve(conn)
