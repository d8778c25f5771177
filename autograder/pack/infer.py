"""Which assignment a folder of submissions belongs to, from the notebooks themselves.

Per notebook: Otter's metadata (``metadata.otter.assignment_name``, written by Otter Assign into
the student notebook) when it names a known pack; otherwise the pack whose graded functions the
notebook defines most (``def <name>(``), when exactly one pack is best. A folder is one pack's
when every notebook that tells points to the same pack.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable

import nbformat

from ..errors import PackNotFound
from ..intake import Marks, defined_functions, notebook_marks, otter_name
from . import registry

__all__ = ["Marks", "infer", "marks_pack", "notebook_marks", "notebook_pack"]

log = logging.getLogger(__name__)


def marks_pack(marks: Marks, candidates: Iterable[str]) -> str | None:
    """The pack a notebook with these :func:`notebook_marks` belongs to, or None when they do
    not tell: what :func:`notebook_pack` says of the notebook."""
    candidates = list(candidates)
    named, defined = marks
    if named is not None and named in candidates:
        return named
    return _best(set(defined), candidates)


def _graded_functions(name: str) -> set[str]:
    return {f for q in registry.load(name).questions for f in q.function_names}


def _best(defined: set[str], candidates: list[str]) -> str | None:
    scores = {}
    for name in candidates:
        scores[name] = len(defined & _graded_functions(name))
    best = max(scores.values(), default=0)
    winners = [name for name, score in scores.items() if score == best]
    return winners[0] if best > 0 and len(winners) == 1 else None


def notebook_pack(notebook: nbformat.NotebookNode, candidates: Iterable[str]) -> str | None:
    """The pack a notebook belongs to, or None when it does not tell."""
    candidates = list(candidates)
    named = otter_name(notebook)
    if isinstance(named, str) and named in candidates:
        return named
    return _best(defined_functions(notebook), candidates)


def infer(notebooks: Iterable[nbformat.NotebookNode | Marks | None]) -> str:
    """The one pack every telling notebook belongs to.

    Each notebook may be given as its :func:`notebook_marks` instead (a tuple): the same vote,
    without the notebook. None (an unusable submission) does not vote.

    Raises:
        PackNotFound: the folder is mixed, or no notebook tells; the message names the candidates
            and asks for ``--assignment``.
    """
    candidates = registry.names()
    if not candidates:
        raise PackNotFound("no assignments found (no assignments/<name>/spec.py)")
    if len(candidates) == 1:
        return candidates[0]
    said: dict[Marks, str | None] = {}  # a batch has few distinct marks: each is scored once
    votes = Counter(
        pack
        for notebook in notebooks
        if notebook is not None and (pack := _pack(notebook, candidates, said)) is not None
    )
    if len(votes) == 1:
        return next(iter(votes))
    if not votes:
        raise PackNotFound(
            "cannot tell which assignment these submissions are for (candidates: "
            f"{', '.join(candidates)}); pass --assignment NAME"
        )
    mixed = ", ".join(f"{count} look like {name}" for name, count in sorted(votes.items()))
    raise PackNotFound(f"mixed submissions ({mixed}); grade each assignment with --assignment NAME")


def _pack(
    notebook: nbformat.NotebookNode | Marks, candidates: list[str], said: dict[Marks, str | None]
) -> str | None:
    if not isinstance(notebook, tuple):
        return notebook_pack(notebook, candidates)
    if notebook not in said:
        said[notebook] = marks_pack(notebook, candidates)
    return said[notebook]
