"""Which assignment a folder of submissions belongs to, from the notebooks themselves.

Per notebook: Otter's metadata (``metadata.otter.assignment_name``, written by Otter Assign into
the student notebook) when it names a known pack; otherwise the pack whose graded functions the
notebook defines most (``def <name>(``), when exactly one pack is best. A folder is one pack's
when every notebook that tells points to the same pack.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable

import nbformat

from ..errors import PackNotFound
from . import registry

log = logging.getLogger(__name__)


def _defined(notebook: nbformat.NotebookNode) -> set[str]:
    names = set()
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "code":
            names.update(
                re.findall(r"^\s*def\s+([A-Za-z_]\w*)\s*\(", cell.get("source", ""), re.MULTILINE)
            )
    return names


def notebook_pack(notebook: nbformat.NotebookNode, candidates: Iterable[str]) -> str | None:
    """The pack a notebook belongs to, or None when it does not tell."""
    candidates = list(candidates)
    otter = (notebook.get("metadata") or {}).get("otter") or {}
    named = otter.get("assignment_name") if isinstance(otter, dict) else None
    if isinstance(named, str) and named in candidates:
        return named
    defined = _defined(notebook)
    scores = {}
    for name in candidates:
        functions = {f for q in registry.load(name).questions for f in q.function_names}
        scores[name] = len(defined & functions)
    best = max(scores.values(), default=0)
    winners = [name for name, score in scores.items() if score == best]
    return winners[0] if best > 0 and len(winners) == 1 else None


def infer(notebooks: Iterable[nbformat.NotebookNode | None]) -> str:
    """The one pack every telling notebook belongs to.

    Raises:
        PackNotFound: the folder is mixed, or no notebook tells; the message names the candidates
            and asks for ``--assignment``.
    """
    candidates = registry.names()
    if not candidates:
        raise PackNotFound("no assignments found (no assignments/<name>/spec.py)")
    if len(candidates) == 1:
        return candidates[0]
    votes = Counter(
        pack
        for notebook in notebooks
        if notebook is not None and (pack := notebook_pack(notebook, candidates)) is not None
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
