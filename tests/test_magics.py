"""The evaluator's IPython transformer (autograder/judge/magics.py), through the real judge."""

from __future__ import annotations

from pathlib import Path

import nbformat

from autograder.intake import Submission
from autograder.judge.engine import grade_submission
from autograder.pack import load
from autograder.samples import load_samples

PACK = load("math_primer")


def _scores(prefix: str) -> dict[str, float]:
    """Scores of the correct answers, each cell starting with ``prefix``."""
    cells = [nbformat.v4.new_code_cell(f"{prefix}import numpy as np")]
    cells += [
        nbformat.v4.new_code_cell(f"{prefix}{s}") for s in load_samples(PACK).correct.values()
    ]
    notebook = nbformat.v4.new_notebook(cells=cells)
    result = grade_submission(Submission("ann", Path("ann.ipynb"), notebook, None), pack=PACK)
    assert result["status"] == "graded", result
    return {q: entry["score"] for q, entry in result["questions"].items()}


def test_cells_with_magics_still_define_their_answers() -> None:
    """With IPython imported only by the evaluators' template, do cells that begin with
    ``%matplotlib inline`` or ``!echo`` still run in the sandbox and define the same answers as
    without them?"""
    plain = _scores("")
    assert sum(plain.values()) > 0
    assert _scores("%matplotlib inline\n") == plain
    assert _scores("!echo ready\n") == plain
