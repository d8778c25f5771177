"""Shared fixtures: one Otter Assign build per test session."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from autograder.build import Build, build


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """The assignment built by the real Otter Assign, once per session."""
    return build(out=tmp_path_factory.mktemp("dist") / "dist")


@pytest.fixture(scope="session")
def template(built: Build) -> nbformat.NotebookNode:
    """The student notebook as handed out (answer cells still `...`)."""
    return nbformat.read(str(built.student_notebook), as_version=4)


@pytest.fixture()
def fast_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 2 s per-call limit for student functions, so timeout tests stay quick."""
    monkeypatch.setenv("MATH_PRIMER_CALL_TIMEOUT", "2")


def write_notebooks(folder: Path, notebooks: dict[str, nbformat.NotebookNode]) -> Path:
    """Write ``<student>.ipynb`` files into ``folder`` and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    for student, nb in notebooks.items():
        nbformat.write(nb, str(folder / f"{student}.ipynb"))
    return folder
