"""The assignment of a graded folder, from one place: its pack and its questions.

Every page of the review app and every score it computes asks :func:`question_specs` (ids,
sheet labels, points, function names, derivation points, read from the assignment pack) and
:func:`run_pack` (which pack a graded folder holds: the one ``grade`` recorded in the review
store, by folder then by name; else the ``assignment`` of the run manifest ``OUT/assignment.json``
when there is one; else the course's default pack). The app works for any pack.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autograder.pack import Pack, registry

if TYPE_CHECKING:
    from .store import RunContext

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
    derivation_points: float = 0.0
    """Manual points the pack gives its "Your derivation" cell (0: shown, not scored apart)."""

    @property
    def possible(self) -> float:
        """What a TA may award: the autograded points plus the derivation's manual points."""
        return self.points + self.derivation_points


def question_specs(
    pack: Pack, results: Iterable[Mapping[str, Any]] = ()
) -> tuple[QuestionSpec, ...]:
    """The questions of ``pack`` in gradebook order, then any question only the results name.

    Args:
        pack: The graded assignment.
        results: Its results (``results/<student>.json`` dicts).
    """
    specs = {
        q.id: QuestionSpec(
            q.id,
            q.sheet,
            float(q.points),
            tuple(q.function_names),
            float(q.derivation_points),
        )
        for q in pack.questions
    }
    for result in results:
        for qid, entry in (result.get("questions") or {}).items():
            if qid not in specs and isinstance(entry, dict):
                specs[qid] = QuestionSpec(qid, qid, float(entry.get("possible") or 0.0))
    return tuple(specs.values())


def run_pack(out: Path, run: RunContext | None) -> Pack:
    """The pack the graded folder ``out`` was graded with (see the module docstring).

    Raises:
        KitError: the recorded pack cannot be found or loaded (the message names it).
    """
    if run is not None and run.pack_folder and Path(run.pack_folder, "spec.py").is_file():
        return registry.load(Path(run.pack_folder))
    if run is not None and run.pack_name:
        return registry.load(run.pack_name)
    name = _manifest_assignment(Path(out))
    return registry.load(name or registry.default_name())


def _manifest_assignment(out: Path) -> str | None:
    """The manifest's assignment name, or ``None`` when there is no usable manifest."""
    path = out / MANIFEST_NAME
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return None
    name = record.get("assignment") if isinstance(record, dict) else None
    return name if isinstance(name, str) and name.strip() else None
