"""Otter Assign build: the student notebook, the autograder zip and the points in it."""

from __future__ import annotations

import json
import re
import shutil
import zipfile

import nbformat
import pytest

from autograder.build import BuildError, build, ensure_built
from autograder.errors import MasterDrift
from autograder.pack import load, load_path
from autograder.pack.master import master_path

MP = load("math_primer")
QUESTION_NAMES = MP.question_ids


def test_build_writes_student_notebook_and_stable_zip(built):
    """Does the build write dist/student/math_primer.ipynb and dist/autograder/autograder.zip?"""
    assert built.student_notebook.is_file()
    with zipfile.ZipFile(built.autograder_zip) as zf:
        names = set(zf.namelist())
    assert {f"tests/{q}.py" for q in QUESTION_NAMES} <= names
    assert "files/autograder/checks/runner.py" in names
    assert "files/autograder/assignments/math_primer/spec.py" in names
    assert "files/autograder/assignments/math_primer/givens.py" in names
    assert not any("engines" in n or "cli.py" in n for n in names), "only the checks are shipped"
    assert not any("solutions" in n or "samples" in n for n in names), "no solutions shipped"


def test_student_notebook_has_no_solutions_and_no_hidden_tests(template):
    """Are the solutions stripped and the hidden tests kept out of the student notebook?"""
    source = "\n".join(c.source for c in template.cells)
    assert "BEGIN SOLUTION" not in source and "np.outer(dL_dz, x)" not in source
    assert "assert_case" not in json.dumps(template.metadata)
    for question in QUESTION_NAMES:
        assert f'grader.check("{question}")' in source


@pytest.mark.parametrize("question", QUESTION_NAMES)
def test_zip_points_match_the_spec(built, question):
    """Does each question's test file carry the spec's points, split as its cases, by name?"""
    with zipfile.ZipFile(built.autograder_zip) as zf:
        test_file = zf.read(f"tests/{question}.py").decode()
    points = [float(p) for p in re.findall(r"@test_case\(points=([0-9.]+)", test_file)]
    cases = MP.question(question).case_points
    assert points == [0.0, *cases.values()]
    assert sum(points) == MP.question(question).points
    hidden = re.findall(r"hidden=(True|False)", test_file)
    assert hidden == ["False", *["True"] * len(cases)]
    names = re.findall(r"def (test_\w+)\(", test_file)
    assert names == [f"test_{question}_form", *(f"test_{question}_{c}" for c in cases)]


def copy_pack(tmp_path, name="math_primer"):
    """A copy of a repository pack in tmp_path/assignments/<name>, loaded from there."""
    folder = tmp_path / "assignments" / name
    shutil.copytree(MP.folder, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def test_broken_solution_fails_the_build_with_a_clear_message(tmp_path):
    """Does a master whose solution fails its own tests stop the build with Otter's message?"""
    folder = copy_pack(tmp_path)
    master = folder / "math_primer.ipynb"
    nb = nbformat.read(str(master), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "return np.outer(dL_dz, x)" in cell.source:
            cell.source = cell.source.replace("np.outer(dL_dz, x)", "np.outer(x, dL_dz)")
    nbformat.write(nb, str(master))
    with pytest.raises(BuildError, match="Otter Assign failed"):
        build(out=tmp_path / "dist", pack=load_path(folder))


def test_missing_master_is_an_error(tmp_path):
    """Is a missing master notebook reported by path?"""
    folder = copy_pack(tmp_path)
    (folder / "math_primer.ipynb").unlink()
    with pytest.raises(MasterDrift, match="not found"):
        build(out=tmp_path / "dist", pack=load_path(folder))


def test_master_that_drifts_from_the_spec_stops_the_build(tmp_path):
    """Does a hidden test cell whose points disagree with the spec stop the build before Otter
    Assign runs, naming the question and the cell as it should read?"""
    folder = copy_pack(tmp_path)
    master = folder / "math_primer.ipynb"
    nb = nbformat.read(str(master), as_version=4)
    cell = next(c for c in nb.cells if "def test_q1d_edge(" in c.source)
    cell.source = cell.source.replace("points: 0.5", "points: 0.25")
    nbformat.write(nb, str(master))
    with pytest.raises(MasterDrift, match=r"q1d: test cell 3 should read:\n(.|\n)*points: 0.5"):
        build(out=tmp_path / "dist", pack=load_path(folder))
    assert not (tmp_path / "dist").exists()


def test_up_to_date_build_is_reused(built):
    """Does ensure_built reuse a build whose sources have not changed?"""
    before = built.autograder_zip.stat().st_mtime_ns
    rebuilt = ensure_built(out=built.out, pack="math_primer")
    assert rebuilt.autograder_zip.stat().st_mtime_ns == before


def test_master_of_every_repository_pack_agrees_with_its_spec():
    """Does the master of Exercise 2 agree with its spec (points and cases written once)?"""
    from autograder.pack.master import check_master

    assert check_master(MP) == master_path(MP)
