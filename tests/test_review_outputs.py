"""Tests for re-collation after a review change (autograder/review/outputs.py).

They run on the tiny fixture pack's demo batch (re-collation is machinery, not a sheet's content):
questions, points and the mistake a rubric item is for come from the pack.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from review_support import grade

from autograder.review.outputs import Recollator
from autograder.review.questions import question_specs, run_pack
from autograder.review.store import ReviewStore
from helpers import TINY
from pack_support import first, last, mistake

PACK = TINY
FIRST, LAST = first(PACK), last(PACK)
BY_ID = PACK.by_id
GROUPED = mistake(PACK, "transposed")[0]
"""The question of the demo's ``transposed`` mistake, which ``ben_mistakes`` and its two copies
share: a rubric item is applied to the three."""
OUTPUTS = ("gradebook.csv", "canvas.csv", "moodle.csv", "long.csv", "report.html")


@pytest.fixture()
def out(tiny_review_demo: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_review_demo, tmp_path / "out"))


def files(out: Path) -> dict[str, bytes]:
    """Every output file (not the store, not the cache)."""
    paths = [out / name for name in OUTPUTS]
    paths += sorted((out / "results").glob("*.json")) + sorted((out / "feedback").glob("*"))
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in paths}


def test_a_save_writes_what_grade_would_write(out):
    """After a change, are gradebook, exports, results, feedback and report byte-identical to
    what a full `grade` rerun writes from the same store?"""
    store = ReviewStore.of(out)
    pack = run_pack(out, store.read().run)
    specs = {q.id: q.points for q in question_specs(pack)}
    recollator = Recollator(out, store, pack=pack)
    autograded = pd.read_csv(out / "gradebook.csv", index_col="student")
    with store.write(who="alice", possible=specs) as tx:
        item = tx.add_item(
            question=GROUPED, text="explained", points=0.5, comment="Rows are outputs."
        )
        for student in ("ben_mistakes", "bea_mistakes", "bo_mistakes"):
            tx.apply_item(student=student, item_id=item.id)
        tx.set_points(student="eli_broken", question=LAST.id, points=LAST.points / 2, version=0)
        tx.add_comment(student="ada_correct", question=FIRST.id, text="<b>neat</b> & tidy")
        saved = recollator.save(tx)
    assert saved.students == 5
    assert recollator.flush(timeout=60)
    after_save = files(out)
    gradebook = pd.read_csv(out / "gradebook.csv", index_col="student")
    assert autograded.loc["bea_mistakes", GROUPED] < BY_ID[GROUPED].points - 0.5
    assert gradebook.loc["bea_mistakes", GROUPED] == autograded.loc["bea_mistakes", GROUPED] + 0.5
    assert gradebook.loc["eli_broken", LAST.id] == LAST.points / 2
    assert b"Rows are outputs. (+0.5 pt)" in after_save["feedback/bo_mistakes.md"]
    assert b"&lt;b&gt;neat&lt;/b&gt; &amp; tidy" in after_save["feedback/ada_correct.html"]
    assert (
        b"Manual overrides" in after_save["report.html"]
        and b"eli_broken" in after_save["report.html"]
    )
    grade(Path(store.read().run.submissions), out, assignment=PACK)
    assert files(out) == after_save


def test_a_save_rewrites_only_the_touched_students_files(out):
    """Are results and feedback of students the change did not touch left alone (speed), while
    the gradebook and the exports cover everyone?"""
    store = ReviewStore.of(out)
    pack = run_pack(out, store.read().run)
    specs = {q.id: q.points for q in question_specs(pack)}
    recollator = Recollator(out, store, pack=pack)
    untouched = out / "feedback" / "finn_zip.md"
    untouched.unlink()
    with store.write(who="alice", possible=specs) as tx:
        tx.set_points(student="cleo_blank", question=FIRST.id, points=FIRST.points, version=0)
        recollator.save(tx)
    assert not untouched.exists()
    override = f"Manual override: {FIRST.points:g} / {FIRST.points:g}"
    assert override in (out / "feedback" / "cleo_blank.md").read_text()
    assert f"cleo_blank,{FIRST.points:.1f}," in (out / "gradebook.csv").read_text()
    recollator.flush(timeout=60)


def test_a_failed_save_rolls_the_change_back(out, monkeypatch):
    """If writing the outputs fails, is the change not committed (files and store agree)?"""
    store = ReviewStore.of(out)
    pack = run_pack(out, store.read().run)
    specs = {q.id: q.points for q in question_specs(pack)}
    recollator = Recollator(out, store, pack=pack)
    from autograder import grading

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(grading, "write_outputs", broken)
    with pytest.raises(OSError, match="disk full"), store.write(who="alice", possible=specs) as tx:
        tx.set_points(student="cleo_blank", question=FIRST.id, points=FIRST.points, version=0)
        recollator.save(tx)
    assert store.read().marks == {}
