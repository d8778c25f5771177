"""Manual overrides: a TA's points on top of the autograded scores."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from click.testing import CliRunner

from autograder import grading
from autograder.cli import main
from autograder.gradebook import GradebookError, collate
from autograder.overrides import Override, apply_overrides, read_overrides
from autograder.pack import load
from autograder.results import empty_result
from helpers import TINY, write_notebooks

PACK = load("math_primer")
QUESTION_NAMES = PACK.question_ids

HEADER = "student,question,points,comment\n"


def write_csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "overrides.csv"
    path.write_text(text, encoding="utf-8")
    return path


def graded(student: str, scores: dict[str, float]) -> dict:
    result = empty_result(student, "graded", "All tests passed.", pack=PACK)
    for question, score in scores.items():
        result["questions"][question]["score"] = score
    result["total"] = sum(scores.values())
    return result


def test_read_overrides_parses_rows_in_file_order(tmp_path):
    """Are rows read with float points, stripped ids and an optional comment?"""
    path = write_csv(tmp_path, HEADER + ' ann , q3 ,2.5,"slip, but right idea"\nbob,q1a,0,\n')
    assert read_overrides(path, pack=PACK) == [
        Override("ann", "q3", 2.5, "slip, but right idea", 2),
        Override("bob", "q1a", 0.0, "", 3),
    ]


def test_the_comment_column_is_optional(tmp_path):
    """Is a file without a comment column accepted?"""
    path = write_csv(tmp_path, "student,question,points\nann,q1a,1\n")
    assert read_overrides(path, pack=PACK) == [Override("ann", "q1a", 1.0, "", 2)]


@pytest.mark.parametrize(
    "text,message",
    [
        ("student,question,score\nann,q1a,1\n", "no points column"),
        (HEADER + "ann,q9,1,\n", "row 2 (counting the header as row 1): unknown question 'q9'"),
        (HEADER + "ann,q1a,1.5,\n", "row 2 (counting the header as row 1): points '1.5' for q1a"),
        (HEADER + "ann,q3,-1,\n", "points '-1' for q3 must be a number between 0 and 3"),
        (HEADER + "ann,q3,three,\n", "points 'three'"),
        (HEADER + "ann,q3,nan,\n", "points 'nan'"),
        (
            HEADER + "ann,q3,1,\nbob,q3,1,\nann,q3,2,\n",
            "row 4 (counting the header as row 1): a second override for ann, q3",
        ),
        (HEADER + ",q3,1,\n", "row 2 (counting the header as row 1): empty student id"),
        ("", "cannot read"),
    ],
    ids=["column", "question", "above", "negative", "text", "nan", "duplicate", "empty", "blank"],
)
def test_a_bad_file_names_the_row_and_the_problem(tmp_path, text, message):
    """Does each mistake in the file raise a GradebookError naming the row and the problem?"""
    with pytest.raises(GradebookError) as error:
        read_overrides(write_csv(tmp_path, text), pack=PACK)
    assert message in str(error.value)


def test_a_missing_file_is_a_clear_error(tmp_path):
    """Is a missing overrides file a GradebookError naming it?"""
    with pytest.raises(GradebookError, match="does not exist"):
        read_overrides(tmp_path / "nope.csv", pack=PACK)


def test_apply_replaces_the_score_and_keeps_the_autograded_one():
    """Is the override shown as such: new score, the autograded score and the comment kept,
    a feedback line, the total recomputed and the inputs untouched?"""
    results = [graded("ann", {"q1a": 1.0, "q3": 1.0}), graded("bob", {"q3": 3.0})]
    before = json.dumps(results)
    [ann, bob] = apply_overrides(results, [Override("ann", "q3", 2.5, "right idea", 2)], pack=PACK)
    assert json.dumps(results) == before
    q3 = ann["questions"]["q3"]
    assert q3["score"] == 2.5
    assert q3["override"] == {"points": 2.5, "comment": "right idea", "autograded": 1.0}
    assert q3["feedback"].endswith("Manual override: 2.5 / 3 points (autograded: 1). right idea")
    assert ann["total"] == 3.5 and ann["overridden"] == ["q3"]
    assert bob == results[1]
    book = collate([ann, bob], pack=PACK).set_index("student")
    assert book.loc["ann", "total"] == 3.5 and book.loc["ann", "percent"] == round(350 / 12, 2)


def test_an_override_may_lower_a_score_and_apply_to_an_invalid_submission():
    """Can a TA take points away, or grade an unusable notebook by hand (status kept)?"""
    results = [
        graded("ann", {"q1d": 2.0}),
        empty_result("bob", "invalid", "not valid JSON", pack=PACK),
    ]
    overrides = [Override("ann", "q1d", 0.5, "copied", 2), Override("bob", "q1a", 1, "", 3)]
    [ann, bob] = apply_overrides(results, overrides, pack=PACK)
    assert ann["total"] == 0.5 and ann["questions"]["q1d"]["override"]["autograded"] == 2.0
    assert bob["status"] == "invalid" and bob["total"] == 1.0
    assert collate([ann, bob], pack=PACK)["total"].tolist() == [0.5, 1.0]


# --- through grade and the CLI -----------------------------------------------------------------


@pytest.fixture()
def subs(tmp_path, monkeypatch) -> Path:
    """Two notebooks graded by a stand-in engine: 1 point on q1a each."""

    def grade_one(submission):
        return graded(submission.student, {"q1a": 1.0})

    monkeypatch.setattr(grading, "make_grader", lambda engine, **kw: grade_one)
    nb = nbformat.v4.new_notebook()
    return write_notebooks(tmp_path / "subs", {"ann": nb, "bob": nb})


def test_grade_applies_overrides_to_results_and_gradebook(subs, tmp_path):
    """Does `grade --overrides` put the override in results/<student>.json and gradebook.csv,
    while the cache keeps the autograded score (a rerun without overrides restores it)?"""
    out = tmp_path / "out"
    path = write_csv(tmp_path, HEADER + "bob,q3,3,oral exam\nbob,q1a,0,\n")
    result = CliRunner().invoke(
        main,
        ["grade", str(subs), "--out", str(out), "--overrides", str(path), "-a", PACK.name],
    )
    assert result.exit_code == 0, result.output
    bob = json.loads((out / "results" / "bob.json").read_text())
    assert bob["questions"]["q3"]["override"] == {
        "points": 3.0,
        "comment": "oral exam",
        "autograded": 0.0,
    }
    assert bob["total"] == 3.0 and bob["overridden"] == ["q1a", "q3"]
    book = pd.read_csv(out / "gradebook.csv").set_index("student")
    assert book.loc["bob", ["q1a", "q3", "total", "percent"]].tolist() == [0.0, 3.0, 3.0, 25.0]
    assert book.loc["ann", "total"] == 1.0

    again = grading.grade(submissions=subs, out=out, build_dir=tmp_path, jobs=1, assignment=PACK)
    assert again.reused == 2
    assert again.gradebook.set_index("student").loc["bob", "total"] == 1.0
    assert "override" not in json.loads((out / "results" / "bob.json").read_text())["questions"]


def test_an_unknown_student_stops_before_grading(subs, tmp_path, monkeypatch):
    """Is an override for a student without a submission an error naming the row and a close
    match, raised before anything is graded?"""
    calls = []
    monkeypatch.setattr(grading, "make_grader", lambda engine, **kw: calls.append(1))
    path = write_csv(tmp_path, HEADER + "ann,q1a,1,\nbobby,q3,1,\n")
    result = CliRunner().invoke(
        main,
        ["grade", str(subs), "--out", str(tmp_path / "o"), "--overrides", str(path)]
        + ["-a", PACK.name],
    )
    assert result.exit_code == 2
    assert "row 3 (counting the header as row 1): no submission from student 'bobby'" in (
        result.output
    )
    assert "did you mean bob" in result.output
    assert calls == [] and not (tmp_path / "o" / "gradebook.csv").exists()


def test_every_question_can_be_overridden(subs, tmp_path):
    """Can every question of the contract be set to its full points (total = 12)?"""
    BY_NAME = PACK.by_id

    rows = "".join(f"ann,{q},{BY_NAME[q].points},\n" for q in QUESTION_NAMES)
    run = grading.grade(
        submissions=subs,
        out=tmp_path / "out",
        build_dir=tmp_path,
        jobs=1,
        overrides=write_csv(tmp_path, HEADER + rows),
        assignment=PACK,
    )
    assert run.gradebook.set_index("student").loc["ann", "percent"] == 100.0


# --- any pack: the tiny fixture pack ----------------------------------------------------------


def test_overrides_are_checked_against_the_pack_graded(tmp_path):
    """For the tiny pack, are its question ids and points the ones an override is checked
    against, and is the override applied in its order?"""
    path = write_csv(tmp_path, HEADER + "ann,p2,1.5,partial\nann,p1,1,\n")
    overrides = read_overrides(path, pack=TINY)
    result = empty_result("ann", "graded", "All tests passed.", pack=TINY)
    (applied,) = apply_overrides([result], overrides, pack=TINY)
    assert applied["total"] == 2.5 and applied["overridden"] == ["p1", "p2"]
    bad = write_csv(tmp_path, HEADER + "ann,q1a,1,\n")
    with pytest.raises(GradebookError, match="unknown question 'q1a'; expected one of p1, p2"):
        read_overrides(bad, pack=TINY)
    too_many = write_csv(tmp_path, HEADER + "ann,p1,2,\n")
    with pytest.raises(GradebookError, match="between 0 and 1"):
        read_overrides(too_many, pack=TINY)
