"""Plain helpers shared by the test modules (fixtures live in ``conftest.py``): Exercise 2's
pack and samples, the tiny fixture pack, filling and writing notebooks, golden files, LibreOffice
and Chromium as a TA would open the outputs, HTML tables, and a norm-scaled closeness check."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import numpy as np
import pytest

from autograder import samples
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


def fill(
    template: nbformat.NotebookNode, answers: dict[str, str], pack: Pack = MP
) -> nbformat.NotebookNode:
    """The template with the given questions' answer cells replaced (Exercise 2 by default)."""
    return samples.fill(template, answers, pack=pack)


CHROMIUM = Path("/usr/bin/chromium")
"""Debian's Chromium, which the ``browser`` tests drive headless."""


def check_golden(request: pytest.FixtureRequest, golden: Path, got: bytes) -> None:
    """Compare ``got`` with the golden file byte for byte, or rewrite it (--update-goldens)."""
    if request.config.getoption("--update-goldens"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(got)
    assert got == golden.read_bytes(), f"{golden} differs (intended? rerun with --update-goldens)"


def docker_enabled(config: pytest.Config) -> bool:
    """Were the docker tests asked for (--run-docker or MATH_PRIMER_DOCKER=1)?"""
    return bool(config.getoption("--run-docker"))


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


def chromium_screenshot(
    page: Path, shot: Path, *, profile: Path, height: int
) -> subprocess.CompletedProcess:
    """Open ``page`` offline in headless Chromium and save a 1200-pixel-wide screenshot."""
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--screenshot={shot}",
        f"--window-size=1200,{height}",
        page.resolve().as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def assert_close_to(actual: np.ndarray, desired: np.ndarray, *, rtol: float, label: str) -> None:
    """Assert ``actual`` has ``desired``'s shape and ``||actual - desired|| <= rtol * scale``.

    The tolerance is scaled by the norm of the *desired* value (never the tested one), with a
    floor of 1 so that near-zero references are compared absolutely.
    """
    actual = np.asarray(actual)
    desired = np.asarray(desired)
    assert actual.shape == desired.shape, (
        f"{label}: got shape {actual.shape}, expected {desired.shape}"
    )
    assert np.all(np.isfinite(actual)), f"{label}: got non-finite values {actual}"
    err = np.linalg.norm(actual - desired)
    scale = max(1.0, np.linalg.norm(desired))
    assert err <= rtol * scale, (
        f"{label}: ||got - expected|| = {err:.3e} > rtol * scale = {rtol:.1e} * {scale:.3e}\n"
        f"got\n{actual}\nexpected\n{desired}"
    )


def run_python(*args: str) -> str:
    """Run this interpreter with ``args`` from the repository, check that it succeeds and
    return what it printed."""
    done = subprocess.run(
        [sys.executable, *args],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def json_of_script(script: str, *args: str) -> dict:
    """Run ``script`` in a fresh interpreter (``python -c``, as the judge's forkserver needs)
    from the repository, and return the JSON object it prints last."""
    return json.loads(run_python("-c", script, *args).strip().splitlines()[-1])


def warn_and_tell_pid(logger: str, text: str) -> int:
    """Log a warning on ``logger`` and return this process's pid (run in a judge worker)."""
    import logging
    import os

    logging.getLogger(logger).warning(text)
    return os.getpid()


def assert_all_end(started: list[int], judge: int, *, within: float = 5.0) -> None:
    """Wait up to ``within`` seconds for every process in ``started`` and every sandboxed
    process of the judge with pid ``judge`` to be gone (or a zombie); kill what is left, so the
    machine stays clean, and fail naming it."""
    import os
    import signal
    import time

    import psutil

    from autograder.judge import sandbox

    def alive() -> list[int]:
        left = []
        for pid in set(started) | set(sandbox.sandboxed_pids(f"{judge}-")):
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    left.append(pid)
            except psutil.NoSuchProcess:
                pass
        return left

    deadline = time.monotonic() + within
    while alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    left = alive()
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not left, [psutil.Process(p).cmdline() for p in left if psutil.pid_exists(p)]


HANG = """
import os, signal
signal.signal(signal.SIGINT, signal.SIG_IGN)
if os.fork() == 0:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        pass
while True:
    pass
"""
"""A cell that hangs, ignoring interrupts, in two processes (the evaluator and its child)."""


def kill_9_while_sandboxed(
    subs: Path, out: Path, *extra: str, sandboxed: int
) -> tuple[int, list[int], dict[int, int]]:
    """Start ``grade`` on ``subs``, wait (up to 60 s) until ``sandboxed`` of its processes run in
    the sandbox, then ``kill -9`` it. Returns its pid, the sandboxed pids and its process tree
    (pid to parent pid) as they were just before the kill."""
    import signal
    import time

    import psutil

    from autograder.judge import sandbox

    judge = subprocess.Popen(
        [sys.executable, "-m", "autograder", "grade", str(subs), "--out", str(out), *extra],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while (
            len(sandbox.sandboxed_pids(f"{judge.pid}-")) < sandboxed and time.monotonic() < deadline
        ):
            time.sleep(0.2)
        inside = sandbox.sandboxed_pids(f"{judge.pid}-")
        tree = {p.pid: p.ppid() for p in psutil.Process(judge.pid).children(recursive=True)}
    finally:
        judge.send_signal(signal.SIGKILL)
        judge.wait()
    return judge.pid, inside, tree
