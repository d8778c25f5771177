"""Find the student submissions in a folder and read their notebooks, without running anything.

A submissions folder holds, per student, one of:

- ``<student>.ipynb``;
- ``<student>.zip`` with exactly one notebook anywhere inside (``__MACOSX/`` and
  ``.ipynb_checkpoints/`` entries are ignored);
- ``<student>/`` with exactly one notebook anywhere inside (``.ipynb_checkpoints/`` ignored).

Every submission that looks like one becomes a :class:`Submission`; a broken one carries a
human-readable ``problem`` instead of a notebook, so the batch runner can give it an ``invalid`` row
instead of dropping it. That includes JSON nested more than :data:`MAX_DEPTH` levels deep (it
would exhaust the recursion of every JSON tool after us) and JSON escaping a lone UTF-16
surrogate (``\\ud800``: not a character, it cannot be written as UTF-8 again). Zips are read in
memory: only the notebook member's bytes are read, nothing is extracted and no other member (in
particular no pickled ``.OTTER_LOG``) is ever loaded.

Student ids are printable text: bytes that are not UTF-8 and control characters in a file name
are escaped in its id (``bad\\xff``, ``x\\x1b``); a file whose stem is blank (`` .ipynb``) keeps
its whole file name as id and is invalid (rename it). Output file names are derived from ids
safely elsewhere (:func:`autograder.results.file_stem`).

The folder may also be an LMS's "Download all submissions" archive, unzipped (:func:`scan`):

- Canvas: ``<name>[_LATE]_<user id>_<file id>_<original name>`` (``lib/content_zipper.rb`` in
  instructure/canvas-lms: ``[sortable name, "LATE" if late, user id].join("_")``, then
  ``"_#{attachment.id}_#{display_name}"``; older versions lower-case the whole prefix, so
  ``late``; anonymous grading puts ``anon_<anonymous id>`` in place of the name and user id). A
  re-uploaded file of the same name gets ``-1``, ``-2``, ... before its extension
  (``Attachment.make_unique_filename``).
- Moodle: a folder ``<Full Name>_<participant id>_assignsubmission_<plugin>[_]/`` per student and
  plugin ("Download submissions in folders", the default since 3.1), or flat files
  ``<Full Name>_<participant id>_assignsubmission_<plugin>_<original name>``
  (``mod/assign/classes/downloader.php``; the id is ``get_uniqueid_for_user``, the assignment's
  participant number, not the Moodle user id).

A Canvas name cannot always be split in one way: the sortable name may hold digits and
underscores, and the original file name anything, so ``a_1_2_3_4_hw.ipynb`` reads as user 1 (file
2), user 2 (file 3) or user 3 (file 4). Every reading is considered (:func:`canvas_readings`); with
several, the one whose user is on the roster is taken when exactly one is, else the leftmost (as
Canvas's own re-upload parser reads it) when none is; when several readings name roster
students, the file is its own ``invalid`` row naming them. A file with several readings never
displaces, and is never displaced by, another file of the same student: it becomes its own
``invalid`` row instead, so a crafted name cannot replace a student's upload.

LMS ids are mapped to student ids through the roster's ``canvas_id`` / ``moodle_id`` columns (or,
failing that, a unique match of its ``name`` column); unmapped files keep a fallback id
(``canvas-<user id>``, ``moodle-<participant id>``) and are reported. Of several files by the same
student the newest is kept (Canvas: the highest file id, then the ``-N`` suffix, then mtime;
Moodle: mtime, then name) and the others are reported as superseded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import math
import os
import re
import sys
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Self, cast

import nbformat
from nbformat.json_compat import get_current_validator
from nbformat.v4 import rwbase
from nbformat.validator import get_validator
from traitlets.log import get_logger

from .errors import KitError
from .safetext import visible

if TYPE_CHECKING:  # a roster is a DataFrame; pandas is imported only when one is given
    import pandas as pd

logger = logging.getLogger(__name__)

MB = 1024 * 1024
"""Bytes in a megabyte, as used in size limits and messages."""
DEFAULT_MAX_BYTES = 50 * MB
"""Default size limit for one notebook."""
MAX_DEPTH = 100
"""Deepest nesting of JSON arrays and objects accepted in a notebook (a real one nests about 10
levels; tools after intake recurse once per level)."""

_IGNORED_DIRS = frozenset({"__MACOSX", ".ipynb_checkpoints"})
_SURROGATE = re.compile("[\ud800-\udfff]")


class IntakeError(KitError):
    """The submissions folder itself cannot be used (missing, or not a directory)."""


PARALLEL_FROM = 2000
"""Fewest notebooks to read for :func:`scan` to have a second process read part of them. The
helper costs about 0.5 s of CPU (0.3 s to start, importing nbformat, before it reads anything);
measured on two cores, 1,000 notebooks were read 0.13 s sooner with it (0.87 s alone), 10,000 in
half the time. Fewer than this are read in this process alone."""

_WINDOW = 32 * 1024
"""zlib's window: the most of a preset dictionary it uses."""
_DICTIONARY: list[bytes] = []
"""The first notebook packed in this process, the preset dictionary of the others."""


_PRIMED: list[tuple[bytes, Any]] = []
"""A compressor primed with the preset dictionary (each notebook is packed by a copy of it)."""


def _packer(zdict: bytes) -> Any:
    """A fresh compressor for :class:`Submission`'s packing, preset with ``zdict``: a copy of
    one primed once (the same state as ``zlib.compressobj(6, zdict=zdict)``, so the same
    bytes; loading a 32 KB dictionary costs more than copying the state)."""
    if not _PRIMED or _PRIMED[0][0] is not zdict:
        _PRIMED[:] = [(zdict, zlib.compressobj(6, zdict=zdict))]
    return _PRIMED[0][1].copy()


@dataclass(frozen=True)
class Submission:
    """One student's submission, read but not executed.

    Constructed as ``Submission(student, source, notebook, problem)``; the notebook is kept as
    its compact JSON compressed against the first notebook packed in this process (submissions
    of one sheet share most of their text: about 0.2 KB instead of 70 KB of Python objects, so a
    batch of 10,000 fits in a few MB) and :attr:`notebook` gives a fresh copy of it.
    """

    student: str
    """Student id: the file stem (``ann.ipynb``, ``ann.zip``) or the folder name (``ann/``)."""
    source: Path
    """Where the notebook came from: the ``.ipynb``, the ``.zip``, or the notebook in the folder."""
    packed: nbformat.NotebookNode | dict | bytes | None = field(repr=False)
    """The validated notebook (nbformat v4, as a ``NotebookNode`` or plain dicts) as given; stored as the zlib-compressed
    :func:`notebook_bytes`, or None when the submission is unusable."""
    problem: str | None
    """Why the submission is unusable (e.g. ``"not valid JSON"``), or None when it is fine."""
    late: bool = False
    """Whether the LMS marked it late (Canvas's ``LATE`` / ``late`` marker in the file name)."""
    platform: str | None = None
    """``"canvas"`` or ``"moodle"`` when the file name follows that LMS's download scheme."""
    lms_id: str | None = None
    """The id in the LMS file name (Canvas user id, Moodle participant id), else None."""
    zdict: bytes = field(default=b"", repr=False)
    """The zlib preset dictionary ``packed`` was compressed with (shared, not copied)."""
    marks: Marks | None = field(default=None, repr=False, compare=False)
    """What in the notebook tells its assignment (:func:`notebook_marks`), taken when the
    notebook is packed; None when unusable or not taken (then ask the notebook itself)."""

    def __post_init__(self) -> None:
        if (self.packed is None) == (self.problem is None):
            raise ValueError(
                f"Submission for {self.student!r} needs exactly one of notebook and problem, "
                f"got notebook={'None' if self.packed is None else 'a notebook'}, "
                f"problem={self.problem!r}"
            )
        if isinstance(self.packed, dict):
            # A malformed notebook has no marks: the pack is then inferred from the notebook
            # itself, which fails there exactly as it always did.
            with contextlib.suppress(Exception):
                if self.marks is None:
                    object.__setattr__(self, "marks", notebook_marks(self.packed))
            data = notebook_bytes(self.packed)
            if not _DICTIONARY:
                _DICTIONARY.append(data[-_WINDOW:])
            zdict = _DICTIONARY[0]
            packer = _packer(zdict)
            object.__setattr__(self, "packed", packer.compress(data) + packer.flush())
            object.__setattr__(self, "zdict", zdict)

    @property
    def notebook(self) -> nbformat.NotebookNode | None:
        """The validated notebook (nbformat v4; a fresh copy), or None when it is unusable."""
        data = self.notebook_json()
        # ``from_dict(json.loads(data))``, with each object made a node as it is decoded
        return None if data is None else json.loads(data, object_hook=nbformat.NotebookNode)

    def notebook_json(self) -> bytes | None:
        """The notebook as :func:`notebook_bytes` gives it, or None when it is unusable."""
        if self.packed is None:
            return None
        unpacker = zlib.decompressobj(zdict=self.zdict)
        return unpacker.decompress(cast(bytes, self.packed)) + unpacker.flush()

    @property
    def ok(self) -> bool:
        """Whether the submission holds a usable notebook."""
        return self.problem is None


Marks = tuple[str | None, tuple[str, ...]]
"""What tells a notebook's assignment (:func:`notebook_marks`): the ``assignment_name`` in its
Otter metadata (None when that is not a string) and the functions its code cells define, sorted."""

_DEF = re.compile(r"^\s*def\s+([A-Za-z_]\w*)\s*\(", re.MULTILINE)


def defined_functions(notebook: nbformat.NotebookNode | dict) -> set[str]:
    """The functions a notebook's code cells define (``def <name>(`` at the start of a line)."""
    names = set()
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "code":
            names.update(_DEF.findall(cell.get("source", "")))
    return names


def otter_name(notebook: nbformat.NotebookNode | dict) -> object:
    """The ``assignment_name`` in a notebook's Otter metadata (any JSON value), else None."""
    otter = (notebook.get("metadata") or {}).get("otter") or {}
    return otter.get("assignment_name") if isinstance(otter, dict) else None


def notebook_marks(notebook: nbformat.NotebookNode | dict) -> Marks:
    """What in ``notebook`` tells its assignment (``autograder.pack.infer`` votes with it), kept
    on each :class:`Submission` so that the pack is inferred without the notebook again.

    Raises:
        Whatever a malformed notebook makes :func:`defined_functions` raise.
    """
    named = otter_name(notebook)
    names = sorted(defined_functions(notebook))
    return (named if isinstance(named, str) else None, tuple(map(sys.intern, names)))


@dataclass(frozen=True)
class LmsFile:
    """A file (or Moodle folder) named by an LMS download, and the student id it was given."""

    path: Path
    """The file or folder in the submissions folder."""
    platform: str
    """``"canvas"`` or ``"moodle"``."""
    lms_id: str
    """The id in the name: Canvas user id (or ``anon_<id>``), Moodle participant id."""
    lms_name: str
    """The name in the file name (Canvas: squashed sortable name; Moodle: full name)."""
    student: str
    """The student id used: the roster's, or the fallback ``<platform>-<lms id>``."""


@dataclass(frozen=True)
class Superseded:
    """A file not graded because a newer one by the same student was found."""

    path: Path
    """The file that is not graded."""
    student: str
    """Whose file it is."""
    kept: Path
    """The newer file graded instead."""


@dataclass(frozen=True)
class Intake:
    """What :func:`scan` found."""

    submissions: list[Submission]
    """One Submission per student id, sorted by student (what gets graded)."""
    unmapped: list[LmsFile] = field(default_factory=list)
    """Graded LMS files whose id is not on the roster: they carry a fallback student id."""
    superseded: list[Superseded] = field(default_factory=list)
    """LMS files not graded because the same student has a newer one."""


# Canvas: lib/content_zipper.rb (get_filename, add_upload_submission) in instructure/canvas-lms.
# What comes before the user id: "<name>_" (the name, maybe empty, is [[:word:]]*), then "LATE_"
# when late; anonymous grading writes no name. After it: "_<file id>_<original name>".
_CANVAS_HEAD = re.compile(r"(?P<name>\w*?)_(?:(?P<late>LATE|late)_)?")
_CANVAS_ANON_HEAD = re.compile(r"(?:(?P<late>LATE|late)_)?")
_CANVAS_TAIL = re.compile(r"(?P<uid>\d+|anon_[A-Za-z0-9]+)_(?P<fid>\d+)_(?P<orig>.+)", re.DOTALL)
# Moodle: mod/assign/classes/downloader.php (get_student_prefix, load_submissionplugin_filelist).
_MOODLE_DIR = re.compile(r"^(?P<name>.+?)_(?P<uid>\d+)_assignsubmission_(?P<plugin>[a-z0-9]+)_?$")
_MOODLE_FILE = re.compile(
    r"^(?P<name>.+?)_(?P<uid>\d+)_assignsubmission_(?P<plugin>[a-z0-9]+)_(?P<orig>.+)$"
)
ROSTER_ID_COLUMNS = {"canvas": "canvas_id", "moodle": "moodle_id"}
"""Roster column holding each platform's id (as it appears in the download's names)."""
_RESUBMISSION = re.compile(r"-(\d+)$")
_NOTEBOOK_SUFFIXES = (".ipynb", ".zip")


@dataclass(frozen=True)
class CanvasReading:
    """One way of splitting a Canvas download name into its parts."""

    name: str
    """The squashed sortable name ('' for anonymous grading)."""
    late: bool
    """Whether the ``LATE`` (or ``late``) marker is there."""
    user: str
    """The Canvas user id, or ``anon_<id>``."""
    file_id: int
    """The attachment id (Canvas numbers uploads in order)."""
    original: str
    """The file name the student uploaded."""


@dataclass
class _Candidate:
    """One possible source for a student, before the newest is chosen and read."""

    path: Path
    student: str
    order: tuple = ()
    lms: LmsFile | None = None
    late: bool = False
    problem: str | None = None  # an LMS folder without a notebook: graded as invalid if alone
    ambiguous: str | None = None  # a Canvas name with several readings: what they are


def discover(
    folder: Path,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    roster: pd.DataFrame | None = None,
    parallel_from: int = PARALLEL_FROM,
) -> list[Submission]:
    """Find and read every submission in ``folder``: ``scan(...).submissions``.

    Hidden entries (starting with ``.``) and a top-level ``__MACOSX`` folder are skipped silently;
    other files that are not ``.ipynb`` or ``.zip`` are skipped with a warning. A student id with
    several sources (e.g. ``ann.ipynb`` and ``ann.zip``) yields one Submission with a problem
    listing them: we never pick one silently. LMS downloads are recognised as in :func:`scan`.

    Args:
        folder: The submissions folder.
        max_bytes: Largest notebook accepted, in bytes (uncompressed size for zip members).
        roster: Optional roster mapping LMS ids to student ids (see :func:`scan`).
        parallel_from: Fewest notebooks to read for a second process to read part of them (see
            :func:`scan`).

    Returns:
        One Submission per student id, sorted by student. Empty for an empty folder.

    Raises:
        IntakeError: If ``folder`` does not exist or is not a directory, or the roster is unusable.
    """
    return scan(folder, max_bytes=max_bytes, roster=roster, parallel_from=parallel_from).submissions


def scan(
    folder: Path,
    *,
    roster: pd.DataFrame | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    parallel_from: int = PARALLEL_FROM,
) -> Intake:
    """Find and read every submission in ``folder``, including LMS "Download all" layouts.

    Plain layouts (``<student>.ipynb``, ``<student>.zip``, ``<student>/``) behave as in
    :func:`discover`. Files and folders named by Canvas or Moodle (see the module docstring) are
    mapped to roster student ids; of several by the same student the newest is graded.

    Args:
        folder: The submissions folder.
        roster: Optional DataFrame with a ``student`` column and optionally ``canvas_id`` (Canvas
            user id), ``moodle_id`` (Moodle participant id) and ``name`` (used when no id column
            matches: a unique match of the full name, ignoring case, spaces and punctuation, in
            either "First Last" or "Last, First" order).
        max_bytes: Largest notebook accepted, in bytes (uncompressed size for zip members).
        parallel_from: Fewest notebooks to read for a second process to read part of them
            (``autograder.intake_pool``): the same submissions, packed to the same bytes, and the
            same log records and warnings in the same order, in up to half the time when a
            second core is free. A smaller batch is read in this process alone.

    Returns:
        The submissions (one per student id, sorted), the unmapped LMS files (graded under a
        fallback id, each logged as a warning) and the superseded files (not graded, logged).

    Raises:
        IntakeError: If ``folder`` does not exist or is not a directory, or the roster has no
            ``student`` column or gives the same LMS id to two students.
    """
    folder = Path(folder)
    if not folder.exists():
        raise IntakeError(f"submissions folder {folder} does not exist")
    if not folder.is_dir():
        raise IntakeError(f"submissions folder {folder} is not a directory")
    mapper = _RosterMap(roster)

    candidates: dict[str, list[_Candidate]] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or entry.name in _IGNORED_DIRS:
            logger.debug("skipping %s", entry)
            continue
        if entry.is_dir():
            found = _moodle_folder(entry, mapper) or [_plain_candidate(entry)]
        elif entry.suffix.lower() in _NOTEBOOK_SUFFIXES:
            found = [_lms_file(entry, mapper) or _plain_candidate(entry)]
        else:
            logger.warning("skipping %s: not a .ipynb, a .zip or a folder", entry)
            continue
        for candidate in found:
            candidates.setdefault(candidate.student, []).append(candidate)
    _separate_ambiguous(candidates)

    steps: list[tuple[str, Submission | _Candidate, list[_Candidate]]] = []
    for student in sorted(candidates):  # which file of each student is read (nothing read yet)
        group = candidates[student]
        usable = [c for c in group if c.problem is None] or group[:1]
        plain = [c for c in usable if c.lms is None]
        if len(usable) > 1 and plain:
            names = ", ".join(sorted(_display_name(c.path) for c in usable))
            submission = Submission(student, usable[0].path, None, f"several submissions: {names}")
            steps.append((student, submission, []))
        else:
            # Ids and -N suffixes order files of one platform; across platforms only mtimes do.
            mixed = len({c.lms.platform for c in usable if c.lms is not None}) > 1
            newest = sorted(usable, key=lambda c: _mtime(c.path) if mixed else c.order)[::-1]
            steps.append((student, newest[0], newest[1:]))
    to_read = [
        (c.student, c.path) for _, c, _ in steps if isinstance(c, _Candidate) and c.problem is None
    ]

    submissions, unmapped, superseded = [], [], []
    reader: _Reader
    if len(to_read) >= parallel_from:
        from .intake_pool import PoolReader

        reader = PoolReader(to_read, max_bytes=max_bytes)
    else:
        reader = _Reader(max_bytes=max_bytes)
    with reader:
        for student, step, others in steps:
            if isinstance(step, Submission):
                submission = step
            else:
                chosen = step
                for other in others:
                    superseded.append(Superseded(other.path, student, chosen.path))
                    logger.warning(
                        "%s: not grading %s, superseded by the newer %s",
                        student,
                        _text(other.path.name),
                        _text(chosen.path.name),
                    )
                submission = _read_candidate(chosen, reader)
                if chosen.lms is not None and not mapper.knows(student):
                    unmapped.append(chosen.lms)
                    logger.warning(
                        "%s: %s id %s (%s) is not on the roster; graded as %s",
                        _text(chosen.path.name),
                        chosen.lms.platform.capitalize(),
                        chosen.lms.lms_id,
                        chosen.lms.lms_name or "no name",
                        student,
                    )
            if submission.ok:
                logger.debug("found %s in %s", student, submission.source)
            else:
                logger.info("%s (%s): %s", student, submission.source, submission.problem)
            submissions.append(submission)
    return Intake(submissions, unmapped, superseded)


def _read_candidate(candidate: _Candidate, reader: _Reader) -> Submission:
    student, lms = candidate.student, candidate.lms
    if candidate.problem is not None:
        submission = Submission(student, candidate.path, None, candidate.problem)
    else:
        submission = reader.read(student, candidate.path)
    if lms is None:
        return submission
    return dataclasses.replace(  # the packed notebook as it is (not unpacked and packed again)
        submission,
        late=candidate.late,
        platform=lms.platform,
        lms_id=lms.lms_id,
    )


class _Reader:
    """Reads the chosen files in :func:`scan`'s order, each as :func:`_read_submission` does;
    ``intake_pool.PoolReader`` has a second process read some of them."""

    def __init__(self, *, max_bytes: int) -> None:
        self.max_bytes = max_bytes

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def read(self, student: str, path: Path) -> Submission:
        """The submission in ``path``; called once per file to read, in order."""
        return _read_submission(student, path, max_bytes=self.max_bytes)


def canvas_readings(file_name: str) -> list[CanvasReading]:
    """Every way ``file_name`` splits as ``<name>[_LATE]_<user id>_<file id>_<original name>``.

    Args:
        file_name: A file name from a Canvas download (``anon_<id>`` in place of name and user
            id under anonymous grading).

    Returns:
        The readings, leftmost user id first; [] when the name is not a Canvas download name.
    """
    readings = []
    for start in (0, *(m.end() for m in re.finditer("_", file_name))):
        tail = _CANVAS_TAIL.fullmatch(file_name, start)
        if tail is None:
            continue
        anonymous = tail["uid"].startswith("anon_")
        head = (_CANVAS_ANON_HEAD if anonymous else _CANVAS_HEAD).fullmatch(file_name[:start])
        if head is None:
            continue
        name = "" if anonymous else head["name"]
        late = head["late"] is not None
        readings.append(CanvasReading(name, late, tail["uid"], int(tail["fid"]), tail["orig"]))
    return readings


def _lms_file(path: Path, mapper: _RosterMap) -> _Candidate | None:
    """A Canvas or flattened Moodle file, or None when the name follows neither scheme."""
    file_name = _text(path.name)
    if match := _MOODLE_FILE.match(file_name):
        return _moodle_candidate(path, match, mapper)
    readings = canvas_readings(file_name)
    if not readings:
        return None
    students = [mapper.student("canvas", r.user, r.name) for r in readings]
    on_roster = [i for i, student in enumerate(students) if mapper.knows(student)]
    if len(on_roster) > 1:
        problem = (
            f"the Canvas file name {file_name!r} can be read as the upload of "
            f"{_readings_text(readings, students, on_roster)}; it is not graded as anyone's "
            "(rename it to <student>.ipynb if you know whose it is)"
        )
        logger.warning("%s", problem)
        return _Candidate(path, file_name, problem=problem)
    chosen = on_roster[0] if on_roster else 0
    reading, student = readings[chosen], students[chosen]
    lms = LmsFile(path, "canvas", reading.user, reading.name, student)
    resubmission = _RESUBMISSION.search(Path(reading.original).stem)
    order = (reading.file_id, int(resubmission[1]) if resubmission else 0, *_mtime(path))
    candidate = _Candidate(path, student, order, lms, late=reading.late)
    if len(readings) > 1:
        candidate.ambiguous = (
            f"the Canvas file name {file_name!r} can be read as the upload of "
            f"{_readings_text(readings, students, list(range(len(readings))))}"
        )
        logger.warning(
            "%s: read as Canvas user %s (%s), but %s; check that it is theirs",
            file_name,
            reading.user,
            student,
            candidate.ambiguous,
        )
    return candidate


def _readings_text(readings: list[CanvasReading], students: list[str], which: list[int]) -> str:
    return " or ".join(
        f"user {readings[i].user} ({students[i]}, file {readings[i].file_id})" for i in which
    )


def _separate_ambiguous(candidates: dict[str, list[_Candidate]]) -> None:
    """Give a Canvas file with several readings its own invalid row when it shares a student.

    Such a file never displaces another file of the student it was read as (a crafted name could
    otherwise replace a classmate's upload with a higher file id), and is never displaced
    silently either: it becomes a row of its own, under its file name, naming the readings.
    """
    for student, group in list(candidates.items()):
        if len(group) < 2:
            continue
        for candidate in [c for c in group if c.ambiguous is not None]:
            group.remove(candidate)
            file_name = _text(candidate.path.name)
            others = ", ".join(sorted(_display_name(c.path) for c in group))
            candidate.problem = (
                f"not graded as {student}'s, who also has {others}: {candidate.ambiguous} "
                "(rename it to <student>.ipynb if you know whose it is)"
            )
            candidate.student, candidate.lms = file_name, None
            logger.warning("%s: %s", file_name, candidate.problem)
            candidates.setdefault(file_name, []).append(candidate)


def _plain_candidate(entry: Path) -> _Candidate:
    """``<student>.ipynb``, ``<student>.zip`` or ``<student>/``: the id is the stem or the name.

    A blank stem (`` .ipynb``) names nobody: the candidate keeps its file name as id and is
    invalid, so the file still gets a row.
    """
    name = _text(entry.name)
    stem = name if entry.is_dir() else name[: len(name) - len(entry.suffix)]
    if stem.strip():
        return _Candidate(entry, stem)
    display = _display_name(entry)
    what = "folder" if entry.is_dir() else "file"
    return _Candidate(
        entry,
        display,
        problem=f"the {what} name {display!r} holds no student id; rename it to the student's id",
    )


def _text(name: str) -> str:
    """A file name as printable text: bytes that are not UTF-8 and control characters are
    escaped (``bad\\xff``, ``x\\x1b``), never lost."""
    return visible(os.fsencode(name).decode("utf-8", "backslashreplace"), keep_newlines=False)


def _moodle_candidate(path: Path, match: re.Match, mapper: _RosterMap) -> _Candidate:
    name, uid = match["name"], match["uid"]
    lms = LmsFile(path, "moodle", uid, name, mapper.student("moodle", uid, name))
    return _Candidate(path, lms.student, _mtime(path), lms)


def _moodle_folder(folder: Path, mapper: _RosterMap) -> list[_Candidate]:
    """The notebooks (and zips) in a Moodle submission folder; [] when it is not one."""
    match = _MOODLE_DIR.match(_text(folder.name))
    if match is None:
        return []
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _IGNORED_DIRS)
        for name in sorted(files):
            path = Path(root, name)
            if not name.startswith(".") and path.suffix.lower() in _NOTEBOOK_SUFFIXES:
                found.append(_moodle_candidate(path, match, mapper))
    if found:
        return found
    empty = _moodle_candidate(folder, match, mapper)
    empty.problem = f"Moodle {match['plugin']} submission without a .ipynb or .zip"
    return [empty]


def _mtime(path: Path) -> tuple[float, str]:
    try:
        return path.stat().st_mtime, path.name
    except OSError:
        return -math.inf, path.name


def _squash(text: str) -> str:
    """A name for comparison: letters and digits only, case-folded (``Doe, Jane`` → ``doejane``)."""
    return re.sub(r"[\W_]+", "", text).casefold()


class _RosterMap:
    """Looks up roster student ids by LMS id, else by a unique name match."""

    def __init__(self, roster: pd.DataFrame | None) -> None:
        self._ids: dict[str, dict[str, str]] = {platform: {} for platform in ROSTER_ID_COLUMNS}
        self._names: dict[str, set[str]] = {}
        self._students: set[str] = set()
        if roster is None:
            return
        import pandas as pd

        if not isinstance(roster, pd.DataFrame) or "student" not in roster.columns:
            raise IntakeError("the roster needs a 'student' column to map LMS file names")
        for row in roster.to_dict("records"):
            student = _cell(row.get("student"))
            if not student:
                continue
            self._students.add(student)
            for platform, column in ROSTER_ID_COLUMNS.items():
                lms_id = _cell(row.get(column))
                if not lms_id:
                    continue
                other = self._ids[platform].setdefault(lms_id, student)
                if other != student:
                    raise IntakeError(
                        f"the roster gives {column} {lms_id} to both {other} and {student}; "
                        "each LMS id must belong to one student"
                    )
            for key in _name_keys(_cell(row.get("name"))):
                self._names.setdefault(key, set()).add(student)

    def student(self, platform: str, lms_id: str, name: str) -> str:
        """The roster student for an LMS id (or unique name), else ``<platform>-<lms id>``."""
        if lms_id in self._ids[platform]:
            return self._ids[platform][lms_id]
        matches = self._names.get(_squash(name), set()) if _squash(name) else set()
        if len(matches) == 1:
            return next(iter(matches))
        return f"{platform}-{lms_id}"

    def knows(self, student: str) -> bool:
        """Whether ``student`` is a roster student id."""
        return student in self._students


def _cell(value: object) -> str:
    """A roster cell as text: '' for empty or NaN, ``12345`` for a float 12345.0."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _name_keys(name: str) -> Iterable[str]:
    """Squashed forms of a roster name: as written, and last word first (Canvas's sortable name)."""
    words = name.replace(",", " ").split()
    keys = {_squash(name)}
    if len(words) > 1 and "," not in name:
        keys.add(_squash(" ".join([words[-1], *words[:-1]])))
    return sorted(k for k in keys if k)


def _display_name(path: Path) -> str:
    return f"{_text(path.name)}/" if path.is_dir() else _text(path.name)


def _read_submission(student: str, path: Path, *, max_bytes: int) -> Submission:
    if path.is_dir():
        return _read_folder(student, path, max_bytes=max_bytes)
    if path.suffix.lower() == ".zip":
        return _read_zip(student, path, max_bytes=max_bytes)
    notebook, problem = _read_file(path, max_bytes=max_bytes)
    return Submission(student, path, notebook, problem)


def _read_file(
    path: Path, *, max_bytes: int
) -> tuple[nbformat.NotebookNode | dict | None, str | None]:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            return None, _too_big(size, max_bytes)
        data = path.read_bytes()
    except OSError as e:
        return None, f"cannot read file ({type(e).__name__}: {e.strerror or e})"
    return _parse_notebook(data, max_bytes=max_bytes)


def _read_folder(student: str, folder: Path, *, max_bytes: int) -> Submission:
    notebooks = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _IGNORED_DIRS)
        notebooks += [
            Path(root, f)
            for f in sorted(files)
            if f.lower().endswith(".ipynb") and not f.startswith(".")
        ]
    if not notebooks:
        return Submission(student, folder, None, "folder holds no .ipynb")
    if len(notebooks) > 1:
        names = ", ".join(_text(p.relative_to(folder).as_posix()) for p in notebooks)
        return Submission(
            student, folder, None, f"folder holds {len(notebooks)} notebooks: {names}"
        )
    notebook, problem = _read_file(notebooks[0], max_bytes=max_bytes)
    return Submission(student, notebooks[0], notebook, problem)


def _read_zip(student: str, path: Path, *, max_bytes: int) -> Submission:
    """Read the one notebook member of a zip in memory; never extract, never touch other members."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = [info for info in archive.infolist() if _is_notebook_member(info)]
            if not members:
                return Submission(student, path, None, "zip holds no .ipynb")
            if len(members) > 1:
                names = ", ".join(sorted(info.filename for info in members))
                return Submission(
                    student, path, None, f"zip holds {len(members)} notebooks: {names}"
                )
            info = members[0]
            if info.file_size > max_bytes:
                problem: str | None = f"{info.filename}: {_too_big(info.file_size, max_bytes)}"
                return Submission(student, path, None, problem)
            with archive.open(info) as member:
                # Read one byte more than allowed: the declared size in a zip can lie.
                data = member.read(max_bytes + 1)
    except zipfile.BadZipFile:
        return Submission(student, path, None, "bad zip file")
    except (OSError, RuntimeError, NotImplementedError, EOFError, zipfile.LargeZipFile) as e:
        # Encrypted members, unsupported compression, truncated or unreadable archives.
        return Submission(student, path, None, f"cannot read zip ({type(e).__name__}: {e})")
    notebook, problem = _parse_notebook(data, max_bytes=max_bytes)
    if problem is not None:
        problem = f"{info.filename}: {problem}"
    return Submission(student, path, notebook, problem)


def _is_notebook_member(info: zipfile.ZipInfo) -> bool:
    parts = PurePosixPath(info.filename).parts
    return (
        not info.is_dir()
        and bool(parts)
        and parts[-1].lower().endswith(".ipynb")
        and not parts[-1].startswith(".")
        and not any(part in _IGNORED_DIRS for part in parts)
    )


def _parse_notebook(
    data: bytes, *, max_bytes: int
) -> tuple[nbformat.NotebookNode | dict | None, str | None]:
    """Turn raw bytes into a validated v4 notebook, or a reason why that is impossible.

    The JSON is parsed once: a v4 notebook that nbformat reads without complaint is read from
    that parse (:func:`_read_v4`); any other goes through ``nbformat.reads``, so its problem is
    worded by nbformat exactly as before.
    """
    if len(data) > max_bytes:
        return None, _too_big(len(data), max_bytes)
    if not data.strip():
        return None, "empty file"
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        return None, f"not UTF-8 text (byte {e.start})"
    try:
        raw = json.loads(text)
    except ValueError as e:
        return None, f"not valid JSON ({e})"
    except RecursionError:
        return None, f"not a Jupyter notebook (JSON nested more than {MAX_DEPTH} levels deep)"
    problem = json_problem(raw, text)
    if problem is not None:
        return None, problem
    try:
        notebook, error = _read_v4(raw)
    except _Unusual:  # ``reads`` reads it again, and says what is wrong
        return read_with_nbformat(text)
    if error is not None:
        return None, _invalid(error)
    return notebook, None


def json_problem(raw: object, text: str | None = None) -> str | None:
    """Why parsed JSON (of ``text``) cannot be a notebook, before nbformat is asked: too deep, a
    lone surrogate, or not an object with an ``nbformat`` key; None when nbformat is to say."""
    problem = _tree_problem(raw, text)
    if problem is not None:
        return f"not a Jupyter notebook ({problem})"
    if not isinstance(raw, dict) or "nbformat" not in raw:
        what = "an object without an 'nbformat' key" if isinstance(raw, dict) else "not an object"
        return f"not a Jupyter notebook (the JSON is {what})"
    return None


def read_with_nbformat(text: str) -> tuple[nbformat.NotebookNode | None, str | None]:
    """A notebook's text read by ``nbformat.reads`` as version 4, or why it is not a notebook.

    ``reads`` validates the converted notebook once (and logs what is wrong): its verdict is kept
    rather than validating a second time. Intake reads this way what it cannot read from its
    one parse (:func:`_read_v4`)."""
    verdict: dict[str, Exception] = {}
    try:
        notebook = nbformat.reads(text, as_version=4, capture_validation_error=verdict)
    except Exception as e:  # noqa: BLE001 (nbformat raises many types on malformed input)
        return None, f"not a Jupyter notebook (nbformat: {_first_line(e)})"
    if "ValidationError" in verdict:
        return None, _invalid(verdict["ValidationError"])
    return notebook, None


def _invalid(error: Exception) -> str:
    return f"not a Jupyter notebook (nbformat validation: {_first_line(error)})"


class _Unusual(Exception):
    """Parsed JSON :func:`_read_v4` leaves to ``nbformat.reads``."""


def _read_v4(raw: dict) -> tuple[nbformat.NotebookNode, Exception | None]:
    """Make parsed JSON the notebook ``nbformat.reads(text, as_version=4)`` returns (the parts
    nbformat's read steps reach by attribute as ``NotebookNode`` objects, :func:`_nodes`; the
    rest plain dicts, which print the same); return it and the validator's error as
    ``reads(..., capture_validation_error=...)`` gives it, None when it is valid.

    For a v4 notebook ``reads`` parses the text again, copies it into ``NotebookNode`` objects,
    joins multi-line text (``nbformat.v4.rwbase.rejoin_lines``), drops transient metadata
    (``strip_transient``), then validates it with ``nbformat.validate`` (which gives a cell
    missing its id one) and logs what is wrong. This takes the same steps, with nbformat's own
    functions, on the one parse.

    Raises:
        _Unusual: Not v4, or a step fails on the notebook's shape (``raw`` may be half changed):
            ``reads`` is to read the text, and word the problem.
    """
    major = raw.get("nbformat", 1)
    if type(major) is not int or major != 4:
        raise _Unusual
    try:
        notebook = rwbase.strip_transient(rwbase.rejoin_lines(_nodes(raw)))
    except Exception:  # noqa: BLE001 (whatever fails, ``reads`` fails there too)
        raise _Unusual from None
    if _surely_valid(notebook):  # what ``validate`` would find, and it would change nothing
        return notebook, None
    try:
        nbformat.validate(notebook)
    except nbformat.ValidationError as e:
        get_logger().error("Notebook JSON is invalid: %s", e)
        return notebook, e
    except Exception:  # noqa: BLE001 (e.g. an nbformat_minor that is not a number)
        raise _Unusual from None
    return notebook, None


def _nodes(raw: dict) -> nbformat.NotebookNode:
    """A notebook's parsed JSON with the objects nbformat's read steps (``rejoin_lines``,
    ``strip_transient``) reach by attribute made ``NotebookNode`` objects, as ``from_dict``
    makes them: the notebook, its metadata, its cells and their outputs (each a shallow copy;
    the rest is shared; a cell's metadata is only reached by attribute to call ``pop`` on it,
    which a plain dict has). Raises whatever a malformed notebook makes it raise."""
    cells = raw["cells"]
    if isinstance(cells, list):
        cells = [_node(cell) for cell in cells]
        for cell in cells:
            if isinstance(cell, dict) and isinstance(cell.get("outputs"), list):
                cell["outputs"] = [_node(output) for output in cell["outputs"]]
    return nbformat.NotebookNode(raw, cells=_node(cells), metadata=_node(raw["metadata"]))


def _node(value: object) -> object:
    """A JSON object as a ``NotebookNode`` (a shallow copy); anything else as it is."""
    return nbformat.NotebookNode(value) if isinstance(value, dict) else value


def _surely_valid(notebook: dict) -> bool:
    """Whether ``nbformat.validate`` would pass a v4 notebook without changing it; False when
    unsure (then ``validate`` itself is to be asked).

    ``validate`` first gives cells of a v4.5 notebook a missing or duplicate id; then it checks
    the notebook against the schema, each cell against the schema's ``oneOf`` of the three cell
    types (every cell is checked against all three: most of intake's cost). Here the ids are
    checked, the notebook against the schema without its ``cells: items`` rule, and each cell
    against its own type's definition alone, with nbformat's own validator class: the same
    verdict (a cell of one type fails the others' definitions by their ``cell_type`` enum).
    """
    minor = notebook.get("nbformat_minor", 0)
    if type(minor) is not int:
        return False
    checks = _schema_checks(get_current_validator().name, minor)
    if checks is None:
        return False
    top, by_type = checks
    cells = notebook["cells"]
    try:
        if minor >= 5:  # ``validate`` gives cells without an id, or a duplicate one, a new id
            ids = {cell["id"] for cell in cells}
            if len(ids) != len(cells):
                return False
        top.validate(notebook)
        for cell in cells:
            cell_type = cell.get("cell_type")
            if type(cell_type) is not str or cell_type not in by_type:
                return False
            by_type[cell_type].validate(cell)
    except Exception:  # noqa: BLE001 (invalid, or an unhashable id: ``validate`` says what)
        return False
    return True


_CELL_TYPES = ("raw", "markdown", "code")
"""The cell types of the v4 schema's ``cell`` definition, in its ``oneOf`` order."""
_MULTILINE = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
"""The v4 schema's ``misc/multiline_string``."""


@functools.cache
def _schema_checks(validator_name: str, minor: int) -> tuple[Any, dict[str, Any]] | None:
    """Validators for :func:`_surely_valid` made from nbformat's own for v4.``minor`` (same
    class, same schema): the notebook without its ``cells: items`` rule, and each cell type's
    definition. None when that schema is not shaped so that they give its verdict."""
    validator = get_validator(4, minor)
    schema = getattr(validator, "_schema", None)
    if validator is None or validator.name != validator_name or not isinstance(schema, dict):
        return None
    try:
        definitions = schema["definitions"]
        cells = schema["properties"]["cells"]
        refs = [{"$ref": f"#/definitions/{name}_cell"} for name in _CELL_TYPES]
        if cells.get("items") != {"$ref": "#/definitions/cell"} or definitions["cell"] != {
            "type": "object",
            "oneOf": refs,
        }:
            return None
        for name in _CELL_TYPES:
            definition = definitions[f"{name}_cell"]
            if "cell_type" not in definition["required"] or definition["properties"][
                "cell_type"
            ].get("enum") != [name]:
                return None
        without_items = {key: value for key, value in cells.items() if key != "items"}
        top = {**schema, "properties": {**schema["properties"], "cells": without_items}}
        dialect = {key: schema[key] for key in ("$schema",) if key in schema}
        misc = definitions.get("misc", {})
        if misc.get("multiline_string") == _MULTILINE:  # text or lines: never both, so "any"
            # is "one", and fastjsonschema's "oneOf" raises inside for every text it checks
            misc = {**misc, "multiline_string": {"anyOf": _MULTILINE["oneOf"]}}
            definitions = {**definitions, "misc": misc}
        by_type = {
            name: type(validator)({**dialect, "definitions": definitions, **ref})
            for name, ref in zip(_CELL_TYPES, refs, strict=True)
        }
        return type(validator)(top), by_type
    except (KeyError, TypeError, AttributeError):
        return None


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
"""What JSON text must hold for a parsed string to hold a lone surrogate (or a pair)."""


def _tree_problem(raw: object, text: str | None = None) -> str | None:
    """Why parsed JSON cannot be a notebook we can handle: too deep, or a lone surrogate.

    ``text``, the JSON parsed, makes it cheaper: without a ``\\uD800``-``\\uDFFF`` escape in it
    (UTF-8 text cannot hold a surrogate otherwise) only the nesting needs checking.
    """
    if text is not None and _SURROGATE_ESCAPE.search(text) is None:
        return f"JSON nested more than {MAX_DEPTH} levels deep" if _too_deep(raw) else None
    stack = [(raw, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if found := _SURROGATE.search(node):
                return (
                    f"its JSON escapes a lone UTF-16 surrogate, {found.group()!a}, which is "
                    "not a character"
                )
            continue
        if not isinstance(node, dict | list):
            continue
        if depth > MAX_DEPTH:
            return f"JSON nested more than {MAX_DEPTH} levels deep"
        items = [*node.keys(), *node.values()] if isinstance(node, dict) else node
        stack.extend((item, depth + 1) for item in items)
    return None


def _too_deep(raw: object) -> bool:
    """Whether parsed JSON nests arrays and objects more than :data:`MAX_DEPTH` levels deep."""
    stack = [(raw, 1)] if type(raw) is dict or type(raw) is list else []
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        for child in node.values() if type(node) is dict else node:
            if type(child) is dict or type(child) is list:
                stack.append((child, depth + 1))
    return False


def notebook_bytes(notebook: nbformat.NotebookNode | dict) -> bytes:
    """A notebook as compact JSON: sorted keys, no indentation, non-ASCII text escaped.

    Unlike ``nbformat.writes`` (indent 1), its size is at most about twice the notebook's text
    however deeply the notebook nests, and it never fails to encode. The kit uses it wherever it
    needs the notebook as bytes (the cache key, the judge's copy of the notebook).
    """
    return json.dumps(notebook, sort_keys=True, separators=(",", ":")).encode("ascii")


def _first_line(error: Exception, *, limit: int = 200) -> str:
    """The first line of an error message, shortened: it may quote a whole cell of the notebook."""
    lines = str(error).strip().splitlines()
    line = lines[0] if lines else type(error).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _too_big(size: int, max_bytes: int) -> str:
    return f"file is {_size(size)}, over the {_size(max_bytes)} limit"


def _size(n_bytes: int) -> str:
    if n_bytes < MB // 10:
        return f"{n_bytes} bytes"
    return f"{round(n_bytes / MB, 1):g} MB"
