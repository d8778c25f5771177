"""The course gradebook: merge the graded folders of several assignments into one.

    read each OUT/assignment.json, gradebook.csv and results/ -> validate everything (folders,
    duplicate assignments, rosters, weights) -> one row per student -> write course.csv, the
    Canvas and Moodle imports and course.html

Nothing is written until every input has been checked: a bad input is one :class:`CourseError`.

``course.csv`` has one row per student, sorted by student, in a fixed column order: ``student``;
then for each assignment, in the order given, ``<name>_points``, ``<name>_percent`` (0-100) and
``<name>_status``; then ``weighted_percent``; then, when a roster is known, the roster's other
columns and ``on_roster``. An assignment a student has no row for counts as ``missing``: 0 points,
0 percent. ``weighted_percent`` is ``sum(w * percent) / sum(w)`` over all assignments, so a
missing (or ``invalid``, ``error``) assignment counts as 0; weights are relative and default to
equal.

Points and statuses are taken from each folder's ``gradebook.csv`` (manual overrides included);
diagnosis tags from its ``results/<student>.json`` (for the persistent misconceptions).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .errors import KitError
from .exports import (
    CANVAS_ID_COLUMNS,
    CANVAS_KEPT_COLUMNS,
    CANVAS_ROSTER_COLUMNS,
    MOODLE_ID_COLUMNS,
    MOODLE_KEPT_COLUMNS,
    MOODLE_ROSTER_COLUMNS,
    POSTED_STATUSES,
    _points,
    _text,
)
from .gradebook import PERCENT_DECIMALS, SCORE_DECIMALS, STATUSES, GradebookError, read_roster
from .manifest import Manifest, ManifestError, read_manifest
from .results import file_stem
from .safecsv import needs_quote, read_csv, write_csv

logger = logging.getLogger(__name__)

COURSE_CSV = "course.csv"
CANVAS_CSV = "course-canvas.csv"
MOODLE_CSV = "course-moodle.csv"
COURSE_HTML = "course.html"
ASSIGNMENT_FIELDS: tuple[str, ...] = ("points", "percent", "status")
"""Per-assignment columns of ``course.csv``, each prefixed with ``<assignment>_``."""
WEIGHTED = "weighted_percent"
IDENTITY_COLUMNS: tuple[str, ...] = tuple(
    dict.fromkeys([*CANVAS_ROSTER_COLUMNS.values(), *MOODLE_ROSTER_COLUMNS.values()])
)
"""Roster columns the LMS imports identify students by."""
_TOLERANCE = 1e-6


class CourseError(KitError):
    """The graded folders, roster or weights cannot be merged (the message says which and why)."""


@dataclass(frozen=True)
class GradedFolder:
    """One graded assignment folder, as read and checked."""

    path: Path
    """The folder (``OUT`` of a ``grade`` run)."""
    manifest: Manifest
    """Its ``assignment.json``."""
    table: pd.DataFrame
    """Its ``gradebook.csv``, all text, indexed by student."""
    results: Mapping[str, dict] = field(default_factory=dict)
    """``results/<student>.json`` of every gradebook row that has one, by student."""

    @property
    def name(self) -> str:
        """The assignment id."""
        return self.manifest.assignment

    @property
    def roster(self) -> frozenset[str] | None:
        """Students on the roster the folder was graded with (``None``: graded without one)."""
        if "on_roster" not in self.table.columns:
            return None
        return frozenset(self.table.index[self.table["on_roster"] == "True"])


@dataclass(frozen=True)
class CourseRun:
    """What ``course`` wrote."""

    table: pd.DataFrame
    """The course gradebook, as written to ``course.csv``."""
    folders: tuple[GradedFolder, ...]
    """The merged folders, in the order given."""
    weights: Mapping[str, float]
    """Weight per assignment (relative)."""
    paths: Mapping[str, Path]
    """``csv``, ``canvas``, ``moodle`` and ``html`` -> the written file."""
    not_posted: Mapping[str, str]
    """Students left out of the LMS imports -> why."""


# --- the pipeline -----------------------------------------------------------------------------


def course(
    *,
    folders: Sequence[Path],
    out: Path,
    weights: str | None = None,
    roster: Path | None = None,
) -> CourseRun:
    """Merge graded folders into ``out``: course.csv, the LMS imports and course.html.

    Args:
        folders: ``OUT`` folders of ``grade`` runs, one per assignment, in column order.
        out: The course folder to write (created if needed; must not be one of ``folders``).
        weights: ``NAME=W,...`` for every assignment (relative, >= 0); default: equal.
        roster: The course roster CSV (``student`` column, optional identity columns).

    Raises:
        CourseError: a folder is missing, ungraded or inconsistent, an assignment is given
            twice, the rosters disagree, or the weights are malformed. Nothing is written then.
    """
    from .course_report import render_course

    if not folders:
        raise CourseError("no graded folders given")
    requested = parse_weights(weights) if weights is not None else None
    out = Path(out)
    for folder in folders:
        if Path(folder).resolve() == out.resolve():
            raise CourseError(f"--out {out} is one of the graded folders; write elsewhere")
    loaded = tuple(load_folder(Path(f)) for f in folders)
    check_distinct(loaded)
    resolved = resolve_weights(requested, [f.name for f in loaded])
    course_roster = _read_course_roster(roster) if roster is not None else None
    check_rosters(loaded, course_roster, roster_path=roster)
    if course_roster is not None:
        identities = _roster_identities(course_roster)
    else:
        identities = folder_identities(loaded)
    table = merge(loaded, weights=resolved, roster=course_roster)
    canvas, moodle, not_posted = lms_tables(table, loaded, identities=identities)
    page = render_course(table, loaded, weights=resolved)

    titles = [f.manifest.title for f in loaded]
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "csv": write_csv(_rounded(table, loaded), out / COURSE_CSV),
        "canvas": write_csv(canvas, out / CANVAS_CSV, keep=(*CANVAS_KEPT_COLUMNS, *titles)),
        "moodle": write_csv(moodle, out / MOODLE_CSV, keep=(*MOODLE_KEPT_COLUMNS, *titles)),
        "html": out / COURSE_HTML,
    }
    paths["html"].write_text(page, encoding="utf-8")
    if not_posted:
        logger.warning(
            "%d student(s) left out of the LMS imports (a status other than %s, or off the "
            "roster; see course.csv): %s",
            len(not_posted),
            " or ".join(POSTED_STATUSES),
            _some([f"{s} ({why})" for s, why in not_posted.items()], limit=10),
        )
    logger.info("wrote %s", ", ".join(str(p) for p in paths.values()))
    return CourseRun(table, loaded, resolved, paths, not_posted)


# --- reading and checking -----------------------------------------------------------------------


def load_folder(path: Path) -> GradedFolder:
    """Read one graded folder and check that its manifest, gradebook and results agree.

    Raises:
        CourseError: the folder does not exist, has no manifest (graded before manifests, or
            an unfinished run), no gradebook, columns or totals that do not match its manifest,
            an unknown status, a repeated student, or a graded row without its results JSON.
    """
    path = Path(path)
    if not path.is_dir():
        raise CourseError(f"{path} is not a folder (expected the --out folder of a grade run)")
    if not (path / "gradebook.csv").is_file():
        raise CourseError(
            f"{path} is not graded (no gradebook.csv); pass the --out folder of a grade run"
        )
    try:
        manifest = read_manifest(path)
    except ManifestError as e:
        raise CourseError(str(e)) from None
    table = _read_gradebook(path, manifest)
    results = {}
    for student, status in table["status"].items():
        if status == "missing":
            continue  # a roster student without a submission has no results file
        results[student] = _read_result(path, student, status)
    return GradedFolder(path=path, manifest=manifest, table=table, results=results)


def _read_gradebook(path: Path, manifest: Manifest) -> pd.DataFrame:
    source = path / "gradebook.csv"
    where = f"{source}"
    try:
        table = read_csv(source, dtype=str, keep_default_na=False, encoding="utf-8")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise CourseError(f"cannot read {where}: {e}") from e
    questions = [q.id for q in manifest.questions]
    needed = ["student", *questions, "total", "percent", "status"]
    absent = [c for c in needed if c not in table.columns]
    if absent:
        raise CourseError(
            f"{where} lacks column(s) {', '.join(absent)} that its {manifest.assignment} "
            "manifest lists; grade the folder again"
        )
    repeated = sorted(table["student"][table["student"].duplicated()].unique())
    if repeated:
        raise CourseError(f"{where} lists student(s) {', '.join(repeated)} more than once")
    unknown = sorted(set(table["status"]) - set(STATUSES))
    if unknown:
        raise CourseError(
            f"{where} has status(es) {', '.join(unknown)}; expected {', '.join(STATUSES)}"
        )
    for row in table.itertuples(index=False):
        total = _number(row.total)
        if total is None or not -_TOLERANCE <= total <= manifest.total_points + _TOLERANCE:
            raise CourseError(
                f"{where}: {row.student}'s total {row.total!r} is not a number between 0 and "
                f"{manifest.total_points:g} (the manifest's points); grade the folder again"
            )
    return table.set_index("student", drop=False)


def _read_result(path: Path, student: str, status: str) -> dict:
    source = path / "results" / f"{file_stem(student)}.json"
    try:
        result = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CourseError(
            f"{path} is incomplete: {student} is in gradebook.csv but has no {source.name} in "
            "results/; grade the folder again"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CourseError(f"cannot read {source}: {e}") from e
    if not isinstance(result, dict) or result.get("status") != status:
        got = result.get("status") if isinstance(result, dict) else type(result).__name__
        raise CourseError(
            f"{source} says {got!r} but gradebook.csv says {status!r}; grade the folder again"
        )
    return result


def check_distinct(folders: Sequence[GradedFolder]) -> None:
    """Refuse the same folder twice, two folders of one assignment and clashing LMS titles."""
    seen: dict[str, Path] = {}
    places: dict[Path, Path] = {}
    titles: dict[str, str] = {}
    for folder in folders:
        place = folder.path.resolve()
        if place in places:
            raise CourseError(f"{folder.path} is given twice")
        places[place] = folder.path
        if folder.name in seen:
            raise CourseError(
                f"assignment {folder.name} is given twice ({seen[folder.name]} and "
                f"{folder.path}); pass one graded folder per assignment"
            )
        seen[folder.name] = folder.path
        title = folder.manifest.title
        if needs_quote(title):
            raise CourseError(
                f"{folder.name}'s title {title!r} would be read as a formula by a spreadsheet "
                "(its LMS column header); rename it in the pack and grade again"
            )
        if title in titles:
            raise CourseError(
                f"assignments {titles[title]} and {folder.name} have the same title "
                f"{title!r}; their LMS columns would collide"
            )
        titles[title] = folder.name


def _read_course_roster(path: Path) -> pd.DataFrame:
    try:
        roster = read_roster(path)
    except GradebookError as e:
        raise CourseError(str(e)) from None
    reserved = {WEIGHTED, "on_roster"}
    clash = [c for c in roster.columns if c in reserved or c.endswith(_suffixes())]
    if clash:
        raise CourseError(
            f"roster {path} has column(s) {', '.join(clash)} that clash with course.csv's "
            "columns; rename or drop them"
        )
    return roster


def _suffixes() -> tuple[str, ...]:
    return tuple(f"_{f}" for f in ASSIGNMENT_FIELDS)


def check_rosters(
    folders: Sequence[GradedFolder], roster: pd.DataFrame | None, *, roster_path: Path | None
) -> None:
    """Refuse rosters that disagree.

    With a course roster, every student on a folder's roster must be on it. Without one, the
    folders graded with a roster must have had the same students.
    """
    if roster is not None:
        listed = set(roster["student"])
        for folder in folders:
            extra = sorted((folder.roster or frozenset()) - listed)
            if extra:
                raise CourseError(
                    f"{folder.name} ({folder.path}) was graded with a roster listing "
                    f"{_some(extra)}, not in --roster {roster_path}; add them to the course "
                    "roster or grade the folder again with it"
                )
        return
    with_roster = [(f, roster) for f in folders if (roster := f.roster) is not None]
    for folder, roster in with_roster[1:]:
        first, first_roster = with_roster[0]
        if roster != first_roster:
            only = sorted(roster ^ first_roster)
            raise CourseError(
                f"the rosters of {first.name} and {folder.name} differ ({_some(only)} on one "
                "only); pass the course roster with --roster"
            )


def _some(items: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


# --- weights ----------------------------------------------------------------------------------


def parse_weights(text: str) -> dict[str, float]:
    """Parse ``NAME=W,...`` (names as in the manifests, weights finite numbers >= 0).

    Raises:
        CourseError: an item is not ``NAME=W``, a weight is not a finite number >= 0, or a name
            repeats.
    """
    weights: dict[str, float] = {}
    items = [item.strip() for item in text.split(",")]
    if not any(items):
        raise CourseError("--weights is empty; give NAME=W for every assignment")
    for item in items:
        name, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not name:
            raise CourseError(f"--weights: {item!r} is not NAME=WEIGHT")
        weight = _number(value)
        if weight is None:
            raise CourseError(f"--weights: the weight of {name} ({value!r}) is not a number")
        if weight < 0:
            raise CourseError(f"--weights: the weight of {name} is negative ({value})")
        if name in weights:
            raise CourseError(f"--weights names {name} twice")
        weights[name] = weight
    return weights


def resolve_weights(
    requested: Mapping[str, float] | None, names: Sequence[str]
) -> dict[str, float]:
    """The weight of each assignment: the requested ones (checked against ``names``) or 1 each.

    Raises:
        CourseError: a weight names no given assignment, an assignment has no weight, or the
            weights add up to 0.
    """
    if requested is None:
        return {name: 1.0 for name in names}
    unknown = [n for n in requested if n not in names]
    if unknown:
        raise CourseError(
            f"--weights names {', '.join(unknown)}, not among the assignments ({', '.join(names)})"
        )
    absent = [n for n in names if n not in requested]
    if absent:
        raise CourseError(
            f"--weights gives no weight for {', '.join(absent)}; weigh every assignment "
            "(0 leaves one out)"
        )
    if math.fsum(requested.values()) <= 0:
        raise CourseError("--weights add up to 0; give at least one assignment a weight")
    return {name: requested[name] for name in names}


# --- merging ----------------------------------------------------------------------------------


def merge(
    folders: Sequence[GradedFolder],
    *,
    weights: Mapping[str, float],
    roster: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The course gradebook: one row per student, in the fixed column order (module docstring).

    Students: everyone on ``roster`` and in any folder. A roster is ``roster``, else the
    folders' common roster, if any; it adds ``on_roster`` (and ``roster``'s other columns).
    """
    known = set(roster["student"]) if roster is not None else _common_roster(folders)
    students = set().union(*(set(f.table.index) for f in folders), known or ())
    total_weight = math.fsum(weights.values())
    rows = []
    for student in sorted(students):
        row: dict[str, object] = {"student": student}
        weighted = 0.0
        for folder in folders:
            points, status = _cell(folder, student)
            percent = 100.0 * points / folder.manifest.total_points
            row |= {
                f"{folder.name}_points": points,
                f"{folder.name}_percent": round(percent, PERCENT_DECIMALS),
                f"{folder.name}_status": status,
            }
            weighted += weights[folder.name] * percent
        row[WEIGHTED] = round(weighted / total_weight, PERCENT_DECIMALS)
        rows.append(row)
    columns = ["student", *course_columns(folders)]
    table = pd.DataFrame(rows, columns=columns)
    if roster is not None:
        extra = [c for c in roster.columns if c != "student"]
        table = table.merge(roster, on="student", how="left", validate="one_to_one")
        table[extra] = table[extra].fillna("")
        columns += extra
    if known is not None:
        table["on_roster"] = table["student"].isin(known)
        columns.append("on_roster")
        off = sorted(set(table["student"]) - known)
        if off:
            logger.warning("graded but not on the roster: %s", ", ".join(off))
    return table[columns].reset_index(drop=True)


def course_columns(folders: Sequence[GradedFolder]) -> list[str]:
    """The per-assignment columns and ``weighted_percent``, in order."""
    return [*(f"{f.name}_{part}" for f in folders for part in ASSIGNMENT_FIELDS), WEIGHTED]


def _cell(folder: GradedFolder, student: str) -> tuple[float, str]:
    if student not in folder.table.index:
        return 0.0, "missing"
    row = folder.table.loc[student]
    return float(row["total"]), str(row["status"])


def _common_roster(folders: Sequence[GradedFolder]) -> set[str] | None:
    rosters = [f.roster for f in folders if f.roster is not None]
    return set(rosters[0]) if rosters else None


# --- LMS imports ------------------------------------------------------------------------------


def folder_identities(folders: Sequence[GradedFolder]) -> pd.DataFrame:
    """Identity columns (name, LMS ids, email) the folders' gradebooks carry, one row a student.

    Raises:
        CourseError: two folders give one student different non-empty values of a column.
    """
    values: dict[str, dict[str, str]] = {}
    origin: dict[tuple[str, str], str] = {}
    for folder in folders:
        columns = [c for c in IDENTITY_COLUMNS if c in folder.table.columns]
        for student, row in folder.table[columns].iterrows():
            for column in columns:
                value = _text(row[column])
                if not value:
                    continue
                known = values.setdefault(student, {}).setdefault(column, value)
                if known != value:
                    raise CourseError(
                        f"the rosters disagree on {student}'s {column}: {known!r} "
                        f"({origin[student, column]}) vs {value!r} ({folder.name}); pass the "
                        "course roster with --roster"
                    )
                origin.setdefault((student, column), folder.name)
    frame = pd.DataFrame.from_dict(values, orient="index", columns=list(IDENTITY_COLUMNS))
    return frame.fillna("").rename_axis("student").reset_index()


def _roster_identities(roster: pd.DataFrame) -> pd.DataFrame:
    columns = [c for c in IDENTITY_COLUMNS if c in roster.columns]
    return roster[["student", *columns]]


def lms_tables(
    table: pd.DataFrame, folders: Sequence[GradedFolder], *, identities: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """The Canvas and Moodle imports (one grade column per assignment, headed by its title).

    A student's row goes in only when every assignment's status is one of
    :data:`~autograder.exports.POSTED_STATUSES`: both LMSs treat an empty grade cell as "no
    grade" rather than "leave alone" (Moodle's CSV import sets it to no grade; Canvas's importer
    counts a blank against an existing score as a change), so a row with a cell the kit cannot
    post would clear a grade a TA may have entered by hand. Moodle also leaves out students off
    the roster (it aborts the whole import at the first user it cannot find), and each file
    leaves out a row whose LMS identifier looks like a formula, as :mod:`autograder.exports`
    does (the identifiers are written exactly, never neutralised).

    Returns:
        ``(canvas, moodle, not_posted)``; ``not_posted`` maps each student left out to why.
    """
    people = table.merge(identities, on="student", how="left", suffixes=("", "_identity"))
    for column in IDENTITY_COLUMNS:
        if f"{column}_identity" in people.columns:  # a roster column already in the table
            people = people.drop(columns=f"{column}_identity")
    titles = {f.name: f.manifest.title for f in folders}
    canvas_rows, moodle_rows, not_posted = [], [], {}
    for record in people.to_dict("records"):
        blocked = [
            f"{name} {record[f'{name}_status']}"
            for name in titles
            if record[f"{name}_status"] not in POSTED_STATUSES
        ]
        if blocked:
            not_posted[record["student"]] = ", ".join(blocked)
            continue
        student = record["student"]
        grades = {title: _points(record[f"{name}_points"]) for name, title in titles.items()}
        reasons = []
        canvas = {col: _text(record.get(src)) for col, src in CANVAS_ROSTER_COLUMNS.items()}
        canvas["Student"] = canvas["Student"] or student
        canvas["SIS Login ID"] = canvas["SIS Login ID"] or student
        if _formula_ids(canvas, CANVAS_KEPT_COLUMNS):
            reasons.append(f"{_formula_ids(canvas, CANVAS_KEPT_COLUMNS)}: not in {CANVAS_CSV}")
        else:
            canvas_rows.append(canvas | grades)
        moodle = {col: _text(record.get(src)) for col, src in MOODLE_ROSTER_COLUMNS.items()}
        moodle["ID number"] = moodle["ID number"] or student
        if not bool(record.get("on_roster", True)):
            reasons.append(f"not on the roster: not in {MOODLE_CSV}")
        elif _formula_ids(moodle, MOODLE_KEPT_COLUMNS):
            reasons.append(f"{_formula_ids(moodle, MOODLE_KEPT_COLUMNS)}: not in {MOODLE_CSV}")
        else:
            moodle_rows.append(moodle | grades)
        if reasons:
            not_posted[student] = "; ".join(reasons)
    headers = list(titles.values())
    return (
        pd.DataFrame(canvas_rows, columns=[*CANVAS_ID_COLUMNS, *headers], dtype=object),
        pd.DataFrame(moodle_rows, columns=[*MOODLE_ID_COLUMNS, *headers], dtype=object),
        not_posted,
    )


def _formula_ids(row: Mapping[str, str], columns: Sequence[str]) -> str:
    """The LMS identifiers of a row that a spreadsheet would evaluate (they cannot be altered:
    the LMS matches them exactly), e.g. ``"SIS Login ID '=x' looks like a formula"``."""
    bad = [f"{c} {row[c]!r}" for c in columns if needs_quote(row[c])]
    return f"{', '.join(bad)} looks like a formula" if bad else ""


# --- writing ----------------------------------------------------------------------------------


def _rounded(table: pd.DataFrame, folders: Iterable[GradedFolder]) -> pd.DataFrame:
    """The table as written: points rounded to the gradebook's decimals, no ``-0.0``."""
    table = table.copy()
    for folder in folders:
        column = f"{folder.name}_points"
        table[column] = table[column].astype(float).round(SCORE_DECIMALS) + 0.0
    return table


def _number(value: object) -> float | None:
    """A finite float from a number or numeric text, else ``None``."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
