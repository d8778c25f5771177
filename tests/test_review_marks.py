"""Tests for the layering of human marks over the autograde (autograder/review/marks.py)."""

from __future__ import annotations

import pytest

from autograder.overrides import Override
from autograder.review.marks import Mark, RubricItem, layer, overrides_for

MINUS = RubricItem(1, "q3", "sign error", -0.5, "Check the sign of the gradient.", 1)
PLUS = RubricItem(2, "q3", "derivation right", 1.0, "", 2)
ITEMS = {1: MINUS, 2: PLUS}


@pytest.mark.parametrize(
    ("autograded", "mark", "run", "final", "rule", "clamped"),
    [
        (2.0, None, None, 2.0, "autograde", False),
        (2.0, Mark("a", "q3", items=(1,)), None, 1.5, "rubric", False),
        (2.0, Mark("a", "q3", items=(1, 2)), None, 2.5, "rubric", False),
        (3.0, Mark("a", "q3", items=(2,)), None, 3.0, "rubric", True),
        (0.0, Mark("a", "q3", items=(1,)), None, 0.0, "rubric", True),
        (2.0, Mark("a", "q3", points=0.5, items=(2,)), None, 0.5, "set points", False),
        (1.0, None, Override("a", "q3", 2.5, "oral exam", 2), 2.5, "run override", False),
        (1.0, Mark("a", "q3", items=(1,)), Override("a", "q3", 2.5, "", 2), 2.0, "rubric", False),
        (
            1.0,
            Mark("a", "q3", points=3.0),
            Override("a", "q3", 2.5, "", 2),
            3.0,
            "set points",
            False,
        ),
    ],
)
def test_the_layering_rule(autograded, mark, run, final, rule, clamped):
    """Do rubric items adjust the base (autograde or --overrides row), set points replace
    everything, and is the result clamped to [0, possible]?"""
    layered = layer(autograded=autograded, possible=3.0, mark=mark, items=ITEMS, run_override=run)
    assert (layered.final, layered.rule, layered.clamped) == (final, rule, clamped)
    assert layered.autograded == autograded


def test_the_student_reads_item_comments_with_points_then_the_ta_comment():
    """Is the comment the CSV's, then each item's comment (or text) with its points, then the
    TA's own, in item order?"""
    mark = Mark("a", "q3", comment="See me in office hours.", items=(2, 1))
    run = Override("a", "q3", 2.0, "oral exam", 2)
    layered = layer(autograded=1.0, possible=3.0, mark=mark, items=ITEMS, run_override=run)
    assert layered.comment == (
        "oral exam; Check the sign of the gradient. (-0.5 pt); derivation right (+1 pt); "
        "See me in office hours."
    )


def test_with_set_points_items_are_named_without_points():
    """When points are set by hand, do item comments still reach the student, without the
    points that no longer count?"""
    layered = layer(
        autograded=1.0, possible=3.0, mark=Mark("a", "q3", points=2, items=(1,)), items=ITEMS
    )
    assert layered.comment == "Check the sign of the gradient."


def test_deleted_items_do_not_count():
    """Does an applied item missing from the item table (deleted) change nothing?"""
    layered = layer(autograded=1.0, possible=3.0, mark=Mark("a", "q3", items=(9,)), items=ITEMS)
    assert (layered.final, layered.rule, layered.overridden) == (1.0, "autograde", False)


def test_a_comment_alone_makes_an_override_with_unchanged_points():
    """Is a comment without points still delivered (an override at the autograded points)?"""
    results = [{"student": "a", "questions": {"q3": {"score": 1.5}}}]
    [override] = overrides_for(
        results, marks=[Mark("a", "q3", comment="Nice.")], items={}, possible={"q3": 3.0}
    )
    assert (override.points, override.comment) == (1.5, "Nice.")


def test_overrides_skip_unknown_students_and_questions_and_empty_marks():
    """Are marks of students or questions not in the run left out, and empty marks ignored?"""
    results = [{"student": "a", "questions": {"q3": {"score": 1.0}}}]
    marks = [
        Mark("a", "q3", points=2.0),
        Mark("gone", "q3", points=1.0),
        Mark("a", "q9", points=1.0),
        Mark("a", "q1a"),
    ]
    found = overrides_for(results, marks=marks, items={}, possible={"q3": 3.0, "q1a": 1.0})
    assert found == [Override("a", "q3", 2.0, "", 0)]
