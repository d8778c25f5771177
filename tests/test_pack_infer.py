"""Inferring a folder's pack from the marks intake keeps (``autograder.pack.infer``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from autograder.errors import PackNotFound
from autograder.intake import Submission, discover, notebook_marks
from autograder.pack import registry
from autograder.pack.infer import infer, marks_pack, notebook_pack

FIXTURES = Path(__file__).parent / "fixtures" / "assignments"


@pytest.fixture()
def with_fixtures(monkeypatch):
    """The fixture packs on the search path, next to the repository's."""
    monkeypatch.setenv(registry.SEARCH_ENV, str(FIXTURES))


def _notebook(*sources: str, assignment: object = None) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    if assignment is not None:
        nb.metadata["otter"] = {"assignment_name": assignment}
    return nb


NOTEBOOKS = {
    "named": _notebook("x = 1", assignment="tiny"),
    "named_unknown": _notebook("def jacobian_Wx(W, x): ...", assignment="nope"),
    "named_not_text": _notebook("def chain_gradient(f, f_prime, x): ...", assignment=3),
    "defines_tiny": _notebook("def chain_gradient(f, f_prime, x):\n    ...\n"),
    "defines_primer": _notebook("  def jacobian_Wx(W, x): ...", "def helper(): pass"),
    "defines_both": _notebook("def chain_gradient(f, g, x): ...\ndef jacobian_Wx(W, x): ..."),
    "silent": _notebook("x = 1"),
    "empty": _notebook(),
}


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_marks_tell_the_pack_the_notebook_tells(with_fixtures, name):
    """Do a notebook's marks name the same pack (or none) as the notebook itself?"""
    candidates = registry.names()
    notebook = NOTEBOOKS[name]
    assert marks_pack(notebook_marks(notebook), candidates) == notebook_pack(notebook, candidates)


def test_a_submission_keeps_the_marks_of_its_notebook(tmp_path):
    """Does intake keep each readable notebook's marks, and none for an unusable one?"""
    nbformat.write(NOTEBOOKS["defines_primer"], tmp_path / "ann.ipynb")
    (tmp_path / "bob.ipynb").write_text("{not json")
    ann, bob = discover(tmp_path)
    assert ann.marks == (None, ("helper", "jacobian_Wx")) == notebook_marks(ann.notebook)
    assert bob.marks is None


def test_marks_are_not_compared_and_survive_a_replace(tmp_path):
    """Is a submission equal to one built from its packed bytes (no marks), and does
    ``dataclasses.replace`` (LMS files) keep the marks?"""
    import dataclasses

    made = Submission("ann", tmp_path / "ann.ipynb", NOTEBOOKS["named"], None)
    bare = Submission("ann", made.source, made.packed, None, zdict=made.zdict)
    assert made.marks == ("tiny", ()) and bare.marks is None
    assert made == bare
    assert dataclasses.replace(made, late=True).marks == ("tiny", ())


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["named", "silent", "empty"], "tiny"),
        (["defines_primer", "named_unknown", "silent"], "math_primer"),
        (["named", "defines_tiny", "named_not_text"], "tiny"),
        (["named", "defines_primer"], r"mixed submissions \(1 look like math_primer, 1 look"),
        (["silent", "defines_both"], r"candidates: .*math_primer.*tiny.*--assignment"),
    ],
)
def test_a_folder_inferred_from_marks_is_inferred_as_from_notebooks(with_fixtures, names, expected):
    """Does a folder get the same pack, or the same error, from its submissions' marks (with
    unusable ones and ones without marks among them) as from its notebooks?"""
    notebooks = [NOTEBOOKS[n] for n in names] + [None]
    mixed = [notebook_marks(nb) for nb in notebooks[:-2]] + notebooks[-2:]
    outcomes = []
    for given in (notebooks, mixed):
        try:
            outcomes.append(infer(iter(given)))
        except PackNotFound as e:
            outcomes.append(str(e))
    assert outcomes[0] == outcomes[1]
    assert outcomes[1] == expected or re.search(expected, outcomes[1])


def test_a_malformed_notebook_keeps_no_marks_and_fails_as_before(with_fixtures, tmp_path):
    """Does a notebook whose cells make the marks fail (a source that is not text) keep no
    marks, so that inferring from it fails as inferring from the notebook always did?"""
    raw = json.loads(nbformat.writes(NOTEBOOKS["silent"]))
    raw["cells"][0]["source"] = 5
    made = Submission("ann", tmp_path / "ann.ipynb", raw, None)
    assert made.marks is None
    with pytest.raises(TypeError):
        infer([made.notebook if made.marks is None else made.marks])
