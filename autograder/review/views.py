"""What the review pages show, computed from the results, the store and the notebooks (pure).

The by-question page groups one question's submissions by their diagnosis tags (the set of
tags of the answer: ``transposed`` apart from ``transposed + wrong_shape``), largest group
first, submissions that were not graded in a group per status, and full-marks answers last and
folded. Within a group the order is a stable shuffle seeded by the question (a hash of question
and student), so no student is always first and a grader's drift does not follow the alphabet.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from markupsafe import Markup

from autograder.overrides import Override

from .marks import Layered, Mark, RubricItem, layer
from .notebooks import SubmissionView
from .questions import QuestionSpec
from .render import highlight_python, render_markdown
from .store import ReviewState

PASSED = "passed"
NO_TAG = "no tag"


@dataclass(frozen=True)
class Case:
    """One hidden case's outcome."""

    case: str
    points: float
    passed: bool
    tags: tuple[str, ...]


@dataclass(frozen=True)
class Card:
    """One submission's answer to one question, with its marks."""

    student: str
    anchor: str
    """An HTML id for the card (a hash: student ids may hold any character)."""
    status: str
    question: QuestionSpec
    tags: tuple[str, ...]
    cases: tuple[Case, ...]
    feedback: str
    """The autograder's message (without any override note)."""
    mark: Mark
    layered: Layered
    applied: tuple[RubricItem, ...]
    code: tuple[Markup, ...] = ()
    derivations: tuple[Markup, ...] = ()
    notebook: str = ""
    """Why no code is shown, when none is."""
    name: str = ""
    """The student's name on the roster, if any."""

    @property
    def changed(self) -> bool:
        return abs(self.layered.final - self.layered.autograded) > 1e-9


@dataclass(frozen=True)
class Group:
    key: str
    title: str
    cards: tuple[Card, ...]
    folded: bool = False


@dataclass(frozen=True)
class StudentPage:
    student: str
    status: str
    notes: tuple[str, ...]
    cards: tuple[Card, ...]
    autograded_total: float
    final_total: float
    possible: float
    source: str = ""


def anchor(student: str) -> str:
    """A stable HTML id for a student's card."""
    return "s-" + hashlib.sha256(student.encode()).hexdigest()[:12]


def shuffle_key(question: str, student: str) -> str:
    """The stable shuffled order of a question's submissions."""
    return hashlib.sha256(f"{question}\0{student}".encode()).hexdigest()


def card(
    result: dict,
    spec: QuestionSpec,
    *,
    state: ReviewState,
    submission: SubmissionView | None,
    notebook_problem: str | None,
    run_overrides: Mapping[tuple[str, str], Override],
    with_content: bool = True,
    name: str = "",
) -> Card:
    """The card of one result's answer to one question."""
    student = result["student"]
    entry = (result.get("questions") or {}).get(spec.id) or {}
    mark = state.mark(student, spec.id)
    items = {i.id: i for i in state.items_of(spec.id)}
    layered = layer(
        autograded=float(entry.get("score") or 0.0),
        possible=spec.possible,
        mark=mark,
        items=items,
        run_override=run_overrides.get((student, spec.id)),
    )
    cases = tuple(
        Case(
            str(c.get("case")),
            float(c.get("points") or 0),
            bool(c.get("passed")),
            tuple(map(str, c.get("tags") or ())),
        )
        for c in entry.get("cases") or ()
        if isinstance(c, dict)
    )
    code: tuple[Markup, ...] = ()
    derivations: tuple[Markup, ...] = ()
    why = ""
    if with_content:
        if submission is None:
            why = notebook_problem or "no notebook found for this student"
        elif submission.problem:
            why = submission.problem
        else:
            answer = submission.answers.get(spec.id)
            if answer is not None:
                code = tuple(highlight_python(c) for c in answer.code)
                derivations = tuple(render_markdown(d) for d in answer.derivations)
            if not code:
                names = ", ".join(spec.functions) or "its functions"
                why = f"no code cell defines {names}"
    return Card(
        student=student,
        anchor=anchor(student),
        status=str(result.get("status", "")),
        question=spec,
        tags=tuple(map(str, entry.get("tags") or ())),
        cases=cases,
        feedback=str(entry.get("feedback") or ""),
        mark=mark,
        layered=layered,
        applied=tuple(items[i] for i in mark.items if i in items),
        code=code,
        derivations=derivations,
        notebook=why,
        name=name,
    )


def group_key(result: dict, question: QuestionSpec) -> str:
    """The group of a result's answer to a question (see the module docstring)."""
    status = str(result.get("status", ""))
    if status != "graded":
        return f"status: {status}"
    entry = (result.get("questions") or {}).get(question.id) or {}
    tags = sorted(set(map(str, entry.get("tags") or ())))
    if tags:
        return " + ".join(tags)
    score = float(entry.get("score") or 0.0)
    return PASSED if score >= question.points - 1e-9 else NO_TAG


def question_groups(
    cards: Sequence[Card], results: Mapping[str, dict], question: QuestionSpec
) -> list[Group]:
    """Cards grouped, groups and cards ordered (see the module docstring)."""
    groups: dict[str, list[Card]] = {}
    for c in cards:
        groups.setdefault(group_key(results[c.student], question), []).append(c)

    def order(key: str) -> tuple:
        return (key == PASSED, key.startswith("status: "), -len(groups[key]), key)

    return [
        Group(
            key,
            key,
            tuple(sorted(groups[key], key=lambda c: shuffle_key(question.id, c.student))),
            folded=key == PASSED,
        )
        for key in sorted(groups, key=order)
    ]


def tags(result: dict, question: str) -> list[str]:
    """The diagnosis tags of a result's answer to a question."""
    entry = (result.get("questions") or {}).get(question) or {}
    return [str(t) for t in entry.get("tags") or ()]


def tag_counts(results: Sequence[dict], question: QuestionSpec) -> list[tuple[str, int]]:
    """How many graded answers to the question carry each tag, most frequent first."""
    counts: dict[str, int] = {}
    for result in results:
        if result.get("status") != "graded":
            continue
        entry = (result.get("questions") or {}).get(question.id) or {}
        for tag in set(map(str, entry.get("tags") or ())):
            counts[tag] = counts.get(tag, 0) + 1
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def reason(result: dict) -> str:
    """Why a result was not graded: its first feedback line."""
    for entry in (result.get("questions") or {}).values():
        text = entry.get("feedback") if isinstance(entry, dict) else None
        if isinstance(text, str) and text.strip():
            return text.strip().splitlines()[0]
    return ""


@dataclass(frozen=True)
class GradebookRow:
    student: str
    status: str
    cells: tuple[tuple[float, float, bool], ...]
    """(autograded, final, marked) per question."""
    autograded: float
    final: float
    notes: tuple[str, ...] = field(default_factory=tuple)
