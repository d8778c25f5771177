"""Tests for grade's review hook (autograder/review/hook.py): reruns never lose human marks."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pandas as pd
import pytest
from review_support import grade

from autograder.review.questions import question_specs, run_pack
from autograder.review.store import ReviewStore


@pytest.fixture()
def out(review_demo: Path, tmp_path: Path) -> Path:
    """A writable copy of the graded demo folder."""
    return Path(shutil.copytree(review_demo, tmp_path / "out"))


def possible(out: Path) -> dict[str, float]:
    pack = run_pack(out, ReviewStore.of(out).read().run)
    return {q.id: q.points for q in question_specs(pack)}


def submissions(out: Path) -> Path:
    return Path(ReviewStore.of(out).read().run.submissions)


def test_grade_records_the_autograded_results_before_overrides(out):
    """Does the store hold every result as the judge scored it, with the run's folders?"""
    run_id, autograded = ReviewStore.of(out).autograded()
    assert run_id and [r["student"] for r in autograded] == sorted(
        p.stem for p in (out / "results").glob("*.json")
    )
    ben = next(r for r in autograded if r["student"] == "ben_mistakes")
    assert ben == json.loads((out / "results" / "ben_mistakes.json").read_text())


def test_a_rerun_of_grade_keeps_the_marks_of_the_app(out):
    """After a TA's marks, does `grade` again (cache reused) write the same marked gradebook?"""
    store = ReviewStore.of(out)
    with store.write(who="alice", possible=possible(out)) as tx:
        item = tx.add_item(question="q1b", text="explained", points=0.5)
        tx.apply_item(student="ben_mistakes", item_id=item.id)
        tx.set_points(student="cleo_blank", question="q3", points=1.0, version=0)
    first = grade(submissions(out), out)
    book = first.gradebook.set_index("student")
    assert book.loc["ben_mistakes", "q1b"] == 0.5 and book.loc["cleo_blank", "q3"] == 1.0
    before = (out / "gradebook.csv").read_bytes()
    again = grade(submissions(out), out)
    assert again.reused == len(again.results)
    assert (out / "gradebook.csv").read_bytes() == before
    ben = json.loads((out / "results" / "ben_mistakes.json").read_text())
    assert ben["questions"]["q1b"]["override"] == {
        "points": 0.5,
        "comment": "explained (+0.5 pt)",
        "autograded": 0,
    }
    assert [c.who for c in store.history() if c.action != "run recorded"] == ["alice"] * 3


def test_overrides_csv_and_marks_layer_into_one_override(out, tmp_path):
    """With --overrides, is the CSV's points the base the rubric adjusts (one override per
    question, both comments), and does a rerun without the CSV keep only the app's marks?"""
    store = ReviewStore.of(out)
    with store.write(who="alice", possible=possible(out)) as tx:
        item = tx.add_item(question="q3", text="units missing", points=-0.5)
        tx.apply_item(student="ada_correct", item_id=item.id)
    csv = tmp_path / "overrides.csv"
    csv.write_text("student,question,points,comment\nada_correct,q3,2,oral exam\n")
    run = grade(submissions(out), out, overrides=csv)
    ada = next(r for r in run.results if r["student"] == "ada_correct")
    assert ada["questions"]["q3"]["override"] == {
        "points": 1.5,
        "comment": "oral exam; units missing (-0.5 pt)",
        "autograded": 3.0,
    }
    assert ada["overridden"] == ["q3"]
    run = grade(submissions(out), out)
    ada = next(r for r in run.results if r["student"] == "ada_correct")
    assert ada["questions"]["q3"]["score"] == 2.5


def test_marks_of_a_student_who_left_the_batch_are_kept(out, tmp_path, caplog):
    """If a submission disappears from a rerun, are its marks kept (and named) rather than
    deleted, and applied again when it comes back?"""
    store = ReviewStore.of(out)
    with store.write(who="alice", possible=possible(out)) as tx:
        tx.set_points(student="dora_partial", question="q3", points=2.0, version=0)
    subs = Path(shutil.copytree(submissions(out), tmp_path / "subs"))
    moved = subs / "dora_partial.ipynb"
    parked = moved.rename(tmp_path / "dora_partial.ipynb")
    with caplog.at_level(logging.WARNING):
        run = grade(subs, out)
    assert "dora_partial" not in set(run.gradebook["student"])
    assert "review marks kept for students not in this run (not applied): dora_partial" in (
        caplog.text
    )
    parked.rename(moved)
    book = pd.read_csv(out / "gradebook.csv").set_index("student") if grade(subs, out) else None
    assert book.loc["dora_partial", "q3"] == 2.0
