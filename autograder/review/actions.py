"""The review app's changes: a submitted form turned into one store operation.

Each builder checks the form (raising :class:`~.store.ReviewError` with what is wrong) and
returns an operation ``op(tx) -> message`` that :meth:`.context.ReviewContext.write` runs in one
transaction. Builders do no I/O.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from autograder.overrides import check_students, read_overrides
from autograder.pack import Pack

from .store import ReviewError, Writer

Op = Callable[[Writer], str]
"""One change, run inside a write transaction; returns what it did, for the TA."""

MAX_UPLOAD = 10_000_000
"""Largest overrides CSV accepted (bytes)."""


def mark_op(form: Mapping, *, student: str, question: str) -> Op:
    """One answer's change: ``toggle`` an item, set or ``clear`` points, or save a comment."""
    action = form.get("action")
    if action == "toggle":
        item = as_int(form.get("item"))

        def toggle(tx: Writer) -> str:
            if tx.apply_item(student=student, item_id=item):
                return f"applied item {item} to {student}"
            tx.remove_item(student=student, item_id=item)
            return f"removed item {item} from {student}"

        return toggle
    if action not in ("points", "clear", "comment"):
        raise ReviewError(f"unknown action {action!r}")
    version = as_int(form.get("version"))
    if action == "points":
        points = as_points(form.get("points"))

        def set_points(tx: Writer) -> str:
            tx.set_points(student=student, question=question, points=points, version=version)
            return f"{student}, {question}: points set to {points:g}"

        return set_points
    if action == "clear":

        def clear(tx: Writer) -> str:
            tx.set_points(student=student, question=question, points=None, version=version)
            return f"{student}, {question}: points set by hand cleared"

        return clear
    text = str(form.get("comment") or "")

    def comment(tx: Writer) -> str:
        tx.set_comment(student=student, question=question, text=text, version=version)
        return f"{student}, {question}: comment saved"

    return comment


def bulk_op(form: Mapping, *, question: str, students: Sequence[str]) -> Op:
    """A change to several answers at once: ``apply`` or ``remove`` an item, set ``points``
    (each answer's version from the form's ``version:<student>`` fields) or add a ``comment``."""
    if not students:
        raise ReviewError("no submission selected: tick some, or use a group's button")
    action = form.get("action")
    if action in ("apply", "remove"):
        if not form.get("item"):
            raise ReviewError("choose a rubric item (add one to the question first)")
        item = as_int(form.get("item"))
        if action == "apply":

            def apply(tx: Writer) -> str:
                n = sum(tx.apply_item(student=s, item_id=item) for s in students)
                return f"applied item {item} to {n} of {len(students)} submission(s)"

            return apply

        def remove(tx: Writer) -> str:
            n = sum(tx.remove_item(student=s, item_id=item) for s in students)
            return f"removed item {item} from {n} submission(s)"

        return remove
    if action == "points":
        points = as_points(form.get("points"))
        versions = {}
        for s in students:
            if form.get(f"version:{s}") is None:
                raise ReviewError(f"no version for {s}: reload the page and redo it")
            versions[s] = as_int(form.get(f"version:{s}"))

        def set_points(tx: Writer) -> str:
            for s in students:
                tx.set_points(student=s, question=question, points=points, version=versions[s])
            return f"points of {len(students)} submission(s) set to {points:g}"

        return set_points
    if action == "comment":
        text = str(form.get("comment") or "")

        def comment(tx: Writer) -> str:
            for s in students:
                tx.add_comment(student=s, question=question, text=text)
            return f"comment added to {len(students)} submission(s)"

        return comment
    raise ReviewError(f"unknown bulk action {action!r}")


def clear_flag_op(*, student: str, question: str) -> Op:
    """Clear the review flag a regrade raised on one answer (the TA has looked at it)."""

    def clear(tx: Writer) -> str:
        if not tx.clear_flag(student=student, question=question):
            raise ReviewError(f"{student}, {question} is not flagged (cleared already?)")
        return f"{student}, {question}: review flag cleared"

    return clear


def new_item_op(form: Mapping, *, question: str) -> Op:
    """Create a rubric item (text, signed points, optional comment)."""
    points = as_points(form.get("points"))
    text, comment = str(form.get("text") or ""), str(form.get("comment") or "")

    def create(tx: Writer) -> str:
        item = tx.add_item(question=question, text=text, points=points, comment=comment)
        return f"rubric item {item.id} created"

    return create


def edit_item_op(form: Mapping, *, item: int) -> Op:
    """Save (``action=save``) or delete (``action=delete``) an item; its carriers are re-scored."""
    version = as_int(form.get("version"))
    if form.get("action") == "delete":

        def delete(tx: Writer) -> str:
            tx.delete_item(item, version=version)
            return f"rubric item {item} deleted; {len(tx.changed)} submission(s) re-scored"

        return delete
    points = as_points(form.get("points"))
    text, comment = str(form.get("text") or ""), str(form.get("comment") or "")

    def save(tx: Writer) -> str:
        tx.edit_item(item, version=version, text=text, points=points, comment=comment)
        return f"rubric item {item} saved; {len(tx.changed)} submission(s) re-scored"

    return save


def import_op(data: bytes, *, name: str, students: Iterable[str], pack: Pack) -> Op:
    """Import an overrides CSV, checked exactly as ``grade --overrides`` checks it."""
    if len(data) > MAX_UPLOAD:
        raise ReviewError(f"the file is larger than {MAX_UPLOAD // 1_000_000} MB")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "overrides.csv"
        path.write_bytes(data)
        rows = read_overrides(path, pack=pack)  # GradebookError names the row and the problem
    check_students(rows, students, path=Path(name))

    def load(tx: Writer) -> str:
        n = tx.import_overrides(rows, source=name)
        return f"imported {name}: {n} of {len(rows)} row(s) changed a mark"

    return load


def as_int(value: object) -> int:
    """A whole number from a form field."""
    try:
        return int(str(value))
    except ValueError:
        raise ReviewError(f"expected a whole number, got {value!r}") from None


def as_points(value: object) -> float:
    """Points from a form field (a decimal comma is accepted)."""
    text = str(value or "").strip().replace(",", ".")
    try:
        number = float(text)
    except ValueError:
        raise ReviewError(f"points must be a number, got {text!r}") from None
    if not math.isfinite(number):
        raise ReviewError(f"points must be a finite number, got {text!r}")
    return number
