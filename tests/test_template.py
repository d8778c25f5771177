"""The evaluators' template process (autograder/judge/template.py and engine.warm_context), seen
from inside a real sandboxed evaluator."""

from __future__ import annotations

import errno
import sys

import nbformat
import numpy as np
import pytest

from autograder.judge import engine, sandbox

PROBE = """
import errno, fcntl, gc, os
import numpy as np
from autograder.judge import sandbox

def frozen(_):
    return np.array([gc.get_freeze_count()])

def kit_sources(_):
    import linecache
    return np.array([sum(key.endswith(".py") for key in linecache.cache)])

def resolved(_):
    cache = sandbox._exposed_for.cache_info()
    return np.array([cache.hits, cache.misses])

def program(_):
    return np.frombuffer(sandbox._PROGRAM, dtype=np.uint8)

def refused(_):
    codes = []
    for attempt in (lambda: fcntl.flock(open("/tmp/lock", "w"), fcntl.LOCK_EX),
                    lambda: os.memfd_create("x")):
        try:
            attempt()
            codes.append(0)
        except OSError as exc:
            codes.append(exc.errno)
    return np.array(codes)

def threads(_):
    return np.array([float(os.environ.get("OPENBLAS_NUM_THREADS", "nan"))])
"""


@pytest.fixture(scope="module")
def probe():
    """A sandboxed evaluator that ran :data:`PROBE`, and a way to call its functions."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(PROBE)])
    evaluator = engine.Evaluator(nbformat.writes(notebook).encode(), engine.JudgeConfig(), "probe")
    reply, _ = evaluator.request({"op": "run", "source": PROBE, "index": 0}, timeout=10)
    assert reply["status"] == "ok", reply

    def call(name: str) -> np.ndarray:
        request = {"op": "call", "name": name, "args": [{"kind": "array", "index": 0}]}
        reply, arrays = evaluator.request(request, [np.zeros(1)], timeout=10)
        assert reply["status"] == "ok", reply
        return arrays[0]

    yield call
    evaluator.kill()


def test_the_templates_objects_are_frozen(probe):
    """Are the objects the template loaded (numpy, IPython, the evaluator) out of reach of the
    evaluator's garbage collections, which would otherwise write to, and copy, their pages?"""
    assert probe("frozen")[0] > 10_000


def test_the_warm_up_leaves_no_source_text_behind(probe):
    """Does the template's warm-up (which reads its own file to compile inspect's patterns) leave
    no text of the kit's files in the cache student code can read?"""
    assert probe("kit_sources")[0] == 0


def test_the_exposed_folders_are_resolved_once(probe):
    """Did the evaluator bind the folders the template resolved (a hit in the template's cache,
    no resolving of its own), and are they the folders resolved afresh?"""
    hits, misses = probe("resolved")
    assert (hits, misses) == (1, 1)
    assert sandbox._exposed() == list(
        sandbox._exposed_for.__wrapped__(tuple(p for p in sys.path if p and "site-packages" in p))
    )


def test_evaluators_load_the_filter_the_template_compiled(probe):
    """Does the evaluator hold the seccomp program libseccomp compiles for the filter (compiled
    once by the template), and is it in force: locks and memfd refused with their errors?"""
    assert probe("program").tobytes() == sandbox.seccomp_program()
    assert list(probe("refused")) == [errno.ENOLCK, errno.EPERM]  # as sandbox.DENIED says


def test_evaluators_use_one_blas_thread_unless_the_ta_set_it(probe):
    """Does student code run with one BLAS thread by default, and does a thread count the TA set
    (any of them) pass on unchanged, with no default added?"""
    assert probe("threads")[0] == 1
    environment = engine._template_environment({"OMP_NUM_THREADS": "4", "HOME": "/root"})
    assert environment["OMP_NUM_THREADS"] == "4"
    assert not set(engine.THREAD_COUNTS) - {"OMP_NUM_THREADS"} & set(environment)
    assert "HOME" not in environment
    defaults = engine._template_environment({})
    assert all(defaults[name] == "1" for name in engine.THREAD_COUNTS)


def test_a_program_is_what_libseccomp_loads():
    """Is the program an evaluator loads the one libseccomp compiles from the filter each time
    (a whole number of BPF instructions, the same twice)?"""
    program = sandbox.seccomp_program()
    assert program and len(program) % 8 == 0
    assert program == sandbox.seccomp_program()
