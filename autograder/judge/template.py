"""Set-up of the warm template process (the forkserver); imported there and nowhere else, last of
its preloads (see ``engine.warm_context``), after numpy, the evaluator and IPython's transformer.

Each evaluator is forked from the template and then goes through multiprocessing's preparation,
which runs the grader's main module again as ``__mp_main__`` when it is a script or a module other
than a package's ``__main__``: the ``dask worker`` command, a TA's or a benchmark's script. That
happened in every evaluator, before the sandbox (about 0.4 s each on a Dask worker), and ran the
grader's own code in the process that then runs the student's. An evaluator needs nothing from
the main module (its target, :func:`autograder.judge.evaluator.main`, is found by name), so in
the template that step does nothing.

What every evaluator would otherwise do again is done here, once: the seccomp filter is compiled
(:func:`sandbox.compile_seccomp`; each evaluator loads the same program), the folders the sandbox
exposes are resolved (``sandbox._exposed``), and the regular expressions that ``inspect`` compiles
on first use, to tell a placeholder function (``givens.is_placeholder``), are compiled.

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
import multiprocessing.spawn

from ..givens import is_placeholder
from . import sandbox


def _skip_main(_name_or_path: str) -> None:
    """multiprocessing's re-run of the main module, replaced: nothing to do."""


for _step in ("_fixup_main_from_path", "_fixup_main_from_name"):
    setattr(multiprocessing.spawn, _step, _skip_main)


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
