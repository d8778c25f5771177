"""Set-up of the warm template process (the forkserver); imported there and nowhere else.

Each evaluator is forked from the template and then goes through multiprocessing's preparation,
which runs the grader's main module again as ``__mp_main__`` when it is a script or a module other
than a package's ``__main__``: the ``dask worker`` command, a TA's or a benchmark's script. That
happened in every evaluator, before the sandbox (about 0.4 s each on a Dask worker), and ran the
grader's own code in the process that then runs the student's. An evaluator needs nothing from
the main module (its target, :func:`autograder.judge.evaluator.main`, is found by name), so in
the template that step does nothing.
"""

from __future__ import annotations

import multiprocessing.spawn


def _skip_main(_name_or_path: str) -> None:
    """multiprocessing's re-run of the main module, replaced: nothing to do."""


for _step in ("_fixup_main_from_path", "_fixup_main_from_name"):
    setattr(multiprocessing.spawn, _step, _skip_main)
