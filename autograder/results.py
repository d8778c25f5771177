"""One result per submission, in the ``results/<student>.json`` format, for every engine.

Engines produce :class:`CaseOutcome` lists per question; this module alone turns them into the
result dict (scores, tags, feedback), so the engines cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .pack.spec import Pack


@dataclass(frozen=True)
class CaseOutcome:
    """One hidden case of one question, as an engine saw it."""

    case: str
    """Case name (``typical``, ``edge``, ...)."""
    points: float
    """Points the case is worth."""
    passed: bool
    tags: tuple[str, ...] = ()
    """Diagnosis tags when failed."""
    text: str = ""
    """Student-facing message when failed (with its hint)."""


def empty_result(student: str, status: str, feedback: str, *, pack: Pack) -> dict:
    """A result with no points, for a submission that could not be graded."""
    questions = {
        q.id: {"score": 0.0, "possible": float(q.points), "tags": [], "feedback": feedback}
        for q in pack.questions
    }
    return {
        "student": student,
        "status": status,
        "total": 0.0,
        "possible": float(pack.total_points),
        "questions": questions,
    }


def question_entry(question: str, outcomes: Sequence[CaseOutcome] | None, *, pack: Pack) -> dict:
    """A question's entry: points of the passed cases, tags and feedback of the failed ones."""
    possible = float(pack.question(question).points)
    if outcomes is None:
        return {
            "score": 0.0,
            "possible": possible,
            "tags": ["missing"],
            "feedback": "no test results for this question",
        }
    tags: list[str] = []
    lines: list[str] = []
    for outcome in outcomes:
        if outcome.passed:
            continue
        tags += [t for t in outcome.tags if t not in tags]
        lines.append(f"[{outcome.case}, {outcome.points:g} pt] {outcome.text}")
    score = round(sum(o.points for o in outcomes if o.passed), 6)
    feedback = "\n".join(lines) if lines else "All tests passed."
    cases = [
        {"case": o.case, "points": o.points, "passed": o.passed, "tags": list(o.tags)}
        for o in outcomes
    ]
    return {
        "score": min(score, possible),
        "possible": possible,
        "tags": tags,
        "feedback": feedback,
        "cases": cases,
    }


def graded_result(
    student: str,
    outcomes: Mapping[str, Sequence[CaseOutcome]],
    *,
    pack: Pack,
    advice: Mapping[str, str] | None = None,
    notes: Sequence[str] = (),
) -> dict:
    """The result of a graded submission; advice is appended to the feedback, never scored.

    ``notes`` (e.g. interrupted cells) are kept under ``"notes"`` when there are any.
    """
    questions = {q: question_entry(q, outcomes.get(q), pack=pack) for q in pack.question_ids}
    for question, note in (advice or {}).items():
        questions[question]["feedback"] += f"\n{note}"
    result = {
        "student": student,
        "status": "graded",
        "total": round(sum(q["score"] for q in questions.values()), 6),
        "possible": float(pack.total_points),
        "questions": questions,
    }
    if notes:
        result["notes"] = list(notes)
    return result
