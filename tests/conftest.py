"""Shared fixtures: one Otter Assign build per test session."""

from __future__ import annotations

import csv
import subprocess
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


SOFFICE = Path("/usr/bin/soffice")
"""LibreOffice (Debian's ``libreoffice-calc-nogui``): opens CSVs as a TA's spreadsheet would."""


def spreadsheet_cells(csv_path: Path, scratch: Path) -> list[list[str]]:
    """The cells of a CSV as LibreOffice Calc shows them after opening it (formulas evaluated).

    Calc opens the file with its default CSV import settings and saves what it displays as CSV
    again; a cell it evaluated shows its value (``=1+1`` becomes ``2``).
    """
    out = scratch / "calc-out"
    command = [
        str(SOFFICE),
        f"-env:UserInstallation={(scratch / 'calc-profile').as_uri()}",
        "--headless",
        "--infilter=CSV:44,34,76,1",  # comma, double quote, UTF-8, from line 1; defaults else
        "--convert-to",
        "csv:Text - txt - csv (StarCalc):44,34,76",
        "--outdir",
        str(out),
        str(csv_path),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    shown = out / csv_path.name
    assert shown.exists(), f"LibreOffice wrote nothing (exit {done.returncode}): {done.stderr}"
    with shown.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))
