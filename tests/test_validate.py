"""The students' pre-submit check, run as a student runs it: ``python -m autograder.validate``
from a copy of the built student folder, on real notebooks, through a real kernel."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from autograder.build import Build
from autograder.validate import GIVEN_FILE, compare_given, given_fingerprints
from helpers import CORRECT, MP, fill


@pytest.fixture(scope="module")
def student_folder(built: Build, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the built student folder, as handed out."""
    folder = tmp_path_factory.mktemp("handout") / "student"
    shutil.copytree(built.out / "student", folder)
    return folder


def validate(folder: Path, notebook: nbformat.NotebookNode | None, name: str, *args: str):
    """Write ``name`` into the student folder and run the validator there; (exit code, output,
    seconds)."""
    if notebook is not None:
        nbformat.write(notebook, str(folder / name))
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "autograder.validate", name, *args],
        cwd=folder,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started


def _softmax_cell(nb: nbformat.NotebookNode) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.source.startswith("def softmax("))


def test_build_ships_the_validator_and_the_given_fingerprint(built: Build):
    """Does the student folder hold the validator and the fingerprint of the given cells?"""
    package = built.out / "student" / "autograder"
    assert (package / "validate.py").is_file()
    assert (package / "assignments" / MP.name / GIVEN_FILE).is_file()


def test_correct_notebook_passes(student_folder: Path, template):
    """Does a correct notebook exit 0, say which form checks passed and that the values are
    checked later, without Otter's bare "All test cases passed!"?"""
    code, out, _ = validate(student_folder, fill(template, CORRECT), "correct.ipynb")
    assert code == 0, out
    assert "Would cost points" not in out
    assert (
        "Form checks passed (callable, shape, finite; not the values): "
        + ", ".join(MP.question_ids)
        in out
    )
    assert "hidden tests run on other inputs after you submit" in out
    assert "All test cases passed" not in out


def test_renamed_function_is_named_with_its_new_name(student_folder: Path, template):
    """Does a renamed function cost points, with the name the notebook defines instead?"""
    answers = {**CORRECT, "q1a": CORRECT["q1a"].replace("def jacobian_Wx(", "def jacobian_wx(")}
    code, out, _ = validate(student_folder, fill(template, answers), "renamed.ipynb")
    assert code == 1, out
    assert (
        "q1a: `jacobian_Wx` is not defined (did you rename it? the notebook defines "
        "`jacobian_wx`)" in out
    )
    assert "q1b:" not in out.split("Notes:")[0]


def test_edited_softmax_is_reported(student_folder: Path, template):
    """Is an edit of the given softmax reported as an edited given cell, with its cell number?"""
    nb = fill(template, CORRECT)
    index = _softmax_cell(nb)
    nb.cells[index].source = nb.cells[index].source.replace("np.max(z)", "0")
    assert nb.cells[index].source != template.cells[index].source
    code, out, _ = validate(student_folder, nb, "softmax.ipynb")
    assert code == 1, out
    assert f"cell {index + 1}: the given cell `def softmax(z):` was edited" in out


def test_failing_cell_is_reported(student_folder: Path, template):
    """Is a cell that raises reported with its error, and the rest still checked?"""
    nb = fill(template, CORRECT)
    nb.cells.insert(3, nbformat.v4.new_code_cell("scale = 1 / undefined_name"))
    code, out, _ = validate(student_folder, nb, "failing.ipynb")
    assert code == 1, out
    assert "cell 4: `scale = 1 / undefined_name` fails: NameError" in out
    assert ", ".join(MP.question_ids) in out  # the questions after it still pass


def test_hanging_cell_is_stopped_and_reported(student_folder: Path, template):
    """Is a cell that never ends stopped after --timeout (a fraction of seconds too) and reported,
    with the run still ending soon after?"""
    nb = fill(template, CORRECT)
    nb.cells.insert(3, nbformat.v4.new_code_cell("while True:\n    pass"))
    code, out, seconds = validate(student_folder, nb, "hanging.ipynb", "--timeout", "2.5")
    assert code == 1, out
    assert "cell 4: `while True:` ran longer than 2.5 s and was stopped" in out
    assert seconds < 60, seconds


def test_blank_notebook_lists_every_question(student_folder: Path, template):
    """Does the notebook as handed out exit 1 with every question's diagnosis, and the empty
    derivations only as notes (Exercise 2 gives them 0 points)?"""
    code, out, _ = validate(student_folder, template, "blank.ipynb")
    assert code == 1, out
    problems, _, notes = out.partition("Notes:")
    for qid in MP.question_ids:
        assert f"  - {qid}: " in problems
        assert f'{qid}: the "Your derivation" cell is empty (not scored)' in notes
    assert "assert_case" not in out and "test_" not in out


@pytest.mark.parametrize(
    ("content", "expected"),
    [(None, "no such file"), ('{"cells": [ not json', "not a readable notebook")],
)
def test_missing_or_broken_file_is_one_error_line(student_folder: Path, content, expected):
    """Is a missing or broken file one `error:` line with exit code 2, not a traceback?"""
    name = "broken.ipynb" if content else "absent.ipynb"
    if content:
        (student_folder / name).write_text(content)
    code, out, _ = validate(student_folder, None, name)
    assert code == 2
    assert out.strip().startswith("error: ") and expected in out
    assert len(out.strip().splitlines()) == 1 and "Traceback" not in out


def test_compare_given_tells_edited_from_deleted(template):
    """Is an edited given cell found by its id, and a deleted one reported without a cell?"""
    given = given_fingerprints(template)
    nb = nbformat.from_dict(nbformat.from_dict(template))
    index = _softmax_cell(nb)
    nb.cells[index].source += "\n# my note"
    edited = compare_given(nb, given)
    assert [(f.kind, f.where) for f in edited] == [("edited", f"cell {index + 1}")]
    del nb.cells[index]
    deleted = compare_given(nb, given)
    assert [f.where for f in deleted] == ["notebook"] and "deleted" in deleted[0].message
    assert compare_given(template, given) == []
