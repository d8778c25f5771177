"""Advice notes on correct answers."""

from __future__ import annotations

import nbformat
import pytest

from autograder.advice import advice_notes
from autograder.engines.otter_engine import result_from_worker
from autograder.pack import load

MP = load("math_primer")


def notebook_with(source: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])


@pytest.mark.parametrize(
    "body,advised",
    [
        ("return np.linalg.inv(X.T @ X) @ X.T @ y", True),
        ("from numpy.linalg import inv\n    return inv(X.T @ X) @ (X.T @ y)", True),
        ("return np.linalg.pinv(X) @ y", False),
        ("return np.linalg.solve(X.T @ X, X.T @ y)", False),
    ],
)
def test_explicit_inverse_in_q3_gets_advice(body, advised):
    """Does an explicit inverse in q3 (and only that, not pinv) earn an advice note?"""
    notes = advice_notes(notebook_with(f"def mse_minimizer(X, y):\n    {body}\n"), pack=MP)
    assert ("q3" in notes) is advised


def test_advice_never_changes_the_score():
    """Is advice appended to the feedback without touching the points?"""
    data = {
        "questions": {
            "q3": {
                "score": 3.0,
                "possible": 3.0,
                "cases": [
                    {"name": n, "points": p, "hidden": True, "passed": True, "message": "ok"}
                    for n, p in (
                        ("test_q3_typical", 2.0),
                        ("test_q3_ill_conditioned", 0.5),
                        ("test_q3_edge", 0.5),
                    )
                ],
            }
        }
    }
    plain = result_from_worker("ann", data, pack=MP)
    advised = result_from_worker("ann", data, {"q3": "Advice: use solve"}, pack=MP)
    assert advised["questions"]["q3"]["score"] == plain["questions"]["q3"]["score"] == 3.0
    assert advised["total"] == plain["total"]
    assert advised["questions"]["q3"]["feedback"].endswith("Advice: use solve")
