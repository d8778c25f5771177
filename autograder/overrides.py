"""Manual overrides: a TA's points for a question, applied on top of the autograded score.

The overrides CSV has the columns ``student``, ``question``, ``points`` and optionally
``comment`` (other columns are ignored with a warning)::

    student,question,points,comment
    ann,q3,2.5,"derivation correct, arithmetic slip"

An override replaces the question's score in the result and keeps what was autograded beside it::

    result["questions"]["q3"]["override"] = {"points": 2.5, "comment": "...", "autograded": 1.0}

The question's feedback says so, ``result["total"]`` is recomputed, and the gradebook (collated
from the results) follows. Overrides are applied to every status (a TA may grade an unusable
notebook by hand); the status itself is kept.

Every mistake in the file is a :class:`~autograder.gradebook.GradebookError` naming its row
(counting the header as row 1): a missing column, an unknown question, points that are not a
number in ``[0, possible]``, two rows for the same student and question, and a student without a
submission (a typo would otherwise silently leave a student without their points). The file is
checked before grading starts, so a mistake costs no grading time.
"""

from __future__ import annotations

import copy
import difflib
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .gradebook import GradebookError, read_ta_csv
from .pack.spec import Pack
from .results import PackedResults

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("student", "question", "points")
OPTIONAL_COLUMNS = ("comment",)


@dataclass(frozen=True)
class Override:
    """One row of the overrides CSV."""

    student: str
    """Student id, as in the gradebook."""
    question: str
    """Question id of the assignment (e.g. ``q1``)."""
    points: float
    """The points awarded instead of the autograded score, in ``[0, possible]``."""
    comment: str
    """The TA's reason, shown to the student (may be empty)."""
    row: int
    """Row in the file, counting the header as row 1 (for messages)."""


def read_overrides(path: Path, *, pack: Pack) -> list[Override]:
    """Read and validate an overrides CSV.

    Args:
        path: The CSV with columns ``student, question, points[, comment]``.
        pack: The assignment (its question ids and points).

    Returns:
        The overrides in file order.

    Raises:
        GradebookError: If the file is missing or unreadable, lacks a required column, or a row
            has an empty student, an unknown question, points that are not a number between 0
            and the question's points, or repeats a (student, question) pair.
    """
    path = Path(path)
    name = f"overrides {path}"
    table = read_ta_csv(path, name=name)
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        found = ", ".join(table.columns) or "no columns"
        raise GradebookError(
            f"{name} has no {', '.join(missing)} column (found: {found}); "
            f"expected {', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}"
        )
    extra = [c for c in table.columns if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if extra:
        log.warning("%s: ignoring column(s) %s", name, ", ".join(extra))

    overrides: list[Override] = []
    seen: dict[tuple[str, str], int] = {}
    for index, record in enumerate(table.to_dict("records")):
        row = index + 2
        where = f"{name}, row {row} (counting the header as row 1)"
        student = record["student"].strip()
        question = record["question"].strip()
        if not student:
            raise GradebookError(f"{where}: empty student id")
        if question not in pack.by_id:
            raise GradebookError(
                f"{where}: unknown question {question!r}; expected one of "
                f"{', '.join(pack.question_ids)}"
            )
        possible = float(pack.question(question).possible)
        text = record["points"].strip()
        try:
            points = float(text)
        except ValueError:
            points = math.nan
        if not math.isfinite(points) or not 0 <= points <= possible:
            raise GradebookError(
                f"{where}: points {text!r} for {question} must be a number between 0 and "
                f"{possible:g}"
            )
        if (student, question) in seen:
            raise GradebookError(
                f"{where}: a second override for {student}, {question} (the first is on row "
                f"{seen[student, question]}); keep one"
            )
        seen[student, question] = row
        comment = record.get("comment", "").strip()
        overrides.append(Override(student, question, points, comment, row))
    return overrides


def check_students(
    overrides: Iterable[Override], students: Iterable[str], *, path: Path | None
) -> None:
    """Raise if an override names a student without a submission.

    Raises:
        GradebookError: naming the first such row, with close matches when there are any.
    """
    known = sorted(set(students))
    for override in overrides:
        if override.student not in known:
            close = difflib.get_close_matches(override.student, known, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise GradebookError(
                f"overrides {path}, row {override.row} (counting the header as row 1): no "
                f"submission from student {override.student!r}{hint}; overrides apply to "
                "submitted work only"
            )


def apply_overrides(
    results: Sequence[Mapping[str, Any]] | PackedResults,
    overrides: Iterable[Override],
    *,
    pack: Pack,
) -> list[dict] | PackedResults:
    """Results with the overrides applied; the given results are not modified.

    Each overridden question gets ``score = points`` and an ``override`` entry (``points``,
    ``comment``, ``autograded``: the score before the override); its feedback ends with a line
    saying so. The result's ``total`` is recomputed and ``overridden`` lists the questions.
    A result without an override is returned as it is (not copied), and results read one at a
    time (a :class:`~autograder.results.PackedResults` gives a packed one back), so a large
    batch is never held twice.

    Raises:
        GradebookError: If an override names a student without a result.
    """
    by_student: dict[str, list[Override]] = {}
    for override in overrides:
        by_student.setdefault(override.student, []).append(override)
    if by_student:
        students = (
            set(results.ids())
            if isinstance(results, PackedResults)
            else {r["student"] for r in results}
        )
        for override in (o for group in by_student.values() for o in group):
            if override.student not in students:
                raise GradebookError(
                    f"override on row {override.row}: no result for student {override.student!r}"
                )
    if isinstance(results, PackedResults):  # the others shared, not decoded and packed again

        def overridden(result: dict) -> dict:
            for override in by_student[result["student"]]:
                _apply(result, override, pack=pack)
            return result

        return results.changed(by_student, overridden)
    applied: list[dict] = []
    for result in results:
        mine = by_student.get(result["student"])
        if mine:
            copied = dict(copy.deepcopy(result))
            for override in mine:
                _apply(copied, override, pack=pack)
            result = copied
        applied.append(result)  # type: ignore[arg-type]  # a Mapping: the caller's result
    return applied


def _apply(result: dict, override: Override, *, pack: Pack) -> None:
    """Apply one override to a result (in place)."""
    questions = result.setdefault("questions", {})
    possible = float(pack.question(override.question).possible)
    entry = questions.setdefault(
        override.question, {"score": 0.0, "possible": possible, "tags": [], "feedback": ""}
    )
    autograded = entry.get("score", 0.0)
    entry["score"] = override.points
    entry["override"] = {
        "points": override.points,
        "comment": override.comment,
        "autograded": autograded,
    }
    note = (
        f"Manual override: {override.points:g} / {possible:g} points "
        f"(autograded: {autograded:g})" + (f". {override.comment}" if override.comment else "")
    )
    entry["feedback"] = f"{entry['feedback']}\n{note}" if entry.get("feedback") else note
    overridden = result.setdefault("overridden", [])
    overridden.append(override.question)
    overridden.sort(key=pack.question_ids.index)
    result["total"] = round(math.fsum(q["score"] for q in questions.values()), 6)
