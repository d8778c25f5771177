"""Tests for turning the review forms into store operations (autograder/review/actions.py)."""

from __future__ import annotations

import pytest

from autograder.gradebook import GradebookError
from autograder.review.actions import (
    MAX_UPLOAD,
    as_points,
    bulk_op,
    edit_item_op,
    import_op,
    mark_op,
    new_item_op,
)
from autograder.review.store import ReviewError
from helpers import MP


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: mark_op({"action": "drop"}, student="a", question="q3"), "unknown action"),
        (
            lambda: mark_op({"action": "points", "points": "1"}, student="a", question="q3"),
            "expected a whole number, got None",
        ),
        (
            lambda: mark_op(
                {"action": "points", "points": "lots", "version": "0"}, student="a", question="q3"
            ),
            "points must be a number, got 'lots'",
        ),
        (
            lambda: mark_op(
                {"action": "points", "points": "nan", "version": "0"}, student="a", question="q3"
            ),
            "finite",
        ),
        (
            lambda: bulk_op({"action": "apply", "item": "1"}, question="q3", students=[]),
            "no submission selected",
        ),
        (
            lambda: bulk_op({"action": "apply"}, question="q3", students=["a"]),
            "choose a rubric item",
        ),
        (
            lambda: bulk_op(
                {"action": "points", "points": "1", "version:a": "0"},
                question="q3",
                students=["a", "b"],
            ),
            "no version for b",
        ),
        (lambda: bulk_op({"action": "grade"}, question="q3", students=["a"]), "unknown bulk"),
        (lambda: new_item_op({"text": "x", "points": ""}, question="q3"), "points must be"),
        (lambda: edit_item_op({"action": "save", "points": "1"}, item=1), "whole number"),
    ],
)
def test_bad_forms_are_refused_before_anything_is_written(build, message):
    """Is each malformed form a ReviewError saying what is wrong, raised while building (so the
    store is never touched)?"""
    with pytest.raises(ReviewError, match=message):
        build()


def test_points_accept_a_decimal_comma():
    """Does "0,5" (a German keyboard) mean half a point?"""
    assert as_points(" 0,5 ") == 0.5


def test_imports_are_checked_like_grade_overrides():
    """Is an uploaded overrides CSV validated by the same reader as `grade --overrides` (bad
    question, unknown student, oversized file)?"""
    with pytest.raises(GradebookError, match="unknown question 'q9'"):
        import_op(b"student,question,points\na,q9,1\n", name="o.csv", students=["a"], pack=MP)
    with pytest.raises(GradebookError, match="no submission from student 'b'"):
        import_op(b"student,question,points\nb,q3,1\n", name="o.csv", students=["a"], pack=MP)
    with pytest.raises(ReviewError, match="larger than 10 MB"):
        import_op(b"x" * (MAX_UPLOAD + 1), name="o.csv", students=["a"], pack=MP)
