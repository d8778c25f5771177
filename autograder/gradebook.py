"""Collate per-student results into one gradebook DataFrame, and write results and gradebook.

A per-student result is a plain dict (written to ``OUT/results/<student>.json``)::

    {"student": "ann", "status": "graded", "total": 9.5, "possible": 12.0,
     "questions": {"q1": {"score": 1.0, "possible": 1.0, "tags": [], "feedback": ""}, ...}}

``status`` is one of :data:`STATUSES`; for statuses other than ``graded``, ``questions`` may be
``{}`` and ``total`` 0. The gradebook is collated once, in a fixed column order: the pack's
:attr:`~autograder.pack.spec.Pack.gradebook_columns` (``student``, the question ids, ``total``,
``percent``, ``status``), then the roster's extra columns, then ``on_roster`` when a roster is
given.
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import os
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

from autograder.errors import KitError
from autograder.pack.spec import Pack
from autograder.results import file_stem, student_ids
from autograder.safecsv import write_csv

if TYPE_CHECKING:  # pandas is imported where a table is built: not before the first result
    import pandas as pd

logger = logging.getLogger(__name__)

SCORE_DECIMALS = 4
"""Decimals kept for points in ``gradebook.csv``."""
PERCENT_DECIMALS = 2
"""Decimals kept for the ``percent`` column."""
_POINTS_TOLERANCE = 1e-6
STATUSES: tuple[str, ...] = ("graded", "timeout", "error", "invalid", "missing")
"""Values of the gradebook's ``status`` column."""
RESERVED_COLUMNS: tuple[str, ...] = ("student", "total", "percent", "status", "on_roster")
"""Gradebook columns of every pack, which a roster may not bring (nor the question ids)."""


class GradebookError(KitError):
    """Results or roster cannot be collated without losing or inventing data."""


def collate(results: list[dict], *, roster: pd.DataFrame | None = None, pack: Pack) -> pd.DataFrame:
    """Build the gradebook: one row per student, sorted by student, in a fixed column order.

    Points per question come from ``result["questions"][q]["score"]`` (0 when the question is
    absent); ``total`` is their sum and ``percent`` is ``100 * total / pack.total_points``
    rounded to 2 decimals.

    Args:
        results: One result dict per submission (see the module docstring).
        pack: The assignment (its questions and points are the gradebook's columns).
        roster: Optional DataFrame with a ``student`` column and any other columns (``name``,
            ``email``, ...). Every roster student gets a row (status ``missing`` and zeros when
            nothing was submitted); submissions not on the roster are kept and flagged with
            ``on_roster = False``. Extra roster columns go after ``status``, followed by the
            boolean ``on_roster``.

    Returns:
        The gradebook DataFrame with a fresh RangeIndex.

    Raises:
        GradebookError: If a result is malformed (unknown status or question, score out of
            range, total inconsistent with the scores), two results share a student id, or the
            roster is invalid.
    """
    import pandas as pd

    rows = [_result_row(result, index, pack) for index, result in enumerate(results)]
    duplicates = _duplicates(row["student"] for row in rows)
    if duplicates:
        raise GradebookError(
            f"several results for student(s) {', '.join(duplicates)}; every submission needs "
            "its own student id (fix the submissions folder, e.g. rename one)"
        )
    columns = list(pack.gradebook_columns)
    table = pd.DataFrame(rows, columns=columns)

    if roster is not None:
        roster = _checked_roster(roster, reserved=(*RESERVED_COLUMNS, *pack.question_ids))
        submitted = set(table["student"])
        absent = [s for s in roster["student"] if s not in submitted]
        if absent:
            missing = pd.DataFrame([_missing_row(s, pack) for s in absent], columns=columns)
            table = pd.concat([table, missing], ignore_index=True) if rows else missing
        off_roster = sorted(submitted - set(roster["student"]))
        if off_roster:
            logger.warning("submissions not on the roster: %s", ", ".join(off_roster))
        extra = [c for c in roster.columns if c != "student"]
        table = table.merge(roster, on="student", how="left", validate="one_to_one")
        table["on_roster"] = table["student"].isin(set(roster["student"]))
        columns += [*extra, "on_roster"]

    table = table.sort_values("student", kind="stable", ignore_index=True)
    table = table[columns]
    points = [*pack.question_ids, "total", "percent"]
    table[points] = table[points].astype(float)
    return table.astype({"student": str, "status": str})


def read_roster(path: Path) -> pd.DataFrame:
    """Read a roster CSV with a ``student`` column (and any others, e.g. ``name``, ``email``).

    All columns are read as strings (``007`` stays ``007``); column names and student ids are
    stripped of surrounding whitespace; empty cells become empty strings.

    Args:
        path: The roster CSV.

    Returns:
        The roster, one row per student, in file order.

    Raises:
        GradebookError: If the file is missing or unreadable, has no ``student`` column, or has
            empty or duplicate student ids.
    """
    path = Path(path)
    roster = read_ta_csv(path, name=f"roster {path}")
    return _checked_roster(roster, name=f"roster {path}", in_file=True)


def check_roster(roster: pd.DataFrame, *, pack: Pack) -> pd.DataFrame:
    """Check a roster against a pack's gradebook columns (before anything is graded).

    Raises:
        GradebookError: a roster column clashes with a gradebook column of the pack.
    """
    return _checked_roster(roster, reserved=(*RESERVED_COLUMNS, *pack.question_ids))


def read_ta_csv(path: Path, *, name: str) -> pd.DataFrame:
    """A CSV a TA wrote (roster, overrides): all text, BOM tolerated, header names stripped.

    Raises:
        GradebookError: If the file is missing or cannot be read as CSV; ``name`` says which.
    """
    import pandas as pd

    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except FileNotFoundError as e:
        raise GradebookError(f"{name} does not exist") from e
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise GradebookError(f"cannot read {name}: {e}") from e
    table.columns = [str(c).strip() for c in table.columns]
    return table


def write_results(results: list[dict], out: Path) -> None:
    """Write each result to ``out/results/<stem>.json`` (UTF-8, indent 2).

    The stem is the student id when it is a plain file name, else a safe name derived from it
    (:func:`~autograder.results.file_stem`); the id itself is in the file's ``student`` field.
    A lone surrogate in a text (e.g. from a student's exception message) is written as the JSON
    escape ``\\udXXX``, so the file is valid UTF-8 and reads back to the same string.

    Args:
        results: One result dict per submission.
        out: The output folder; ``results/`` is created inside it.

    Raises:
        GradebookError: If a result has no usable student id, two results share one (one file
            would overwrite the other), or a result is not JSON-serialisable (e.g. a NaN score).
    """
    students = student_ids(results, _student_id)
    duplicates = _duplicates(students)
    if duplicates:
        raise GradebookError(f"several results for student(s) {', '.join(duplicates)}")
    folder = Path(out) / "results"
    folder.mkdir(parents=True, exist_ok=True)
    prefix = f"{folder}{os.sep}"
    for student, result in zip(students, results, strict=True):
        try:
            text = json.dumps(result, indent=2, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise GradebookError(f"result for {student!r} cannot be written as JSON: {e}") from e
        # Only lone surrogates cannot be encoded; inside a JSON string "\udXXX" is their escape.
        data = (text + "\n").encode("utf-8", "backslashreplace")
        write_file(f"{prefix}{file_stem(student)}.json", data)
    log_results_written(len(results), Path(out))


def log_results_written(count: int, out: Path) -> None:
    """The log line of :func:`write_results` (also said for the files a helper process wrote)."""
    logger.info("wrote %d result file(s) to %s", count, Path(out) / "results")


def write_file(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` (created or truncated, mode 0o666 less the umask), as
    ``Path.write_bytes`` does, with a third of its overhead (one of thousands of small files)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def write_gradebook(df: pd.DataFrame, out: Path) -> Path:
    """Write the gradebook to ``out/gradebook.csv`` with deterministic formatting.

    Points are rounded to 4 decimals and percent to 2, written in their shortest form (``1.0``,
    ``0.3333``); UTF-8, ``\\n`` line endings, no index. Text cells that a spreadsheet would
    evaluate (``=HYPERLINK(...)`` as a student id or roster name) are written with a leading
    apostrophe (:func:`autograder.safecsv.write_csv`).

    Args:
        df: A gradebook from :func:`collate`.
        out: The output folder (created if needed).

    Returns:
        The path of the written CSV.
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "gradebook.csv"
    table = df.copy()
    points = point_columns(table)
    table[points] = table[points].astype(float).round(SCORE_DECIMALS)
    if "percent" in table.columns:
        table["percent"] = table["percent"].astype(float).round(PERCENT_DECIMALS)
    # Add 0.0 so that a rounded -0.0 is written as 0.0.
    table[points] = table[points] + 0.0
    write_csv(table, path)  # text a spreadsheet would evaluate is neutralised (safecsv.py)
    logger.info("wrote gradebook with %d row(s) to %s", len(table), path)
    return path


def point_columns(df: pd.DataFrame) -> list[str]:
    """The columns of a gradebook holding points: the question columns and ``total`` (every
    column after ``student`` up to ``total``)."""
    columns = list(df.columns)
    if "student" not in columns or "total" not in columns:
        return [c for c in ("total",) if c in columns]
    return columns[columns.index("student") + 1 : columns.index("total") + 1]


def summary_table(df: pd.DataFrame, *, pack: Pack) -> pd.DataFrame:
    """Summarise a gradebook per question, over the rows with status ``graded``.

    Args:
        df: A gradebook from :func:`collate`.
        pack: The assignment it was collated for.

    Returns:
        One row per question, then a ``total`` row, with columns ``question``, ``points``
        (points available), ``mean`` (mean score, NaN when nothing was graded) and
        ``full_marks_rate`` (fraction of graded rows with full points, NaN when nothing was
        graded).
    """
    import pandas as pd

    graded = df[df["status"] == "graded"]
    rows = []
    available = [(q.id, q.possible) for q in pack.questions]
    for name, points in [*available, ("total", pack.total_points)]:
        scores = graded[name].astype(float)
        full = (scores >= points - _POINTS_TOLERANCE).mean() if len(scores) else math.nan
        rows.append(
            {
                "question": name,
                "points": float(points),
                "mean": scores.mean() if len(scores) else math.nan,
                "full_marks_rate": float(full),
            }
        )
    return pd.DataFrame(rows, columns=["question", "points", "mean", "full_marks_rate"])


def _student_id(result: Any, index: int) -> str:
    if not isinstance(result, dict):
        raise GradebookError(f"result #{index} is a {type(result).__name__}, expected a dict")
    student = result.get("student")
    if not isinstance(student, str) or not student.strip():
        raise GradebookError(f"result #{index} has no student id (got {student!r})")
    return student


def _result_row(result: Any, index: int, pack: Pack) -> dict[str, Any]:
    """Check one result against the pack and turn it into a gradebook row."""
    student = _student_id(result, index)
    status = result.get("status")
    if status not in STATUSES:
        raise GradebookError(
            f"result for {student!r} has status {status!r}, expected one of {', '.join(STATUSES)}"
        )
    questions = result.get("questions") or {}
    if not isinstance(questions, dict):
        raise GradebookError(
            f"result for {student!r}: 'questions' is a {type(questions).__name__}, expected a dict"
        )
    names = pack.question_ids
    unknown = sorted(set(questions) - set(names))
    if unknown:
        raise GradebookError(
            f"result for {student!r} has unknown question(s) {', '.join(map(str, unknown))}; "
            f"expected {', '.join(names)} ({pack.name})"
        )
    row: dict[str, Any] = {"student": student, "status": status}
    for question in pack.questions:
        row[question.id] = _score(
            student, question.id, question.possible, questions.get(question.id)
        )
    row["total"] = math.fsum(row[name] for name in names)
    claimed = result.get("total")
    if claimed is not None and not (
        _is_number(claimed) and abs(claimed - row["total"]) <= _POINTS_TOLERANCE
    ):
        raise GradebookError(
            f"result for {student!r} has total {claimed!r}, but its question scores add up to "
            f"{row['total']:g}"
        )
    row["percent"] = round(100 * row["total"] / pack.total_points, PERCENT_DECIMALS)
    return row


def _score(student: str, name: str, points: float, entry: Any) -> float:
    if entry is None:
        return 0.0
    where = f"result for {student!r}, question {name}"
    if not isinstance(entry, dict):
        raise GradebookError(f"{where}: got a {type(entry).__name__}, expected a dict")
    score = entry.get("score")
    if not _is_number(score) or not -_POINTS_TOLERANCE <= score <= points + _POINTS_TOLERANCE:
        raise GradebookError(f"{where}: score {score!r} is not a number between 0 and {points:g}")
    possible = entry.get("possible")
    if possible is not None and not (
        _is_number(possible) and abs(possible - points) <= _POINTS_TOLERANCE
    ):
        raise GradebookError(
            f"{where}: graded out of {possible!r} points, but the assignment gives {points:g}"
        )
    return float(score)


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _missing_row(student: str, pack: Pack) -> dict[str, Any]:
    return {
        "student": student,
        **{name: 0.0 for name in pack.question_ids},
        "total": 0.0,
        "percent": 0.0,
        "status": "missing",
    }


def _checked_roster(
    roster: pd.DataFrame,
    *,
    name: str = "roster",
    in_file: bool = False,
    reserved: tuple[str, ...] = RESERVED_COLUMNS,
) -> pd.DataFrame:
    """Validate a roster and return a copy with stripped string student ids.

    Args:
        roster: The roster to check.
        name: How messages name the roster (e.g. ``"roster roster.csv"``).
        in_file: Name bad rows by their row in the file (header = row 1) instead of their index.
        reserved: Columns a roster may not bring (the gradebook's own).
    """
    import pandas as pd

    def where(mask: pd.Series) -> str:
        if in_file:
            rows = [str(i + 2) for i in range(len(mask)) if mask.iloc[i]]
            return f"row(s) {', '.join(rows)}, counting the header as row 1"
        return f"row(s) with index {', '.join(str(i) for i in roster.index[mask])}"

    if not isinstance(roster, pd.DataFrame):
        raise GradebookError(f"{name} must be a DataFrame, got a {type(roster).__name__}")
    if "student" not in roster.columns:
        found = ", ".join(map(str, roster.columns)) or "no columns"
        raise GradebookError(f"{name} has no 'student' column (found: {found})")
    clash = [c for c in roster.columns if c != "student" and c in reserved]
    if clash:
        raise GradebookError(
            f"{name} has columns {', '.join(map(str, clash))} that clash with gradebook "
            "columns; rename or drop them"
        )
    roster = roster.copy()
    empty = roster["student"].isna()
    roster["student"] = roster["student"].astype(str).str.strip()
    empty |= roster["student"] == ""
    if empty.any():
        raise GradebookError(f"{name} has empty student ids ({where(empty)})")
    duplicates = _duplicates(roster["student"])
    if duplicates:
        raise GradebookError(f"{name} lists student(s) {', '.join(duplicates)} more than once")
    return roster.reset_index(drop=True)


def _duplicates(values: Any) -> list[str]:
    return sorted(value for value, count in Counter(values).items() if count > 1)
