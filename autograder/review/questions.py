"""The questions of a graded folder, from one place: ids, sheet labels, points, function names.

Every page of the review app and every score it computes asks :func:`question_specs`. Sources,
in order: the run manifest ``OUT/assignment.json`` when there is one (ids, labels, points of the
assignment that was graded), else the kit's current question metadata; the function names a
question asks for come from the kit's metadata; a question found only in the results (another
pack) is still listed, with its id as label and its ``possible`` points.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MANIFEST_NAME = "assignment.json"


@dataclass(frozen=True)
class QuestionSpec:
    """One graded question as the review app shows it."""

    id: str
    """Question id, as in the results and the gradebook (``q1a``)."""
    label: str
    """The exercise-sheet label (``2-1 a``), or the id when unknown."""
    points: float
    """Points the question is worth."""
    functions: tuple[str, ...] = ()
    """Functions the student writes for it (to find the answer code); empty when unknown."""


def question_specs(out: Path, results: Iterable[dict] = ()) -> tuple[QuestionSpec, ...]:
    """The questions of the graded folder ``out``, in gradebook order.

    Args:
        out: The graded folder.
        results: Its results (``results/<student>.json`` dicts), for questions no other source
            names.
    """
    from autograder.contract import QUESTIONS  # the kit's metadata (packs replace this import)

    kit = {q.name: q for q in QUESTIONS}
    specs: dict[str, QuestionSpec] = {}
    for entry in _manifest_questions(Path(out)):
        qid = str(entry["id"])
        known = kit.get(qid)
        specs[qid] = QuestionSpec(
            qid,
            str(entry.get("sheet") or qid),
            float(entry["points"]),
            known.functions if known else (),
        )
    if not specs:
        specs = {
            q.name: QuestionSpec(q.name, q.sheet, float(q.points), q.functions) for q in QUESTIONS
        }
    for result in results:
        for qid, entry in (result.get("questions") or {}).items():
            if qid not in specs and isinstance(entry, dict):
                specs[qid] = QuestionSpec(qid, qid, float(entry.get("possible") or 0.0))
    return tuple(specs.values())


def _manifest_questions(out: Path) -> list[dict]:
    """The manifest's question entries, or ``[]`` when there is no usable manifest."""
    path = out / MANIFEST_NAME
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return []
    entries = record.get("questions") if isinstance(record, dict) else None
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and "id" in e and "points" in e for e in entries
    ):
        return []
    return entries
