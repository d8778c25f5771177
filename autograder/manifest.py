"""The run manifest ``OUT/assignment.json``: which assignment a graded folder holds, and how.

``grade`` writes it last, after the gradebook and every other output, so a folder with a manifest
is a finished run; it removes a stale one before it starts writing, so a run that dies half-way
leaves no manifest behind. ``course`` reads it to merge several graded folders::

    {"format": 1, "assignment": "math_primer", "title": "Math Primer",
     "questions": [{"id": "q1a", "sheet": "2-1 a", "points": 1.0}, ...],
     "total_points": 12.0, "roster": "/abs/path/roster.csv", "engine": "judge",
     "kit_version": "0.1.0", "graded_at": "2026-12-02T10:15:00+00:00"}

Folders graded before the kit wrote manifests have none: :func:`read_manifest` refuses them with
a one-line error (grade the folder again; cached results make that quick) rather than guessing
which assignment they hold.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tomllib
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, TypeGuard

from .errors import KitError
from .pack.spec import Pack

logger = logging.getLogger(__name__)

MANIFEST_NAME = "assignment.json"
"""File name of the manifest inside a graded folder."""
MANIFEST_FORMAT = 1
"""Version of the manifest's layout; a reader refuses any other."""
DISTRIBUTION = "math-primer-autograder"
"""The kit's distribution name (``pyproject.toml``), for its version."""


class ManifestError(KitError):
    """A graded folder has no usable manifest (the message names the folder and the fix)."""


@dataclass(frozen=True)
class QuestionInfo:
    """One question as the manifest records it."""

    id: str
    """Question id, as in the gradebook's columns (e.g. ``"q1a"``)."""
    sheet: str
    """The exercise-sheet label (e.g. ``"2-1 a"``)."""
    points: float
    """Points the question is worth."""


@dataclass(frozen=True)
class Manifest:
    """The record ``OUT/assignment.json`` holds."""

    assignment: str
    """Assignment id (e.g. ``"math_primer"``)."""
    title: str
    """Human title, used as the LMS column header."""
    questions: tuple[QuestionInfo, ...]
    """The graded questions, in gradebook order."""
    total_points: float
    """Sum of the questions' points."""
    roster: str | None
    """Absolute path of the roster the run used, or ``None``."""
    engine: str
    """Grading engine (``judge``, ``otter`` or ``docker``)."""
    kit_version: str
    """Version of the kit that graded."""
    graded_at: str
    """When the run finished, ISO 8601 in UTC (``2026-12-02T10:15:00+00:00``)."""
    format: int = MANIFEST_FORMAT
    """Layout version of the file."""


def kit_version() -> str:
    """The kit's version: the installed distribution's, else ``pyproject.toml``'s, else unknown."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        pass
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    try:
        with pyproject.open("rb") as handle:
            return str(tomllib.load(handle)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def make_manifest(
    *,
    pack: Pack,
    roster: Path | None,
    engine: str,
    now: datetime | None = None,
) -> Manifest:
    """The manifest of a run (pure: no I/O besides resolving the roster's path).

    Args:
        pack: The graded assignment's pack (name, title, questions and points).
        roster: The roster CSV the run used, if any.
        engine: The grading engine's name.
        now: The run's time (default: now, in UTC).
    """
    when = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    return Manifest(
        assignment=pack.name,
        title=pack.title,
        questions=tuple(QuestionInfo(q.id, q.sheet, float(q.possible)) for q in pack.questions),
        total_points=float(pack.total_points),
        roster=str(Path(roster).resolve()) if roster is not None else None,
        engine=engine,
        kit_version=kit_version(),
        graded_at=when.isoformat(),
    )


def remove_manifest(out: Path) -> None:
    """Delete ``out/assignment.json`` if present (a run is about to rewrite the folder)."""
    (Path(out) / MANIFEST_NAME).unlink(missing_ok=True)


def write_manifest(manifest: Manifest, out: Path) -> Path:
    """Write ``out/assignment.json`` atomically (a reader never sees half a file).

    Returns:
        The path written.
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / MANIFEST_NAME
    record = asdict(manifest)
    record = {"format": record.pop("format"), **record}
    partial = path.with_name(f".{MANIFEST_NAME}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    partial.replace(path)
    logger.info("wrote %s", path)
    return path


def read_manifest(out: Path) -> Manifest:
    """Read and check ``out/assignment.json``.

    Raises:
        ManifestError: The file is missing (a folder graded before manifests existed, or a
            run that did not finish), unreadable, of another format, or malformed; the message
            names the folder and what to do.
    """
    folder = Path(out)
    path = folder / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(
            f"{folder} has no {MANIFEST_NAME}: it was graded before the kit wrote one, or its "
            f"run did not finish; grade it again (python -m autograder grade SUBMISSIONS --out "
            f"{folder}; cached results are reused)"
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ManifestError(f"cannot read {path}: {e}") from e
    try:
        record = json.loads(text)
    except json.JSONDecodeError as e:
        raise ManifestError(f"{path} is not valid JSON ({e}); grade the folder again") from e
    return _parse(record, path)


def _parse(record: Any, path: Path) -> Manifest:
    """Check a decoded manifest field by field and build the record."""

    def bad(what: str) -> ManifestError:
        return ManifestError(f"{path}: {what}; grade the folder again")

    if not isinstance(record, dict):
        raise bad(f"expected a JSON object, got {type(record).__name__}")
    if record.get("format") != MANIFEST_FORMAT:
        raise bad(f"format {record.get('format')!r}, this kit reads format {MANIFEST_FORMAT}")
    texts = {}
    for key in ("assignment", "title", "engine", "kit_version", "graded_at"):
        value = record.get(key)
        if not isinstance(value, str) or not value.strip():
            raise bad(f"'{key}' must be a non-empty string, got {value!r}")
        texts[key] = value
    roster = record.get("roster")
    if roster is not None and not isinstance(roster, str):
        raise bad(f"'roster' must be a path or null, got {roster!r}")
    entries = record.get("questions")
    if not isinstance(entries, list) or not entries:
        raise bad("'questions' must be a non-empty list")
    questions = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise bad(f"a question must be an object, got {entry!r}")
        qid, sheet, points = entry.get("id"), entry.get("sheet"), entry.get("points")
        if not isinstance(qid, str) or not qid or not isinstance(sheet, str):
            raise bad(f"a question needs a string 'id' and 'sheet', got {entry!r}")
        if not _is_points(points):
            raise bad(f"question {qid}: 'points' must be a number >= 0, got {points!r}")
        questions.append(QuestionInfo(qid, sheet, float(points)))
    ids = [q.id for q in questions]
    if len(set(ids)) != len(ids):
        raise bad(f"question ids repeat: {', '.join(ids)}")
    total = record.get("total_points")
    expected = math.fsum(q.points for q in questions)
    if not _is_points(total) or abs(total - expected) > 1e-6 or total <= 0:
        raise bad(f"'total_points' is {total!r}, but the questions add up to {expected:g}")
    return Manifest(
        assignment=texts["assignment"],
        title=texts["title"],
        questions=tuple(questions),
        total_points=float(total),
        roster=roster,
        engine=texts["engine"],
        kit_version=texts["kit_version"],
        graded_at=texts["graded_at"],
    )


def _is_points(value: object) -> TypeGuard[float]:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )
