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
from autograder.pack import Pack, registry
from autograder.results import empty_result
from helpers import FIXTURE_PACKS, TINY, write_notebooks
from pack_support import first, last

HEADER = "student,question,points,comment\n"


def write_csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "overrides.csv"
    path.write_text(text, encoding="utf-8")
    return path


def graded(pack: Pack, student: str, scores: dict[str, float]) -> dict:
    result = empty_result(student, "graded", "All tests passed.", pack=pack)
    for question, score in scores.items():
        result["questions"][question]["score"] = score
    result["total"] = sum(scores.values())
    return result


def ids(pack: Pack) -> dict[str, object]:
    """The first question ``a`` and last question ``z`` of the pack, and their possible points."""
    return {
        "a": first(pack).id,
        "z": last(pack).id,
        "ap": f"{first(pack).possible:g}",
        "zp": f"{last(pack).possible:g}",
    }


def test_read_overrides_parses_rows_in_file_order(any_pack, tmp_path):
    """Are rows read with float points, stripped ids and an optional comment?"""
    a, z = first(any_pack).id, last(any_pack).id
    text = HEADER + f' ann , {z} ,2.5,"slip, but right idea"\nbob,{a},0,\n'
    assert read_overrides(write_csv(tmp_path, text), pack=any_pack) == [
        Override("ann", z, 2.5, "slip, but right idea", 2),
        Override("bob", a, 0.0, "", 3),
    ]


def test_the_comment_column_is_optional(any_pack, tmp_path):
    """Is a file without a comment column accepted?"""
    a = first(any_pack).id
    path = write_csv(tmp_path, f"student,question,points\nann,{a},1\n")
    assert read_overrides(path, pack=any_pack) == [Override("ann", a, 1.0, "", 2)]


@pytest.mark.parametrize(
    "text,message",
    [
        ("student,question,score\nann,{a},1\n", "no points column"),
        (HEADER + "ann,q_9,1,\n", "row 2 (counting the header as row 1): unknown question 'q_9'"),
        (
            HEADER + "ann,{a},{ap}.5,\n",
            "row 2 (counting the header as row 1): points '{ap}.5' for {a}",
        ),
        (HEADER + "ann,{z},-1,\n", "points '-1' for {z} must be a number between 0 and {zp}"),
        (HEADER + "ann,{z},three,\n", "points 'three'"),
        (HEADER + "ann,{z},nan,\n", "points 'nan'"),
        (
            HEADER + "ann,{z},1,\nbob,{z},1,\nann,{z},2,\n",
            "row 4 (counting the header as row 1): a second override for ann, {z}",
        ),
        (HEADER + ",{z},1,\n", "row 2 (counting the header as row 1): empty student id"),
        ("", "cannot read"),
    ],
    ids=["column", "question", "above", "negative", "text", "nan", "duplicate", "empty", "blank"],
)
def test_a_bad_file_names_the_row_and_the_problem(any_pack, tmp_path, text, message):
    """Does each mistake in the file raise a GradebookError naming the row and the problem?"""
    names = ids(any_pack)
    with pytest.raises(GradebookError) as error:
        read_overrides(write_csv(tmp_path, text.format(**names)), pack=any_pack)
    assert message.format(**names) in str(error.value)


def test_a_missing_file_is_a_clear_error(tmp_path):
    """Is a missing overrides file a GradebookError naming it?"""
    with pytest.raises(GradebookError, match="does not exist"):
        read_overrides(tmp_path / "nope.csv", pack=TINY)


def test_apply_replaces_the_score_and_keeps_the_autograded_one(any_pack):
    """Is the override shown as such: new score, the autograded score and the comment kept,
    a feedback line, the total recomputed and the inputs untouched?"""
    a, z = first(any_pack).id, last(any_pack).id
    results = [
        graded(any_pack, "ann", {a: 1.0, z: 1.0}),
        graded(any_pack, "bob", {z: last(any_pack).points}),
    ]
    before = json.dumps(results)
    [ann, bob] = apply_overrides(results, [Override("ann", z, 2.5, "right idea", 2)], pack=any_pack)
    assert json.dumps(results) == before
    entry = ann["questions"][z]
    assert entry["score"] == 2.5
    assert entry["override"] == {"points": 2.5, "comment": "right idea", "autograded": 1.0}
    possible = f"{last(any_pack).possible:g}"
    assert entry["feedback"].endswith(
        f"Manual override: 2.5 / {possible} points (autograded: 1). right idea"
    )
    assert ann["total"] == 3.5 and ann["overridden"] == [z]
    assert bob == results[1]
    book = collate([ann, bob], pack=any_pack).set_index("student")
    assert book.loc["ann", "total"] == 3.5
    assert book.loc["ann", "percent"] == round(350 / any_pack.total_points, 2)


def test_an_override_may_lower_a_score_and_apply_to_an_invalid_submission(any_pack):
    """Can a TA take points away, or grade an unusable notebook by hand (status kept)?"""
    a, z = first(any_pack).id, last(any_pack).id
    results = [
        graded(any_pack, "ann", {z: 2.0}),
        empty_result("bob", "invalid", "not valid JSON", pack=any_pack),
    ]
    overrides = [Override("ann", z, 0.5, "copied", 2), Override("bob", a, 1, "", 3)]
    [ann, bob] = apply_overrides(results, overrides, pack=any_pack)
    assert ann["total"] == 0.5 and ann["questions"][z]["override"]["autograded"] == 2.0
    assert bob["status"] == "invalid" and bob["total"] == 1.0
    assert collate([ann, bob], pack=any_pack)["total"].tolist() == [0.5, 1.0]


# --- through grade and the CLI -----------------------------------------------------------------


@pytest.fixture()
def subs(any_pack, tmp_path, monkeypatch) -> Path:
    """Two notebooks graded by a stand-in engine: 1 point on the first question each; the
    fixture packs on the search path (for ``-a tiny``)."""

    def grade_one(submission):
        return graded(any_pack, submission.student, {first(any_pack).id: 1.0})

    monkeypatch.setenv(registry.SEARCH_ENV, str(FIXTURE_PACKS))
    monkeypatch.setattr(grading, "make_grader", lambda engine, **kw: grade_one)
    nb = nbformat.v4.new_notebook()
    return write_notebooks(tmp_path / "subs", {"ann": nb, "bob": nb})


def test_grade_applies_overrides_to_results_and_gradebook(any_pack, subs, tmp_path):
    """Does `grade --overrides` put the override in results/<student>.json and gradebook.csv,
    while the cache keeps the autograded score (a rerun without overrides restores it)?"""
    a, z = first(any_pack).id, last(any_pack).id
    top = last(any_pack).points  # the autograded points (a derivation point is marked apart)
    out = tmp_path / "out"
    path = write_csv(tmp_path, HEADER + f"bob,{z},{top},oral exam\nbob,{a},0,\n")
    result = CliRunner().invoke(
        main,
        ["grade", str(subs), "--out", str(out), "--overrides", str(path), "-a", any_pack.name],
    )
    assert result.exit_code == 0, result.output
    bob = json.loads((out / "results" / "bob.json").read_text())
    assert bob["questions"][z]["override"] == {
        "points": top,
        "comment": "oral exam",
        "autograded": 0.0,
    }
    assert bob["total"] == top and bob["overridden"] == [a, z]
    book = pd.read_csv(out / "gradebook.csv").set_index("student")
    percent = round(100 * top / any_pack.total_points, 2)
    assert book.loc["bob", [a, z, "total", "percent"]].tolist() == [0.0, top, top, percent]
    assert book.loc["ann", "total"] == 1.0

    again = grading.grade(
        submissions=subs, out=out, build_dir=tmp_path, jobs=1, assignment=any_pack
    )
    assert again.reused == 2
    assert again.gradebook.set_index("student").loc["bob", "total"] == 1.0
    assert "override" not in json.loads((out / "results" / "bob.json").read_text())["questions"]


def test_an_unknown_student_stops_before_grading(any_pack, subs, tmp_path, monkeypatch):
    """Is an override for a student without a submission an error naming the row and a close
    match, raised before anything is graded?"""
    a, z = first(any_pack).id, last(any_pack).id
    calls = []
    monkeypatch.setattr(grading, "make_grader", lambda engine, **kw: calls.append(1))
    path = write_csv(tmp_path, HEADER + f"ann,{a},1,\nbobby,{z},1,\n")
    result = CliRunner().invoke(
        main,
        ["grade", str(subs), "--out", str(tmp_path / "o"), "--overrides", str(path)]
        + ["-a", any_pack.name],
    )
    assert result.exit_code == 2
    assert "row 3 (counting the header as row 1): no submission from student 'bobby'" in (
        result.output
    )
    assert "did you mean bob" in result.output
    assert calls == [] and not (tmp_path / "o" / "gradebook.csv").exists()


def test_every_question_can_be_overridden(any_pack, subs, tmp_path):
    """Can every question of the pack be set to its full points, derivation points included
    (100 percent; the tiny pack found that grade clamped them to the autograded points)?"""
    rows = "".join(f"ann,{q.id},{q.possible},\n" for q in any_pack.questions)
    run = grading.grade(
        submissions=subs,
        out=tmp_path / "out",
        build_dir=tmp_path,
        jobs=1,
        overrides=write_csv(tmp_path, HEADER + rows),
        assignment=any_pack,
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
