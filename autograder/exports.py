"""Exports next to ``gradebook.csv``: a Canvas and a Moodle grade import CSV, and a long-format CSV.

- ``canvas.csv``: Canvas's gradebook import format, the columns of Canvas's own grades export
  (``Student, ID, SIS User ID, SIS Login ID, Section``) followed by one assignment column.
- ``moodle.csv``: a Moodle "Import grades from CSV" file, two user identifier columns
  (``ID number``, ``Email address``) and one grade column.
- ``long.csv``: one row per student x question x hidden case x diagnosis tag, for analysis.

Only rows with a grade the kit earned (status ``graded`` or ``timeout``, see
:data:`POSTED_STATUSES`) go into the two LMS files: an ``invalid``, ``error`` or ``missing`` row
is left out (and logged), so an import never writes a 0 that a TA has not looked at, and never
stops on a student the LMS does not know. ``long.csv`` keeps every result.

All files are UTF-8 with ``\\n`` line endings, no index, sorted by student, and points written
in their shortest form after rounding to :data:`~autograder.gradebook.SCORE_DECIMALS` decimals,
so two calls on the same input give byte-identical files.

Every file is written with :func:`autograder.safecsv.write_csv`: a text cell a spreadsheet would
evaluate as a formula (it begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) is
prefixed with an apostrophe. The identifier columns an LMS matches on (:data:`CANVAS_KEPT_COLUMNS`,
:data:`MOODLE_KEPT_COLUMNS`) cannot be changed that way: Canvas's importer reads ``ID`` as a
number and looks ``SIS User ID`` / ``SIS Login ID`` up as exact strings, Moodle matches the mapped
field exactly and aborts the whole import at the first user it cannot find, and neither strips a
leading apostrophe. So a row whose identifier looks like a formula is left out of that LMS file
and logged (grade it by hand); the identifiers that are written are never altered.
"""

from __future__ import annotations

import csv
import itertools
import logging
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from autograder.errors import KitError
from autograder.gradebook import SCORE_DECIMALS
from autograder.pack.spec import Pack
from autograder.results import PackedResults, autograded_possible
from autograder.safecsv import needs_quote, neutralise, write_csv

logger = logging.getLogger(__name__)

POSTED_STATUSES: tuple[str, ...] = ("graded", "timeout")
"""Statuses whose total is written to the LMS files; the other rows need a TA first."""

CANVAS_ID_COLUMNS: tuple[str, ...] = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
"""Leading columns of Canvas's grades export and import, in Canvas's order."""
CANVAS_ROSTER_COLUMNS: dict[str, str] = {
    "Student": "name",
    "ID": "canvas_id",
    "SIS User ID": "sis_user_id",
    "SIS Login ID": "sis_login_id",
    "Section": "section",
}
"""Canvas column -> the roster (or gradebook) column it is filled from."""
CANVAS_KEPT_COLUMNS: tuple[str, ...] = ("ID", "SIS User ID", "SIS Login ID")
"""Canvas identifiers written exactly (never neutralised); rows where one looks like a formula
are left out of ``canvas.csv``."""

MOODLE_ID_COLUMNS: tuple[str, ...] = ("ID number", "Email address")
"""Moodle's user fields as its own grade export names them; map one of them on import."""
MOODLE_ROSTER_COLUMNS: dict[str, str] = {"ID number": "idnumber", "Email address": "email"}
"""Moodle column -> the roster (or gradebook) column it is filled from."""
MOODLE_KEPT_COLUMNS: tuple[str, ...] = MOODLE_ID_COLUMNS
"""Moodle identifiers written exactly (never neutralised); rows where one looks like a formula
are left out of ``moodle.csv``."""

LONG_COLUMNS: tuple[str, ...] = (
    "student",
    "status",
    "question",
    "case",
    "points",
    "passed",
    "tag",
    "tag_source",
    "score",
)
"""Columns of ``long.csv``."""

_CASE_LINE = re.compile(r"^\[(?P<case>[A-Za-z0-9_]+), (?P<points>[0-9.eE+-]+) pt\] ")


class ExportError(KitError):
    """The gradebook or results cannot be exported without inventing or losing data."""


def write_exports(
    table: pd.DataFrame,
    results: list[dict],
    out: Path,
    *,
    pack: Pack,
    assignment: str | None = None,
    roster: pd.DataFrame | None = None,
    long: bool = True,
) -> list[Path]:
    """Write ``canvas.csv``, ``moodle.csv`` and ``long.csv`` into ``out``.

    Args:
        table: The gradebook from :func:`autograder.gradebook.collate` (with its roster columns,
            if any).
        results: The result dicts the gradebook was collated from.
        out: The output folder (the one holding ``gradebook.csv``; created if needed).
        pack: The assignment (its questions and cases make ``long.csv``).
        assignment: The LMS assignment column's header; default the pack's title. For Canvas,
            ``"<title> (12345)"`` (the assignment's Canvas id in parentheses, as in Canvas's
            export) updates that assignment; a name without an id makes Canvas create a new
            assignment.
        roster: Optional roster with identity columns (``name``, ``canvas_id``,
            ``sis_user_id``, ``sis_login_id``, ``section``, ``idnumber``, ``email``), used
            where ``table`` does not already have them.
        long: Also write ``long.csv`` (the review app skips it when a change cannot alter it).

    Returns:
        The written paths: ``canvas.csv``, ``moodle.csv``, ``long.csv`` (when written).

    Raises:
        ExportError: If ``table`` lacks the ``student``, ``total`` or ``status`` column, the
            assignment name is empty or would be read as a formula by a spreadsheet, or the
            roster has no ``student`` column.
    """
    assignment = pack.title if assignment is None else assignment
    if not isinstance(assignment, str) or not assignment.strip():
        raise ExportError(f"the assignment column needs a name, got {assignment!r}")
    if needs_quote(assignment):
        raise ExportError(
            f"the assignment column name {assignment!r} begins with a character that makes "
            "spreadsheets evaluate it as a formula; rename it"
        )
    missing = [c for c in ("student", "total", "status") if c not in table.columns]
    if missing:
        raise ExportError(
            f"the gradebook has no {', '.join(missing)} column(s); pass the table from collate()"
        )
    people = _with_identities(table, roster)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    posted = people[people["status"].isin(POSTED_STATUSES)]
    left_out = people[~people["status"].isin(POSTED_STATUSES)]
    if len(left_out):
        logger.warning(
            "not in canvas.csv / moodle.csv (status not %s): %s",
            " or ".join(POSTED_STATUSES),
            ", ".join(f"{s} ({st})" for s, st in zip(left_out["student"], left_out["status"])),
        )
    if "on_roster" in posted.columns:
        off = posted[~posted["on_roster"].astype(bool)]
        if len(off):
            logger.warning(
                "not in moodle.csv (not on the roster, Moodle would stop the import): %s",
                ", ".join(off["student"]),
            )
    canvas = _lms_safe(canvas_table(posted, assignment=assignment), "canvas.csv")
    moodle = _lms_safe(moodle_table(posted, assignment=assignment), "moodle.csv")
    paths = [
        write_csv(canvas, folder / "canvas.csv", keep=(*CANVAS_KEPT_COLUMNS, assignment)),
        write_csv(moodle, folder / "moodle.csv", keep=(*MOODLE_KEPT_COLUMNS, assignment)),
    ]
    if long:
        paths.append(write_long(results, folder / "long.csv", pack=pack))
    logger.info("wrote %s", ", ".join(str(p) for p in paths))
    return paths


def canvas_table(people: pd.DataFrame, *, assignment: str) -> pd.DataFrame:
    """The Canvas import table: identity columns from the roster, the total as the grade.

    Fallbacks when a column is absent: ``Student`` is the kit's student id, ``SIS Login ID``
    the kit's student id, the others are empty (Canvas needs one of its identifiers per row and
    lists the rows it cannot match on its import page).
    """
    rows = []
    for record in people.sort_values("student", kind="stable").to_dict("records"):
        row = {col: _text(record.get(source)) for col, source in CANVAS_ROSTER_COLUMNS.items()}
        row["Student"] = row["Student"] or record["student"]
        row["SIS Login ID"] = row["SIS Login ID"] or record["student"]
        row[assignment] = _points(record["total"])
        rows.append(row)
    return pd.DataFrame(rows, columns=[*CANVAS_ID_COLUMNS, assignment], dtype=object)


def moodle_table(people: pd.DataFrame, *, assignment: str) -> pd.DataFrame:
    """The Moodle import table: ``ID number``, ``Email address`` and the total as the grade.

    ``ID number`` is the roster's ``idnumber``, else the kit's student id; ``Email address`` the
    roster's ``email``, else empty. Students flagged ``on_roster = False`` are left out: Moodle
    aborts the whole import at the first row whose user it cannot find.
    """
    if "on_roster" in people.columns:
        people = people[people["on_roster"].astype(bool)]
    rows = []
    for record in people.sort_values("student", kind="stable").to_dict("records"):
        row = {col: _text(record.get(source)) for col, source in MOODLE_ROSTER_COLUMNS.items()}
        row["ID number"] = row["ID number"] or record["student"]
        row[assignment] = _points(record["total"])
        rows.append(row)
    if rows and any(not r["Email address"] for r in rows) and any(r["Email address"] for r in rows):
        logger.warning(
            "moodle.csv: some rows have no email address; map users by 'ID number', not email"
        )
    return pd.DataFrame(rows, columns=[*MOODLE_ID_COLUMNS, assignment], dtype=object)


LONG_CHUNK = 500
"""Results per chunk of ``long.csv`` (about 17 rows each): the table is never built whole."""


def write_long(results: Iterable[dict], path: Path, *, pack: Pack) -> Path:
    """Write :func:`long_table` of ``results`` to ``path``: the bytes
    :func:`~autograder.safecsv.write_csv` writes for that table, row by row (neither the table
    nor its chunks are built, so memory does not grow with the batch)."""
    ordered = (
        results
        if isinstance(results, PackedResults)  # sorted by student when collected
        and _sorted(results.students)
        else sorted(results, key=lambda r: str(r.get("student", "")))
    )
    cells: dict[str, str] = {}  # text -> as written (few distinct values: one neutralise each)

    def written(value: str) -> str:
        text = cells.get(value)
        if text is None:
            text = cells[value] = str(neutralise(value))
        return text

    with open(path, "w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow([written(column) for column in LONG_COLUMNS])
        for index, result in enumerate(ordered):
            writer.writerows([written(v) for v in row] for row in _long_rows(result, pack))
            if index % LONG_CHUNK == LONG_CHUNK - 1:
                cells.clear()  # each student's id is one of them
    return path


def _sorted(students: list[str]) -> bool:
    return all(a <= b for a, b in itertools.pairwise(students))


def long_table(results: Iterable[dict], *, pack: Pack) -> pd.DataFrame:
    """One row per student x question x hidden case x diagnosis tag (see :data:`LONG_COLUMNS`).

    A case with no tag has one row with an empty ``tag``; a case with k tags has k rows, each
    with the case's ``score`` (so sum ``score`` over unique student, question, case). Cases and
    their points come from the pack's questions; a case failed when the
    question's feedback has a line ``[case, N pt] ...`` (results list failed cases only), or
    when the result is not ``graded`` or has no test results for the question.

    Tags: a result entry with a ``cases`` list (``{"case", "points", "passed", "tags"}``) gives
    exact per-case tags (``tag_source = case``). Otherwise results keep tags per question only:
    when one case failed, it gets the question's tags (``case``, exact); when several failed,
    each gets all of the question's tags (``tag_source = question``: one of the failed cases
    had the tag, the results do not say which).
    """
    rows = [
        row
        for result in sorted(results, key=lambda r: str(r.get("student", "")))
        for row in _long_rows(result, pack)
    ]
    return pd.DataFrame(rows, columns=list(LONG_COLUMNS), dtype=object)


def _long_rows(result: Mapping[str, Any], pack: Pack) -> list[list[str]]:
    """The rows of :func:`long_table` for one result, as text in :data:`LONG_COLUMNS` order."""
    rows: list[list[str]] = []
    student = str(result.get("student", ""))
    status = str(result.get("status", ""))
    questions = result.get("questions") or {}
    for question in pack.question_ids:
        entry = questions.get(question) or {}
        cases = pack.question(question).case_points
        for case, points, passed, tags, source in _cases(status, entry, cases):
            worth = _points(points)
            score = worth if passed else _points(0.0)
            outcome = "true" if passed else "false"
            for tag in tags or [""]:
                row = [student, status, question, case, worth, outcome, tag, source if tag else ""]
                row.append(score)
                rows.append(row)
    return rows


def _cases(
    status: str, entry: Mapping[str, Any], cases: Mapping[str, float]
) -> list[tuple[str, float, bool, list[str], str]]:
    """(case, points, passed, tags, tag_source) for each hidden case of one question."""
    if isinstance(entry.get("cases"), list):
        return [
            (
                str(c["case"]),
                float(c["points"]),
                bool(c["passed"]),
                sorted(str(t) for t in c.get("tags") or []),
                "case",
            )
            for c in entry["cases"]
        ]
    tags = sorted(str(t) for t in entry.get("tags") or [])
    failed = _failed_cases(entry)
    score = float(entry.get("score") or 0.0)
    possible = autograded_possible(entry) if entry.get("possible") else sum(cases.values())
    if status != "graded" or not entry or (not failed and score < possible - 1e-9):
        # Not graded, or no test results for this question: every case failed.
        failed = set(cases)
    source = "case" if len(failed) <= 1 else "question"
    return [
        (case, float(p), case not in failed, tags if case in failed else [], source)
        for case, p in cases.items()
    ]


def _failed_cases(entry: Mapping[str, Any]) -> set[str]:
    """Names of the cases listed as failed in a question's feedback (``[case, N pt] text``)."""
    feedback = entry.get("feedback") or ""
    return {m["case"] for line in str(feedback).splitlines() if (m := _CASE_LINE.match(line))}


def _with_identities(table: pd.DataFrame, roster: pd.DataFrame | None) -> pd.DataFrame:
    """The gradebook with the roster's identity columns it does not already have."""
    people = table.copy()
    people["student"] = people["student"].astype(str)
    if roster is None:
        return people
    if "student" not in roster.columns:
        found = ", ".join(map(str, roster.columns)) or "no columns"
        raise ExportError(f"roster has no 'student' column (found: {found})")
    wanted = {*CANVAS_ROSTER_COLUMNS.values(), *MOODLE_ROSTER_COLUMNS.values()}
    extra = [c for c in roster.columns if c in wanted and c not in people.columns]
    if not extra:
        return people
    ids = roster[["student", *extra]].copy()
    ids["student"] = ids["student"].astype(str).str.strip()
    ids = ids.drop_duplicates("student")
    return people.merge(ids, on="student", how="left")


def _text(value: Any) -> str:
    """A cell as text: missing values become empty, whole floats lose their ``.0``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _points(value: Any) -> str:
    """Points in their shortest form after rounding (``10.5``, ``0.75``, ``12``)."""
    number = round(float(value), SCORE_DECIMALS) + 0.0
    return f"{number:.{SCORE_DECIMALS}f}".rstrip("0").rstrip(".")


def _lms_safe(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """The LMS table without the rows whose kept identifiers a spreadsheet would evaluate.

    Each left-out identifier is named in one warning (the TA enters those grades by hand).
    """
    kept = [c for c in (*CANVAS_KEPT_COLUMNS, *MOODLE_KEPT_COLUMNS) if c in frame.columns]
    unsafe = frame[kept].map(needs_quote).any(axis=1) if kept else pd.Series(False, frame.index)
    if unsafe.any():
        cells = [
            f"{column} {value!r}"
            for _, row in frame[unsafe].iterrows()
            for column, value in row[kept].items()
            if needs_quote(value)
        ]
        logger.warning(
            "not in %s (an identifier begins with =, +, -, @, tab or CR, which spreadsheets "
            "evaluate and the LMS must match exactly; enter these grades by hand): %s",
            name,
            ", ".join(cells),
        )
    return frame[~unsafe].reset_index(drop=True)
