"""Advice notes: remarks on correct answers that never change a score.

Today one note: an explicit matrix inverse in q3, where ``solve`` or ``lstsq`` is more accurate.
"""

from __future__ import annotations

import re

import nbformat

from .contract import BY_NAME

_RULES: dict[str, tuple[re.Pattern[str], str]] = {
    "q3": (
        re.compile(r"\binv\s*\("),
        "Advice (no deduction): your answer forms an explicit inverse. np.linalg.solve(X.T @ X, "
        "X.T @ y), or better np.linalg.lstsq(X, y), is more accurate: forming X^T X squares the "
        "condition number.",
    ),
}


def answer_source(notebook: nbformat.NotebookNode, question: str) -> str:
    """The source of the code cells defining the question's functions ("" if none)."""
    names = BY_NAME[question].functions
    return "\n".join(
        cell.source
        for cell in notebook.cells
        if cell.cell_type == "code" and any(f"def {name}(" in cell.source for name in names)
    )


def advice_notes(notebook: nbformat.NotebookNode) -> dict[str, str]:
    """Question -> advice note, for the questions whose answer cells match a rule."""
    notes = {}
    for question, (pattern, note) in _RULES.items():
        if pattern.search(answer_source(notebook, question)):
            notes[question] = note
    return notes
