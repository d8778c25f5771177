"""Advice notes: remarks on correct answers that never change a score.

The rules are the packs' (``Question.advice``), e.g. Exercise 2's note on an explicit inverse.
"""

from __future__ import annotations

import re

import nbformat

from .pack.spec import Pack


def answer_source(notebook: nbformat.NotebookNode, functions: tuple[str, ...]) -> str:
    """The source of the code cells defining any of these functions ("" if none)."""
    return "\n".join(
        cell.source
        for cell in notebook.cells
        if cell.cell_type == "code" and any(f"def {name}(" in cell.source for name in functions)
    )


def advice_notes(notebook: nbformat.NotebookNode, *, pack: Pack) -> dict[str, str]:
    """Question id -> advice note, for the questions whose answer cells match a rule."""
    notes = {}
    for question in pack.questions:
        if not question.advice:  # most questions have no rule: their cells are not looked at
            continue
        source = answer_source(notebook, question.function_names)
        found = [a.note for a in question.advice if re.search(a.pattern, source)]
        if found:
            notes[question.id] = "\n".join(found)
    return notes
