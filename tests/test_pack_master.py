"""The master's generated "Your derivation" cells (``autograder.pack.master``): written by
``sync-tests``, checked by ``build``, handed out locked (heading) and editable (answer)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest

from autograder.errors import MasterDrift, SpecError
from autograder.pack import load_path
from autograder.pack.master import (
    DERIVATION_KEY,
    check_master,
    derivation_cell_of,
    derivation_heading,
    sync_master,
)
from autograder.results import MANUAL_POSSIBLE, question_entry
from helpers import FIXTURE_PACKS, MP, TINY


def _copy_tiny(tmp_path: Path) -> Path:
    folder = tmp_path / "tiny"
    shutil.copytree(FIXTURE_PACKS / "tiny", folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def _strip_derivations(path: Path) -> None:
    nb = nbformat.read(str(path), as_version=4)
    nb.cells = [
        c
        for c in nb.cells
        if DERIVATION_KEY not in c.metadata
        and "Your derivation" not in c.source
        and c.source.strip().lower() not in ("# begin prompt", "# end prompt")
    ]
    nbformat.write(nb, str(path))


def test_missing_derivation_cells_are_drift_and_sync_writes_them(tmp_path):
    """Does a master without its declared derivation cells fail the check, and does sync write
    them back before each BEGIN SOLUTION, marked with the question id?"""
    folder = _copy_tiny(tmp_path)
    master = folder / "tiny.ipynb"
    _strip_derivations(master)
    pack = load_path(folder)
    declared = [q.id for q in pack.questions if q.derivation]
    assert declared
    with pytest.raises(MasterDrift, match='"Your derivation" cells are missing'):
        check_master(pack)
    assert set(sync_master(pack)) >= set(declared)
    check_master(pack)
    nb = nbformat.read(str(master), as_version=4)
    for qid in declared:
        index = derivation_cell_of(nb, qid)
        assert index is not None
        assert nb.cells[index - 2].source == derivation_heading(pack.question(qid))
        assert nb.cells[index + 2].source.strip().lower() == "# begin solution"
    assert sync_master(pack) == []  # a second sync changes nothing


def test_undeclared_derivation_cells_are_drift(tmp_path):
    """Does a master keeping derivation cells the spec no longer declares fail the check?"""
    folder = _copy_tiny(tmp_path)
    pack = load_path(folder)
    undeclared = replace(
        pack,
        questions=tuple(replace(q, derivation=False, derivation_points=0) for q in pack.questions),
    )
    with pytest.raises(MasterDrift, match="the spec declares none"):
        check_master(undeclared)


def test_derivation_points_need_the_cell():
    """Are manual derivation points without a derivation cell an author error?"""
    question = next(q for q in TINY.questions if q.derivation_points)
    with pytest.raises(SpecError, match="needs derivation=True"):
        replace(TINY, questions=(replace(question, derivation=False),))


def test_handed_out_derivation_cells(template):
    """Does every Exercise 2 question have a locked heading and an editable answer cell carrying
    the marker, in the notebook students get?"""
    for question in MP.questions:
        index = derivation_cell_of(template, question.id)
        assert index is not None, question.id
        answer, heading = template.cells[index], template.cells[index - 1]
        assert heading.source == derivation_heading(question)
        assert heading.metadata.get("editable") is False
        assert answer.cell_type == "markdown" and answer.metadata.get("editable") is not False
        assert "otter_answer_cell" in answer.metadata.get("tags", [])


def test_exercise_2_derivations_add_no_points():
    """Do Exercise 2's derivation cells leave its 12 autograded points and its results as they
    were (no manual points, no manual_possible field)?"""
    assert MP.manual_points == 0
    assert MP.total_points == MP.autograded_points == 12
    entry = question_entry("q3", None, pack=MP)
    assert MANUAL_POSSIBLE not in entry and entry["possible"] == 3.0
