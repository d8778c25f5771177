"""Tests for the one source of question ids and points (autograder/review/questions.py)."""

from __future__ import annotations

import json

from autograder.contract import QUESTIONS
from autograder.review.questions import QuestionSpec, question_specs


def test_without_a_manifest_the_kits_questions_are_used(tmp_path):
    """With no OUT/assignment.json, are the kit's questions (ids, labels, points, functions)
    listed in gradebook order?"""
    specs = question_specs(tmp_path)
    assert [(s.id, s.label, s.points, s.functions) for s in specs] == [
        (q.name, q.sheet, float(q.points), q.functions) for q in QUESTIONS
    ]


def test_the_manifest_decides_ids_and_points(tmp_path):
    """Does a run manifest's question list (another pack, other points) win, with function
    names still found for ids the kit knows?"""
    manifest = {
        "questions": [
            {"id": "q1a", "sheet": "A", "points": 2},
            {"id": "bp1", "sheet": "backprop 1", "points": 4},
        ]
    }
    (tmp_path / "assignment.json").write_text(json.dumps(manifest))
    assert question_specs(tmp_path) == (
        QuestionSpec("q1a", "A", 2.0, ("jacobian_Wx",)),
        QuestionSpec("bp1", "backprop 1", 4.0, ()),
    )


def test_questions_found_only_in_results_are_listed(tmp_path):
    """Is a question the results hold but no metadata names still shown (its id as label)?"""
    (tmp_path / "assignment.json").write_text("{not json")
    results = [{"student": "a", "questions": {"extra": {"score": 0, "possible": 1.5}}}]
    specs = question_specs(tmp_path, results)
    assert specs[-1] == QuestionSpec("extra", "extra", 1.5)
    assert len(specs) == len(QUESTIONS) + 1
