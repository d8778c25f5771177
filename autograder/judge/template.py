"""Set-up of the warm template process (the forkserver); imported there and nowhere else, last of
its preloads (see ``engine.warm_context``), after numpy, the evaluator and IPython's transformer.

Each evaluator is forked from the template and then goes through multiprocessing's preparation,
which runs the grader's main module again as ``__mp_main__`` when it is a script or a module other
than a package's ``__main__``: the ``dask worker`` command, a TA's or a benchmark's script. That
happened in every evaluator, before the sandbox (about 0.4 s each on a Dask worker), and ran the
grader's own code in the process that then runs the student's. An evaluator needs nothing from
the main module (its target, :func:`autograder.judge.evaluator.main`, is found by name), so in
the template that step does nothing.

What every evaluator would otherwise do again is done here, once: the module its pipe to the
judge is unpickled with (``multiprocessing.popen_forkserver``, which the forkserver itself never
imports) is imported, the seccomp filter is compiled
(:func:`sandbox.compile_seccomp`; each evaluator loads the same program), the folders the sandbox
exposes are resolved (``sandbox._exposed``), and the regular expressions that ``inspect`` compiles
on first use, to tell a placeholder function (``givens.is_placeholder``), are compiled.

The pure steps each evaluator then takes per request (decoding a call and its arrays, calling,
describing and encoding the answer, compiling a cell) are rehearsed here a few times
(:func:`_rehearse`): the interpreter specialises their code and fills its caches once, in the
template, where each evaluator would otherwise write (and so copy) those pages of its own.

Standard input, which the forkserver closes and reopens on ``/dev/null`` after its preloads and
multiprocessing then closes and reopens in every process it starts (an open file object each
time), is reopened here once and left as ``None`` (the evaluator gives the student's code an
empty one of its own); the C library's free memory is given back, so that no evaluator copies
its page tables.

Then every object the template holds is moved out of reach of the garbage collector
(:func:`gc.freeze`): a collection in an evaluator walks, and so writes to, every object of the
generations it collects, and each page written after the fork is a page the kernel copies. Frozen,
the template's objects stay shared between the template and all its evaluators; only the objects
an evaluator makes are ever collected.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import linecache
import multiprocessing.popen_forkserver  # unpickles the pipe of every evaluator: see above
import multiprocessing.spawn
import multiprocessing.util
import sys

import numpy as np

from ..givens import is_placeholder
from . import evaluator, protocol, sandbox
from .magics import plain_python

REHEARSALS = 10
"""Runs of each rehearsed step: more than CPython 3.11 needs to specialise a function's code."""


def _skip_main(_name_or_path: str) -> None:
    """multiprocessing's re-run of the main module, replaced: nothing to do."""


for _step in ("_fixup_main_from_path", "_fixup_main_from_name"):
    setattr(multiprocessing.spawn, _step, _skip_main)


def _placeholder() -> None:
    """A placeholder, as a student's function looks before it is written."""


def _twice(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A student's function, as the rehearsal calls it: the NumPy functions the course's
    answers call most (NumPy's Python wrappers are code to specialise too)."""
    square = np.outer(x[0], x[0]) + np.diag(np.exp(x[0]))
    solved = np.linalg.solve(square, np.asarray(x[0]))
    return np.einsum("ij,j->i", square, solved) * 2.0, np.max(x, axis=0)


def _rehearse() -> None:
    """Take an evaluator's per-request steps on made-up data, leaving nothing behind."""
    arrays = [np.arange(6.0).reshape(2, 3), np.arange(3), np.ones(2, dtype=bool)]
    request = protocol.encode(
        {"op": "call", "name": "_twice", "args": [{"kind": "array", "index": 0}], "seq": 1}, arrays
    )
    evaluator._NAMESPACE["_twice"] = _twice
    try:
        for _ in range(REHEARSALS):
            header, got = protocol.decode(request, max_bytes=2**40, max_header=2**40)
            reply, out = evaluator.call(header["name"], header["args"], got)
            answer = protocol.encode({**reply, "seq": header["seq"]}, out)
            back, blobs = protocol.decode(answer)
            protocol.value_from(back["value"], blobs)
            protocol.encode({"status": "ok", "probe": [evaluator.probe("_twice")], "seq": 2})
            compile(plain_python("y = _twice(x)\n") or "", "<cell 0>", "exec")
    finally:
        evaluator._NAMESPACE.clear()


with contextlib.suppress(Exception):  # else each evaluator tries, and says what is wrong
    sandbox.compile_seccomp()
with contextlib.suppress(Exception):
    sandbox._root_plan()
    sandbox.mount_point()
    is_placeholder(_placeholder)
with contextlib.suppress(Exception):  # an optimisation only
    _rehearse()
sandbox.reap_orphans()  # the PID 1 an evaluator's outside process leaves behind when killed
linecache.cache.pop(__file__, None)  # this file's text is no business of student code
vars(multiprocessing.util)["_close_stdin"]()  # private: what the forkserver does after preloads
sys.stdin = None  # type: ignore[assignment]  # so that no evaluator closes and reopens it again
gc.collect()  # no garbage frozen for good
with contextlib.suppress(Exception):  # the C library's free memory back to the system
    ctypes.CDLL(None).malloc_trim(0)
gc.freeze()
