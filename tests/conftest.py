"""Shared fixtures and options (plain helpers live in ``helpers.py``): one Otter Assign build per test session; the markers' switches.

Markers (registered in ``pyproject.toml``, ``--strict-markers``): ``docker`` tests run only with
``--run-docker`` (or ``MATH_PRIMER_DOCKER=1``, which ``.ci/run`` sets) and then fail when Docker or
the grading image is missing; ``browser`` tests need Debian's ``/usr/bin/chromium``; ``slow`` tests
take minutes. ``--update-goldens`` rewrites the golden files instead of comparing with them.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

from autograder.build import Build, build
from autograder.pack import Pack, load
from helpers import CHROMIUM, FIXTURE_PACKS, MATH_PRIMER, MP, TINY


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


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """Exercise 2 built by the real Otter Assign, once per session."""
    return build(out=tmp_path_factory.mktemp("dist") / "dist", pack=MATH_PRIMER)


@pytest.fixture(scope="session")
def template(built: Build) -> nbformat.NotebookNode:
    """The student notebook as handed out (answer cells still `...`)."""
    return nbformat.read(str(built.student_notebook), as_version=4)


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
