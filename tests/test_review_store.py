"""Tests for the review store (autograder/review/store.py): transactions, versions, audit."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from autograder.overrides import Override
from autograder.review.store import ConflictError, ReviewError, ReviewStore

POSSIBLE = {"q1a": 1.0, "q3": 3.0}


def result(student: str, score: float = 1.0) -> dict:
    return {
        "student": student,
        "status": "graded",
        "total": score,
        "questions": {"q3": {"score": score, "possible": 3.0, "tags": [], "feedback": ""}},
    }


@pytest.fixture()
def store(tmp_path: Path) -> ReviewStore:
    """A store with a recorded run of ann, bob and cy."""
    store = ReviewStore.of(tmp_path)
    with store.write(who="grade", possible=POSSIBLE) as tx:
        tx.record_run(
            autograded=[result(s) for s in ("ann", "bob", "cy")], submissions=None, roster=None
        )
    return store


def test_a_stale_version_is_a_conflict_naming_who_changed_it(store):
    """Does a write based on an old version fail with who and when, and keep the first write?"""
    with store.write(who="alice", possible=POSSIBLE) as tx:
        tx.set_points(student="ann", question="q3", points=2.0, version=0)
    with (
        pytest.raises(ConflictError, match=r"changed by alice at .* \(version 1, yours 0\)"),
        store.write(who="bob", possible=POSSIBLE) as tx,
    ):
        tx.set_points(student="ann", question="q3", points=1.0, version=0)
    assert store.read().mark("ann", "q3").points == 2.0


def test_a_failed_transaction_leaves_nothing_behind(store):
    """If a later step of a change fails, are its earlier steps (and their audit rows) undone?"""
    before = store.history()
    with pytest.raises(ReviewError), store.write(who="alice", possible=POSSIBLE) as tx:
        tx.set_points(student="ann", question="q3", points=2.0, version=0)
        tx.set_points(student="bob", question="q3", points=7.0, version=0)  # out of range
    assert store.read().marks == {} and store.history() == before


def test_every_change_is_audited_with_who_old_and_new(store):
    """Does the audit trail record each change, newest first, with its old and new value?"""
    with store.write(who="alice", possible=POSSIBLE) as tx:
        item = tx.add_item(question="q3", text="sign error", points=-0.5)
        tx.apply_item(student="ann", item_id=item.id)
        tx.set_comment(student="ann", question="q3", text="see me", version=1)
    with store.write(who="bob", possible=POSSIBLE) as tx:
        tx.edit_item(item.id, version=1, text="sign error", points=-1.0, comment="")
        assert tx.changed == {"ann"}
    rows = [(c.who, c.action, c.student, c.old, c.new) for c in store.history()]
    assert rows[:4] == [
        (
            "bob",
            "item edited",
            None,
            {"text": "sign error", "points": -0.5, "comment": ""},
            {"text": "sign error", "points": -1.0, "comment": ""},
        ),
        ("alice", "comment set", "ann", "", "see me"),
        (
            "alice",
            "item applied",
            "ann",
            None,
            {"text": "sign error", "points": -0.5, "comment": ""},
        ),
        (
            "alice",
            "item created",
            None,
            None,
            {"text": "sign error", "points": -0.5, "comment": ""},
        ),
    ]
    assert [c.action for c in store.history(student="ann")] == ["comment set", "item applied"]


def test_commutative_changes_need_no_version_and_are_idempotent(store):
    """Can items be applied and comments added without a version, and is re-applying a no-op?"""
    with store.write(who="a", possible=POSSIBLE) as tx:
        item = tx.add_item(question="q3", text="x", points=0.5)
    with store.write(who="a", possible=POSSIBLE) as tx:
        assert tx.apply_item(student="bob", item_id=item.id) is True
        assert tx.apply_item(student="bob", item_id=item.id) is False
        tx.add_comment(student="bob", question="q3", text="first")
        tx.add_comment(student="bob", question="q3", text="second")
    mark = store.read().mark("bob", "q3")
    assert mark.items == (item.id,) and mark.comment == "first\nsecond" and mark.version == 3


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda tx: tx.set_points(student="ann", question="q3", points=3.5, version=0),
            "between 0 and 3",
        ),
        (
            lambda tx: tx.set_points(student="ann", question="q9", points=1, version=0),
            "unknown question 'q9'",
        ),
        (
            lambda tx: tx.set_points(student="zed", question="q3", points=1, version=0),
            "no graded submission from student 'zed'",
        ),
        (lambda tx: tx.apply_item(student="ann", item_id=42), "no rubric item 42"),
        (lambda tx: tx.add_item(question="q1a", text="x", points=2.0), r"between -1 and \+1"),
        (lambda tx: tx.add_item(question="q1a", text="  ", points=0.5), "item text is empty"),
    ],
)
def test_bad_changes_are_refused_with_a_reason(store, call, message):
    """Is each bad change a ReviewError that says what is wrong?"""
    with pytest.raises(ReviewError, match=message), store.write(who="a", possible=POSSIBLE) as tx:
        call(tx)


def test_importing_the_same_rows_twice_changes_nothing_the_second_time(store):
    """Is a re-import of identical overrides a no-op (no audit rows, no version bump)?"""
    rows = [Override("ann", "q3", 2.5, "oral exam", 2), Override("bob", "q1a", 0.0, "", 3)]
    with store.write(who="a", possible=POSSIBLE) as tx:
        assert tx.import_overrides(rows, source="o.csv") == 2
    audit = len(store.history())
    with store.write(who="a", possible=POSSIBLE) as tx:
        assert tx.import_overrides(rows, source="o.csv") == 0
    assert len(store.history()) == audit
    assert store.read().mark("ann", "q3").comment == "oral exam"


def test_the_run_keeps_its_roster_as_text(tmp_path):
    """Does the recorded roster come back with its ids as written (``007`` stays ``007``)?"""
    store = ReviewStore.of(tmp_path)
    roster = pd.DataFrame({"student": ["007", "ann"], "name": ["James", ""]}, dtype=str)
    with store.write(who="grade", possible=POSSIBLE) as tx:
        tx.record_run(autograded=[result("007")], submissions=tmp_path, roster=roster)
    run = store.read().run
    pd.testing.assert_frame_equal(run.roster(), roster)
    assert run.submissions == str(tmp_path.resolve())


def test_a_store_from_a_newer_kit_is_refused(tmp_path):
    """Does opening a store with a newer schema fail clearly instead of misreading it?"""
    ReviewStore.of(tmp_path)
    with sqlite3.connect(tmp_path / "review.sqlite") as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    with pytest.raises(ReviewError, match="newer kit"):
        ReviewStore.of(tmp_path)


def _apply_many(path: str, who: str, item: int, students: list[str]) -> None:
    store = ReviewStore(Path(path))
    for student in students:
        with store.write(who=who, possible=POSSIBLE) as tx:
            tx.apply_item(student=student, item_id=item)
            tx.add_comment(student=student, question="q3", text=f"from {who}")


def test_two_processes_writing_at_once_lose_nothing(store):
    """Do two TAs (processes) marking the same submissions at the same time both keep every
    change: all items applied, every comment appended, every change audited?"""
    with store.write(who="setup", possible=POSSIBLE) as tx:
        one = tx.add_item(question="q3", text="one", points=0.5).id
        two = tx.add_item(question="q3", text="two", points=-0.5).id
    students = ["ann", "bob", "cy"] * 5
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_apply_many, args=(str(store.path), who, item, students))
        for who, item in (("alice", one), ("bob", two))
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    state = store.read()
    for student in ("ann", "bob", "cy"):
        mark = state.mark(student, "q3")
        assert sorted(mark.items) == [one, two]
        assert sorted(mark.comment.split("\n")) == ["from alice"] * 5 + ["from bob"] * 5
    comments = [c for c in store.history() if c.action == "comment added"]
    assert len(comments) == 30
