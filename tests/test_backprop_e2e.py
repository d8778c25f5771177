"""Exercise 3 end to end, as a TA runs it: ``build --assignment backprop``, ``demo``, and ``grade``
of the reference solution and a blank notebook through the judge and the Otter engines."""

from __future__ import annotations

import inspect
import json
import zipfile
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from click.testing import CliRunner

from autograder.cli import main
from autograder.pack import load
from autograder.samples import fill
from solutions.backprop import reference

PACK = load("backprop")


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding ``dist/backprop``, built once through the CLI (where demo looks)."""
    root = tmp_path_factory.mktemp("backprop")
    result = invoke("build", "--assignment", "backprop", "--out", str(root / "dist" / "backprop"))
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture(scope="module")
def template(workdir: Path) -> nbformat.NotebookNode:
    """The student notebook as handed out."""
    return nbformat.read(str(workdir / "dist/backprop/student/backprop.ipynb"), as_version=4)


def reference_answers() -> dict[str, str]:
    """Answer cells holding solutions/backprop/reference.py's functions (its helpers in q1a's)."""
    helpers = "".join(inspect.getsource(f) + "\n\n" for f in (reference._array, reference._require))
    answers = {}
    for question in PACK.questions:
        source = inspect.getsource(getattr(reference, question.function_names[0]))
        answers[question.id] = (helpers if question.id == "q1a" else "") + source
    return answers


@pytest.fixture(scope="module")
def submissions(workdir: Path, template: nbformat.NotebookNode) -> Path:
    """solutions/backprop/reference.py as a student would hand it in, and a blank notebook (the
    generic pack tests grade the master's solutions and the sample answers)."""
    folder = workdir / "submissions"
    folder.mkdir()
    nbformat.write(fill(template, reference_answers(), pack=PACK), str(folder / "ref.ipynb"))
    nbformat.write(template, str(folder / "blank.ipynb"))
    return folder


def test_student_notebook_has_stubs_helpers_and_no_solutions(template) -> None:
    """Does the handed-out notebook keep the helpers and `def f(...): ...` stubs, without any
    solution or hidden test, and does the zip ship the backprop pack only?"""
    code = "\n".join(c.source for c in template.cells if c.cell_type == "code")
    assert "def softmax(Z):" in code and "def relu(A):" in code
    for question in PACK.questions:
        (name,) = question.function_names
        (cell,) = [c for c in template.cells if f"def {name}(" in c.source]
        assert cell.source.rstrip().endswith("...")
    assert "BEGIN SOLUTION" not in code and "assert_case" not in code
    assert "(softmax(Z) - Y)" not in code


def test_zip_ships_the_backprop_pack_only(workdir: Path) -> None:
    """Does the autograder zip hold backprop's spec and hidden tests, and nothing of the other
    packs or of the solutions?"""
    with zipfile.ZipFile(workdir / "dist/backprop/autograder/autograder.zip") as zf:
        names = zf.namelist()
    assert "files/autograder/assignments/backprop/spec.py" in names
    assert sorted(n for n in names if n.startswith("tests/")) == sorted(
        f"tests/{q}.py" for q in PACK.question_ids
    )
    assert not [n for n in names if "math_primer" in n or n.startswith("files/solutions")]


@pytest.mark.parametrize("engine", ["judge", "otter"])
def test_reference_earns_12_and_blank_0(workdir: Path, submissions: Path, engine: str) -> None:
    """Through `grade` on the command line (the assignment inferred from the notebooks), does the
    reference solution earn 12/12 and a blank notebook 0 with `missing` on every question?"""
    out = workdir / f"out-{engine}"
    result = invoke(
        "grade",
        str(submissions),
        "--out",
        str(out),
        "--engine",
        engine,
        "--jobs",
        "2",
        "--build-dir",
        str(workdir / "dist/backprop"),
    )
    assert result.exit_code == 0, result.output
    book = pd.read_csv(out / "gradebook.csv").set_index("student")
    assert list(book.columns) == [*PACK.question_ids, "total", "percent", "status"]
    assert book.loc["ref", "total"] == 12
    assert book.loc["blank", "total"] == 0
    assert set(book["status"]) == {"graded"}
    blank = json.loads((out / "results" / "blank.json").read_text())
    for question in PACK.question_ids:
        assert "missing" in blank["questions"][question]["tags"], question


def test_demo_grades_the_samples_with_their_tags(workdir: Path, monkeypatch) -> None:
    """Does `demo --assignment backprop` grade its samples: ada 12, cleo 0, dora her four
    questions, eli invalid, and ben's four mistakes each with its tag?"""
    monkeypatch.chdir(workdir)
    out = workdir / "demo"
    result = invoke("demo", "--assignment", "backprop", "--out", str(out), "--jobs", "2")
    assert result.exit_code == 0, result.output
    book = pd.read_csv(out / "gradebook.csv").set_index("student")
    assert book.loc["ada_correct", "total"] == 12 and book.loc["finn_zip", "total"] == 12
    assert book.loc["cleo_blank", "total"] == 0
    assert book.loc["dora_partial", "total"] == 5
    assert book.loc["eli_broken", "status"] == "invalid"
    ben = json.loads((out / "results" / "ben_mistakes.json").read_text())["questions"]
    expected = {
        "q1a": (0.75, "not_stable"),
        "q2": (2.0, "transposed"),
        "q3": (0.0, "dL_dyhat"),
        "q4": (2.0, "missing_relu_mask"),
    }
    for question, (points, tag) in expected.items():
        assert ben[question]["score"] == points, question
        assert tag in ben[question]["tags"], question
    assert book.loc["ben_mistakes", "total"] == 0.75 + 1 + 1 + 2 + 0 + 2
