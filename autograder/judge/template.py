"""The evaluators' template process, finished: imported last by the forkserver's preload (see
``engine.warm_context``), after numpy, the evaluator and IPython's transformer.

The seccomp filter is compiled here, once (:func:`sandbox.compile_seccomp`): each evaluator
loads the same program instead of having libseccomp build it again.

Then every object the template holds is moved out of reach of the garbage collector
(:func:`gc.freeze`): a collection in an evaluator walks, and so writes to, every object of the
generations it collects, and each page written after the fork is a page the kernel copies.
Frozen, the template's objects stay shared between the template and all its evaluators; only the
objects an evaluator makes are ever collected.
"""

from __future__ import annotations

import contextlib
import gc

from . import sandbox

with contextlib.suppress(Exception):  # else each evaluator tries, and says what is wrong
    sandbox.compile_seccomp()
gc.collect()  # no garbage frozen for good
gc.freeze()
