"""Advice notes: remarks on correct answers that never change a score.

The rules are the packs' (``Question.advice``), e.g. Exercise 2's note on an explicit inverse.
"""

from __future__ import annotations

import re

import nbformat

from .pack.spec import Pack


def answer_source(notebook: nbformat.NotebookNode, functions: tuple[str, ...]) -> str:
    """The source of the code cells defining any of these functions ("" if none)."""
    heads = [f"def {name}(" for name in functions]
    sources = (cell["source"] for cell in notebook.cells if cell.get("cell_type") == "code")
    return "\n".join(source for source in sources if any(head in source for head in heads))


def advice_notes(notebook: nbformat.NotebookNode, *, pack: Pack) -> dict[str, str]:
    """Question id -> advice note, for the questions whose answer cells match a rule."""
    notes = {}
    for question in pack.questions:
        if not question.advice:
            continue  # no rule: nothing to look for in the answer
        source = answer_source(notebook, question.function_names)
        found = [a.note for a in question.advice if re.search(a.pattern, source)]
        if found:
            notes[question.id] = "\n".join(found)
    return notes
