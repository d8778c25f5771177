"""The evaluators' template process, finished: imported last by the forkserver's preload (see
``engine.warm_context``), after numpy, the evaluator and IPython's transformer.

What every evaluator would otherwise do again is done here, once: the seccomp filter is compiled
(:func:`sandbox.compile_seccomp`; each evaluator loads the same program), the folders the sandbox
exposes are resolved (``sandbox._exposed``), and the regular expressions that ``inspect`` and
``tokenize`` compile on first use, to tell a placeholder function (``givens.is_placeholder``),
are compiled.

Then every object the template holds is moved out of reach of the garbage collector
(:func:`gc.freeze`): a collection in an evaluator walks, and so writes to, every object of the
generations it collects, and each page written after the fork is a page the kernel copies. Frozen,
the template's objects stay shared between the template and all its evaluators; only the objects
an evaluator makes are ever collected.
"""

from __future__ import annotations

import contextlib
import gc
import linecache

from ..givens import is_placeholder
from . import sandbox


def _placeholder() -> None:
    """A placeholder, as a student's function looks before it is written."""


with contextlib.suppress(Exception):  # else each evaluator tries, and says what is wrong
    sandbox.compile_seccomp()
with contextlib.suppress(Exception):
    sandbox._exposed()
    is_placeholder(_placeholder)
linecache.cache.pop(__file__, None)  # this file's text is no business of student code
gc.collect()  # no garbage frozen for good
gc.freeze()
