"""Red team: attacks on grading, through the default ``grade`` pipeline (the judge engine).

The attacks run on the tiny fixture pack (``tests/fixtures/assignments/tiny``): they are about the
machinery (the judge, its evaluator, the files it writes), not a sheet's mathematics, so function
names, question ids, points and gradebook columns all come from the pack. No Exercise 2 subset is
kept: nothing an attack can reach is Exercise 2's own. The evaluator loads only the pack's givens
(never its spec, so its custom judges and tolerances are out of reach), and an answer crosses the
pipe as plain numbers, so a custom judge such as Exercise 2's residual sees what ``compare`` sees.

Every attack is combined with the same wrong answers (``WRONG``: each question's correct answer
negated, wrong by value on every part) and graded in ONE batch beside a ``control`` notebook
holding only those wrong answers and an ``honest`` notebook with correct ones. An attack must
score no more than the control, on every question, and must not disturb anyone else's row.
Attacks whose only effect would be a read (other students' notebooks, the kit's source) answer
correctly *only if the forbidden read succeeded*, so a score above the control proves the leak;
when nothing leaks, the last question's function raises with a report of what the attack saw,
which ends up in that question's feedback (handy when a test fails).

Dangerous operations (``kill(1)``, killing the judge, writing to ``/``) are guarded in the attack
code by ``os.getuid() != 0``: inside the judge's sandbox the student's code runs as nobody, so the
attacks run in full; were the sandbox missing (student code running as root on the host), they are
skipped rather than taking the machine down, and ``test_evaluators_are_isolated`` fails instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import time
import uuid
import zipfile
from pathlib import Path

import nbformat
import pandas as pd
import pytest

import autograder
from autograder import samples
from autograder.grading import grade
from helpers import TINY, TINY_SAMPLES, write_notebooks
from pack_support import (
    answer,
    correct_source,
    first,
    forged_fields,
    last,
    leak_epilogue,
    report_epilogue,
    wrong_answers,
)

PACK = TINY
CORRECT = TINY_SAMPLES.correct
BY_NAME, QUESTION_NAMES = PACK.by_id, PACK.question_ids
FULL = PACK.autograded_points
"""What a correct notebook scores (manual derivation points are not marked by ``grade``)."""
FIRST, LAST = first(PACK).id, last(PACK).id
"""Where the reports go: the patching attacks give up the first question (the comparisons they
would fool show on the others), every other reporting attack the last one."""
FIRST_FUNCTION = first(PACK).functions[0].name
"""The function the killer calls and a forged probe names; its ``def`` marks a notebook."""
FUNCTIONS = [t.name for q in PACK.questions for t in q.functions]
NOTEBOOK = f"{PACK.name}.ipynb"
"""The notebook's name in the evaluator's working folder (and in a zip)."""

TIMEOUT = 60.0
"""Seconds per submission given to ``grade``."""
DAEMON_SLEEP = 3.0
"""Seconds the double-forked daemon sleeps before it starts tampering."""


WRONG: dict[str, str] = wrong_answers(PACK)
"""One wrong answer per question, of the right shape but wrong by value on every part: what every
attack notebook answers without its attack."""


def fill(template: nbformat.NotebookNode, answers: dict[str, str]) -> nbformat.NotebookNode:
    return samples.fill(template, answers, pack=PACK)


def _report_in(question: str) -> str:
    return answer(PACK, question, 'raise RuntimeError("attack report: " + " | ".join(REPORT))')


CORRECT_SOURCE = correct_source(PACK)
"""All correct answers in one cell: executed by a read attack only if its read succeeded."""

# --- attack code, run as notebook cells ----------------------------------------------------------

PRELUDE = """
import os, sys, time
import numpy as np
REPORT = []
def _try(label, action):
    try:
        value = action()
    except BaseException as exc:
        REPORT.append(f"{label}: {type(exc).__name__}: {str(exc)[:80]}")
        return False
    REPORT.append(f"{label}: ok ({str(value)[:40]!r})")
    return bool(value)
"""
"""Defines ``_try(label, action)``: run one attempt, note what happened, never raise."""

REPORT_EPILOGUE = report_epilogue(PACK)
"""The report in the last question (for attacks whose answer to it does not matter)."""

LEAK_EPILOGUE = leak_epilogue(PACK)
"""A read attack's last cell: correct answers if the read succeeded, else the report."""

REPORT_IN_FIRST = _report_in(FIRST)
"""The report in the first question, which the attack gives up: the wrong answers of the other
questions stay, so a patched comparison would show on them."""

NUMPY_PATCH = """
import numpy as np
import numpy.testing
always = lambda *args, **kwargs: True
for owner, name, fake in [
    (np, "allclose", always),
    (np, "isclose", lambda a, b, *args, **kwargs: np.ones(np.broadcast(a, b).shape, bool)),
    (np, "array_equal", always),
    (np, "array_equiv", always),
    (np.testing, "assert_allclose", lambda *args, **kwargs: None),
    (np.testing, "assert_array_almost_equal", lambda *args, **kwargs: None),
    (np.linalg, "norm", lambda *args, **kwargs: 0.0),
    (np, "abs", lambda x, *args, **kwargs: np.zeros(np.shape(x))),
    (np, "absolute", lambda x, *args, **kwargs: np.zeros(np.shape(x))),
    (np, "max", lambda *args, **kwargs: 0.0),
    (np, "all", always),
]:
    _try(f"patch {owner.__name__}.{name}", lambda: setattr(owner, name, fake) or True)
def _patch_core():
    import numpy.core.numeric as numeric
    numeric.isclose, numeric.allclose = np.isclose, always
    return True
_try("patch numpy.core.numeric", _patch_core)
"""

BUILTINS_PATCH_QUIET = """
import builtins
builtins.abs = lambda x: 0 * x
builtins.any = lambda *args: True
builtins.round = lambda *args, **kwargs: 0.0
builtins.sum = lambda *args, **kwargs: 0.0
"""
"""Builtins the evaluator's own code does not need: the evaluator keeps working with them."""

BUILTINS_PATCH_LOUD = """
import builtins
builtins.isinstance = lambda obj, kind: True
builtins.len = lambda obj: 0
builtins.max = lambda *args, **kwargs: 0.0
builtins.min = lambda *args, **kwargs: 0.0
builtins.all = lambda *args: True
builtins.float = lambda *args: 0.0
"""
"""Builtins the evaluator's own code needs too (np.save needs max, np.load min): this cell breaks
its own reply, so the judge skips it."""

OTTER_PATCH = """
import sys, types
def _patch_real_otter():
    sys.modules.pop("otter", None)  # the sandbox's stub; import the real package underneath
    import otter.test_files.exception_test as m
    m.test_case.call_func = lambda self, env: None
    import otter.test_files.abstract_test as a
    a.TestFile.grade = property(lambda self: 1.0)
    a.TestCaseResult.__init__.__defaults__
    import otter.test_files as tf
    tf.GradingResults.total = property(lambda self: {total!r})
    tf.GradingResults.possible = property(lambda self: {total!r})
    return True
_try("patch real otter", _patch_real_otter)

class _AlwaysPasses:
    passed = True
    grade = 1.0
    score = 1.0
    def __getattr__(self, name):
        return lambda *args, **kwargs: self
fake = types.ModuleType("otter")
fake.__path__ = []
fake.Notebook = lambda *args, **kwargs: _AlwaysPasses()
fake_tests = types.ModuleType("otter.test_files")
fake_tests.__path__ = []
fake_tests.GradingResults = _AlwaysPasses
fake.test_files = fake_tests
sys.modules["otter"] = fake
sys.modules["otter.test_files"] = fake_tests
grader = fake.Notebook({notebook!r})
"""

KIT_PATCH = """
import sys
def _patch_runner():
    import autograder.checks.runner as r
    passed = lambda question, case, *functions, pack=None, key=None, call_limit=-1.0: (
        r.CaseResult(question, case, True, (), "passed"))
    r.run_case = passed
    r.assert_case = lambda *args, **kwargs: None
    r.check_form = lambda question, *functions, pack=None: r.CaseResult(
        question, "form", True, (), "ok")
    def _ok(target, fn, instance, *, limit, parts=None):
        return Outcome(True)  # resolved in the runner's globals once it is their code
    r.call_and_check.__code__ = _ok.__code__
    r._first_failure.__code__ = (
        lambda target, fn, instances, limit, parts=None: None).__code__
    r.judge_answer.__code__ = (
        lambda target, answer, instance, label, *, parts=None: Outcome(True)).__code__
    return True

def _patch_compare():
    c = sys.modules["autograder.checks.compare"]  # the package's `compare` is the function
    def _ok(got, expected, *, tol, label, shape_hint="", alternatives=None):
        return PASS  # resolved in compare's globals
    c.compare.__code__ = _ok.__code__
    c.Tolerance.bound = lambda self, expected: float("inf")
    c.to_array.__code__ = (lambda got, *, label: (got, None)).__code__
    return True

def _patch_spec():
    # the pack's spec, were it loaded: every tolerance, custom judge, constant and case point
    spec = sys.modules["autograder.pack.spec"]
    pack = next(m for n, m in list(sys.modules.items())
                if n.startswith("_autograder_pack_") and n.endswith(".spec"))
    object.__setattr__(spec.DEFAULT_TOLERANCE, "rtol", 1e300)
    for name in dir(pack):
        if name.startswith("judge_"):
            getattr(pack, name).__code__ = (
                lambda answer, instance, label: spec.Outcome(True)).__code__
        elif name.endswith("_RTOL"):
            setattr(pack, name, 1e300)
    for question in pack.PACK.questions:
        for case in question.cases:
            object.__setattr__(case, "points", 100.0)
        for target in question.functions:
            object.__setattr__(target, "tolerance", spec.Tolerance(rtol=1e300))
            object.__setattr__(target, "misconceptions", ())
            if target.judge is not None:
                object.__setattr__(target, "judge", lambda *args: spec.Outcome(True))
    return True

def _patch_derive():
    d = sys.modules["autograder.pack.derive"]  # the oracle: the reference is the answer given
    d.reference.__code__ = (lambda target, inputs: None).__code__
    d.alternatives.__code__ = (lambda target, inputs, expected: {}).__code__
    return True

def _patch_results_and_engine():
    import autograder.results as res  # not loaded in the sandbox, nor importable: both fail
    res.question_entry.__code__ = (
        lambda question, outcomes: {"score": 3.0, "possible": 3.0, "tags": [], "feedback": ""}
    ).__code__
    import autograder.judge.engine as e
    e.grade_submission = lambda submission, *, config=None: {"total": 12.0}
    return True

for label, action in [("runner", _patch_runner), ("compare", _patch_compare),
                      ("spec", _patch_spec), ("derive", _patch_derive),
                      ("results/engine", _patch_results_and_engine)]:
    _try(label, action)
"""

STACK_WALK = """
import gc, inspect, sys
import numpy as np

def _arrays_in(value, depth=0):
    # the arrays in a value: itself, its items, its `expected` attribute (a tuple for several parts)
    if isinstance(value, np.ndarray):
        return [value]
    if depth > 2:
        return []
    if isinstance(value, (list, tuple)):
        items = list(value)
    elif isinstance(value, dict):
        items = list(value.values())
    else:
        try:
            items = [getattr(value, "expected", None)]
        except BaseException:
            items = []
    return [array for item in items for array in _arrays_in(item, depth + 1)]

def _stolen(args, shapes):
    inputs = [a for a in args if isinstance(a, np.ndarray)]
    def is_input(value):
        return any(value.shape == a.shape and np.array_equal(value, a) for a in inputs)
    frames, frame = [], sys._getframe(2)
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back
    try:
        frames += [info.frame for info in inspect.stack()]
    except BaseException:
        pass
    found = []
    for frame in frames:
        for key, value in list(frame.f_locals.items()):
            for v in _arrays_in(value):
                if key in ("expected", "reference", "desired") or not is_input(v):
                    found.append(v)
    for obj in gc.get_objects():
        try:
            if "expected" in getattr(type(obj), "__dataclass_fields__", {{}}):
                found += _arrays_in(obj.expected)
        except BaseException:
            pass
    parts = []
    for shape in shapes:
        match = next((c for c in found if np.shape(c) == shape), None)
        if match is None:
            return None
        parts.append(np.array(match, dtype=float))
    return parts

def _shapes(value):
    return [np.shape(v) for v in value] if isinstance(value, tuple) else [np.shape(value)]

def steal(wrong):
    def answer(*args):
        several = isinstance(wrong(*args), tuple)
        stolen = _stolen(args, _shapes(wrong(*args)))
        if stolen is None:
            return wrong(*args)
        return tuple(stolen) if several else stolen[0]
    return answer

for _name in {functions!r}:
    globals()[_name] = steal(globals()[_name])
"""

LIARS = """
import numpy as np

class LiesEverywhere(np.ndarray):
    # equal to anything, zero distance from anything, every ufunc "all good"
    def __eq__(self, other):
        return np.ones(np.shape(other) or self.shape, bool)
    def __ne__(self, other):
        return np.zeros(np.shape(other) or self.shape, bool)
    def __sub__(self, other):
        return np.zeros(self.shape)
    __rsub__ = __sub__
    def __abs__(self):
        return np.zeros(self.shape)
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return np.zeros(self.shape) if ufunc is not np.isfinite else np.ones(self.shape, bool)
    def __array_function__(self, func, types, args, kwargs):
        return True if func in (np.allclose, np.array_equal) else np.zeros(self.shape)
    __array_priority__ = 1e9

class ZerosOfTheRightShape:
    def __init__(self, shape):
        self.shape = shape
        self.ndim = len(shape)
        self.dtype = np.dtype(float)
    def __array__(self, dtype=None, copy=None):
        return np.zeros(self.shape)
    def __eq__(self, other):
        return True
    def __len__(self):
        return self.shape[0]

class TruthyFloat(float):
    def __eq__(self, other):
        return True
    def __sub__(self, other):
        return 0.0
    def __abs__(self):
        return 0.0
    __hash__ = float.__hash__

def liar(wrong, kind):
    def lie(value):
        value = np.asarray(value, dtype=float)
        if kind == "subclass":
            return value.view(LiesEverywhere)
        if kind == "zeros":
            return ZerosOfTheRightShape(value.shape)
        if kind == "objects":
            return np.array([TruthyFloat(v) for v in value.ravel()], dtype=object).reshape(
                value.shape)
        if kind == "matrix":
            return np.asmatrix(value).view(LiesEverywhere)
        return value
    def answer(*args):
        out = wrong(*args)
        return tuple(lie(v) for v in out) if isinstance(out, tuple) else lie(out)
    return answer

for _name in {functions!r}:
    globals()[_name] = liar(globals()[_name], {kind!r})
"""
LIAR_KINDS = ("subclass", "zeros", "objects", "matrix")
"""Every function (every part of a tuple) answers with this kind of liar, one notebook a kind."""

FAKE_RESULTS = """
import json, os
OUT = {out!r}
CANARY = {canary!r}
HOST_TMP = {host_tmp!r}
FAKE_CSV = {header!r} + "".join(s + "," + {row!r} for s in {students!r})
FAKE_JSON = json.dumps({{"student": "fake_results", "status": "graded", "total": {total!r},
                        "possible": {total!r}, "questions": {{}}}})
def _write(path, text):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path
targets = [
    "results.json", "gradebook.csv", "results/fake_results.json", "grades.json",
    "../results.json", "../gradebook.csv",
    os.path.join(OUT, "gradebook.csv"), os.path.join(OUT, "results.json"),
    os.path.join(OUT, "results", "fake_results.json"), os.path.join(OUT, "results", "honest.json"),
    os.path.join(CANARY, "fake_results_was_here"), HOST_TMP,
]
if os.getuid() != 0:  # as root outside a sandbox, "../.." could be the host's /
    targets += ["../../results.json", "../../gradebook.csv"]
for path in targets:
    _try("write " + path, lambda path=path: _write(path, FAKE_JSON if path.endswith("json")
                                                   else FAKE_CSV))
"""

COPY_OTHERS = """
SUBS = {subs!r}
OWN = os.path.abspath({notebook!r})
def _someone_elses(path):
    if os.path.abspath(path) == OWN:
        return False
    with open(path, errors="replace") as f:
        return {marker!r} in f.read()
def _walk(top, budget):
    deadline = time.monotonic() + budget
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if d not in ("proc", "sys")]
        for name in files:
            if name.endswith(".ipynb"):
                try:
                    if _someone_elses(os.path.join(folder, name)):
                        return os.path.join(folder, name)
                except OSError:
                    pass
        if time.monotonic() > deadline:
            return False
    return False
attempts = [
    ("read SUBS/honest.ipynb", lambda: _someone_elses(os.path.join(SUBS, "honest.ipynb"))),
    ("list SUBS", lambda: [n for n in os.listdir(SUBS) if n != "copy_others.ipynb"]),
    ("list ..", lambda: [n for n in os.listdir("..") if n.endswith(".ipynb")]),
    ("walk ..", lambda: _walk("..", 2.0)),
    ("walk /", lambda: _walk("/", 4.0)),
]
LEAKED = any([_try(label, action) for label, action in attempts])
"""

READ_HIDDEN = """
import glob
import sys
KIT_FILE = {kit_file!r}
REPO = {repo!r}
ZIP = {zip!r}
MASTER = {master!r}
def _read(path, needle):
    with open(path, "rb") as f:
        return needle in f.read()
SOLUTION = {solution!r}
def _kit_source():
    import inspect
    return "def " in inspect.getsource(sys.modules["autograder.givens"])
attempts = [
    ("open the pack's spec.py", lambda: _read(KIT_FILE, b"Question(")),
    ("open the reference solution", lambda: _read(SOLUTION, b"def ")),
    # the sandbox exposes the Python installation read-only at its real path, which may lie in
    # the repository (.venv): anything else listed there would be a leak
    ("list repo", lambda: [n for n in os.listdir(REPO)
                           if not sys.prefix.startswith(os.path.join(REPO, n))]),
    ("open built zip", lambda: _read(ZIP, b"PK")),
    ("zip members", lambda: __import__("zipfile").ZipFile(ZIP).namelist()),
    ("open master notebook", lambda: _read(MASTER, b"BEGIN")),
    ("otter tests in cwd", lambda: glob.glob("tests/*.py") + glob.glob("../tests/*.py")),
    ("inspect.getsource of the kit", _kit_source),
]
LEAKED = any([_try(label, action) for label, action in attempts])
"""

ALLOWED_READ = """
LEAKED = _try("read own notebook", lambda: {marker!r} in open({notebook!r}).read())
"""

KILLER = """
import os, signal
JUDGE_PID = {judge_pid!r}
def _kill_everything():
    _try("kill getppid", lambda: os.kill(os.getppid(), signal.SIGKILL))
    _try("killpg 0", lambda: os.killpg(0, signal.SIGKILL))
    _try("killpg own group", lambda: os.killpg(os.getpgrp(), signal.SIGKILL))
    if os.getuid() != 0:  # as root outside a sandbox this would be the host's init
        _try("kill 1", lambda: os.kill(1, signal.SIGKILL))
        _try("kill judge pid", lambda: os.kill(JUDGE_PID, signal.SIGKILL))
        _try("sigterm judge pid", lambda: os.kill(JUDGE_PID, signal.SIGTERM))
_kill_everything()
"""

KILLER_IN_FUNCTION = """
_wrong_{function} = {function}
def {function}(*args):
    _kill_everything()
    return _wrong_{function}(*args)
"""

DAEMON = """
import json, os, time
OUT = {out!r}
CANARY = {canary!r}
STUDENTS = {students!r}
def _tamper():
    csv = {header!r} + "".join(s + "," + {row!r} for s in STUDENTS)
    full = json.dumps({{"student": "daemon", "status": "graded", "total": {total!r}}})
    for path, text in [(os.path.join(CANARY, "daemon_was_here"), "x"),
                       (os.path.join(OUT, "pwned_by_daemon"), "x"),
                       (os.path.join(OUT, "gradebook.csv"), csv),
                       (os.path.join(OUT, "results", "daemon.json"), full),
                       (os.path.join(OUT, "results", "honest.json"), full)]:
        try:
            with open(path, "w") as f:
                f.write(text)
        except BaseException:
            pass
pid = os.fork()
if pid == 0:
    try:
        os.setsid()
        if os.fork() == 0:
            try:
                time.sleep({sleep!r})
                for _ in range(120):
                    _tamper()
                    time.sleep(0.5)
            finally:
                os._exit(0)
    finally:
        os._exit(0)
os.waitpid(pid, 0)
REPORT.append("daemon started")
"""

JUDGE_SECRETS = """
import gc, multiprocessing, sys
keys = [multiprocessing.current_process().authkey.hex()]
frame = sys._getframe()
while frame is not None:  # the stack down to the forkserver: preparation data, process objects
    for value in list(frame.f_locals.values()):
        if isinstance(value, dict) and isinstance(value.get("authkey"), bytes):
            keys.append(bytes(value["authkey"]).hex())
    frame = frame.f_back
for holder in gc.get_objects():
    if isinstance(holder, dict) and isinstance(holder.get("authkey"), bytes):
        keys.append(bytes(holder["authkey"]).hex())
REPORT.append("environment=" + ",".join(sorted(os.environ)) + " ")
REPORT.append("argv=" + repr(list(sys.argv) + list(getattr(sys, "orig_argv", []))))
REPORT.append("keys=" + ",".join(keys) + " ")
"""
"""Collects what the evaluator inherited from the judge: environment, command lines, authkeys."""

FORGE = """
import json, struct, sys
def _send(conn, header, payload=None):
    head = payload if payload is not None else json.dumps({{**header, "_blobs": []}}).encode()
    conn.send_bytes(struct.pack(">I", len(head)) + head)
frame = sys._getframe(0)
while frame is not None and "conn" not in frame.f_locals:
    frame = frame.f_back
conn, seq = frame.f_locals["conn"], frame.f_locals["request"]["seq"]
{forgery}
"""
"""Student code that finds the evaluator's end of the pipe and writes its own messages."""

FORGERIES = {
    # combined with CORRECT answers: a forging cell should cost at most its own notebook's points
    # a reply whose JSON header nests deeper than the judge's decoder can recurse
    "nested_header": '_send(conn, None, b"[" * 100_000 + b"]" * 100_000)',
    # an "ok" for this cell, then a reply to the judge's next request (a probe) that is no list
    "bad_probe_reply": (
        '_send(conn, {"seq": seq, "status": "ok"})\n'
        '_send(conn, {"seq": seq + 1, "status": "ok", "probe": {"' + FIRST_FUNCTION + '": "ok"}})'
    ),
}


class OtterLogPayload:
    """Pickled into a zip's ``.OTTER_LOG``: creates ``marker`` if anyone ever unpickles it."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


# --- the batch ------------------------------------------------------------------------------------


def _with_cells(template, answers: dict[str, str], *cells: str) -> nbformat.NotebookNode:
    nb = fill(template, answers)
    nb.cells.extend(nbformat.v4.new_code_cell(c) for c in cells)
    return nb


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def redteam(tiny_built, tiny_template, tmp_path_factory) -> dict:
    """Every attack, the control and an honest notebook, graded in one batch by the judge."""
    built, template = tiny_built, tiny_template
    root = tmp_path_factory.mktemp("redteam")
    subs, out, canary = root / "submissions", root / "out", root / "canary"
    canary.mkdir()
    token = uuid.uuid4().hex
    host_tmp = Path(f"/tmp/mp-redteam-{token}-results.json")
    paths = {
        "subs": str(subs),
        "out": str(out),
        "canary": str(canary),
        "host_tmp": str(host_tmp),
        "kit_file": str(PACK.folder / "spec.py"),
        "solution": str(samples.solutions_dir(PACK) / "reference.py"),
        "repo": str(Path(autograder.__file__).resolve().parents[1]),
        "zip": str(built.autograder_zip),
        "master": str(built.out / "autograder" / NOTEBOOK),
        "judge_pid": os.getpid(),
        "sleep": DAEMON_SLEEP,
        "function": FIRST_FUNCTION,
        "functions": FUNCTIONS,
        **forged_fields(PACK),
    }
    prelude = PRELUDE + f"\nCORRECT_SOURCE = {CORRECT_SOURCE!r}\n"
    notebooks = {
        "honest": fill(template, CORRECT),
        "control": fill(template, WRONG),
        "numpy_patch": _with_cells(template, WRONG, prelude, NUMPY_PATCH, REPORT_IN_FIRST),
        "builtins_patch": _with_cells(template, WRONG, BUILTINS_PATCH_QUIET, BUILTINS_PATCH_LOUD),
        "otter_patch": _with_cells(
            template, WRONG, prelude, OTTER_PATCH.format(**paths), REPORT_IN_FIRST
        ),
        "kit_patch": _with_cells(template, WRONG, prelude, KIT_PATCH, REPORT_IN_FIRST),
        "stack_walk": _with_cells(template, WRONG, STACK_WALK.format(**paths)),
        **{
            f"liars_{kind}": _with_cells(template, WRONG, LIARS.format(kind=kind, **paths))
            for kind in LIAR_KINDS
        },
        "copy_others": _with_cells(
            template, WRONG, prelude, COPY_OTHERS.format(**paths), LEAK_EPILOGUE
        ),
        "read_hidden": _with_cells(
            template, WRONG, prelude, READ_HIDDEN.format(**paths), LEAK_EPILOGUE
        ),
        "killer": _with_cells(
            template,
            WRONG,
            prelude,
            KILLER.format(**paths),
            KILLER_IN_FUNCTION.format(**paths),
            REPORT_EPILOGUE,
        ),
        # a "read attack" whose read is allowed: proves a successful read would show in the score
        "leak_detector": _with_cells(
            template, WRONG, prelude, ALLOWED_READ.format(**paths), LEAK_EPILOGUE
        ),
        "judge_secrets": _with_cells(template, WRONG, prelude, JUDGE_SECRETS, REPORT_EPILOGUE),
    }
    students = sorted([*notebooks, "fake_results", "daemon", "otter_log", *FORGERIES])
    paths["students"] = students
    notebooks["fake_results"] = _with_cells(
        template, WRONG, prelude, FAKE_RESULTS.format(**paths), REPORT_EPILOGUE
    )
    notebooks["daemon"] = _with_cells(
        template, WRONG, prelude, DAEMON.format(**paths), REPORT_EPILOGUE
    )
    # forgeries are combined with CORRECT answers: the cell that forges should cost only itself
    for name, forgery in FORGERIES.items():
        notebooks[name] = _with_cells(template, CORRECT, FORGE.format(forgery=forgery))
    write_notebooks(subs, notebooks)
    otter_marker = canary / "otter_log_was_unpickled"
    with zipfile.ZipFile(subs / "otter_log.zip", "w") as zf:
        zf.writestr(
            f"otter_log/{NOTEBOOK}",
            nbformat.writes(fill(template, {**WRONG, FIRST: CORRECT[FIRST]})),
        )
        zf.writestr("otter_log/.OTTER_LOG", pickle.dumps(OtterLogPayload(otter_marker)))
        zf.writestr(".OTTER_LOG", pickle.dumps(OtterLogPayload(otter_marker)))

    strays = [host_tmp, Path("/tmp/results.json"), Path("/tmp/gradebook.csv")]
    existed = {p for p in strays if p.exists()}
    start = time.monotonic()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MATH_PRIMER_CALL_TIMEOUT", "2")
        run = grade(
            submissions=subs,
            out=out,
            build_dir=built.out,
            jobs=2,
            engine="judge",
            timeout=TIMEOUT,
            assignment=PACK,
        )
    seconds = time.monotonic() - start
    snapshot = _snapshot(out)
    results = {p.stem: json.loads(p.read_text()) for p in (out / "results").glob("*.json")}
    leftovers = [p for p in strays if p.exists() and p not in existed]
    for p in leftovers:
        p.unlink()  # leave the host clean; the tests below still see what was found
    return {
        "run": run,
        "seconds": seconds,
        "students": students,
        "results": results,
        "csv": pd.read_csv(out / "gradebook.csv"),
        "out": out,
        "canary": canary,
        "otter_marker": otter_marker,
        "snapshot": snapshot,
        "finished_at": time.monotonic(),
        "leftovers": leftovers,
        "notebooks": notebooks,
    }


ATTACKS = [
    "numpy_patch",
    "builtins_patch",
    "otter_patch",
    "kit_patch",
    "stack_walk",
    *(f"liars_{kind}" for kind in LIAR_KINDS),
    "fake_results",
    "copy_others",
    "read_hidden",
    "killer",
    "daemon",
    "otter_log",
    "judge_secrets",
]
"""Every attack combined with the wrong answers (otter_log: with one correct answer, see below)."""


def scores(result: dict) -> dict[str, float]:
    return {q: result["questions"][q]["score"] for q in QUESTION_NAMES}


def test_attack_cells_are_valid_python(redteam):
    """Is every attack cell valid Python, so that no attack is vacuous by a typo?"""
    for name, nb in redteam["notebooks"].items():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "code" and "grader." not in cell.source:
                compile(cell.source, f"{name}, cell {index}", "exec")


def test_evaluators_are_isolated(redteam):
    """Did the judge run every evaluator in its sandbox (no "isolation: none" note)?"""
    unisolated = [
        s
        for s, r in redteam["results"].items()
        if any("isolation" in n for n in r.get("notes", []))
    ]
    assert not unisolated, "evaluators ran without isolation; the red-team results are meaningless"


def test_a_successful_read_would_show(redteam):
    """Does a read attack whose read succeeds (its own notebook) score full marks, so that the
    read attacks' scores at the control's level really mean that their reads failed?"""
    result = redteam["results"]["leak_detector"]
    assert (result["status"], result["total"]) == ("graded", FULL), result


def test_otter_log_payload_is_live(tmp_path):
    """Would the `.OTTER_LOG` payload really create its marker if someone unpickled it?"""
    marker = tmp_path / "unpickled"
    pickle.loads(pickle.dumps(OtterLogPayload(marker))).close()
    assert marker.exists()


def test_every_submission_has_exactly_one_row(redteam):
    """Does every submission, attacker or not, appear exactly once in the gradebook and results?"""
    csv = redteam["csv"]
    assert list(csv["student"]) == redteam["students"]
    assert sorted(redteam["results"]) == redteam["students"]


def test_honest_submission_is_graded_normally(redteam):
    """Does the honest notebook graded beside the attackers still score full marks?"""
    result = redteam["results"]["honest"]
    assert (result["status"], result["total"]) == ("graded", FULL), result


def test_control_loses_points_on_every_question(redteam):
    """Do the wrong answers alone lose points on every question (so a gain would show)?"""
    result = redteam["results"]["control"]
    assert result["status"] == "graded"
    for question, score in scores(result).items():
        assert score < BY_NAME[question].points, (question, result["questions"][question])


@pytest.mark.parametrize("attack", ATTACKS)
def test_attack_gains_nothing(redteam, attack):
    """Does the attacked submission score no more than the same wrong answers without the
    attack, on every question, and still get a graded row?"""
    control = scores(redteam["results"]["control"])
    result = redteam["results"][attack]
    assert result["status"] == "graded", result
    if attack == "otter_log":  # its notebook has the first question right on purpose, see below
        control = {**control, FIRST: BY_NAME[FIRST].points}
    got = scores(result)
    gains = {q: (got[q], control[q]) for q in QUESTION_NAMES if got[q] > control[q]}
    assert not gains, (gains, [result["questions"][q]["feedback"] for q in QUESTION_NAMES])
    assert result["total"] <= sum(control.values())


REPORTS = {
    "copy_others": LAST,
    "read_hidden": LAST,
    "killer": LAST,
    "fake_results": LAST,
    "daemon": LAST,
    "judge_secrets": LAST,
    "numpy_patch": FIRST,
    "otter_patch": FIRST,
    "kit_patch": FIRST,
}
"""Where each reporting attack puts its report (the feedback of a question it gives up)."""


@pytest.mark.parametrize("attack,question", sorted(REPORTS.items()))
def test_attack_ran_and_reported(redteam, attack, question):
    """Did the attack code actually run in the evaluator (its report reached the feedback)?"""
    feedback = redteam["results"][attack]["questions"][question]["feedback"]
    assert "attack report:" in feedback, feedback


def test_gradebook_agrees_with_results(redteam):
    """Does every gradebook row hold exactly the scores of its results JSON (nothing rewritten)?"""
    csv = redteam["csv"].set_index("student")
    for student, result in redteam["results"].items():
        assert result["student"] == student
        row = csv.loc[student]
        assert row["status"] == result["status"]
        assert row["total"] == pytest.approx(result["total"])
        for question, score in scores(result).items():
            assert row[question] == pytest.approx(score), (student, question)


def test_fake_result_files_never_reach_the_output(redteam):
    """Does the output folder hold only what the grader wrote, with no fake results anywhere on
    the host (output folder, canary folder, /tmp, the repository)?"""
    out = redteam["out"]
    students = redteam["students"]
    expected = {
        "gradebook.csv",
        "report.html",
        "canvas.csv",
        "moodle.csv",
        "long.csv",
        "review.sqlite",  # the run's autograded results, for the review app
        "assignment.json",  # the run manifest, written last
        *(f"results/{s}.json" for s in students),
        *(f"feedback/{s}.{ext}" for s in students for ext in ("md", "html")),
    }
    written = {name for name in redteam["snapshot"] if not name.startswith(".cache/")}
    cached = set(redteam["snapshot"]) - written
    assert written == expected
    assert all(re.fullmatch(r"\.cache/[0-9a-f]+\.json", name) for name in cached), cached
    assert not list(redteam["canary"].iterdir())
    assert not redteam["leftovers"]
    repo = Path(autograder.__file__).resolve().parents[1]
    for name in ("results.json", "gradebook.csv", "grades.json"):
        assert not (repo / name).exists()
        assert not (out.parent / name).exists()


def test_daemon_cannot_tamper_after_grading(redteam):
    """Are the gradebook and results unchanged seconds after grading, when a double-forked daemon
    started by a submission would have woken up and rewritten them?"""
    wait = DAEMON_SLEEP + 2.0 - (time.monotonic() - redteam["finished_at"])
    time.sleep(max(wait, 0.0) + 1.0)
    assert _snapshot(redteam["out"]) == redteam["snapshot"]
    assert not (redteam["canary"] / "daemon_was_here").exists()


def test_otter_log_is_never_unpickled(redteam):
    """Is a pickled `.OTTER_LOG` in a zip never loaded, and the zip graded from its notebook?"""
    assert not redteam["otter_marker"].exists()
    result = redteam["results"]["otter_log"]
    assert result["status"] == "graded"
    got, control = scores(result), scores(redteam["results"]["control"])
    assert got[FIRST] == BY_NAME[FIRST].points  # the notebook's right answer
    others = [q for q in QUESTION_NAMES if q != FIRST]
    assert {q: got[q] for q in others} == {q: control[q] for q in others}


def _forged(redteam, forgery: str) -> dict:
    return redteam["results"][forgery]


def test_forged_unparsable_reply_costs_only_its_cell(redteam):
    """Does a cell that writes an unparsable message (a JSON header nested 100,000 deep) into the
    evaluator's pipe cost only itself, the notebook's correct answers still graded in full?"""
    result = _forged(redteam, "nested_header")
    assert (result["status"], result["total"]) == ("graded", FULL), result


def test_forged_reply_to_a_later_request_never_crashes_the_grader(redteam):
    """Does a reply forged ahead of the judge's next request (a probe answered with a dict) end as
    the judge's own verdict (graded, or `error` from the judge), never as a crash of the grader?"""
    result = _forged(redteam, "bad_probe_reply")
    assert result["status"] in ("graded", "error")
    assert "grader crashed" not in result["questions"][FIRST]["feedback"], result


EVALUATOR_ENVIRONMENT = {
    "PATH",
    "HOME",
    "TMPDIR",
    "MATH_PRIMER_STUDENT",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
}
"""All the environment a student's code may see (locale and thread counts passed on)."""


def test_evaluator_inherits_nothing_of_the_judge(redteam):
    """Does student code find none of the judge's environment, command line or multiprocessing
    authkey (not in os.environ, sys.argv, sys.orig_argv, the stack or any live object)?"""
    import multiprocessing
    import sys

    feedback = redteam["results"]["judge_secrets"]["questions"][LAST]["feedback"]
    environment = re.search(r"environment=(\S*)", feedback)
    assert environment, feedback
    assert set(environment.group(1).split(",")) <= EVALUATOR_ENVIRONMENT, feedback
    assert multiprocessing.current_process().authkey.hex() not in feedback
    assert re.search(r"keys=[0-9a-f]{64}", feedback), feedback  # the attack did find a key
    # the Python installation is exposed at its real path, which may lie in the repository
    # (CI's .venv): its path is no secret; anything else of the judge's folder would be
    outside_python = feedback.replace(sys.executable, "<python>")
    assert sys.argv[0] not in outside_python and os.getcwd() not in outside_python, feedback
