"""The review store: ``OUT/review.sqlite``, the one place human marks live.

Tables (schema :data:`SCHEMA_VERSION`):

- ``autograded(student, result)``: the latest ``grade`` run's results *before* any override
  (JSON), so the app re-collates the outputs without grading again; ``meta['run']`` holds that
  run's context (submissions folder, roster, the ``--overrides`` rows it applied).
- ``items``: rubric items per question (text, signed points, reusable comment, order, version).
- ``marks(student, question)``: points set by hand, the TA's comment and a version number that
  every change to the question's marks bumps; ``applied``: which items each one carries.
- ``audit``: every change, with who, when (UTC), what, the old and the new value. Nothing is
  ever deleted from it; a deleted rubric item is flagged, not removed.
- ``flags(student, question)``: answers to look at again because a regrade of their question
  (``grade --force --question``) changed the autograde under a human mark; a TA clears them.
  Raising and clearing a flag are audited; the table was added to schema 1 without a version
  bump (a kit that does not know it ignores it).

Every write runs in one ``BEGIN IMMEDIATE`` transaction (SQLite's write lock, WAL journal), so
two tabs or two TAs never interleave half-changes. Writes that *replace* a value (set points,
set a comment, edit an item) carry the version the TA saw and fail with :class:`ConflictError`
if someone changed it meanwhile; writes that are commutative (apply or remove an item, add a
comment) need no version. Nothing a TA wrote is ever overwritten silently.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import EllipsisType
from typing import Any

import pandas as pd

from autograder.errors import KitError
from autograder.overrides import Override
from autograder.pack import Pack

from .marks import Mark, RubricItem

log = logging.getLogger(__name__)

STORE_NAME = "review.sqlite"
"""File name of the store inside the graded folder."""
SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 30.0
"""How long a write waits for another writer's transaction before giving up."""
MAX_TEXT = 5000
"""Longest comment or item text accepted (characters)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS autograded (student TEXT PRIMARY KEY, result TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY, question TEXT NOT NULL, text TEXT NOT NULL, points REAL NOT NULL,
    comment TEXT NOT NULL DEFAULT '', position INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0, version INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS marks (
    student TEXT NOT NULL, question TEXT NOT NULL, points REAL, comment TEXT NOT NULL DEFAULT '',
    version INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (student, question));
CREATE TABLE IF NOT EXISTS applied (
    student TEXT NOT NULL, question TEXT NOT NULL, item INTEGER NOT NULL REFERENCES items(id),
    PRIMARY KEY (student, question, item));
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY, at TEXT NOT NULL, who TEXT NOT NULL, action TEXT NOT NULL,
    student TEXT, question TEXT, item INTEGER, old TEXT, new TEXT);
CREATE INDEX IF NOT EXISTS audit_student ON audit (student, question);
CREATE TABLE IF NOT EXISTS flags (
    student TEXT NOT NULL, question TEXT NOT NULL, reason TEXT NOT NULL, at TEXT NOT NULL,
    who TEXT NOT NULL, old TEXT, new TEXT, PRIMARY KEY (student, question));
"""


class ReviewError(KitError):
    """A review action cannot be done (unknown student, question or item; bad points)."""


class ConflictError(ReviewError):
    """Someone changed what a TA was editing since the TA loaded it."""


@dataclass(frozen=True)
class RunContext:
    """What the latest ``grade`` run recorded for re-collation."""

    run_id: str
    recorded_at: str
    submissions: str | None
    """The submissions folder it graded (absolute), for the answer code."""
    roster_columns: tuple[str, ...] = ()
    roster_rows: tuple[tuple[str, ...], ...] = ()
    """The roster it used, all text (empty when it had none)."""
    has_roster: bool = False
    overrides: tuple[Override, ...] = ()
    """The rows of its ``--overrides`` CSV."""
    overrides_path: str | None = None
    pack_name: str | None = None
    """The assignment pack it graded."""
    pack_folder: str | None = None
    """That pack's folder, when it was loaded from one."""

    def roster(self) -> pd.DataFrame | None:
        """The roster as a DataFrame of strings, or ``None``."""
        if not self.has_roster:
            return None
        return pd.DataFrame(list(self.roster_rows), columns=list(self.roster_columns), dtype=str)


@dataclass(frozen=True)
class Change:
    """One row of the audit trail."""

    id: int
    at: str
    who: str
    action: str
    student: str | None
    question: str | None
    item: int | None
    old: object
    new: object


@dataclass(frozen=True)
class Flag:
    """An answer flagged for review: a regrade changed the autograde under a human mark."""

    student: str
    question: str
    reason: str
    """What changed, for the TA (e.g. ``regrade of q1b: autograded 0 -> 1``)."""
    at: str
    """When it was raised (UTC, ISO 8601)."""
    who: str
    """Who raised it (``grade``)."""
    old: object = None
    """The autograde before (``{"status", "points", "tags"}``), or ``None``."""
    new: object = None
    """The autograde after."""


@dataclass(frozen=True)
class ReviewState:
    """A consistent snapshot of the store's marks."""

    items: dict[int, RubricItem]
    """Rubric items that are not deleted, by id."""
    marks: dict[tuple[str, str], Mark]
    """Marks by (student, question)."""
    run: RunContext | None
    students: frozenset[str] = field(default_factory=frozenset)
    """Students of the latest run."""
    flags: dict[tuple[str, str], Flag] = field(default_factory=dict)
    """Open review flags by (student, question)."""

    def items_of(self, question: str) -> list[RubricItem]:
        """The question's items in page order."""
        return sorted(
            (i for i in self.items.values() if i.question == question),
            key=lambda i: (i.position, i.id),
        )

    def mark(self, student: str, question: str) -> Mark:
        """The marks on one question (an empty mark when there are none)."""
        return self.marks.get((student, question)) or Mark(student, question)


def now() -> str:
    """The current time in UTC, ISO 8601 with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class ReviewStore:
    """The SQLite review store of one graded folder.

    Args:
        path: The database file (created with its tables when missing).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connection() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    conn.execute(statement)
                row = conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
                if row is None:
                    conn.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
                elif int(row[0]) > SCHEMA_VERSION:
                    raise ReviewError(
                        f"{self.path} was written by a newer kit (schema {row[0]}, this kit "
                        f"reads {SCHEMA_VERSION}); update the kit"
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    @classmethod
    def of(cls, out: Path) -> ReviewStore:
        """The store of the graded folder ``out`` (``out/review.sqlite``)."""
        return cls(Path(out) / STORE_NAME)

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        conn = self._connect()
        try:
            yield conn
        finally:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise ReviewError(f"cannot open the review store {self.path}: {exc}") from exc
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def read(self) -> ReviewState:
        """A consistent snapshot of items, marks and the run context."""
        with self._connection() as conn:
            conn.execute("BEGIN")
            try:
                return _read_state(conn)
            finally:
                conn.execute("COMMIT")

    def autograded(self) -> tuple[str | None, list[dict]]:
        """The latest run's id and its autograded results, sorted by student."""
        with self._connection() as conn:
            conn.execute("BEGIN")
            try:
                run = _run(conn)
                rows = conn.execute("SELECT result FROM autograded ORDER BY student").fetchall()
            finally:
                conn.execute("COMMIT")
        return (run.run_id if run else None), [json.loads(r[0]) for r in rows]

    def run_id(self) -> str | None:
        """The latest run's id (changes whenever ``grade`` records a run)."""
        with self._connection() as conn:
            run = _run(conn)
        return run.run_id if run else None

    def history(
        self, *, student: str | None = None, question: str | None = None, limit: int = 500
    ) -> list[Change]:
        """Audit rows, newest first, optionally of one student (and question)."""
        sql = "SELECT id, at, who, action, student, question, item, old, new FROM audit"
        where, args = [], []
        if student is not None:
            where.append("student = ?")
            args.append(student)
        if question is not None:
            where.append("question = ?")
            args.append(question)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        with self._connection() as conn:
            rows = conn.execute(sql, (*args, limit)).fetchall()
        return [
            Change(r[0], r[1], r[2], r[3], r[4], r[5], r[6], _load(r[7]), _load(r[8])) for r in rows
        ]

    @contextmanager
    def write(self, *, who: str, possible: Mapping[str, float]) -> Iterator[Writer]:
        """One write transaction; committed when the block ends, rolled back if it raises.

        Args:
            who: The TA's name, recorded in the audit trail.
            possible: Points per question id (questions not in it are refused).
        """
        who = " ".join(str(who).split())[:100] or "unknown"
        with self._connection() as conn:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise ReviewError(f"the review store is busy ({exc}); try again") from exc
            writer = Writer(conn, who=who, possible=dict(possible))
            try:
                yield writer
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise


class Writer:
    """The operations of one write transaction (see :meth:`ReviewStore.write`)."""

    def __init__(self, conn: sqlite3.Connection, *, who: str, possible: dict[str, float]) -> None:
        self.conn = conn
        self.who = who
        self.possible = possible
        self.at = now()
        self.changed: set[str] = set()
        """Students whose marks this transaction changed."""

    # --- reading inside the transaction ---------------------------------------------------

    def state(self) -> ReviewState:
        """The state as this transaction sees it (its own changes included)."""
        return _read_state(self.conn)

    # --- the run ------------------------------------------------------------------------------

    def record_run(
        self,
        *,
        autograded: Sequence[Mapping[str, Any]],
        submissions: Path | None,
        roster: pd.DataFrame | None,
        overrides: Iterable[Override] = (),
        overrides_path: Path | None = None,
        pack: Pack | None = None,
    ) -> RunContext:
        """Replace the autograded snapshot with a new run's (``grade`` calls this)."""
        self.conn.execute("DELETE FROM autograded")
        self.conn.executemany(
            "INSERT INTO autograded VALUES (?, ?)",
            [
                (r["student"], json.dumps(r, ensure_ascii=False, allow_nan=False))
                for r in autograded
            ],
        )
        columns: tuple[str, ...] = ()
        rows: tuple[tuple[str, ...], ...] = ()
        if roster is not None:
            columns = tuple(str(c) for c in roster.columns)
            rows = tuple(
                tuple("" if _missing(v) else str(v) for v in record)
                for record in roster.itertuples(index=False)
            )
        run = {
            "run_id": uuid.uuid4().hex,
            "recorded_at": self.at,
            "submissions": str(Path(submissions).resolve()) if submissions else None,
            "has_roster": roster is not None,
            "roster_columns": list(columns),
            "roster_rows": [list(r) for r in rows],
            "overrides": [
                {
                    "student": o.student,
                    "question": o.question,
                    "points": o.points,
                    "comment": o.comment,
                    "row": o.row,
                }
                for o in overrides
            ],
            "overrides_path": str(overrides_path) if overrides_path else None,
            "pack_name": pack.name if pack is not None else None,
            "pack_folder": str(pack.folder) if pack is not None and pack.folder else None,
        }
        self.conn.execute(
            "INSERT OR REPLACE INTO meta VALUES ('run', ?)", (json.dumps(run, ensure_ascii=False),)
        )
        recorded = {"results": len(autograded), "assignment": run["pack_name"]}
        if run["overrides_path"]:
            recorded["overrides"] = run["overrides_path"]
        self._audit("run recorded", new={k: v for k, v in recorded.items() if v is not None})
        return _parse_run(run)

    # --- rubric items -------------------------------------------------------------------------

    def add_item(self, *, question: str, text: str, points: float, comment: str = "") -> RubricItem:
        """Create a rubric item at the end of the question's list."""
        self._question(question)
        text, comment, points = (
            _text(text, "item text"),
            _text(comment, "comment", True),
            float(points),
        )
        self._item_points(question, points)
        (position,) = self.conn.execute(
            "SELECT COALESCE(MAX(position), 0) + 1 FROM items WHERE question = ? AND deleted = 0",
            (question,),
        ).fetchone()
        cursor = self.conn.execute(
            "INSERT INTO items (question, text, points, comment, position) VALUES (?, ?, ?, ?, ?)",
            (question, text, points, comment, position),
        )
        assert cursor.lastrowid is not None  # an INSERT sets it; narrows the type
        item = RubricItem(cursor.lastrowid, question, text, points, comment, position, 1)
        self._audit("item created", question=question, item=item.id, new=_item_json(item))
        return item

    def edit_item(
        self, item_id: int, *, version: int, text: str, points: float, comment: str
    ) -> RubricItem:
        """Change an item's text, points or comment; every submission carrying it is re-scored.

        Raises:
            ConflictError: the item changed since ``version``.
        """
        old = self._item(item_id)
        self._check_version(old.version, version, f"rubric item {old.text!r}", item=item_id)
        text, comment, points = (
            _text(text, "item text"),
            _text(comment, "comment", True),
            float(points),
        )
        self._item_points(old.question, points)
        new = RubricItem(old.id, old.question, text, points, comment, old.position, old.version + 1)
        if (new.text, new.points, new.comment) == (old.text, old.points, old.comment):
            return old
        self.conn.execute(
            "UPDATE items SET text = ?, points = ?, comment = ?, version = ? WHERE id = ?",
            (text, points, comment, new.version, item_id),
        )
        self._audit(
            "item edited",
            question=old.question,
            item=item_id,
            old=_item_json(old),
            new=_item_json(new),
        )
        self.changed |= self._carriers(item_id)
        return new

    def delete_item(self, item_id: int, *, version: int) -> None:
        """Flag an item deleted: it stops counting everywhere (its applications stay recorded)."""
        old = self._item(item_id)
        self._check_version(old.version, version, f"rubric item {old.text!r}", item=item_id)
        self.conn.execute(
            "UPDATE items SET deleted = 1, version = version + 1 WHERE id = ?", (item_id,)
        )
        self._audit("item deleted", question=old.question, item=item_id, old=_item_json(old))
        self.changed |= self._carriers(item_id)

    # --- marks --------------------------------------------------------------------------------

    def apply_item(self, *, student: str, item_id: int) -> bool:
        """Apply an item to a student's answer; ``False`` if it was already applied."""
        item = self._item(item_id)
        self._student(student)
        cursor = self.conn.execute(
            "INSERT OR IGNORE INTO applied VALUES (?, ?, ?)", (student, item.question, item_id)
        )
        if not cursor.rowcount:
            return False
        self._bump(student, item.question)
        self._audit(
            "item applied",
            student=student,
            question=item.question,
            item=item_id,
            new=_item_json(item),
        )
        return True

    def remove_item(self, *, student: str, item_id: int) -> bool:
        """Take an item off a student's answer; ``False`` if it was not applied."""
        item = self._item(item_id, deleted_ok=True)
        cursor = self.conn.execute(
            "DELETE FROM applied WHERE student = ? AND question = ? AND item = ?",
            (student, item.question, item_id),
        )
        if not cursor.rowcount:
            return False
        self._bump(student, item.question)
        self._audit(
            "item removed",
            student=student,
            question=item.question,
            item=item_id,
            old=_item_json(item),
        )
        return True

    def set_points(
        self, *, student: str, question: str, points: float | None, version: int | None
    ) -> bool:
        """Set (or with ``None`` clear) the points of one question by hand.

        Args:
            version: The mark version the TA saw; ``None`` skips the check (imports).

        Raises:
            ConflictError: the marks changed since ``version``.
            ReviewError: points outside ``[0, question points]``.
        """
        self._student(student)
        possible = self._question(question)
        if points is not None:
            points = float(points)
            if not math.isfinite(points) or not 0 <= points <= possible:
                raise ReviewError(
                    f"points {points:g} for {question} must be between 0 and {possible:g}"
                )
        old = self._mark(student, question)
        if version is not None:
            self._check_version(
                old[2], version, f"{student}, {question}", student=student, question=question
            )
        if old[0] == points:
            return False
        self._bump(student, question, points=points)
        self._audit(
            "points cleared" if points is None else "points set",
            student=student,
            question=question,
            old=old[0],
            new=points,
        )
        return True

    def set_comment(self, *, student: str, question: str, text: str, version: int | None) -> bool:
        """Replace the TA's comment on one question (empty text clears it)."""
        self._student(student)
        self._question(question)
        text = _text(text, "comment", True)
        old = self._mark(student, question)
        if version is not None:
            self._check_version(
                old[2], version, f"{student}, {question}", student=student, question=question
            )
        if old[1] == text:
            return False
        self._bump(student, question, comment=text)
        self._audit("comment set", student=student, question=question, old=old[1], new=text)
        return True

    def add_comment(self, *, student: str, question: str, text: str) -> bool:
        """Append a paragraph to the TA's comment (commutative: needs no version)."""
        self._student(student)
        self._question(question)
        text = _text(text, "comment")
        old = self._mark(student, question)[1]
        new = f"{old}\n{text}" if old else text
        if len(new) > MAX_TEXT:
            raise ReviewError(
                f"the comment on {student}, {question} would exceed {MAX_TEXT} characters"
            )
        self._bump(student, question, comment=new)
        self._audit("comment added", student=student, question=question, old=old, new=new)
        return True

    def import_overrides(self, overrides: Iterable[Override], *, source: str) -> int:
        """Import overrides CSV rows as set points and comments; returns the cells changed.

        A row equal to the cell's current points and comment changes nothing (re-importing an
        exported file is a no-op).
        """
        count = 0
        for override in overrides:
            self._student(override.student)
            changed = self.set_points(
                student=override.student,
                question=override.question,
                points=override.points,
                version=None,
            )
            changed |= self.set_comment(
                student=override.student,
                question=override.question,
                text=override.comment,
                version=None,
            )
            count += changed
        if count:
            self._audit("imported", new={"source": source, "cells": count})
        return count

    # --- review flags -------------------------------------------------------------------------

    def flag(
        self, *, student: str, question: str, reason: str, old: object = None, new: object = None
    ) -> Flag:
        """Flag one answer for review (replacing an open flag on it); audited."""
        self._student(student)
        self._question(question)
        flag = Flag(student, question, _text(reason, "reason"), self.at, self.who, old, new)
        self.conn.execute(
            "INSERT OR REPLACE INTO flags VALUES (?, ?, ?, ?, ?, ?, ?)",
            (student, question, flag.reason, flag.at, flag.who, _dump(old), _dump(new)),
        )
        self._audit(
            "flagged for review",
            student=student,
            question=question,
            old=old,
            new={"reason": flag.reason, **(new if isinstance(new, dict) else {})},
        )
        return flag

    def clear_flag(self, *, student: str, question: str) -> bool:
        """Clear the review flag of one answer; ``False`` if it had none. Audited."""
        row = self.conn.execute(
            "SELECT reason FROM flags WHERE student = ? AND question = ?", (student, question)
        ).fetchone()
        if row is None:
            return False
        self.conn.execute(
            "DELETE FROM flags WHERE student = ? AND question = ?", (student, question)
        )
        self._audit("flag cleared", student=student, question=question, old=row[0])
        return True

    # --- helpers ------------------------------------------------------------------------------

    def _audit(
        self,
        action: str,
        *,
        student: str | None = None,
        question: str | None = None,
        item: int | None = None,
        old: object = None,
        new: object = None,
    ) -> None:
        self.conn.execute(
            "INSERT INTO audit (at, who, action, student, question, item, old, new) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (self.at, self.who, action, student, question, item, _dump(old), _dump(new)),
        )

    def _question(self, question: str) -> float:
        if question not in self.possible:
            raise ReviewError(
                f"unknown question {question!r}; expected one of {', '.join(self.possible)}"
            )
        return self.possible[question]

    def _student(self, student: str) -> None:
        row = self.conn.execute("SELECT 1 FROM autograded WHERE student = ?", (student,))
        if row.fetchone() is None:
            raise ReviewError(f"no graded submission from student {student!r}")

    def _item(self, item_id: int, *, deleted_ok: bool = False) -> RubricItem:
        row = self.conn.execute(
            "SELECT id, question, text, points, comment, position, version, deleted FROM items "
            "WHERE id = ?",
            (int(item_id),),
        ).fetchone()
        if row is None or (row[7] and not deleted_ok):
            raise ReviewError(f"no rubric item {item_id}")
        return RubricItem(*row[:7])

    def _item_points(self, question: str, points: float) -> None:
        possible = self._question(question)
        if not math.isfinite(points) or abs(points) > possible:
            raise ReviewError(
                f"a rubric item of {question} adds between -{possible:g} and +{possible:g} "
                f"points, got {points:g}"
            )

    def _mark(self, student: str, question: str) -> tuple[float | None, str, int]:
        row = self.conn.execute(
            "SELECT points, comment, version FROM marks WHERE student = ? AND question = ?",
            (student, question),
        ).fetchone()
        return (row[0], row[1], row[2]) if row else (None, "", 0)

    def _bump(
        self,
        student: str,
        question: str,
        *,
        points: float | None | EllipsisType = ...,
        comment: str | None = None,
    ) -> None:
        """Create or update the cell's marks row, bumping its version (unset values are kept)."""
        kept_points, kept_comment, _ = self._mark(student, question)
        if isinstance(points, EllipsisType):
            points = kept_points
        if comment is None:
            comment = kept_comment
        self.conn.execute(
            "INSERT INTO marks (student, question, points, comment, version) "
            "VALUES (?, ?, ?, ?, 1) ON CONFLICT (student, question) DO UPDATE SET "
            "points = excluded.points, comment = excluded.comment, version = version + 1",
            (student, question, points, comment),
        )
        self.changed.add(student)

    def _carriers(self, item_id: int) -> set[str]:
        rows = self.conn.execute("SELECT student FROM applied WHERE item = ?", (item_id,))
        return {r[0] for r in rows}

    def _check_version(self, current: int, seen: int, what: str, **where: object) -> None:
        if int(seen) == current:
            return
        sql = "SELECT who, at FROM audit WHERE " + " AND ".join(f"{k} = ?" for k in where)
        last = self.conn.execute(sql + " ORDER BY id DESC LIMIT 1", tuple(where.values()))
        row = last.fetchone()
        by = f" by {row[0]} at {row[1]}" if row else ""
        raise ConflictError(
            f"{what} was changed{by} after you loaded it (version {current}, yours {seen}); "
            "reload the page to see the change, then redo yours"
        )


def _read_state(conn: sqlite3.Connection) -> ReviewState:
    items = {
        row[0]: RubricItem(*row)
        for row in conn.execute(
            "SELECT id, question, text, points, comment, position, version FROM items "
            "WHERE deleted = 0"
        )
    }
    applied: dict[tuple[str, str], list[int]] = {}
    for student, question, item in conn.execute(
        "SELECT student, question, item FROM applied ORDER BY item"
    ):
        applied.setdefault((student, question), []).append(item)
    marks = {}
    for student, question, points, comment, version in conn.execute(
        "SELECT student, question, points, comment, version FROM marks"
    ):
        key = (student, question)
        marks[key] = Mark(student, question, points, comment, tuple(applied.get(key, ())), version)
    students = frozenset(r[0] for r in conn.execute("SELECT student FROM autograded"))
    flags = {
        (r[0], r[1]): Flag(r[0], r[1], r[2], r[3], r[4], _load(r[5]), _load(r[6]))
        for r in conn.execute(
            "SELECT student, question, reason, at, who, old, new FROM flags "
            "ORDER BY student, question"
        )
    }
    return ReviewState(items=items, marks=marks, run=_run(conn), students=students, flags=flags)


def _run(conn: sqlite3.Connection) -> RunContext | None:
    row = conn.execute("SELECT value FROM meta WHERE key = 'run'").fetchone()
    return _parse_run(json.loads(row[0])) if row else None


def _parse_run(run: dict) -> RunContext:
    return RunContext(
        run_id=run["run_id"],
        recorded_at=run["recorded_at"],
        submissions=run.get("submissions"),
        roster_columns=tuple(run.get("roster_columns") or ()),
        roster_rows=tuple(tuple(r) for r in run.get("roster_rows") or ()),
        has_roster=bool(run.get("has_roster")),
        overrides=tuple(
            Override(
                o["student"],
                o["question"],
                float(o["points"]),
                o.get("comment", ""),
                int(o.get("row", 0)),
            )
            for o in run.get("overrides") or ()
        ),
        overrides_path=run.get("overrides_path"),
        pack_name=run.get("pack_name"),
        pack_folder=run.get("pack_folder"),
    )


def _item_json(item: RubricItem) -> dict:
    return {"text": item.text, "points": item.points, "comment": item.comment}


def _text(value: object, what: str, empty_ok: bool = False) -> str:
    text = str(value or "").replace("\r\n", "\n").strip()
    if not text and not empty_ok:
        raise ReviewError(f"the {what} is empty")
    if len(text) > MAX_TEXT:
        raise ReviewError(f"the {what} is longer than {MAX_TEXT} characters")
    return text


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _dump(value: object) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


def _load(text: str | None) -> object:
    return None if text is None else json.loads(text)
