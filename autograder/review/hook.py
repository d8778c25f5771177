"""``grade``'s hook: keep the run's autograded results in the review store, and layer the human
marks over them, so that a rerun of ``grade`` never loses what a TA marked in the app.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autograder.overrides import Override
from autograder.pack import Pack
from autograder.results import PackedResults

from .marks import overrides_for
from .questions import question_specs
from .store import ReviewStore

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


def record_run(
    *,
    out: Path,
    autograded: Sequence[Mapping[str, Any]],
    pack: Pack,
    run_overrides: list[Override],
    roster: pd.DataFrame | None,
    submissions: Path | None,
    overrides_path: Path | None = None,
    regraded: Mapping[tuple[str, str], tuple[str, object, object]] | None = None,
) -> list[Override]:
    """Record a run in ``out/review.sqlite`` and return the overrides to apply to its results.

    Args:
        out: The graded folder.
        autograded: The run's results before any override (one per submission).
        pack: The graded assignment (recorded, so the app knows its questions).
        run_overrides: The rows of the run's ``--overrides`` CSV.
        roster: The run's roster, if any.
        submissions: The submissions folder it graded.
        overrides_path: The ``--overrides`` file, for the record.
        regraded: A regrade's changed answers, ``(student, question) -> (reason, old, new)``:
            those under a human mark (a TA's mark or an ``--overrides`` row) are flagged for
            review in the same transaction (see :meth:`.store.Writer.flag`).

    Returns:
        One override per question with a CSV row or a TA's marks (see
        :mod:`autograder.review.marks`). Marks of students who are not in this run are kept in
        the store and logged, not applied.
    """
    specs = question_specs(pack, autograded)
    possible = {q.id: q.possible for q in specs}
    store = ReviewStore.of(out)
    with store.write(who="grade", possible=possible) as tx:
        tx.record_run(
            autograded=autograded,
            submissions=submissions,
            roster=roster,
            overrides=run_overrides,
            overrides_path=overrides_path,
            pack=pack,
        )
        state = tx.state()
        overrides = overrides_for(
            autograded,
            marks=state.marks.values(),
            items=state.items,
            run_overrides=run_overrides,
            possible=possible,
        )
        marked = {(o.student, o.question) for o in overrides}
        for (student, question), (reason, old, new) in sorted((regraded or {}).items()):
            if (student, question) in marked:
                tx.flag(student=student, question=question, reason=reason, old=old, new=new)
    students = (  # packed results give their ids without being decoded
        set(autograded.ids())
        if isinstance(autograded, PackedResults)
        else {r["student"] for r in autograded}
    )
    idle = sorted({m.student for m in state.marks.values() if not m.empty} - students)
    if idle:
        log.warning(
            "review marks kept for students not in this run (not applied): %s", ", ".join(idle)
        )
    return overrides
