"""The student-facing contract: questions, points and function names, resolved in one place.

Other tools and TAs depend on these names and numbers; change them only with the issue.
"""

from __future__ import annotations

from dataclasses import dataclass

from .checks.tags import TAGS as CHECK_TAGS


@dataclass(frozen=True)
class Question:
    """One graded question of the assignment."""

    name: str
    """Question id as used in the notebook, the results and the gradebook (e.g. ``"q1a"``)."""
    sheet: str
    """The exercise-sheet label (e.g. ``"2-1 a"``)."""
    points: float
    """Points the question is worth."""
    functions: tuple[str, ...]
    """Names of the functions the student defines for this question."""


QUESTIONS: tuple[Question, ...] = (
    Question("q1a", "2-1 a", 1, ("jacobian_Wx",)),
    Question("q1b", "2-1 b", 1, ("jacobian_xT_WT",)),
    Question("q1c", "2-1 c", 1, ("jacobian_elementwise",)),
    Question("q1d", "2-1 d", 2, ("dL_dW",)),
    Question("q2a", "2-2 a", 2, ("softmax_diag_derivative", "softmax_jacobian")),
    Question("q2b", "2-2 b", 2, ("cross_entropy_grad",)),
    Question("q3", "2-3", 3, ("mse_minimizer",)),
)

QUESTION_NAMES: tuple[str, ...] = tuple(q.name for q in QUESTIONS)
TOTAL_POINTS: float = sum(q.points for q in QUESTIONS)
BY_NAME: dict[str, Question] = {q.name: q for q in QUESTIONS}

GRADEBOOK_COLUMNS: tuple[str, ...] = ("student", *QUESTION_NAMES, "total", "percent", "status")
"""Fixed leading columns of ``gradebook.csv``."""

TAGS: dict[str, str] = CHECK_TAGS
"""The fixed vocabulary of diagnosis tags written to the results (tag -> hint for students)."""

STATUSES: tuple[str, ...] = ("graded", "timeout", "error", "invalid", "missing")
"""Values of the gradebook's ``status`` column."""
