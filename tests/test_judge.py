"""The judge's own pieces: the numbers-only protocol and what the evaluator has in memory."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

from autograder.checks import instances as inst
from autograder.checks.oracle import fd_jacobian
from autograder.intake import Submission
from autograder.judge import protocol
from autograder.judge.engine import grade_submission
from autograder.judge.evaluator import givens_program, load_givens
from autograder.pack import Derivative, Pack, Question, load, typical
from autograder.pack.registry import givens_file

MP = load("math_primer")


def test_round_trip_keeps_arrays_and_header():
    """Does a message come back with the same header and the same arrays?"""
    arrays = [np.arange(6.0).reshape(2, 3), np.array([1, 2], dtype=np.int32)]
    header, got = protocol.decode(protocol.encode({"op": "call", "seq": 3}, arrays))
    assert header == {"op": "call", "seq": 3}
    assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(arrays, got))


def _message(header: bytes, *blobs: bytes) -> bytes:
    return struct.pack(">I", len(header)) + header + b"".join(blobs)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        _message(b"[" * 100_000 + b"]" * 100_000),
        _message(b'{"_blobs": [10]}', b"123"),
        _message(b'{"_blobs": "x"}'),
        _message(b"\xff\xfe"),
        struct.pack(">I", protocol.MAX_HEADER_BYTES + 1) + b"{}",
        _message(b'{"_blobs": [8], "_arrays": [["|O", [1]]]}', b"12345678"),
        _message(b'{"_blobs": [8], "_arrays": [["[(\'a\', \'<f8\')]", [1]]]}', b"12345678"),
        _message(b'{"_blobs": [8], "_arrays": [["<f8", [2]]]}', b"12345678"),
        _message(b'{"_blobs": [8], "_arrays": [["<f8", [-1]]]}', b"12345678"),
        _message(b'{"_blobs": [8], "_arrays": []}', b"12345678"),
    ],
    ids=[
        "empty",
        "deep-nesting",
        "short-blob",
        "bad-blobs",
        "not-utf8",
        "huge-header",
        "object-dtype",
        "structured-dtype",
        "shape-too-large",
        "negative-shape",
        "no-layout",
    ],
)
def test_malformed_messages_are_protocol_errors(data):
    """Is every malformed message a ProtocolError, never another exception?"""
    with pytest.raises(protocol.ProtocolError):
        protocol.decode(data)


def test_object_arrays_are_refused():
    """Is an .npy blob holding Python objects (a pickle) refused without being loaded?"""
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    blob = buffer.getvalue()
    header = b'{"_blobs": [%d]}' % len(blob)
    with pytest.raises(protocol.ProtocolError):
        protocol.decode(_message(header, blob))


@pytest.mark.parametrize(
    "value,kind",
    [
        (None, "none"),
        (..., "ellipsis"),
        ("text", "foreign"),
        ([1.0, 2.0], "array"),
        (len, "foreign"),
    ],
)
def test_answers_are_described_as_plain_data(value, kind):
    """Is every answer turned into a plain description (no object crosses to the judge)?"""
    arrays: list = []
    description = protocol.describe_value(value, arrays)
    assert description["kind"] == kind
    rebuilt = protocol.value_from(description, arrays)
    if kind == "array":
        assert type(rebuilt) is np.ndarray and rebuilt.tolist() == [1.0, 2.0]


def test_tuples_of_arrays_are_described_item_by_item():
    """Does a tuple of differently shaped arrays (e.g. (dX, dW, db)) cross as a tuple of plain
    arrays, and a nested one as a single foreign value?"""
    arrays: list = []
    value = (np.ones((2, 3)), np.zeros(3), [1.0, 2.0])
    rebuilt = protocol.value_from(protocol.describe_value(value, arrays), arrays)
    assert isinstance(rebuilt, tuple) and [a.shape for a in rebuilt] == [(2, 3), (3,), (2,)]
    nested: list = []
    description = protocol.describe_value(((np.ones(2), np.ones(3)), np.ones(1)), nested)
    assert description["kind"] == "foreign"


@pytest.mark.parametrize("name", ["sin", "tanh", "cube", "softplus"])
def test_given_derivatives_are_the_oracles(name):
    """Is the f' Exercise 2's registry hands to students the derivative of the f the oracle
    differentiates?"""
    spec = sys.modules[MP.question("q1c").functions[0].forward.__module__]
    x = np.linspace(-2, 2, 7)
    f = spec.NUMPY_F[name]
    assert np.allclose(np.diag(fd_jacobian(f, x)), MP.givens[name](x), atol=1e-8)


def test_evaluator_does_not_load_the_checks():
    """Does importing the evaluator and loading a pack's givens leave every checks module and the
    pack's spec out of memory?"""
    code = (
        "import sys, autograder.judge.evaluator as e; "
        f"g = e.load_givens({str(givens_file(MP))!r}); "
        "print(sorted(g), sorted(m for m in sys.modules if 'autograder' in m or 'pack' in m))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "autograder.judge.evaluator" in out.stdout
    assert "'cube', 'sin', 'softplus', 'tanh'" in out.stdout
    assert "autograder.checks" not in out.stdout and "autograder.pack" not in out.stdout
    assert "_autograder_pack_" not in out.stdout and ".spec" not in out.stdout


def test_the_givens_program_is_the_givens_file():
    """Does the givens program the judge compiles once give the evaluator the same names and
    functions as its pack's givens.py run by itself?"""
    path = str(givens_file(MP))
    sent = load_givens(path, givens_program(path))
    assert sent.keys() == load_givens(path).keys() == MP.givens.keys()
    x = np.linspace(-2, 2, 7)
    assert all(np.array_equal(sent[name](x), MP.givens[name](x)) for name in MP.givens)


def _unsendable_pack() -> Pack:
    """A pack whose instances hand student code a function it does not register as a given."""
    return Pack(
        name="unsendable",
        title="Unsendable",
        questions=(
            Question(
                id="q1",
                sheet="1",
                points=1,
                cases=(typical(1, (3,)),),
                functions=(
                    Derivative(
                        name="jac",
                        params=("f", "x"),
                        draw=lambda rng, size: {"x": inst.vector(rng, size)},
                        args=lambda x: (np.sin, x),
                        forward=lambda x: np.sin(x),
                        wrt="x",
                    ),
                ),
            ),
        ),
    )


def test_an_argument_the_judge_cannot_send_is_an_error_row_not_the_students_fault():
    """Is a function argument outside the pack's givens an `error` row (the grader's fault),
    never an `exception` charged to the student?"""
    import nbformat

    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("import numpy as np\ndef jac(f, x):\n    return 1")]
    )
    submission = Submission("ann", Path("ann.ipynb"), nb, None)
    result = grade_submission(submission, pack=_unsendable_pack())
    assert result["status"] == "error"
    entry = result["questions"]["q1"]
    assert entry["tags"] == [] and "exception" not in entry["tags"]
    assert "givens" in entry["feedback"] and "cannot send" in entry["feedback"]


def _cells_notebook(*sources: str):
    import nbformat

    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])


def test_cells_sent_ahead_still_run_in_order_each_with_its_own_time_limit():
    """Do cells sent ahead of the evaluator's answers run in order, a stuck one interrupted at
    its own limit while the next ones still run?"""
    from autograder.judge.engine import JudgeConfig, Session

    nb = _cells_notebook(
        "trace = [1]",
        "import time\nwhile True:\n    time.sleep(0.01)",
        "trace.append(3)",
        "def jac(x):\n    return [len(trace)]",
    )
    session = Session(nb, JudgeConfig(cell_timeout=1.0), "ann", _unsendable_pack())
    try:
        session.start()
        session.run_cells()
        assert session.finished == [0, 2, 3]
        assert session.notes == ["cell 2 was interrupted after 1 s"]
        assert session.function("jac")(np.ones(2)).tolist() == [2]
    finally:
        session.close()


def test_cells_reached_after_the_submission_deadline_are_not_run():
    """Is a cell already sent but reached after the submission's deadline skipped, as if it had
    never been sent, and the one running at the deadline interrupted?"""
    from autograder.judge.engine import JudgeConfig, Session

    nb = _cells_notebook(
        "trace = []",
        "import time\ntime.sleep(3)\ntrace.append(2)",
        "trace.append(3)",
        "def jac(x):\n    return [len(trace)]",
    )
    config = JudgeConfig(cell_timeout=10.0, submission_timeout=1.0)
    session = Session(nb, config, "ann", _unsendable_pack())
    try:
        session.start()
        # the second from now, not from before the evaluator started (which, on a loaded
        # machine, can take most of it: then even cell 1 was past the deadline)
        session.deadline = time.monotonic() + config.submission_timeout
        session.run_cells()
        assert session.finished == [0]
        assert session.notes == [
            "cell 2 was interrupted: submission time limit reached",
            "cells 3+ skipped: submission time limit reached",
        ]
        assert session.function("jac") is None  # the answer to the cell after is dropped
    finally:
        session.close()


def test_calls_sent_ahead_after_one_that_raised_are_not_made():
    """Are the calls of a case sent ahead skipped once one raises (as the runner, stopping at the
    first failure, would never have made them), while a call announced but not made is
    waited out and the next call gets its own answer?"""
    from autograder.judge.engine import JudgeConfig, Session, StudentError

    nb = _cells_notebook(
        "import numpy as np\ncalls = []",
        "def jac(x):\n    calls.append(x.size)\n    if x.size == 2:\n"
        "        raise ValueError('no')\n    return x * 0",
        "def count(x):\n    return list(calls)",
    )
    session = Session(nb, JudgeConfig(), "ann", _unsendable_pack())
    try:
        session.start()
        session.run_cells()
        jac, count = session.function("jac"), session.function("count")
        jac.call_ahead([(np.ones(3),), (np.ones(2),), (np.ones(4),), (np.ones(5),)])
        assert jac(np.ones(3)).tolist() == [0.0] * 3
        with pytest.raises(StudentError, match="no"):
            jac(np.ones(2))
        assert jac(np.ones(6)).tolist() == [0.0] * 6  # not announced: the rest is waited out
        assert count(np.ones(1)).tolist() == [3, 2, 6]
        jac.call_ahead([(np.ones(7),), (np.ones(8),)])
        assert jac(np.ones(7)).tolist() == [0.0] * 7  # a wrong answer would stop the case here
        assert count(np.ones(1)).tolist() == [3, 2, 6, 7, 8]  # the call after it was made
    finally:
        session.close()


GRADER_SCRIPT = """\
import os
with open(MARKER_PATH, "a") as marker:  # at import: runs wherever this module runs
    marker.write(f"{os.getpid()}\\n")
if __name__ == "__main__":
    from pathlib import Path
    import nbformat
    from autograder.intake import Submission
    from autograder.judge.engine import grade_submission
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    for student in ("ann", "bob"):
        submission = Submission(student, Path(f"{student}.ipynb"), notebook, None)
        print(grade_submission(submission, pack="math_primer")["status"])
"""


def test_evaluators_do_not_rerun_the_graders_script(tmp_path):
    """Does a grader run as a script (as `dask worker` is) keep its own code out of the evaluators
    (multiprocessing would re-run the main module in each one, before the sandbox)?"""
    script, marker = tmp_path / "grade_two.py", tmp_path / "imports.txt"
    script.write_text(GRADER_SCRIPT.replace("MARKER_PATH", repr(str(marker))))
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, str(script)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["graded", "graded"]
    assert len(marker.read_text().split()) == 1, "the script ran again in an evaluator"


def test_the_main_module_step_is_skipped_in_the_template_only():
    """Does the grader's own process keep multiprocessing's main-module step (its other processes,
    e.g. a Dask LocalCluster's workers, need it) while its evaluators skip it?"""
    import multiprocessing.spawn

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    result = grade_submission(Submission("ann", Path("ann.ipynb"), notebook, None), pack=MP)
    assert result["status"] == "graded"
    assert "autograder.judge.template" not in sys.modules
    assert multiprocessing.spawn._fixup_main_from_path.__module__ == "multiprocessing.spawn"


def _spare_takes(monkeypatch) -> list[str]:
    """The students whose submissions a spare evaluator took (recorded in this process)."""
    from autograder.judge.engine import Evaluator

    taken: list[str] = []
    take = Evaluator.take

    def recording(self, notebook_json, student, pack=None):
        take(self, notebook_json, student, pack)
        taken.append(student)

    monkeypatch.setattr(Evaluator, "take", recording)
    return taken


def test_a_lanes_next_evaluator_is_started_ahead_and_none_is_left(template, monkeypatch):
    """With spares kept, does each submission after the first get the evaluator started ahead
    (graded exactly as by a new one), and is the last, unused spare gone after the batch?"""
    from autograder.judge import engine
    from helpers import CORRECT, MISTAKES, MP, fill

    question, _tag, wrong = MISTAKES[0]
    notebooks = [fill(template, CORRECT), fill(template, {**CORRECT, question: wrong})]
    submissions = [
        Submission(f"s{i}", Path(f"s{i}.ipynb"), notebooks[i % 2], None) for i in range(3)
    ]
    fresh = [grade_submission(s, pack=MP) for s in submissions]
    taken = _spare_takes(monkeypatch)
    started: list = []
    spare = engine.Evaluator.spare.__func__
    monkeypatch.setattr(
        engine.Evaluator,
        "spare",
        classmethod(lambda cls, *a: started.append(spare(cls, *a)) or started[-1]),
    )
    engine.keep_spares()
    try:
        ahead = [grade_submission(s, pack=MP) for s in submissions]
    finally:
        engine.keep_spares(False)
        engine.finish_retired()
    assert ahead == fresh
    assert taken == ["s1", "s2"]
    assert len(started) == 3  # one per submission: the last one for nothing
    assert all(spare.process.exitcode is not None for spare in started)
    assert not engine._SPARES


def test_a_spare_is_started_by_a_thread_of_its_own_and_retired_if_the_batch_ends_first(
    template, monkeypatch
):
    """Is a lane's spare started by the launch thread, so that the lane judges meanwhile; and
    is a spare still starting when the batch ends waited for and retired, never left running?"""
    import threading
    import time

    from autograder.judge import engine
    from helpers import CORRECT, MP, fill

    started: list = []
    threads: list[str] = []
    spare = engine.Evaluator.spare.__func__

    def slow_spare(cls, *args):
        threads.append(threading.current_thread().name)
        time.sleep(0.5)  # still starting when the batch below ends
        started.append(spare(cls, *args))
        return started[-1]

    monkeypatch.setattr(engine.Evaluator, "spare", classmethod(slow_spare))
    submission = Submission("ann", Path("ann.ipynb"), fill(template, CORRECT), None)
    engine.keep_spares()
    try:
        result = grade_submission(submission, pack=MP)
    finally:
        engine.keep_spares(False)
        engine.finish_retired()
    assert result["total"] == result["possible"]
    assert len(threads) == 1 and threads[0].startswith("evaluator-launch")
    assert threads[0] != threading.current_thread().name
    assert len(started) == 1 and started[0].process.exitcode is not None
    assert not engine._SPARES


def test_a_notebook_over_the_file_limit_gets_an_evaluator_of_its_own(template, monkeypatch):
    """Is a notebook larger than a spare may write (the file-size limit inside the sandbox)
    graded by a new evaluator, which writes it before the limits apply, as before spares?"""
    from autograder.judge import engine
    from autograder.judge.sandbox import Limits
    from helpers import CORRECT, MP, fill

    notebook = fill(template, CORRECT)
    config = engine.JudgeConfig(limits=Limits(file_bytes=1000))
    submissions = [Submission(f"s{i}", Path(f"s{i}.ipynb"), notebook, None) for i in range(2)]
    taken = _spare_takes(monkeypatch)
    engine.keep_spares()
    try:
        results = [grade_submission(s, pack=MP, config=config) for s in submissions]
    finally:
        engine.keep_spares(False)
        engine.finish_retired()
    assert taken == []
    assert [r["total"] for r in results] == [r["possible"] for r in results]
    assert results[0]["total"] > 0


def test_the_process_outside_the_sandbox_holds_no_memory_of_the_templates(template):
    """Once PID 1 is forked, is the process the judge started (outside the namespaces) `sleep`,
    holding a few MB, while the judge signals PID 1 itself, its own child?"""
    from autograder.judge import engine
    from helpers import CORRECT, MP, fill

    notebook_json = Submission("ann", Path("ann.ipynb"), fill(template, CORRECT), None)
    evaluator = engine.Evaluator(
        notebook_json.notebook_json() or b"", engine.JudgeConfig(), "ann", MP
    )
    try:
        outside = evaluator.process.pid
        assert Path(f"/proc/{outside}/comm").read_text().strip() == "sleep"
        status = Path(f"/proc/{outside}/status").read_text()
        rss_kb = int(next(l for l in status.splitlines() if l.startswith("VmRSS:")).split()[1])
        assert rss_kb < 8 * 1024, status
        assert evaluator.runner != outside and engine._parent_of(evaluator.runner) == outside
    finally:
        evaluator.kill()
    assert evaluator.process.exitcode is not None


def test_a_killed_evaluators_pid_1_is_reaped_by_the_template(template):
    """Once the judge kills an evaluator, is its PID 1 (which the outside process never reaps)
    reaped by the evaluators' template, never left a zombie for the machine's init?"""
    from autograder.judge import engine
    from helpers import CORRECT, MP, fill

    data = Submission("ann", Path("ann.ipynb"), fill(template, CORRECT), None).notebook_json()
    evaluator = engine.Evaluator(data or b"", engine.JudgeConfig(), "ann", MP)
    runner = evaluator.runner
    assert runner is not None
    evaluator.kill()
    parents = set()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        parent = engine._parent_of(runner)
        if parent is None:
            break
        parents.add(parent)
        time.sleep(0.01)
    assert engine._parent_of(runner) is None, "PID 1 was not reaped"
    assert 1 not in parents, parents
