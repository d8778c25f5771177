"""Faults: notebooks that hang, exhaust memory, exit, crash or are not notebooks at all.

All faults are graded in ONE batch through the default ``grade`` pipeline (the judge engine), beside
a correct control notebook. Each fault is combined with correct answers, so what it costs is
visible: a fault at top level costs nothing (the cell is interrupted or skipped, as a TA running
the notebook would), a fault inside one function costs only that question, and an unreadable file
becomes one ``invalid`` row. Every submission yields exactly one row.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

import nbformat
import pandas as pd
import pytest

from autograder.grading import grade
from autograder.samples import answer_cell_index
from helpers import CORRECT, MP, fill, write_notebooks

BY_NAME, QUESTION_NAMES, TOTAL_POINTS = MP.by_id, MP.question_ids, MP.total_points

TIMEOUT = 60.0
"""Seconds per submission given to ``grade``."""
BIG = 40 * 1000 * 1000
"""Bytes of the 40 MB notebooks (intake's limit is 50 MiB: they must be graded)."""

LOOP = "while True:\n    pass\n"
LOOP_IGNORING_INTERRUPT = (
    "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass\n"
)
MEMORY_HOG_TOP = (
    "import numpy as np\nhog = []\nfor _ in range(40):  # 10 GB in 256 MB steps, every page touched\n"
    "    hog.append(np.ones(256 * 1024**2 // 8))\n"
)
OS_EXIT_TOP = "import os\nos._exit(3)\n"
SYS_EXIT_TOP = "import sys\nsys.exit()\n"
PRINT_100MB = (
    "import os, sys\n"
    "for _ in range(50):\n    print('x' * 1024**2)\n"
    "sys.stderr.write('e' * 25 * 1024**2)\n"
    "os.write(1, b'o' * 25 * 1024**2)\n"
)


def _with_top_cell(template, source: str) -> nbformat.NotebookNode:
    """Correct answers with ``source`` as a cell right after ``import numpy as np``."""
    nb = fill(template, CORRECT)
    nb.cells.insert(answer_cell_index(nb, "q1a", pack=MP) - 1, nbformat.v4.new_code_cell(source))
    return nb


def _with_answer(template, question: str, source: str) -> nbformat.NotebookNode:
    """Correct answers except ``question``."""
    return fill(template, {**CORRECT, question: source})


@dataclass(frozen=True)
class Expected:
    """What grading one faulty submission must give."""

    status: str
    total: float
    lost: str | None = None
    """The one question that loses its points, if any."""
    tag: str | None = None
    """The diagnosis tag on that question."""
    note: str | None = None
    """A word that one of the result's notes must contain."""


EXPECTED: dict[str, Expected] = {
    "correct": Expected("graded", TOTAL_POINTS),
    "loop_top": Expected("graded", TOTAL_POINTS, note="interrupted"),
    "loop_top_ignoring_interrupt": Expected("graded", TOTAL_POINTS, note="stopped the evaluator"),
    "loop_in_function": Expected("graded", TOTAL_POINTS - 3, "q3", "timeout"),
    "loop_in_function_swallowing_interrupt": Expected("graded", TOTAL_POINTS - 2, "q1d", "timeout"),
    "memory_hog_top": Expected("graded", TOTAL_POINTS),
    "memory_hog_in_function": Expected("graded", TOTAL_POINTS - 3, "q3", "exception"),
    "os_exit_top": Expected("graded", TOTAL_POINTS, note="stopped the evaluator"),
    "os_exit_in_function": Expected("graded", TOTAL_POINTS - 1, "q1a", "exception"),
    "sys_exit_top": Expected("graded", TOTAL_POINTS),
    "segfault_in_function": Expected("graded", TOTAL_POINTS - 2, "q1d", "exception"),
    "print_100mb_top": Expected("graded", TOTAL_POINTS),
    "evil_kernelspec": Expected("graded", TOTAL_POINTS),
    "big_source_40mb": Expected("graded", TOTAL_POINTS),
    "big_output_40mb": Expected("graded", TOTAL_POINTS),
    "invalid_json": Expected("invalid", 0.0),
    "empty_file": Expected("invalid", 0.0),
}
"""Every submission of the batch and what it must score."""


def _notebooks(template) -> dict[str, nbformat.NotebookNode]:
    evil = fill(template, CORRECT)
    evil.metadata["kernelspec"] = {"name": "evil", "language": "R", "display_name": "Evil R"}
    evil.metadata["language_info"] = {"name": "R"}
    big_source = _with_top_cell(template, f"blob = '{'a' * BIG}'\n")
    big_output = fill(template, CORRECT)
    q1a = big_output.cells[answer_cell_index(big_output, "q1a", pack=MP)]
    q1a.outputs = [nbformat.v4.new_output("stream", name="stdout", text="y" * BIG)]
    return {
        "correct": fill(template, CORRECT),
        "loop_top": _with_top_cell(template, LOOP),
        "loop_top_ignoring_interrupt": _with_top_cell(template, LOOP_IGNORING_INTERRUPT),
        "loop_in_function": _with_answer(
            template, "q3", "def mse_minimizer(X, y):\n    while True:\n        pass\n"
        ),
        "loop_in_function_swallowing_interrupt": _with_answer(
            template,
            "q1d",
            "def dL_dW(dL_dz, x):\n    while True:\n        try:\n            while True:\n"
            "                pass\n        except KeyboardInterrupt:\n            pass\n",
        ),
        "memory_hog_top": _with_top_cell(template, MEMORY_HOG_TOP),
        "memory_hog_in_function": _with_answer(
            template,
            "q3",
            "def mse_minimizer(X, y):\n    hog = np.ones(10 * 1024**3 // 8)  # 10 GB at once\n"
            "    return np.linalg.solve(X.T @ X, X.T @ y)\n",
        ),
        "os_exit_top": _with_top_cell(template, OS_EXIT_TOP),
        "os_exit_in_function": _with_answer(
            template, "q1a", "def jacobian_Wx(W, x):\n    import os\n    os._exit(3)\n"
        ),
        "sys_exit_top": _with_top_cell(template, SYS_EXIT_TOP),
        "segfault_in_function": _with_answer(
            template,
            "q1d",
            "def dL_dW(dL_dz, x):\n    import ctypes\n    return ctypes.string_at(0)\n",
        ),
        "print_100mb_top": _with_top_cell(template, PRINT_100MB),
        "evil_kernelspec": evil,
        "big_source_40mb": big_source,
        "big_output_40mb": big_output,
    }


@pytest.fixture(scope="module")
def faults(built, template, tmp_path_factory) -> dict:
    """Every fault and a correct control, graded in one batch by the judge."""
    root = tmp_path_factory.mktemp("faults")
    subs, out = root / "submissions", root / "out"
    notebooks = _notebooks(template)
    write_notebooks(subs, notebooks)
    (subs / "invalid_json.ipynb").write_text('{"cells": [ this is not json', encoding="utf-8")
    (subs / "empty_file.ipynb").write_bytes(b"")
    sizes = {p.stem: p.stat().st_size for p in subs.iterdir()}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MATH_PRIMER_CALL_TIMEOUT", "2")
        run = grade(
            submissions=subs,
            out=out,
            build_dir=built.out,
            jobs=2,
            engine="judge",
            timeout=TIMEOUT,
            assignment="math_primer",
        )
    results = {p.stem: json.loads(p.read_text()) for p in (out / "results").glob("*.json")}
    return {
        "run": run,
        "results": results,
        "csv": pd.read_csv(out / "gradebook.csv"),
        "sizes": sizes,
    }


def test_every_submission_gives_exactly_one_row(faults):
    """Does every submission, however broken, appear exactly once in the gradebook and results?"""
    assert list(faults["csv"]["student"]) == sorted(EXPECTED)
    assert sorted(faults["results"]) == sorted(EXPECTED)
    assert list(faults["run"].gradebook["student"]) == sorted(EXPECTED)


def test_correct_control_scores_full(faults):
    """Does the correct notebook graded beside all the faults still score 12/12?"""
    result = faults["results"]["correct"]
    assert (result["status"], result["total"]) == ("graded", TOTAL_POINTS), result


def test_big_notebooks_are_really_40mb(faults):
    """Are the big notebooks really about 40 MB on disk (and under intake's 50 MiB limit)?"""
    for name in ("big_source_40mb", "big_output_40mb"):
        assert BIG <= faults["sizes"][name] < 50 * 1024 * 1024


@pytest.mark.parametrize("student", sorted(set(EXPECTED) - {"correct"}))
def test_fault_costs_only_what_it_breaks(faults, student):
    """Does the fault give its expected status and total, with full points on every question it
    does not break, and the right tag on the one it does?"""
    expected = EXPECTED[student]
    result = faults["results"][student]
    feedback = {q: result["questions"][q]["feedback"][:300] for q in QUESTION_NAMES}
    assert (result["status"], result["total"]) == (expected.status, expected.total), (
        result.get("notes"),
        feedback,
    )
    if expected.status != "graded":
        return
    for question in QUESTION_NAMES:
        entry = result["questions"][question]
        if question == expected.lost:
            assert entry["score"] == 0, entry
            assert expected.tag in entry["tags"], entry
        else:
            assert entry["score"] == BY_NAME[question].points, (question, entry)
    if expected.note is not None:
        assert any(expected.note in note for note in result.get("notes", [])), result.get("notes")


@pytest.mark.parametrize("student", ["invalid_json", "empty_file"])
def test_unreadable_file_says_why(faults, student):
    """Does an unreadable file's `invalid` row explain the problem in its feedback?"""
    result = faults["results"][student]
    assert result["status"] == "invalid"
    assert "submission unusable" in result["questions"]["q1a"]["feedback"]


def test_gradebook_rows_match_results(faults):
    """Does each gradebook row carry the status and total of its results JSON?"""
    csv = faults["csv"].set_index("student")
    for student, result in faults["results"].items():
        assert csv.loc[student, "status"] == result["status"]
        assert csv.loc[student, "total"] == pytest.approx(result["total"])


def _sandboxed_processes() -> list[int]:
    """Processes whose root is an evaluator's private root (evaluators and what they started)."""
    from autograder.judge.sandbox import sandboxed_pids

    return sandboxed_pids(f"{os.getpid()}-")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to see other users' processes")
def test_no_evaluator_outlives_the_batch(faults):
    """After the batch (stuck loops that ignore interrupts, daemons, fork attempts), is every
    sandboxed process gone?"""
    deadline = time.monotonic() + 5
    while _sandboxed_processes() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _sandboxed_processes() == []
