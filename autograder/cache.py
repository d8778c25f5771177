"""Resumable, incremental batches: graded results cached in ``OUT/.cache/<key>.json``.

The key of a submission hashes what its result depends on:

- the submission's content: the notebook as graded (its compact JSON,
  :func:`~autograder.intake.notebook_bytes`: no indentation, so the cost is linear in the file
  size however deeply it nests, and ASCII escapes, so any text hashes), or for an unusable
  submission the problem found at intake;
- the student id (the judge seeds its random cases with it);
- the assignment: :func:`~autograder.build.source_fingerprint` (master notebook and every file
  shipped with the checks) and the grader settings (engine, time limit).

Each result is written atomically (a temporary file, then ``os.replace``) as soon as its
submission is graded, so a batch killed mid-way (even with SIGKILL) loses at most the submissions
in flight; the rerun grades only what is not cached. ``error`` and ``timeout`` results are never
cached: they may come from the machine (a lost worker, a loaded CPU) rather than the submission,
so a rerun tries them again. Overrides are applied after the cache, never stored in it.

Each entry also records the submission's hash and the grader settings (reuse is decided by the
key alone). They let a regrade of one question (``grade --force --question QID``, see
``regrade.py``) find a submission's previous result after the assignment changed (a new
fingerprint, hence new keys): :meth:`ResultCache.previous`. The regrade stores the merged result
under the new key, so the next plain run reuses it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import cast

from .intake import Submission
from .results import PackedResults, Result

log = logging.getLogger(__name__)

CACHE_DIR = ".cache"
"""The cache folder inside ``OUT``."""
CACHE_FORMAT = 2
"""Bumped when the entry layout or the meaning of a key changes; old entries are then ignored."""
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
"""How a temporary entry is opened: a new file, never an existing one."""
CACHED_STATUSES = frozenset({"graded", "invalid"})
"""Statuses that depend on the submission alone; ``error`` and ``timeout`` are graded again."""


def submission_hash(submission: Submission) -> str:
    """The SHA-256 of a submission's content as graded (the problem text when unusable)."""
    data = submission.notebook_json()
    if data is not None:
        content = b"notebook\0" + data
    else:
        content = b"problem\0" + str(submission.problem).encode("utf-8", "surrogatepass")
    return hashlib.sha256(content).hexdigest()


class ResultCache:
    """The cache of one output folder for one assignment and grader configuration.

    Args:
        out: the output folder; entries live in ``out/.cache/``.
        assignment: a hash of the assignment (:func:`~autograder.build.source_fingerprint`).
        settings: grader settings the results depend on (e.g. engine and time limit); any
            JSON-serialisable mapping.
    """

    def __init__(self, out: Path, *, assignment: str, settings: Mapping[str, object]) -> None:
        self.folder = Path(out) / CACHE_DIR
        self._salt = json.dumps(
            {"format": CACHE_FORMAT, "assignment": assignment, "settings": dict(settings)},
            sort_keys=True,
        )
        self._settings = json.loads(json.dumps(dict(settings), sort_keys=True))
        self._keys: dict[str, str] = {}
        self._hashes: dict[str, str] = {}
        self.stored = 0
        """Results written to the cache by :meth:`store`."""
        self._token = secrets.token_hex(4)  # temporary files of distinct caches never collide
        self._serial = itertools.count()

    def key(self, submission: Submission) -> str:
        """The cache key of a submission (a hex SHA-256)."""
        return self._key(submission.student, submission_hash(submission))

    def _key(self, student: str, content: str) -> str:
        text = f"{self._salt}\0{student}\0{content}"
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

    def _remember(self, submission: Submission) -> str:
        """Compute and keep the submission's key (for :meth:`store` and :meth:`prune`)."""
        content = self._hashes[submission.student] = submission_hash(submission)
        key = self._keys[submission.student] = self._key(submission.student, content)
        return key

    def split(
        self, submissions: list[Submission], *, force: bool = False
    ) -> tuple[list[Submission], PackedResults]:
        """Separate the submissions to grade from the results that can be reused.

        Args:
            submissions: the batch, with unique student ids.
            force: reuse nothing (every submission is graded again and its entry replaced).

        Returns:
            The submissions to grade, and the cached results of the others (packed: a rerun
            of a large batch does not hold them all as dicts).
        """
        to_grade: list[Submission] = []
        reused = PackedResults()
        for submission in submissions:
            key = self._remember(submission)
            result = None if force else self._load(key, submission.student)
            if result is None:
                to_grade.append(submission)
            else:
                reused.append(result)
        return to_grade, reused

    def store(self, result: Result) -> None:
        """Write a fresh result to the cache atomically (skipped for transient statuses)."""
        student = result.get("student")
        key = self._keys.get(student) if isinstance(student, str) else None
        if key is None or result.get("status") not in CACHED_STATUSES:
            return
        entry = {
            "format": CACHE_FORMAT,
            "student": student,
            "submission": self._hashes.get(str(student)),
            "settings": self._settings,
            "result": result,
        }
        try:
            # Compact: the C encoder (an indented dump is Python's, several times slower). A lone
            # surrogate is written as its JSON escape (the only unencodable text).
            data = json.dumps(entry, ensure_ascii=False, allow_nan=False).encode(
                "utf-8", "backslashreplace"
            )
            self._write(f"{key}.json", data)
        except (OSError, TypeError, ValueError) as exc:  # the batch goes on without this entry
            log.warning("could not cache the result of %s: %s", student, exc)
            return
        self.stored += 1

    def _write(self, name: str, data: bytes) -> None:
        """Write ``folder/name`` atomically and durably: a temporary file, synced, then renamed
        (plain system calls: this runs once per result, on the thread that hands out work)."""
        temp = self.folder / f".{name[:16]}-{self._token}-{next(self._serial)}.tmp"
        try:
            fd = os.open(temp, _CREATE, 0o600)
        except FileNotFoundError:  # the first entry (or the folder was removed meanwhile)
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(temp, _CREATE, 0o600)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, self.folder / name)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def recording(self, on_done: Callable[[Result], None]) -> Callable[[Result], None]:
        """``on_done`` that stores each result in the cache first."""

        def record(result: Result) -> None:
            self.store(result)
            on_done(result)

        return record

    def previous(self, submissions: list[Submission]) -> dict[str, Result]:
        """The latest cached result of each submission, whatever the assignment's fingerprint.

        A submission's entry under its current key comes first; else the newest entry of the same
        student, submission content and grader settings (written under an earlier fingerprint of
        the assignment, e.g. before its checks were fixed). Entries written before entries
        recorded their submission and settings are not found this way. Also remembers every
        submission's current key, as :meth:`split` does.

        Returns:
            Student -> cached result, for the submissions that have one.
        """
        found: dict[str, Result] = {}
        wanted: dict[str, str] = {}
        for submission in submissions:
            key = self._remember(submission)
            result = self._load(key, submission.student)
            if result is not None:
                found[submission.student] = result
            else:
                wanted[submission.student] = self._hashes[submission.student]
        if not wanted or not self.folder.is_dir():
            return found
        newest: dict[str, tuple[float, Result]] = {}
        for path in self.folder.glob("*.json"):
            try:
                entry = json.loads(path.read_text(encoding="utf-8"))
                mtime = path.stat().st_mtime
            except (OSError, ValueError):
                continue
            if not isinstance(entry, dict) or entry.get("format") != CACHE_FORMAT:
                continue
            student, result = entry.get("student"), entry.get("result")
            if (
                not isinstance(student, str)
                or wanted.get(student) is None
                or entry.get("submission") != wanted[student]
                or entry.get("settings") != self._settings
                or not isinstance(result, dict)
                or result.get("student") != student
                or result.get("status") not in CACHED_STATUSES
            ):
                continue
            if student not in newest or mtime > newest[student][0]:
                newest[student] = (mtime, cast(Result, result))  # checked above
        return found | {student: result for student, (_, result) in newest.items()}

    def prune(self) -> int:
        """Delete entries (and stray temporary files) not used by this batch; return how many."""
        keep = {f"{key}.json" for key in self._keys.values()}
        removed = 0
        if not self.folder.is_dir():
            return 0
        for path in self.folder.iterdir():
            if path.name not in keep and (path.suffix in (".json", ".tmp")):
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def _load(self, key: str, student: str) -> Result | None:
        path = self.folder / f"{key}.json"
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("ignoring the unreadable cache entry %s for %s: %s", path, student, exc)
            return None
        result = entry.get("result") if isinstance(entry, dict) else None
        if (
            not isinstance(result, dict)
            or entry.get("format") != CACHE_FORMAT
            or result.get("student") != student
            or result.get("status") not in CACHED_STATUSES
        ):
            log.warning("ignoring the malformed cache entry %s for %s", path, student)
            return None
        return cast(Result, result)  # JSON the cache wrote from a Result, checked above
