"""Shared fixtures and options: one Otter Assign build per test session; the markers' switches.

Markers (registered in ``pyproject.toml``, ``--strict-markers``): ``docker`` tests run only with
``--run-docker`` (or ``MATH_PRIMER_DOCKER=1``, which ``.ci/run`` sets) and then fail when Docker or
the grading image is missing; ``browser`` tests need Debian's ``/usr/bin/chromium``; ``slow`` tests
take minutes. ``--update-goldens`` rewrites the golden files instead of comparing with them.
"""

from __future__ import annotations

import csv
import os
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from autograder import samples
from autograder.build import Build, build
from autograder.pack import Pack, load

MATH_PRIMER = "math_primer"
"""Exercise 2's pack: the tests of its content and the golden files use it."""
MP = load(MATH_PRIMER)
MP_SAMPLES = samples.load_samples(MATH_PRIMER)
"""Exercise 2's sample answers (``solutions/math_primer/samples.py``)."""
CORRECT, EQUIVALENT, MISTAKES = MP_SAMPLES.correct, MP_SAMPLES.equivalent, MP_SAMPLES.mistakes


FIXTURE_PACKS = Path(__file__).parent / "fixtures" / "assignments"
TINY = load(FIXTURE_PACKS / "tiny")
"""A small fixture pack (questions p1, p2; a tuple-valued question with one case per part), so
the machinery's tests do not depend on Exercise 2's content."""


TINY_SAMPLES = samples.load_samples(TINY)
"""The tiny pack's sample answers (``tests/fixtures/solutions/tiny/samples.py``)."""


@pytest.fixture(scope="session", params=[MATH_PRIMER, "tiny"])
def any_pack(request: pytest.FixtureRequest) -> Pack:
    """Each pack the machinery's tests run on: Exercise 2 and the tiny fixture pack (see
    ``pack_support.py``); a test using it reads ids, points and columns from the pack."""
    known = {MATH_PRIMER: MP, "tiny": TINY}
    if request.param in known:
        return known[request.param]
    fixture = FIXTURE_PACKS / request.param
    return load(fixture) if fixture.is_dir() else load(request.param)


@pytest.fixture(scope="session")
def tiny_built(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """The tiny fixture pack built by the real Otter Assign, once per session."""
    return build(out=tmp_path_factory.mktemp("tiny-dist") / "dist", pack=TINY)


@pytest.fixture(scope="session")
def tiny_template(tiny_built: Build) -> nbformat.NotebookNode:
    """The tiny pack's student notebook as handed out (answer cells still `...`)."""
    return nbformat.read(str(tiny_built.student_notebook), as_version=4)


def fill(
    template: nbformat.NotebookNode, answers: dict[str, str], pack: Pack = MP
) -> nbformat.NotebookNode:
    """The template with the given questions' answer cells replaced (Exercise 2 by default)."""
    return samples.fill(template, answers, pack=pack)


CHROMIUM = Path("/usr/bin/chromium")
"""Debian's Chromium, which the ``browser`` tests drive headless."""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-docker",
        action="store_true",
        default=os.environ.get("MATH_PRIMER_DOCKER") == "1",
        help="run the docker-marked tests (default: MATH_PRIMER_DOCKER=1); they fail without Docker",
    )
    parser.addoption(
        "--update-goldens",
        action="store_true",
        help="rewrite tests/golden/ from the current outputs instead of comparing with them",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``docker`` tests without --run-docker and ``browser`` tests without Chromium."""
    no_docker = pytest.mark.skip(reason="needs Docker and the grading image: pass --run-docker")
    no_browser = pytest.mark.skip(
        reason=f"needs Debian's chromium at {CHROMIUM} (apt-get install -y chromium)"
    )
    for item in items:
        if "docker" in item.keywords and not config.getoption("--run-docker"):
            item.add_marker(no_docker)
        if "browser" in item.keywords and not CHROMIUM.exists():
            item.add_marker(no_browser)


def check_golden(request: pytest.FixtureRequest, golden: Path, got: bytes) -> None:
    """Compare ``got`` with the golden file byte for byte, or rewrite it (--update-goldens)."""
    if request.config.getoption("--update-goldens"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(got)
    assert got == golden.read_bytes(), f"{golden} differs (intended? rerun with --update-goldens)"


def docker_enabled(config: pytest.Config) -> bool:
    """Were the docker tests asked for (--run-docker or MATH_PRIMER_DOCKER=1)?"""
    return bool(config.getoption("--run-docker"))


@pytest.fixture(scope="session")
def mp() -> Pack:
    """Exercise 2's pack."""
    return MP


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """Exercise 2 built by the real Otter Assign, once per session."""
    return build(out=tmp_path_factory.mktemp("dist") / "dist", pack=MATH_PRIMER)


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


@pytest.fixture(scope="session")
def review_demo(built: Build, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo batch graded by the judge (with a 3-strong ``transposed`` group on q1b).

    Read-only: tests that change it work on a copy (``shutil.copytree``).
    """
    from review_support import grade, write_demo

    root = tmp_path_factory.mktemp("review-demo")
    grade(write_demo(root / "submissions", template_path=built.student_notebook), root / "out")
    return root / "out"


@pytest.fixture(scope="session")
def tiny_review_demo(tiny_built: Build, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny pack's demo batch graded by the judge (``ben_mistakes`` and its two copies share
    the demo's mistakes). Read-only: tests that change it work on a copy."""
    from review_support import grade, write_demo

    root = tmp_path_factory.mktemp("tiny-review-demo")
    subs = write_demo(root / "submissions", template_path=tiny_built.student_notebook, pack=TINY)
    grade(subs, root / "out", assignment=TINY)
    return root / "out"


@pytest.fixture(scope="session")
def review_hostile(built: Build, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Hostile submissions (markup in ids, file names, roster names, code, error messages and
    derivations) graded by the judge. Read-only."""
    import pandas as pd
    from review_support import HOSTILE_NAME, HOSTILE_ROSTER_NAME, grade, write_hostile

    root = tmp_path_factory.mktemp("review-hostile")
    subs = write_hostile(root / "submissions", template_path=built.student_notebook)
    roster = root / "roster.csv"
    pd.DataFrame(
        {"student": ["mallory", HOSTILE_NAME], "name": [HOSTILE_ROSTER_NAME, "<i>x</i>"]}
    ).to_csv(roster, index=False)
    grade(subs, root / "out", roster=roster)
    return root / "out"


class HtmlTables(HTMLParser):
    """Collects every <table> of a page as a list of rows of cell texts, and <svg> counts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.svgs = 0
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "svg":
            self.svgs += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
