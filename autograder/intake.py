"""Find the student submissions in a folder and read their notebooks, without running anything.

A submissions folder holds, per student, one of:

- ``<student>.ipynb``;
- ``<student>.zip`` with exactly one notebook anywhere inside (``__MACOSX/`` and
  ``.ipynb_checkpoints/`` entries are ignored);
- ``<student>/`` with exactly one notebook anywhere inside (``.ipynb_checkpoints/`` ignored).

Every submission that looks like one becomes a :class:`Submission`; a broken one carries a
human-readable ``problem`` instead of a notebook, so the batch runner can give it an ``invalid`` row
instead of dropping it. Zips are read in memory: only the notebook member's bytes are read, nothing
is extracted and no other member (in particular no pickled ``.OTTER_LOG``) is ever loaded.
"""

from __future__ import annotations

import json
import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import nbformat

logger = logging.getLogger(__name__)

MB = 1024 * 1024
"""Bytes in a megabyte, as used in size limits and messages."""
DEFAULT_MAX_BYTES = 50 * MB
"""Default size limit for one notebook."""

_IGNORED_DIRS = frozenset({"__MACOSX", ".ipynb_checkpoints"})


class IntakeError(Exception):
    """The submissions folder itself cannot be used (missing, or not a directory)."""


@dataclass(frozen=True)
class Submission:
    """One student's submission, read but not executed."""

    student: str
    """Student id: the file stem (``ann.ipynb``, ``ann.zip``) or the folder name (``ann/``)."""
    source: Path
    """Where the notebook came from: the ``.ipynb``, the ``.zip``, or the notebook in the folder."""
    notebook: nbformat.NotebookNode | None
    """The validated notebook (nbformat v4), or None when the submission is unusable."""
    problem: str | None
    """Why the submission is unusable (e.g. ``"not valid JSON"``), or None when it is fine."""

    def __post_init__(self) -> None:
        if (self.notebook is None) == (self.problem is None):
            raise ValueError(
                f"Submission for {self.student!r} needs exactly one of notebook and problem, "
                f"got notebook={'None' if self.notebook is None else 'a notebook'}, "
                f"problem={self.problem!r}"
            )

    @property
    def ok(self) -> bool:
        """Whether the submission holds a usable notebook."""
        return self.problem is None


def discover(folder: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> list[Submission]:
    """Find and read every submission in ``folder``.

    Hidden entries (starting with ``.``) and a top-level ``__MACOSX`` folder are skipped silently;
    other files that are not ``.ipynb`` or ``.zip`` are skipped with a warning. A student id with
    several sources (e.g. ``ann.ipynb`` and ``ann.zip``) yields one Submission with a problem
    listing them: we never pick one silently.

    Args:
        folder: The submissions folder.
        max_bytes: Largest notebook accepted, in bytes (uncompressed size for zip members).

    Returns:
        One Submission per student id, sorted by student. Empty for an empty folder.

    Raises:
        IntakeError: If ``folder`` does not exist or is not a directory.
    """
    folder = Path(folder)
    if not folder.exists():
        raise IntakeError(f"submissions folder {folder} does not exist")
    if not folder.is_dir():
        raise IntakeError(f"submissions folder {folder} is not a directory")

    candidates: dict[str, list[Path]] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or entry.name in _IGNORED_DIRS:
            logger.debug("skipping %s", entry)
            continue
        if entry.is_dir():
            student = entry.name
        elif entry.suffix.lower() in (".ipynb", ".zip"):
            student = entry.stem
        else:
            logger.warning("skipping %s: not a .ipynb, a .zip or a folder", entry)
            continue
        candidates.setdefault(student, []).append(entry)

    submissions = []
    for student in sorted(candidates):
        paths = candidates[student]
        if len(paths) > 1:
            names = ", ".join(sorted(_display_name(p) for p in paths))
            submission = Submission(student, paths[0], None, f"several submissions: {names}")
        else:
            submission = _read_submission(student, paths[0], max_bytes=max_bytes)
        if submission.ok:
            logger.debug("found %s in %s", student, submission.source)
        else:
            logger.info("%s (%s): %s", student, submission.source, submission.problem)
        submissions.append(submission)
    return submissions


def _display_name(path: Path) -> str:
    return f"{path.name}/" if path.is_dir() else path.name


def _read_submission(student: str, path: Path, *, max_bytes: int) -> Submission:
    if path.is_dir():
        return _read_folder(student, path, max_bytes=max_bytes)
    if path.suffix.lower() == ".zip":
        return _read_zip(student, path, max_bytes=max_bytes)
    notebook, problem = _read_file(path, max_bytes=max_bytes)
    return Submission(student, path, notebook, problem)


def _read_file(path: Path, *, max_bytes: int) -> tuple[nbformat.NotebookNode | None, str | None]:
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
        names = ", ".join(p.relative_to(folder).as_posix() for p in notebooks)
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
                problem = f"{info.filename}: {_too_big(info.file_size, max_bytes)}"
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
) -> tuple[nbformat.NotebookNode | None, str | None]:
    """Turn raw bytes into a validated v4 notebook, or a reason why that is impossible."""
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
    if not isinstance(raw, dict) or "nbformat" not in raw:
        what = "an object without an 'nbformat' key" if isinstance(raw, dict) else "not an object"
        return None, f"not a Jupyter notebook (the JSON is {what})"
    try:
        notebook = nbformat.reads(text, as_version=4)
    except Exception as e:  # nbformat raises many types on malformed input; all mean the same.
        return None, f"not a Jupyter notebook (nbformat: {_first_line(e)})"
    try:
        nbformat.validate(notebook)
    except Exception as e:  # ValidationError, or anything the validator trips over.
        return None, f"not a Jupyter notebook (nbformat validation: {_first_line(e)})"
    return notebook, None


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
