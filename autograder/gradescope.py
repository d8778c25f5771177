"""Run the standard autograder zip the way Gradescope does, in a local container, and check it.

Gradescope's harness (https://gradescope-autograders.readthedocs.io/en/latest/specs/): the zip is
unpacked into ``/autograder/source``, ``setup.sh`` runs when the image is built and
``run_autograder`` is copied to ``/autograder/run_autograder``; for each submission the files go
to ``/autograder/submission``, the submitter to ``/autograder/submission_metadata.json``, and
``/autograder/run_autograder`` runs in ``/autograder`` and must write
``/autograder/results/results.json``.

Here the image is the offline grading image (``scripts/docker_image.sh``), without network. The
standard zip's ``setup.sh`` downloads Miniforge from GitHub and its ``run_autograder`` activates
the environment that made, so those two files are the offline variant's (``build.py``); every
other file (``run_otter.py``, ``files/``, ``tests/``, ``otter_config.json``) is the standard zip's.
"""

from __future__ import annotations

import json
import logging
import subprocess
import tempfile
import uuid
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Real
from pathlib import Path

from .build import OFFLINE_RUN_AUTOGRADER, OFFLINE_SETUP
from .engines.docker_engine import GRADING_IMAGE, DockerUnavailable, docker_problem
from .errors import KitError
from .pack.spec import Pack

log = logging.getLogger(__name__)

VISIBILITY = frozenset({"hidden", "after_due_date", "after_published", "visible"})
FORMATS = frozenset({"text", "simple_format", "html", "md", "ansi"})
TOP_LEVEL = {
    "score": Real,
    "execution_time": Real,
    "output": str,
    "output_format": str,
    "test_output_format": str,
    "test_name_format": str,
    "visibility": str,
    "stdout_visibility": str,
    "extra_data": dict,
    "tests": list,
    "leaderboard": list,
}
"""Gradescope's documented top-level keys of ``results.json`` and their types."""
TEST_KEYS = {
    "score": Real,
    "max_score": Real,
    "status": str,
    "name": str,
    "name_format": str,
    "number": str,
    "output": str,
    "output_format": str,
    "tags": list,
    "visibility": str,
    "extra_data": dict,
}
"""Gradescope's documented keys of one test in ``results.json`` and their types."""


class GradescopeRunError(KitError):
    """The Gradescope-like run did not produce a ``results.json``; the message says why."""


@dataclass(frozen=True)
class GradescopeRun:
    """What ``/autograder/run_autograder`` produced."""

    results: dict
    """``/autograder/results/results.json``, parsed."""
    stdout: str
    """What ``run_autograder`` printed (Gradescope shows it to instructors)."""


def format_problems(results: object) -> list[str]:
    """How ``results`` departs from Gradescope's documented ``results.json`` format (empty: ok).

    Checks the keys, types and enumerations of the top level and of each test; a score either
    at the top level or on every test (tests without one must carry a ``status``).
    """
    if not isinstance(results, dict):
        return [f"results.json holds a {type(results).__name__}, expected an object"]
    problems = _typed("results.json", results, TOP_LEVEL)
    for key in ("visibility", "stdout_visibility"):
        if key in results and results[key] not in VISIBILITY:
            problems.append(f"{key} is {results[key]!r}, expected one of {sorted(VISIBILITY)}")
    for key in ("output_format", "test_output_format", "test_name_format"):
        if key in results and results[key] not in FORMATS:
            problems.append(f"{key} is {results[key]!r}, expected one of {sorted(FORMATS)}")
    tests = results.get("tests", [])
    if "score" not in results and not tests:
        problems.append("no top-level score and no tests")
    for i, test in enumerate(tests if isinstance(tests, list) else []):
        where = f"tests[{i}]"
        if not isinstance(test, dict):
            problems.append(f"{where} is a {type(test).__name__}, expected an object")
            continue
        problems += _typed(where, test, TEST_KEYS)
        if test.get("visibility", "visible") not in VISIBILITY:
            problems.append(f"{where}.visibility is {test['visibility']!r}")
        if test.get("status", "passed") not in ("passed", "failed"):
            problems.append(f"{where}.status is {test['status']!r}, expected passed or failed")
        for key in ("name_format", "output_format"):
            if key in test and test[key] not in FORMATS:
                problems.append(f"{where}.{key} is {test[key]!r}")
        if "score" not in results and "score" not in test and "status" not in test:
            problems.append(f"{where} has neither a score nor a status (no top-level score)")
        if not all(isinstance(t, str) for t in test.get("tags", [])):
            problems.append(f"{where}.tags must be strings")
    return problems


def _typed(where: str, obj: dict, schema: Mapping[str, type]) -> list[str]:
    problems = []
    for key, value in obj.items():
        if key not in schema:
            problems.append(f"{where} has an undocumented key {key!r}")
        elif isinstance(value, bool) or not isinstance(value, schema[key]):
            wanted = "a number" if schema[key] is Real else f"a {schema[key].__name__}"
            problems.append(f"{where}.{key} is {value!r}, expected {wanted}")
    return problems


def kit_problems(results: dict, *, pack: Pack) -> list[str]:
    """What the kit expects beyond the format: one test per question with its points."""
    problems = []
    tests = {t.get("name"): t for t in results.get("tests", []) if isinstance(t, dict)}
    for question in pack.question_ids:
        test = tests.get(question)
        if test is None:
            problems.append(f"no test named {question}")
            continue
        missing = [
            k for k in ("name", "score", "max_score", "visibility", "output") if k not in test
        ]
        if missing:
            problems.append(f"{question} lacks {', '.join(missing)}")
            continue
        points = pack.question(question).points
        if test["max_score"] != points:
            problems.append(f"{question}.max_score is {test['max_score']}, expected {points}")
        if not 0 <= test["score"] <= test["max_score"]:
            problems.append(f"{question}.score {test['score']} is outside 0..{test['max_score']}")
    return problems


def run_like_gradescope(
    autograder_zip: Path,
    notebook: Path,
    *,
    metadata: dict,
    image: str = GRADING_IMAGE,
    timeout: float = 600.0,
) -> GradescopeRun:
    """Build a Gradescope-like image from ``autograder_zip`` and grade ``notebook`` in it.

    Args:
        autograder_zip: the standard zip (``Build.autograder_zip``).
        notebook: the submission, copied into ``/autograder/submission/`` under its own name.
        metadata: ``/autograder/submission_metadata.json`` (Gradescope's submitter data, e.g.
            ``{"users": [{"email": ..., "id": ..., "name": ..., "sid": ...}]}``).
        image: the base image (the offline grading image).
        timeout: seconds for the setup and for the run, each.

    Raises:
        DockerUnavailable: no usable Docker or grading image.
        GradescopeRunError: setup failed, or the run wrote no ``results.json``.
    """
    problem = docker_problem(image)
    if problem is not None:
        raise DockerUnavailable(problem)
    tag = f"math-primer/gradescope-check:{uuid.uuid4().hex[:12]}"
    with tempfile.TemporaryDirectory(prefix="mp-gradescope-") as scratch:
        root = Path(scratch)
        source = root / "autograder" / "source"
        with zipfile.ZipFile(autograder_zip) as zf:
            zf.extractall(source)
        (source / "setup.sh").write_text(OFFLINE_SETUP)
        (source / "run_autograder").write_text(OFFLINE_RUN_AUTOGRADER)
        (root / "submission_metadata.json").write_text(json.dumps(metadata))
        try:
            _build(source, image=image, tag=tag, timeout=timeout)
            return _run(tag, notebook, root / "submission_metadata.json", root, timeout=timeout)
        finally:
            _docker("image", "rm", "-f", tag)


def _build(source: Path, *, image: str, tag: str, timeout: float) -> None:
    """Gradescope's image build: the zip in /autograder/source, setup.sh, run_autograder."""
    setup = (
        "set -e; mkdir -p /autograder/submission /autograder/results; cd /autograder/source; "
        "bash /autograder/source/setup.sh; "
        "cp /autograder/source/run_autograder /autograder/run_autograder; "
        "chmod +x /autograder/run_autograder"
    )
    container = _docker("create", "--network", "none", image, "bash", "-c", setup).stdout.strip()
    try:
        _docker("cp", str(source.parent), f"{container}:/", check=True)  # -> /autograder/source
        started = _docker("start", "-a", container, timeout=timeout)
        if started.returncode != 0:
            raise GradescopeRunError(f"setup.sh failed:\n{_tail(started)}")
        _docker("commit", container, tag, check=True)
    finally:
        _docker("rm", "-f", container)


def _run(tag: str, notebook: Path, metadata: Path, root: Path, *, timeout: float) -> GradescopeRun:
    """Gradescope's run: the submission and its metadata in place, then run_autograder."""
    container = _docker(
        "create", "--network", "none", "--workdir", "/autograder", tag, "/autograder/run_autograder"
    ).stdout.strip()
    try:
        _docker(
            "cp", str(notebook), f"{container}:/autograder/submission/{notebook.name}", check=True
        )
        _docker(
            "cp", str(metadata), f"{container}:/autograder/submission_metadata.json", check=True
        )
        ran = _docker("start", "-a", container, timeout=timeout)
        out = root / "results.json"
        copied = _docker("cp", f"{container}:/autograder/results/results.json", str(out))
        if copied.returncode != 0:
            raise GradescopeRunError(
                f"run_autograder (exit {ran.returncode}) wrote no results.json:\n{_tail(ran)}"
            )
        try:
            results = json.loads(out.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise GradescopeRunError(f"results.json is not JSON: {exc}") from None
        return GradescopeRun(results, ran.stdout + ran.stderr)
    finally:
        _docker("rm", "-f", container)


def _docker(*args: str, timeout: float = 120.0, check: bool = False) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(
            ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise GradescopeRunError(
            f"`docker {args[0]}` did not finish within {timeout:g} s"
        ) from None
    if check and proc.returncode != 0:
        raise GradescopeRunError(f"`docker {' '.join(args[:2])}` failed:\n{_tail(proc)}")
    return proc


def _tail(proc: subprocess.CompletedProcess, lines: int = 15) -> str:
    return "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-lines:])
