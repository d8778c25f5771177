"""Resumable, incremental, deterministic batches: the result cache in OUT/.cache."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest

from autograder import grading
from autograder.build import REPO_DIR
from autograder.cache import CACHE_DIR, ResultCache
from autograder.intake import discover
from autograder.pack import registry
from autograder.results import empty_result
from autograder.samples import fill
from helpers import FIXTURE_PACKS, TINY, TINY_SAMPLES, write_notebooks

PACK = TINY
"""The cache is machinery: its batches are of the tiny fixture pack."""


def notebook(source: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(source))
    return nb


class CountingGrader:
    """A stand-in engine: counts calls per student; ``error_for`` students get an error row."""

    def __init__(self, error_for: tuple[str, ...] = ()) -> None:
        self.calls: list[str] = []
        self.error_for = error_for
        self.lock = threading.Lock()

    def __call__(self, submission) -> dict:
        with self.lock:
            self.calls.append(submission.student)
        if submission.student in self.error_for:
            return empty_result(submission.student, "error", "the machine hiccuped", pack=PACK)
        status = "graded" if submission.ok else "invalid"
        return empty_result(
            submission.student, status, f"graded {len(submission.student)}", pack=PACK
        )


@pytest.fixture()
def counting(monkeypatch):
    grader = CountingGrader()
    monkeypatch.setattr(grading, "make_grader", lambda engine, **kw: grader)
    return grader


@pytest.fixture()
def subs(tmp_path) -> Path:
    folder = write_notebooks(
        tmp_path / "subs", {s: notebook(f"x = {i}") for i, s in enumerate(["ann", "bob", "cy"])}
    )
    (folder / "dee.ipynb").write_text("not json")
    return folder


def run(subs: Path, out: Path, **kw) -> grading.GradeRun:
    return grading.grade(
        submissions=subs, out=out, build_dir=out / "dist", jobs=2, **kw, assignment=PACK
    )


def snapshot(out: Path) -> dict[str, bytes]:
    """Every output file except the cache, as bytes."""
    files = [out / "gradebook.csv", *sorted((out / "results").glob("*.json"))]
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in files}


def test_rerun_reuses_every_result(counting, subs, tmp_path):
    """Does a rerun on unchanged submissions call the grader zero times and write the same files?"""
    out = tmp_path / "out"
    first = run(subs, out)
    assert sorted(counting.calls) == ["ann", "bob", "cy", "dee"] and first.reused == 0
    before = snapshot(out)
    assert len(list((out / CACHE_DIR).glob("*.json"))) == 4
    counting.calls.clear()
    second = run(subs, out)
    assert counting.calls == [] and second.reused == 4
    assert snapshot(out) == before


def test_force_regrades_everything(counting, subs, tmp_path):
    """Does force=True grade every submission again, even with a full cache?"""
    out = tmp_path / "out"
    run(subs, out)
    counting.calls.clear()
    again = run(subs, out, force=True)
    assert sorted(counting.calls) == ["ann", "bob", "cy", "dee"] and again.reused == 0


def test_a_changed_notebook_is_regraded(counting, subs, tmp_path):
    """Is only the submission whose notebook changed graded again?"""
    out = tmp_path / "out"
    run(subs, out)
    counting.calls.clear()
    write_notebooks(subs, {"bob": notebook("x = 'changed'")})
    again = run(subs, out)
    assert counting.calls == ["bob"] and again.reused == 3
    assert len(list((out / CACHE_DIR).glob("*.json"))) == 4, "the stale entry is pruned"


def test_a_changed_assignment_invalidates_the_cache(counting, subs, tmp_path, monkeypatch):
    """Does a new assignment fingerprint (master or checks edited) regrade everything?"""
    out = tmp_path / "out"
    run(subs, out)
    counting.calls.clear()
    monkeypatch.setattr(grading, "source_fingerprint", lambda pack: "a different assignment")
    assert run(subs, out).reused == 0
    assert len(counting.calls) == 4


@pytest.mark.parametrize(
    "change", [{"engine": "otter"}, {"timeout": 12.0}], ids=["engine", "timeout"]
)
def test_other_grader_settings_invalidate_the_cache(counting, subs, tmp_path, change):
    """Does grading with another engine or time limit regrade everything?"""
    out = tmp_path / "out"
    run(subs, out)
    assert run(subs, out, **change).reused == 0


def test_transient_failures_are_not_cached(monkeypatch, subs, tmp_path):
    """Is an error row (perhaps a lost worker) graded again on the next run?"""
    grader = CountingGrader(error_for=("bob",))
    monkeypatch.setattr(grading, "make_grader", lambda engine, **kw: grader)
    out = tmp_path / "out"
    run(subs, out)
    grader.calls.clear()
    assert run(subs, out).reused == 3
    assert grader.calls == ["bob"]


def test_a_corrupt_entry_is_graded_again(counting, subs, tmp_path):
    """Is a truncated or foreign cache entry ignored (graded again), not trusted or fatal?"""
    out = tmp_path / "out"
    run(subs, out)
    cache = ResultCache(out, assignment="x", settings={})
    found = {s.student: s for s in discover(subs)}
    entries = sorted((out / CACHE_DIR).glob("*.json"))
    entries[0].write_text('{"format": 1, "result": {"stud')
    entries[1].write_text(json.dumps({"format": 1, "student": "zed", "result": {}}))
    counting.calls.clear()
    assert run(subs, out).reused == 2
    assert len(counting.calls) == 2
    assert cache.key(found["ann"]) != cache.key(found["bob"])


def test_grader_crashes_still_give_one_row_each(monkeypatch, subs, tmp_path):
    """With the cache in the loop, does a crashing grader still give an error row, not a dead
    batch, and is that row graded again next time?"""

    def crash(submission):
        raise RuntimeError("boom")

    monkeypatch.setattr(grading, "make_grader", lambda engine, **kw: crash)
    out = tmp_path / "out"
    book = run(subs, out).gradebook
    assert list(book["status"]) == ["error"] * 4
    assert run(subs, out).reused == 0


# --- through the real judge engine -------------------------------------------------------------

SLEEP = "import time\ntime.sleep(1)\n"


def _with_sleep(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb = nbformat.from_dict(nb)
    nb.cells.insert(0, nbformat.v4.new_code_cell(SLEEP))
    return nb


@pytest.fixture(scope="module")
def batch(tiny_template, tmp_path_factory) -> Path:
    """Twelve submissions (correct, blank, with mistakes, unusable); half sleep 1 s at the top."""
    template, correct, mistakes = tiny_template, TINY_SAMPLES.correct, TINY_SAMPLES.mistakes
    notebooks = {"correct": fill(template, correct, pack=PACK), "blank": template}
    for i in range(8):
        question, _tag, source = mistakes[i % len(mistakes)]
        notebooks[f"mistake_{i}"] = fill(template, {**correct, question: source}, pack=PACK)
    notebooks = {
        name: _with_sleep(nb) if i % 2 == 0 else nb
        for i, (name, nb) in enumerate(notebooks.items())
    }
    folder = write_notebooks(tmp_path_factory.mktemp("batch") / "subs", notebooks)
    (folder / "broken.ipynb").write_text("{ not json")
    (folder / "empty.zip").write_bytes(b"")
    assert len(discover(folder)) == 12
    return folder


def _cli(subs: Path, out: Path, *extra: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_DIR),
        "MATH_PRIMER_CALL_TIMEOUT": "2",
        registry.SEARCH_ENV: str(FIXTURE_PACKS),
    }
    command = [sys.executable, "-m", "autograder", "grade", str(subs), "--out", str(out)]
    command += ["--assignment", PACK.name]
    return subprocess.Popen(
        [*command, "--jobs", "2", *extra],
        cwd=REPO_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


@pytest.fixture(scope="module")
def reference(batch, tmp_path_factory) -> Path:
    """The batch graded once, uninterrupted, by the CLI."""
    out = tmp_path_factory.mktemp("reference")
    proc = _cli(batch, out)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output
    return out


def test_two_runs_give_byte_identical_outputs(batch, reference, tmp_path):
    """Do two uncached runs on the same input write byte-identical gradebook.csv and results?"""
    proc = _cli(batch, tmp_path / "again")
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output
    assert "reused" not in output
    assert snapshot(tmp_path / "again") == snapshot(reference)


def test_resume_after_sigkill_matches_an_uninterrupted_run(batch, reference, tmp_path):
    """Killed with SIGKILL mid-batch and rerun, is the output byte-identical to a clean run, with
    the results cached before the kill reused?"""
    out = tmp_path / "out"
    proc = _cli(batch, out)
    cache = out / CACHE_DIR
    deadline = time.monotonic() + 120
    try:
        while len(list(cache.glob("*.json"))) < 3:
            assert proc.poll() is None, "the batch finished before it could be killed"
            assert time.monotonic() < deadline, "no results cached after 120 s"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # anything the grader left behind
        except ProcessLookupError:
            pass
        proc.communicate()
    cached = len(list(cache.glob("*.json")))
    assert 3 <= cached < 12, cached
    assert not (out / "gradebook.csv").exists()

    rerun = _cli(batch, out)
    output, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, output
    assert f"reused:    {cached} cached result(s)" in output
    assert snapshot(out) == snapshot(reference)
    assert sorted(p.suffix for p in cache.iterdir()) == [".json"] * 12, "stray temp files pruned"


def test_a_cached_rerun_starts_no_evaluator(batch, reference, tmp_path, monkeypatch):
    """Through the judge engine, does a rerun reuse every result without starting an evaluator?"""
    out = tmp_path / "out"
    monkeypatch.setenv("MATH_PRIMER_CALL_TIMEOUT", "2")
    first = run(batch, out)
    import autograder.judge.engine as judge

    def no_evaluator(*args, **kwargs):
        raise AssertionError("an evaluator was started for a cached submission")

    monkeypatch.setattr(judge, "Evaluator", no_evaluator)
    second = run(batch, out)  # the patched Evaluator fails the run if one is started
    assert (first.reused, second.reused) == (0, 12)
    assert snapshot(out) == snapshot(reference)
