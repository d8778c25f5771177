"""Tests for the one source of the assignment and its questions (autograder/review/questions.py)."""

from __future__ import annotations

import json

from autograder.review.questions import QuestionSpec, question_specs, run_pack
from autograder.review.store import RunContext
from helpers import MP, TINY


def test_questions_come_from_the_pack_in_gradebook_order():
    """Are a pack's questions listed with their sheet labels, points, function names and
    derivation points, in the pack's order, for Exercise 2 and another pack alike?"""
    for pack in (MP, TINY):
        specs = question_specs(pack)
        assert [s.id for s in specs] == list(pack.question_ids)
        for spec, question in zip(specs, pack.questions, strict=True):
            assert (spec.label, spec.points, spec.derivation_points) == (
                question.sheet,
                float(question.points),
                float(question.derivation_points),
            )
            assert spec.functions == tuple(f.name for f in question.functions)
    assert question_specs(MP)[0].functions == ("jacobian_Wx",)


def test_questions_found_only_in_results_are_listed():
    """Is a question the results hold but the pack does not still shown (its id as label)?"""
    results = [{"student": "a", "questions": {"extra": {"score": 0, "possible": 1.5}}}]
    specs = question_specs(TINY, results)
    assert specs[-1] == QuestionSpec("extra", "extra", 1.5)
    assert len(specs) == len(TINY.questions) + 1


def test_the_recorded_pack_wins_then_the_manifest_then_the_default(tmp_path):
    """Is the pack `grade` recorded used (by folder, then by name), then the manifest's
    assignment, then the course default?"""
    run = RunContext("r", "t", None, pack_name="math_primer", pack_folder=str(TINY.folder))
    assert run_pack(tmp_path, run).name == "tiny"
    gone = RunContext("r", "t", None, pack_name="math_primer", pack_folder=str(tmp_path / "x"))
    assert run_pack(tmp_path, gone).name == "math_primer"
    (tmp_path / "assignment.json").write_text(json.dumps({"assignment": "math_primer"}))
    assert run_pack(tmp_path, None).name == "math_primer"
    (tmp_path / "assignment.json").unlink()
    assert run_pack(tmp_path, None).name == "math_primer"  # the course's default


def test_a_ta_may_award_the_derivation_points_on_top_of_the_autograded_ones():
    """Is what a TA may award for a question its autograded points plus its derivation's manual
    points (the tiny pack has a derivation worth points; Exercise 2's are worth 0)?"""
    for pack in (MP, TINY):
        for spec, question in zip(question_specs(pack), pack.questions, strict=True):
            assert spec.possible == float(question.possible)
    assert any(spec.possible > spec.points for spec in question_specs(TINY))
    assert all(spec.possible == spec.points for spec in question_specs(MP))
