"""Tests for re-collation after a review change (autograder/review/outputs.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from review_support import grade

from autograder.review.outputs import Recollator
from autograder.review.questions import question_specs, run_pack
from autograder.review.store import ReviewStore

OUTPUTS = ("gradebook.csv", "canvas.csv", "moodle.csv", "long.csv", "report.html")


@pytest.fixture()
def out(review_demo: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(review_demo, tmp_path / "out"))


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
    with store.write(who="alice", possible=specs) as tx:
        item = tx.add_item(
            question="q1b", text="explained", points=0.5, comment="Rows are outputs."
        )
        for student in ("ben_mistakes", "bea_mistakes", "bo_mistakes"):
            tx.apply_item(student=student, item_id=item.id)
        tx.set_points(student="eli_broken", question="q3", points=1.5, version=0)
        tx.add_comment(student="ada_correct", question="q1a", text="<b>neat</b> & tidy")
        saved = recollator.save(tx)
    assert saved.students == 5
    assert recollator.flush(timeout=60)
    after_save = files(out)
    assert b"bea_mistakes,0.0,0.5," in after_save["gradebook.csv"]
    assert b"Rows are outputs. (+0.5 pt)" in after_save["feedback/bo_mistakes.md"]
    assert b"&lt;b&gt;neat&lt;/b&gt; &amp; tidy" in after_save["feedback/ada_correct.html"]
    assert (
        b"Manual overrides" in after_save["report.html"]
        and b"eli_broken" in after_save["report.html"]
    )
    grade(Path(store.read().run.submissions), out)
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
        tx.set_points(student="cleo_blank", question="q1a", points=1.0, version=0)
        recollator.save(tx)
    assert not untouched.exists()
    assert "Manual override: 1 / 1" in (out / "feedback" / "cleo_blank.md").read_text()
    assert "cleo_blank,1.0," in (out / "gradebook.csv").read_text()
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
        tx.set_points(student="cleo_blank", question="q1a", points=1.0, version=0)
        recollator.save(tx)
    assert store.read().marks == {}
