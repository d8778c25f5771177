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
from autograder.pack import Pack
from autograder.samples import answer_cell_index, fill
from helpers import MP, TINY, write_notebooks
from pack_support import answer, first, last, samples_of

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
LOOP_SWALLOWING_INTERRUPT = (
    "while True:\n    try:\n        while True:\n            pass\n"
    "    except KeyboardInterrupt:\n        pass\n"
)
MEMORY_HOG = "hog = np.ones(10 * 1024**3 // 8)  # 10 GB at once\nreturn None\n"
OS_EXIT = "import os\nos._exit(3)\n"
SEGFAULT = "import ctypes\nreturn ctypes.string_at(0)\n"


def _with_top_cell(template, pack: Pack, source: str) -> nbformat.NotebookNode:
    """Correct answers with ``source`` as a cell right after ``import numpy as np``."""
    nb = fill(template, samples_of(pack).correct, pack=pack)
    at = answer_cell_index(nb, first(pack).id, pack=pack) - 1
    nb.cells.insert(at, nbformat.v4.new_code_cell(source))
    return nb


def _with_answer(template, pack: Pack, question: str, body: str) -> nbformat.NotebookNode:
    """Correct answers except ``question``, whose function runs ``body``."""
    answers = {**samples_of(pack).correct, question: answer(pack, question, body)}
    return fill(template, answers, pack=pack)


@dataclass(frozen=True)
class Expected:
    """What grading one faulty submission must give."""

    status: str
    lost: str | None = None
    """The one question that loses its points, if any."""
    tag: str | None = None
    """The diagnosis tag on that question."""
    note: str | None = None
    """A word that one of the result's notes must contain."""

    def total(self, pack: Pack) -> float:
        """The total it must score: every autograded point but the lost question's."""
        if self.status != "graded":
            return 0.0
        lost = pack.question(self.lost).points if self.lost else 0.0
        return pack.autograded_points - lost


def expected(pack: Pack) -> dict[str, Expected]:
    """Every submission of the batch and what it must score; the faults inside a function hit
    the pack's first or last question."""
    one, other = first(pack).id, last(pack).id
    return {
        "correct": Expected("graded"),
        "loop_top": Expected("graded", note="interrupted"),
        "loop_top_ignoring_interrupt": Expected("graded", note="stopped the evaluator"),
        "loop_in_function": Expected("graded", other, "timeout"),
        "loop_in_function_swallowing_interrupt": Expected("graded", one, "timeout"),
        "memory_hog_top": Expected("graded"),
        "memory_hog_in_function": Expected("graded", other, "exception"),
        "os_exit_top": Expected("graded", note="stopped the evaluator"),
        "os_exit_in_function": Expected("graded", one, "exception"),
        "sys_exit_top": Expected("graded"),
        "segfault_in_function": Expected("graded", other, "exception"),
        "print_100mb_top": Expected("graded"),
        "evil_kernelspec": Expected("graded"),
        "big_source_40mb": Expected("graded"),
        "big_output_40mb": Expected("graded"),
        "invalid_json": Expected("invalid"),
        "empty_file": Expected("invalid"),
    }


EXPECTED = expected(TINY)
"""The whole batch runs on the tiny pack (it is about the judge, not a sheet's content)."""
SMOKE = ("correct", "loop_in_function", "os_exit_top", "segfault_in_function", "invalid_json")
"""The part of the batch also graded on Exercise 2, as a smoke test of a full-size sheet."""


def _notebooks(template, pack: Pack, names) -> dict[str, nbformat.NotebookNode]:
    correct = samples_of(pack).correct
    one, other = first(pack).id, last(pack).id

    def evil() -> nbformat.NotebookNode:
        nb = fill(template, correct, pack=pack)
        nb.metadata["kernelspec"] = {"name": "evil", "language": "R", "display_name": "Evil R"}
        nb.metadata["language_info"] = {"name": "R"}
        return nb

    def big_output() -> nbformat.NotebookNode:
        nb = fill(template, correct, pack=pack)
        cell = nb.cells[answer_cell_index(nb, one, pack=pack)]
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="y" * BIG)]
        return nb

    makers = {
        "correct": lambda: fill(template, correct, pack=pack),
        "loop_top": lambda: _with_top_cell(template, pack, LOOP),
        "loop_top_ignoring_interrupt": lambda: _with_top_cell(
            template, pack, LOOP_IGNORING_INTERRUPT
        ),
        "loop_in_function": lambda: _with_answer(template, pack, other, LOOP),
        "loop_in_function_swallowing_interrupt": lambda: _with_answer(
            template, pack, one, LOOP_SWALLOWING_INTERRUPT
        ),
        "memory_hog_top": lambda: _with_top_cell(template, pack, MEMORY_HOG_TOP),
        "memory_hog_in_function": lambda: _with_answer(template, pack, other, MEMORY_HOG),
        "os_exit_top": lambda: _with_top_cell(template, pack, OS_EXIT_TOP),
        "os_exit_in_function": lambda: _with_answer(template, pack, one, OS_EXIT),
        "sys_exit_top": lambda: _with_top_cell(template, pack, SYS_EXIT_TOP),
        "segfault_in_function": lambda: _with_answer(template, pack, other, SEGFAULT),
        "print_100mb_top": lambda: _with_top_cell(template, pack, PRINT_100MB),
        "evil_kernelspec": evil,
        "big_source_40mb": lambda: _with_top_cell(template, pack, f"blob = '{'a' * BIG}'\n"),
        "big_output_40mb": big_output,
    }
    return {name: makers[name]() for name in names if name in makers}


def _grade_batch(pack: Pack, build_dir, template, names, root) -> dict:
    """The named faults (and unreadable files) of ``pack``, graded in one batch by the judge."""
    subs, out = root / "submissions", root / "out"
    write_notebooks(subs, _notebooks(template, pack, names))
    if "invalid_json" in names:
        (subs / "invalid_json.ipynb").write_text('{"cells": [ this is not json', encoding="utf-8")
    if "empty_file" in names:
        (subs / "empty_file.ipynb").write_bytes(b"")
    sizes = {p.stem: p.stat().st_size for p in subs.iterdir()}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MATH_PRIMER_CALL_TIMEOUT", "2")
        run = grade(
            submissions=subs,
            out=out,
            build_dir=build_dir,
            jobs=2,
            engine="judge",
            timeout=TIMEOUT,
            assignment=pack,
        )
    results = {p.stem: json.loads(p.read_text()) for p in (out / "results").glob("*.json")}
    return {
        "run": run,
        "results": results,
        "csv": pd.read_csv(out / "gradebook.csv"),
        "sizes": sizes,
    }


@pytest.fixture(scope="module")
def faults(tiny_built, tiny_template, tmp_path_factory) -> dict:
    """Every fault and a correct control on the tiny pack, graded in one batch by the judge."""
    root = tmp_path_factory.mktemp("faults")
    return _grade_batch(TINY, tiny_built.out, tiny_template, EXPECTED, root)


@pytest.fixture(scope="module")
def primer_faults(built, template, tmp_path_factory) -> dict:
    """A few faults on Exercise 2 (a full-size sheet), graded in one batch by the judge."""
    root = tmp_path_factory.mktemp("faults-primer")
    return _grade_batch(MP, built.out, template, SMOKE, root)


def _check_costs(pack: Pack, result: dict, want: Expected) -> None:
    """The expected status and total, full points on every question the fault does not break,
    the right tag on the one it does."""
    feedback = {q: result["questions"][q]["feedback"][:300] for q in pack.question_ids}
    assert (result["status"], result["total"]) == (want.status, want.total(pack)), (
        result.get("notes"),
        feedback,
    )
    if want.status != "graded":
        return
    for question in pack.questions:
        entry = result["questions"][question.id]
        if question.id == want.lost:
            assert entry["score"] == 0, entry
            assert want.tag in entry["tags"], entry
        else:
            assert entry["score"] == question.points, (question.id, entry)
    if want.note is not None:
        assert any(want.note in note for note in result.get("notes", [])), result.get("notes")


def test_every_submission_gives_exactly_one_row(faults):
    """Does every submission, however broken, appear exactly once in the gradebook and results?"""
    assert list(faults["csv"]["student"]) == sorted(EXPECTED)
    assert sorted(faults["results"]) == sorted(EXPECTED)
    assert list(faults["run"].gradebook["student"]) == sorted(EXPECTED)


def test_correct_control_scores_full(faults):
    """Does the correct notebook graded beside all the faults still score full marks?"""
    result = faults["results"]["correct"]
    assert (result["status"], result["total"]) == ("graded", TINY.autograded_points), result


def test_big_notebooks_are_really_40mb(faults):
    """Are the big notebooks really about 40 MB on disk (and under intake's 50 MiB limit)?"""
    for name in ("big_source_40mb", "big_output_40mb"):
        assert BIG <= faults["sizes"][name] < 50 * 1024 * 1024


@pytest.mark.parametrize("student", sorted(set(EXPECTED) - {"correct"}))
def test_fault_costs_only_what_it_breaks(faults, student):
    """Does the fault give its expected status and total, with full points on every question it
    does not break, and the right tag on the one it does?"""
    _check_costs(TINY, faults["results"][student], EXPECTED[student])


@pytest.mark.parametrize("student", SMOKE)
def test_fault_costs_only_what_it_breaks_on_exercise_2(primer_faults, student):
    """On a full-size sheet too, does a fault cost only the question it breaks?"""
    assert sorted(primer_faults["results"]) == sorted(SMOKE)
    _check_costs(MP, primer_faults["results"][student], expected(MP)[student])


@pytest.mark.parametrize("student", ["invalid_json", "empty_file"])
def test_unreadable_file_says_why(faults, student):
    """Does an unreadable file's `invalid` row explain the problem in its feedback?"""
    result = faults["results"][student]
    assert result["status"] == "invalid"
    assert all("submission unusable" in q["feedback"] for q in result["questions"].values())


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
