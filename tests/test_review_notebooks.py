"""Tests for finding answer code and derivations in a notebook (autograder/review/notebooks.py)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from autograder.review.notebooks import answers_of, load_submissions
from autograder.review.questions import QuestionSpec

SPECS = (
    QuestionSpec("q1a", "2-1 a", 1.0, ("jacobian_Wx",)),
    QuestionSpec("q1b", "2-1 b", 1.0, ("jacobian_xT_WT",)),
    QuestionSpec("q2a", "2-2 a", 2.0, ("softmax_diag_derivative", "softmax_jacobian")),
)


def md(text: str, **meta) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_markdown_cell(text)
    cell.metadata.update(meta)
    return cell


def code(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(text)


def notebook(*cells) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    return nb


def test_answer_code_is_every_cell_defining_the_questions_functions():
    """Are the cells defining a question's functions its code (both q2a functions, a cell that
    does not parse matched by its def line), and unrelated cells left out?"""
    nb = notebook(
        code("import numpy as np"),
        code("def jacobian_Wx(W, x):\n    return W"),
        code("def softmax_diag_derivative(z):\n    return z"),
        code("def softmax_jacobian(z):\n    return z +"),  # a syntax error
        code("jacobian_Wx = None  # not a def"),
    )
    answers = answers_of(nb, SPECS)
    assert answers["q1a"].code == ("def jacobian_Wx(W, x):\n    return W",)
    assert len(answers["q2a"].code) == 2 and answers["q1b"].code == ()


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        # A label after q1a's check cell: nearest question is q1a.
        (
            [
                code('grader.check("q1a")'),
                md("**Your derivation**"),
                md("$J = W$"),
                code("def jacobian_xT_WT(W, x): pass"),
                code('grader.check("q1b")'),
            ],
            {"q1a": ("$J = W$",)},
        ),
        # Label and answer in one cell, before q1b's code.
        (
            [
                code('grader.check("q1a")'),
                md("x"),
                md("Your derivation: $J = W^T$ hence"),
                code("def jacobian_xT_WT(W, x): pass"),
            ],
            {"q1b": ("$J = W^T$ hence",)},
        ),
        # The label names the question by its sheet label; a heading label is all label.
        (
            [
                code('grader.check("q1a")'),
                md("### Your derivation (2-2 a)\n\ns(1-s)"),
                code('grader.check("q1b")'),
            ],
            {"q2a": ("s(1-s)",)},
        ),
        # Metadata names the question; the locked prompt after a label ends the answer.
        (
            [
                md("mine", derivation="q1b"),
                md("Your derivation"),
                md("a"),
                md("prompt", editable=False),
                code('grader.check("q1a")'),
            ],
            {"q1b": ("mine",), "q1a": ("a",)},
        ),
    ],
)
def test_derivations_are_found_and_attached_to_their_question(cells, expected):
    """Does each layout of "Your derivation" cells give the derivation to the right question?"""
    answers = answers_of(notebook(*cells), SPECS)
    assert {q: a.derivations for q, a in answers.items() if a.derivations} == expected


def test_submissions_are_read_with_the_kits_intake(tmp_path: Path):
    """Are zips, folders and broken files read as `grade` reads them (ids, problems)?"""
    nb = notebook(code("def jacobian_Wx(W, x):\n    return W"))
    (tmp_path / "s").mkdir()
    nbformat.write(nb, str(tmp_path / "s" / "ann.ipynb"))
    (tmp_path / "s" / "bob").mkdir()
    nbformat.write(nb, str(tmp_path / "s" / "bob" / "hw 2.ipynb"))
    (tmp_path / "s" / "cy.ipynb").write_text("not json")
    views, problem = load_submissions(tmp_path / "s", specs=SPECS)
    assert problem is None and sorted(views) == ["ann", "bob", "cy"]
    assert views["bob"].source == "hw 2.ipynb" and views["bob"].answers["q1a"].code
    assert "not valid JSON" in views["cy"].problem
    assert load_submissions(tmp_path / "gone", specs=SPECS)[1].endswith("is not there any more")


def test_the_packs_derivation_cells_are_read_and_the_placeholder_is_no_answer(template):
    """In the handed-out notebook (heading label, then the answer cell with its metadata), is an
    untouched placeholder no derivation, and a written one given to its question only?"""
    from autograder.pack.master import DERIVATION_KEY
    from autograder.review.questions import question_specs
    from helpers import MP

    specs = question_specs(MP)
    assert all(not a.derivations for a in answers_of(template, specs).values())
    nb = nbformat.from_dict(template)
    cell = next(c for c in nb.cells if (c.metadata or {}).get(DERIVATION_KEY) == "q1b")
    cell.source = r"$z_i = \sum_j W_{ij} x_j$, so $J = W$."
    answers = answers_of(nb, specs)
    assert answers["q1b"].derivations == (cell.source,)
    assert [q for q, a in answers.items() if a.derivations] == ["q1b"]
