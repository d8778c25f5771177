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

def planned(_):
    cache = sandbox._plan_for.cache_info()
    return np.array([cache.hits, cache.misses])

def drawn(_):
    import random
    return np.array([random.random()])

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


def test_the_private_root_is_planned_once(probe):
    """Did the evaluator make the private root the template planned (a hit in the template's
    cache), and does the plan bind each exposed path and device at its own place, read-only
    but for the devices, each folder made after its parent?"""
    hits, misses = probe("planned")
    assert (hits, misses) == (1, 1)
    plan = sandbox._root_plan()
    devices = [f"/dev/{device}" for device in sandbox._DEVICES]
    assert [source for source, _, _ in plan.binds] == sandbox._exposed() + devices
    assert all(target == source.lstrip("/") for source, target, _ in plan.binds)
    assert all(
        bool(flags & sandbox.MS_RDONLY) == (source not in devices)
        for source, _, flags in plan.binds
    )
    for index, folder in enumerate(plan.folders):
        parent = folder.rpartition("/")[0]
        assert not parent or parent in plan.folders[:index]


def test_each_evaluator_draws_its_own_random_numbers():
    """Does each evaluator's ``random`` start from a state of its own (its sandboxed process is
    forked without the interpreter's reseeding, so it keeps the state its parent got)?"""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(PROBE)])
    draws = []
    for _ in range(2):
        evaluator = engine.Evaluator(
            nbformat.writes(notebook).encode(), engine.JudgeConfig(), "probe"
        )
        try:
            reply, _ = evaluator.request({"op": "run", "source": PROBE, "index": 0}, timeout=10)
            assert reply["status"] == "ok", reply
            request = {"op": "call", "name": "drawn", "args": [{"kind": "array", "index": 0}]}
            reply, arrays = evaluator.request(request, [np.zeros(1)], timeout=10)
            assert reply["status"] == "ok", reply
            draws.append(float(arrays[0][0]))
        finally:
            evaluator.kill()
    assert draws[0] != draws[1]


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
