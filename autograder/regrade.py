"""Regrade chosen questions for the whole class: ``grade SUBMISSIONS --out OUT --force --question
QID`` (after an instructor fixed that question's checks).

How it works, in the order ``grading.grade`` runs it:

1. :func:`check_questions`: the ids must be the pack's, and ``--force`` must be given (a
   regrade always grades every submission again; without ``--force`` nothing would be).
2. :class:`Regrade` finds each submission's previous result in ``OUT/.cache``
   (:meth:`~autograder.cache.ResultCache.previous`: under the current key, or under the key of an
   earlier fingerprint of the assignment, same submission content and grader settings), and the
   autograded results the gradebook showed (the review store's snapshot, ``OUT/review.sqlite``).
3. Every submission is graded again: with the judge, only the chosen questions are judged
   (:class:`QuestionGrader`; a submission without a previous result is graded in full); the
   ``otter`` and ``docker`` engines grade whole notebooks.
4. :func:`merge`: the chosen questions' entries are taken from the fresh grade, every other
   question's entry is kept exactly as cached, the total is recomputed. The merged result is
   cached under the *current* key, so a plain rerun afterwards reuses it. A fresh ``error`` or
   ``timeout`` row replaces the result as in any run (never cached: the next run grades that
   submission again, in full).
5. The outputs are re-collated as in a normal run; human marks (the review app's and the
   ``--overrides`` rows) are layered over the new autograde, never overwritten.
6. :meth:`Regrade.report`: every answer whose status, points or tags changed goes to
   ``OUT/regrade-<qid>.csv`` (and the terminal); those under a human mark are flagged for review
   in the store (:meth:`~autograder.review.store.Writer.flag`), in the run's transaction.

What a ``--question`` regrade means for the cache: it adopts the current assignment for *all*
questions. The other questions keep their results, now filed under the new fingerprint, so a
plain rerun reuses everything. If the checks of several questions changed, name each one with
``--question`` (or run ``--force`` alone, which grades everything again).
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from .cache import ResultCache
from .errors import KitError
from .intake import Submission
from .overrides import Override
from .pack.spec import Pack
from .results import Result
from .review.store import STORE_NAME, ReviewStore
from .safecsv import write_csv

log = logging.getLogger(__name__)

COLUMNS = (
    "student",
    "question",
    "old_status",
    "new_status",
    "old_points",
    "new_points",
    "old_tags",
    "new_tags",
    "human_mark",
    "final_points",
)
"""Columns of ``OUT/regrade-<qid>.csv``: one row per answer whose autograde changed.
``human_mark`` is ``yes`` when a TA's mark or an ``--overrides`` row sits on it (then it is
flagged for review in the app), ``final_points`` what the gradebook shows (marks applied)."""


class RegradeError(KitError):
    """A ``--question`` regrade cannot start (unknown question, no ``--force``)."""


def check_questions(questions: Sequence[str], *, pack: Pack, force: bool) -> tuple[str, ...]:
    """The chosen question ids, checked, without repeats, in the pack's order.

    Raises:
        RegradeError: an id the pack does not have (the message lists the pack's ids), or no
            ``force``.
    """
    known = pack.question_ids
    unknown = [q for q in questions if q not in known]
    if unknown:
        raise RegradeError(
            f"--question: no question {unknown[0]!r} in {pack.name}; its questions are "
            f"{', '.join(known)}"
        )
    if not force:
        raise RegradeError(
            "--question regrades that question for every submission: add --force "
            f"(grade ... --force --question {questions[0]})"
        )
    return tuple(q for q in known if q in questions)


def changes_path(out: Path, questions: Sequence[str]) -> Path:
    """``OUT/regrade-<qid>.csv`` (ids joined by ``-`` when there are several)."""
    return Path(out) / f"regrade-{'-'.join(questions)}.csv"


def compatible(result: Mapping, *, pack: Pack) -> bool:
    """Can the other questions of this cached result be kept with the current pack (same
    questions and points)?"""
    entries = result.get("questions")
    if not isinstance(entries, Mapping) or set(entries) != set(pack.question_ids):
        return False
    if not math.isclose(float(result.get("possible") or 0), float(pack.total_points)):
        return False
    return all(
        isinstance(entries[q.id], Mapping)
        and math.isclose(float(entries[q.id].get("possible") or 0), float(q.possible))
        for q in pack.questions
    )


def merge(previous: Result | None, fresh: Result, *, questions: Sequence[str]) -> Result:
    """The result of a regrade: ``fresh``'s entries for ``questions``, ``previous``'s for the
    others (unchanged), the total recomputed; notes of both (the previous ones first).

    ``fresh`` as it is when there is no previous result or either was not graded (an ``error``
    or ``timeout`` row replaces the result, an ``invalid`` submission is invalid either way).
    """
    if previous is None or previous.get("status") != "graded" or fresh.get("status") != "graded":
        return fresh
    merged = copy.deepcopy(previous)
    for question in questions:
        merged["questions"][question] = copy.deepcopy(fresh["questions"][question])
    merged["total"] = round(sum(float(e["score"]) for e in merged["questions"].values()), 6)
    notes = list(previous.get("notes") or ())
    notes += [n for n in fresh.get("notes") or () if n not in notes]
    if notes:
        merged["notes"] = notes
    return merged


@dataclass(frozen=True)
class QuestionGrader:
    """The judge for a regrade: only the chosen questions for submissions whose other questions
    are carried over, everything for the others (picklable, for Dask workers)."""

    full: Callable[[Submission], Result]
    """Grades every question."""
    only: Callable[[Submission], Result]
    """Grades the chosen questions only."""
    carried: frozenset[str]
    """Students whose previous result is kept for the other questions."""

    def __call__(self, submission: Submission) -> Result:
        grade = self.only if submission.student in self.carried else self.full
        return grade(submission)


@dataclass(frozen=True)
class Change:
    """One answer whose autograde a regrade changed (a row of ``regrade-<qid>.csv``)."""

    student: str
    question: str
    old_status: str | None
    """The result's status before (``None``: the student had no result)."""
    new_status: str
    old_points: float | None
    new_points: float
    old_tags: tuple[str, ...]
    new_tags: tuple[str, ...]
    human_mark: bool = False
    """A TA's mark or an ``--overrides`` row sits on it (it is flagged for review)."""
    final_points: float | None = None
    """What the gradebook shows for it (human marks applied)."""

    @property
    def reason(self) -> str:
        """The flag's text for the review app."""
        old = "no result" if self.old_points is None else f"{self.old_points:g}"
        text = f"regrade of {self.question}: autograded {old} -> {self.new_points:g}"
        if self.old_tags != self.new_tags:
            text += f" (tags {' '.join(self.old_tags) or '-'} -> {' '.join(self.new_tags) or '-'})"
        if self.old_status is not None and self.old_status != self.new_status:
            text += f", status {self.old_status} -> {self.new_status}"
        return text

    def values(self) -> tuple[dict, dict]:
        """The old and new autograde, as recorded with a flag."""
        old = {"status": self.old_status, "points": self.old_points, "tags": list(self.old_tags)}
        new = {"status": self.new_status, "points": self.new_points, "tags": list(self.new_tags)}
        return old, new


@dataclass(frozen=True)
class RegradeReport:
    """What a regrade changed."""

    questions: tuple[str, ...]
    changes: tuple[Change, ...]
    path: Path
    """The changes file, ``OUT/regrade-<qid>.csv``."""
    regraded: int
    """Submissions graded again."""
    carried: int
    """Of those, submissions whose other questions were kept from the cache."""

    @property
    def flagged(self) -> tuple[Change, ...]:
        """Changes under a human mark (flagged for review in the app)."""
        return tuple(c for c in self.changes if c.human_mark)


class Regrade:
    """One ``--question`` regrade of a graded folder (see the module docstring).

    Args:
        out: The graded folder.
        questions: Checked question ids (:func:`check_questions`).
        pack: The assignment.
        cache: The run's cache (current fingerprint and settings).
        submissions: Every submission of the run.
    """

    def __init__(
        self,
        *,
        out: Path,
        questions: Sequence[str],
        pack: Pack,
        cache: ResultCache,
        submissions: list[Submission],
    ) -> None:
        self.out = Path(out)
        self.questions = tuple(questions)
        self.pack = pack
        self.previous = {
            student: result
            for student, result in cache.previous(submissions).items()
            if compatible(result, pack=pack)
        }
        self.before: dict[str, Mapping[str, Any]] = dict(self.previous)
        if (self.out / STORE_NAME).is_file():  # what the gradebook showed, before any mark
            _, snapshot = ReviewStore.of(self.out).autograded()
            self.before.update({r["student"]: r for r in snapshot})
        self.total = len(submissions)
        self._merged: dict[str, Result] = {}
        full = len(submissions) - len(self.previous)
        log.info(
            "regrading %s: %d submission(s) keep their other questions, %d graded in full",
            ", ".join(self.questions),
            len(self.previous),
            full,
        )

    def grader(
        self, full: Callable[[Submission], Result], only: Callable[[Submission], Result]
    ) -> QuestionGrader:
        """The judge's grader for this regrade."""
        return QuestionGrader(full, only, frozenset(self.previous))

    def merge(self, fresh: Result) -> Result:
        """A fresh result merged with the student's previous one (:func:`merge`)."""
        merged = merge(self.previous.get(fresh["student"]), fresh, questions=self.questions)
        self._merged[fresh["student"]] = merged
        return merged

    def merging(self, on_done: Callable[[Result], None]) -> Callable[[Result], None]:
        """``on_done`` that merges each fresh result first (so the cache stores the merged)."""
        return lambda result: on_done(self.merge(result))

    def merged(self, results: list[Result]) -> list[Result]:
        """The merged results of the batch (in its order)."""
        return [self._merged.get(r["student"]) or self.merge(r) for r in results]

    def changed(self, autograded: Sequence[Mapping[str, Any]]) -> list[Change]:
        """The chosen questions' answers whose status, points or tags differ from before."""
        found = []
        for question in self.questions:
            for result in autograded:
                student = result["student"]
                old = self.before.get(student)
                new_entry = (result.get("questions") or {}).get(question) or {}
                old_entry = ((old or {}).get("questions") or {}).get(question) or {}
                change = Change(
                    student=student,
                    question=question,
                    old_status=None if old is None else str(old.get("status")),
                    new_status=str(result.get("status")),
                    old_points=None if old is None else float(old_entry.get("score") or 0),
                    new_points=float(new_entry.get("score") or 0),
                    old_tags=tuple(map(str, old_entry.get("tags") or ())),
                    new_tags=tuple(map(str, new_entry.get("tags") or ())),
                )
                if (
                    change.old_status != change.new_status
                    or change.old_points is None
                    or not math.isclose(change.old_points, change.new_points, abs_tol=1e-9)
                    or change.old_tags != change.new_tags
                ):
                    found.append(change)
        return found

    @staticmethod
    def flags(changes: Sequence[Change]) -> dict[tuple[str, str], tuple[str, object, object]]:
        """The changes as the review hook takes them (it flags those under a human mark)."""
        return {(c.student, c.question): (c.reason, *c.values()) for c in changes}

    def report(
        self, changes: Sequence[Change], *, human: Sequence[Override], results: list[dict]
    ) -> RegradeReport:
        """Complete the changes with the human marks and final points; write the changes file.

        Args:
            changes: :meth:`changed`'s list.
            human: The overrides the run applied (TA marks and ``--overrides`` rows).
            results: The final results (marks applied).
        """
        marked = {(o.student, o.question) for o in human}
        final = {r["student"]: r for r in results}

        def final_points(change: Change) -> float:
            entries = final[change.student].get("questions") or {}
            return float((entries.get(change.question) or {}).get("score") or 0)

        done = tuple(
            replace(c, human_mark=(c.student, c.question) in marked, final_points=final_points(c))
            for c in changes
        )
        path = write_changes(done, changes_path(self.out, self.questions))
        return RegradeReport(self.questions, done, path, self.total, len(self.previous))


def write_changes(changes: Sequence[Change], path: Path) -> Path:
    """Write the changes file with the kit's formula-safe CSV writer (a header when empty)."""
    rows = [
        {
            "student": c.student,
            "question": c.question,
            "old_status": c.old_status or "",
            "new_status": c.new_status,
            "old_points": c.old_points,
            "new_points": c.new_points,
            "old_tags": " ".join(c.old_tags),
            "new_tags": " ".join(c.new_tags),
            "human_mark": "yes" if c.human_mark else "no",
            "final_points": c.final_points,
        }
        for c in changes
    ]
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return write_csv(frame, path)
