"""How human marks are layered over the autograde: one rule, pure functions.

For one question of one submission:

1. **base** = the points of the run's ``--overrides`` CSV for that question if it has a row,
   else the autograded score;
2. if a TA **set points** in the review app, the final points are those points (rubric items
   stay recorded and shown, but do not count);
3. otherwise the final points are the base **plus the points of every rubric item applied**
   (an item's points are signed: ``-0.5`` takes half a point off, ``+0.25`` gives a quarter back);
4. the final points are clamped to ``[0, question points]``.

The result is handed to :func:`autograder.overrides.apply_overrides` as one
:class:`~autograder.overrides.Override` per marked question (the mechanism the overrides CSV
uses), so ``results/<student>.json`` keeps both numbers (``override.autograded`` and ``score``),
the feedback says so, and the gradebook and report follow. A question is overridden when it has a
run override, set points, an applied item or a comment. The student reads, in order: the CSV's
comment, each applied item's comment (its text when it has none) with its points, and the TA's
comment, separated by ``"; "``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from autograder.overrides import Override


@dataclass(frozen=True)
class RubricItem:
    """A reusable rubric item of one question, created by a TA."""

    id: int
    question: str
    """Question id the item belongs to."""
    text: str
    """Short label the TA sees (e.g. ``"transposed, but explained"``)."""
    points: float
    """Signed points added to the base when applied (see the module docstring)."""
    comment: str = ""
    """The reusable comment the student reads (the text is used when empty)."""
    position: int = 0
    """Order on the page; also its number key (1 = first)."""
    version: int = 1
    """Bumped by every edit (optimistic concurrency)."""


@dataclass(frozen=True)
class Mark:
    """A TA's marks on one question of one submission, as stored."""

    student: str
    question: str
    points: float | None = None
    """Points set by hand (replace everything else), or ``None``."""
    comment: str = ""
    """The TA's own comment to the student."""
    items: tuple[int, ...] = ()
    """Ids of the rubric items applied."""
    version: int = 0
    """Bumped by every change to this question's marks (optimistic concurrency)."""

    @property
    def empty(self) -> bool:
        """No points, no items, no comment: nothing to layer."""
        return self.points is None and not self.items and not self.comment.strip()


@dataclass(frozen=True)
class Layered:
    """One question's points after the layering rule."""

    autograded: float
    """The engine's score."""
    base: float
    """The autograded score, or the run's ``--overrides`` points."""
    final: float
    """What the gradebook shows."""
    possible: float
    rule: str
    """Which step decided: ``autograde``, ``run override``, ``set points`` or ``rubric``."""
    comment: str
    """What the student reads besides the autograder's feedback."""
    clamped: bool = False
    """The sum left ``[0, possible]`` and was clamped."""

    @property
    def overridden(self) -> bool:
        """Does this question get an override entry?"""
        return self.rule != "autograde" or bool(self.comment)


def layer(
    *,
    autograded: float,
    possible: float,
    mark: Mark | None = None,
    items: Mapping[int, RubricItem] | None = None,
    run_override: Override | None = None,
) -> Layered:
    """Apply the layering rule (module docstring) to one question of one submission.

    Args:
        autograded: The engine's score.
        possible: The question's points.
        mark: The TA's marks on it, if any.
        items: Rubric items by id (items missing here, e.g. deleted ones, do not count).
        run_override: The row of the run's ``--overrides`` CSV for it, if any.
    """
    items = items or {}
    base = run_override.points if run_override is not None else autograded
    rule = "run override" if run_override is not None else "autograde"
    applied = [items[i] for i in (mark.items if mark else ()) if i in items]
    applied.sort(key=lambda item: (item.position, item.id))
    if mark is not None and mark.points is not None:
        raw, rule = mark.points, "set points"
    elif applied:
        raw, rule = base + math.fsum(item.points for item in applied), "rubric"
    else:
        raw = base
    final = min(max(raw, 0.0), possible)
    parts = [run_override.comment] if run_override is not None and run_override.comment else []
    for item in applied:
        said = (item.comment or item.text).strip()
        parts.append(said if rule == "set points" else f"{said} ({item.points:+g} pt)")
    if mark is not None and mark.comment.strip():
        parts.append(mark.comment.strip())
    return Layered(
        autograded=autograded,
        base=base,
        final=round(final, 6),
        possible=possible,
        rule=rule,
        comment="; ".join(p.strip() for p in parts if p.strip()),
        clamped=not math.isclose(final, raw, abs_tol=1e-9),
    )


def overrides_for(
    results: Iterable[Mapping[str, Any]],
    *,
    marks: Iterable[Mark],
    items: Mapping[int, RubricItem],
    run_overrides: Iterable[Override] = (),
    possible: Mapping[str, float],
) -> list[Override]:
    """One override per marked question of the given results (run overrides and TA marks merged).

    Marks of students without a result, or of questions not in ``possible``, are left out (they
    stay in the store; the caller reports them).

    Args:
        results: Autograded results (before any override).
        marks: The TA's marks.
        items: Rubric items by id.
        run_overrides: The run's ``--overrides`` rows.
        possible: Points per question id.
    """
    by_cell: dict[tuple[str, str], list] = {}
    for override in run_overrides:
        by_cell.setdefault((override.student, override.question), [None, None])[0] = override
    for mark in marks:
        if not mark.empty:
            by_cell.setdefault((mark.student, mark.question), [None, None])[1] = mark
    if not by_cell:  # nothing marked: the results need not be read (a batch's worth of them)
        return []
    scores = {
        r["student"]: {
            q: float(e.get("score") or 0.0) for q, e in (r.get("questions") or {}).items()
        }
        for r in results
    }
    overrides = []
    for (student, question), (run_override, mark) in sorted(by_cell.items()):
        if student not in scores or question not in possible:
            continue
        layered = layer(
            autograded=scores[student].get(question, 0.0),
            possible=possible[question],
            mark=mark,
            items={i: item for i, item in items.items() if item.question == question},
            run_override=run_override,
        )
        if layered.overridden:
            overrides.append(Override(student, question, layered.final, layered.comment, 0))
    return overrides
