"""One result per submission, in the ``results/<student>.json`` format, for every engine.

Engines produce :class:`CaseOutcome` lists per question; this module alone turns them into the
result dict (scores, tags, feedback), so the engines cannot drift apart. Texts that may come from
the student (exception messages in case texts, notes, reasons) are made valid Unicode here
(:func:`~autograder.safetext.valid_unicode`): a lone surrogate cannot be written as UTF-8.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import re
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, NotRequired, TypedDict, cast, overload

from .pack.spec import Pack, Question
from .safetext import valid_unicode

MAX_STEM_BYTES = 200
"""Longest file stem (UTF-8 bytes) used for a student's ``results/`` and ``feedback/`` files;
with the longest suffix (``.json``, ``.html``) it stays far below the 255-byte limit of
common file systems."""
_UNSAFE_CHARS = re.compile(r'[/\\:*?"<>|]')
"""Characters no output file name gets: path separators, and what Windows forbids (so the output
folder can be copied anywhere)."""


def file_stem(student: str) -> str:
    """The file stem of a student's output files (``results/<stem>.json``, ``feedback/<stem>.md``).

    A plain id is its own stem, so ``ann`` and ``hw 01 (final)`` write ``results/ann.json`` and
    ``results/hw 01 (final).json``. Plain: printable (no control, format or separator characters
    but the space), none of ``/ \\ : * ? " < > | ~``, no leading dot, no leading or trailing
    space, at most :data:`MAX_STEM_BYTES` bytes. Any other id gets its plain characters (the
    others as ``_``), then ``~`` and 12 hex digits of its SHA-256: a plain stem has no ``~`` and
    the others differ by their hash, so distinct ids never share a stem, and no id can name
    another folder.
    """
    student = str(student)
    if _is_plain(student):
        return student
    digest = hashlib.sha256(student.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    readable = "".join(c if c.isprintable() else "_" for c in valid_unicode(student))
    readable = _UNSAFE_CHARS.sub("_", readable).strip(". _")
    readable = readable.encode()[: MAX_STEM_BYTES - 13].decode("utf-8", "ignore")
    return f"{readable}~{digest}"


def _is_plain(student: str) -> bool:
    return (
        student.isprintable()
        and _UNSAFE_CHARS.search(student) is None
        and "~" not in student
        and not student.startswith(".")
        and student == student.strip()
        and bool(student)
        and len(student.encode()) <= MAX_STEM_BYTES
    )


ResultStatus = Literal["graded", "invalid", "timeout", "error"]
"""A result's ``status``: ``graded``; ``invalid`` (the submission is unusable: no points, graded
by hand if at all); ``timeout`` or ``error`` (grading failed; graded again on the next run). The
gradebook adds ``missing`` for a roster student without a result."""


class CaseRecord(TypedDict):
    """One hidden case of a question entry (``cases``), in the order of the pack's spec."""

    case: str
    points: float
    passed: bool
    tags: list[str]
    """Diagnosis tags when failed (empty when passed)."""


class OverrideRecord(TypedDict):
    """A TA's override of a question's score (see :mod:`autograder.overrides`)."""

    points: float
    comment: str
    autograded: float
    """The score before the override."""


class QuestionEntry(TypedDict):
    """One question of a result (``questions[<id>]``), in this key order."""

    score: float
    """Points scored (autograded, or the override's)."""
    possible: float
    """Points the question is worth, manual points included."""
    manual_possible: NotRequired[float]
    """The manual part of ``possible`` (see :data:`MANUAL_POSSIBLE`)."""
    tags: list[str]
    """Tags of the failed cases (``missing``: no test results for the question)."""
    feedback: str
    """Student-facing text: one line per failed case, then advice and notes."""
    cases: NotRequired[list[CaseRecord]]
    """Per-case outcomes, when the question was graded."""
    override: NotRequired[OverrideRecord]
    """A TA's override, when one was applied."""


class Result(TypedDict):
    """One submission's result: ``results/<stem>.json`` (a contract: this key order, these
    types)."""

    student: str
    status: ResultStatus
    total: float
    """Sum of the question scores (rounded to 6 decimals)."""
    possible: float
    """The pack's total points."""
    questions: dict[str, QuestionEntry]
    """Question id -> entry, in the pack's order."""
    notes: NotRequired[list[str]]
    """Remarks on the grading (interrupted cells, a late submission, engine disagreements)."""
    kernel_scores: NotRequired[dict[str, float]]
    """The scores the student's kernel computed (the Otter engine with the judge plugin)."""
    overridden: NotRequired[list[str]]
    """Questions a TA overrode, in the pack's order."""


class Possible(TypedDict):
    """A question entry's ``possible`` points, and the manual part when there is one."""

    possible: float
    manual_possible: NotRequired[float]


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


MANUAL_POSSIBLE: Final = "manual_possible"
"""Key of a question entry holding the manual part of its ``possible`` points (the question's
``derivation_points``, marked by a TA in the review app, never autograded). Present only when
the question has manual points, so results of packs without them are unchanged."""


def autograded_possible(entry: Mapping) -> float:
    """The autograded part of a question entry's ``possible`` points."""
    return float(entry.get("possible") or 0.0) - float(entry.get(MANUAL_POSSIBLE) or 0.0)


def _possible(question: Question) -> Possible:
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


def empty_result(student: str, status: ResultStatus, feedback: str, *, pack: Pack) -> Result:
    """A result with no points, for a submission that could not be graded."""
    feedback = valid_unicode(feedback)
    questions: dict[str, QuestionEntry] = {
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


def question_entry(
    question: str, outcomes: Sequence[CaseOutcome] | None, *, pack: Pack
) -> QuestionEntry:
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
        lines.append(f"[{outcome.case}, {outcome.points:g} pt] {valid_unicode(outcome.text)}")
    score = round(sum(o.points for o in outcomes if o.passed), 6)
    feedback = "\n".join(lines) if lines else "All tests passed."
    cases: list[CaseRecord] = [
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
) -> Result:
    """The result of a graded submission; advice is appended to the feedback, never scored.

    ``notes`` (e.g. interrupted cells) are kept under ``"notes"`` when there are any.
    """
    questions = {q: question_entry(q, outcomes.get(q), pack=pack) for q in pack.question_ids}
    for question, note in (advice or {}).items():
        questions[question]["feedback"] += f"\n{valid_unicode(note)}"
    result: Result = {
        "student": student,
        "status": "graded",
        "total": round(sum(q["score"] for q in questions.values()), 6),
        "possible": float(pack.total_points),
        "questions": questions,
    }
    if notes:
        result["notes"] = [valid_unicode(note) for note in notes]
    return result


_WBITS = 12
"""zlib window of packed results (4 KB: a result is a few KB)."""
_WINDOW = 1 << _WBITS
"""The most of a preset dictionary that window uses."""


class PackedResults(Sequence[Any]):
    """Result dicts kept compressed in memory (a few hundred bytes each instead of 12 KB of
    Python objects), so a batch of 10,000 holds its results in a few MB.

    A read-only sequence for its readers: each item read is a fresh dict, what decoding the
    result's JSON gives (changing it changes nothing stored); :meth:`append` adds one. A result
    that is not JSON-serialisable is kept as it is, so the writer of ``results/`` reports it as
    before.

    Each item is kept as the :mod:`marshal` form of its decoded JSON (read back three times
    faster than JSON, and exactly: it holds only dicts, lists, text, numbers, booleans and None),
    compressed against the first item (results of one pack share most of their text) with a
    small window (setting up zlib's default one costs more than compressing a result).
    """

    def __init__(self, results: Iterable[Any] = ()) -> None:
        self._students: list[object] = []
        self._items: list[bytes | dict] = []
        self._zdict = b""
        for result in results:
            self.append(result)

    def append(self, result: Any) -> None:
        """Add a result (packed now: later changes to ``result`` are not seen)."""
        self._students.append(result.get("student") if isinstance(result, dict) else None)
        self._items.append(self._pack(result))

    def _pack(self, result: Any) -> bytes | dict:
        try:
            data = marshal.dumps(json.loads(json.dumps(result)))
        except (TypeError, ValueError):  # not JSON: kept as is, for write_results to report
            return result
        if not self._zdict:
            self._zdict = data[-_WINDOW:]
        packer = zlib.compressobj(1, zlib.DEFLATED, _WBITS, 8, zlib.Z_DEFAULT_STRATEGY, self._zdict)
        return packer.compress(data) + packer.flush()

    def extend(self, results: Iterable[Any]) -> None:
        """Append every result; those of a :class:`PackedResults` packed against the same
        dictionary (or into an empty one) are taken as they are, not decoded and packed again."""
        if isinstance(results, PackedResults) and (
            results._zdict == self._zdict or not self._items
        ):
            self._zdict = results._zdict or self._zdict
            self._students += results._students
            self._items += results._items
            return
        for result in results:
            self.append(result)

    def changed(self, students: Collection[str], change: Callable[[dict], Any]) -> PackedResults:
        """A copy where the result of each student in ``students`` is ``change(result)`` (a
        fresh dict to change in place, or a new result); the others are shared, not decoded."""
        copy = PackedResults()
        copy._zdict, copy._students, copy._items = self._zdict, [*self._students], [*self._items]
        for index, student in enumerate(self._students):
            if isinstance(student, str) and student in students:
                result = change(self._unpack(self._items[index]))
                copy._students[index] = result.get("student") if isinstance(result, dict) else None
                copy._items[index] = copy._pack(result)
        return copy

    def ids(self) -> list[object]:
        """Each result's ``student`` value as it is (None where it has none), in order."""
        return list(self._students)

    def sort_by_student(self) -> PackedResults:
        """Sort in place by student id (stable), as the gradebook is."""
        order = sorted(range(len(self._items)), key=lambda i: str(self._students[i]))
        self._students = [self._students[i] for i in order]
        self._items = [self._items[i] for i in order]
        return self

    def packed(self) -> tuple[bytes, list[object], list[bytes]] | None:
        """The preset dictionary, the student ids and the packed items, for
        :meth:`from_packed` in another process; None when an item is kept as it is (not JSON)."""
        if not all(isinstance(item, bytes) for item in self._items):
            return None
        return self._zdict, list(self._students), cast("list[bytes]", list(self._items))

    @classmethod
    def from_packed(cls, zdict: bytes, students: list[object], items: list[bytes]) -> PackedResults:
        """The results :meth:`packed` gave, in their order."""
        results = cls()
        results._zdict, results._students, results._items = zdict, list(students), list(items)
        return results

    @property
    def students(self) -> list[str]:
        """The student ids, in order (as text)."""
        return [str(student) for student in self._students]

    def _unpack(self, item: bytes | dict) -> dict:
        if not isinstance(item, bytes):
            return item
        unpacker = zlib.decompressobj(_WBITS, self._zdict)
        return marshal.loads(unpacker.decompress(item) + unpacker.flush())

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self._unpack(item) for item in self._items[index]]
        return self._unpack(self._items[index])

    def __iter__(self) -> Iterator[Any]:
        for item in self._items:
            yield self._unpack(item)


def student_ids(results: Sequence[Any], checked: Callable[[Any, int], str]) -> list[str]:
    """``[checked(result, index) for index, result in enumerate(results)]``, where ``checked``
    returns a result's student id (a non-blank string) or raises; a :class:`PackedResults`
    decodes only the results whose id is not one."""
    if not isinstance(results, PackedResults):
        return [checked(result, index) for index, result in enumerate(results)]
    return [
        student if isinstance(student, str) and student.strip() else checked(results[index], index)
        for index, student in enumerate(results.ids())
    ]
