"""Otter Assign build: the student notebook, the autograder zip and the points in it."""

from __future__ import annotations

import json
import re
import zipfile

import nbformat
import pytest

from autograder.build import MASTER, BuildError, build, ensure_built
from autograder.checks.questions import CASES
from autograder.contract import BY_NAME, QUESTION_NAMES


def test_build_writes_student_notebook_and_stable_zip(built):
    """Does the build write dist/student/math_primer.ipynb and dist/autograder/autograder.zip?"""
    assert built.student_notebook.is_file()
    with zipfile.ZipFile(built.autograder_zip) as zf:
        names = set(zf.namelist())
    assert {f"tests/{q}.py" for q in QUESTION_NAMES} <= names
    assert "files/autograder/checks/runner.py" in names
    assert not any("engines" in n or "cli.py" in n for n in names), "only the checks are shipped"


def test_student_notebook_has_no_solutions_and_no_hidden_tests(template):
    """Are the solutions stripped and the hidden tests kept out of the student notebook?"""
    source = "\n".join(c.source for c in template.cells)
    assert "BEGIN SOLUTION" not in source and "np.outer(dL_dz, x)" not in source
    assert "assert_case" not in json.dumps(template.metadata)
    for question in QUESTION_NAMES:
        assert f'grader.check("{question}")' in source


@pytest.mark.parametrize("question", QUESTION_NAMES)
def test_zip_points_match_the_contract(built, question):
    """Does each question's test file carry the contract's points, split as in CASES?"""
    with zipfile.ZipFile(built.autograder_zip) as zf:
        test_file = zf.read(f"tests/{question}.py").decode()
    points = [float(p) for p in re.findall(r"@test_case\(points=([0-9.]+)", test_file)]
    assert points == [0.0, *CASES[question].values()]
    assert sum(points) == BY_NAME[question].points
    hidden = re.findall(r"hidden=(True|False)", test_file)
    assert hidden == ["False", *["True"] * len(CASES[question])]


def test_broken_solution_fails_the_build_with_a_clear_message(tmp_path):
    """Does a master whose solution fails its own tests stop the build with Otter's message?"""
    nb = nbformat.read(str(MASTER), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "return np.outer(dL_dz, x)" in cell.source:
            cell.source = cell.source.replace("np.outer(dL_dz, x)", "np.outer(x, dL_dz)")
    master = tmp_path / "math_primer.ipynb"
    nbformat.write(nb, str(master))
    with pytest.raises(BuildError, match="Otter Assign failed"):
        build(out=tmp_path / "dist", master=master)


def test_missing_master_is_a_build_error(tmp_path):
    """Is a missing master notebook reported by path?"""
    with pytest.raises(BuildError, match="not found"):
        build(out=tmp_path / "dist", master=tmp_path / "nope.ipynb")


def test_up_to_date_build_is_reused(built):
    """Does ensure_built reuse a build whose sources have not changed?"""
    before = built.autograder_zip.stat().st_mtime_ns
    assert ensure_built(out=built.out).autograder_zip.stat().st_mtime_ns == before
