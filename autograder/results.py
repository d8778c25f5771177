"""One result per submission, in the ``results/<student>.json`` format, for every engine.

Engines produce :class:`CaseOutcome` lists per question; this module alone turns them into the
result dict (scores, tags, feedback), so the engines cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .pack.spec import Pack, Question


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


MANUAL_POSSIBLE = "manual_possible"
"""Key of a question entry holding the manual part of its ``possible`` points (the question's
``derivation_points``, marked by a TA in the review app, never autograded). Present only when
the question has manual points, so results of packs without them are unchanged."""


def autograded_possible(entry: Mapping) -> float:
    """The autograded part of a question entry's ``possible`` points."""
    return float(entry.get("possible") or 0.0) - float(entry.get(MANUAL_POSSIBLE) or 0.0)


def _possible(question: Question) -> dict:
    """``possible`` (autograded plus manual points), and :data:`MANUAL_POSSIBLE` when there are
    manual points."""
    if question.derivation_points > 0:
        return {
            "possible": float(question.possible),
            MANUAL_POSSIBLE: float(question.derivation_points),
        }
    return {"possible": float(question.points)}


def manual_note(question: Question) -> str:
    """The feedback line of a question with manual points: who marks them and that the score
    above does not hold them yet."""
    points = question.derivation_points
    return (
        f"Your derivation: up to {points:g} point{'s' if points != 1 else ''}, marked by a TA "
        "(not included until marked)."
    )


def empty_result(student: str, status: str, feedback: str, *, pack: Pack) -> dict:
    """A result with no points, for a submission that could not be graded."""
    questions = {
        q.id: {"score": 0.0, **_possible(q), "tags": [], "feedback": feedback}
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
    """A question's entry: points of the passed cases, tags and feedback of the failed ones.

    A question with manual derivation points says so (``possible`` holds them, see
    :data:`MANUAL_POSSIBLE`; the feedback ends with :func:`manual_note`); its autograded score
    stays within its autograded points.
    """
    spec = pack.question(question)
    possible = float(spec.points)
    manual = f"\n{manual_note(spec)}" if spec.derivation_points > 0 else ""
    if outcomes is None:
        return {
            "score": 0.0,
            **_possible(spec),
            "tags": ["missing"],
            "feedback": "no test results for this question" + manual,
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
        **_possible(spec),
        "tags": tags,
        "feedback": feedback + manual,
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
