"""The grading pipeline, readable in one place.

    read roster -> discover submissions -> [otter engine: build if stale] -> grade each in
    parallel with the chosen engine -> write results/<student>.json -> collate gradebook.csv

Engines: ``judge`` (default; the trusted judge with a sandboxed evaluator, ``judge/``) and
``otter`` (``otter run`` per submission, ``engines/otter_engine.py``).

A submission that breaks anything becomes a row with a status; the batch never dies on one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd

from . import gradebook
from .build import ensure_built
from .engines.otter_engine import grade_submission as otter_grade
from .intake import Submission, discover
from .judge.engine import JudgeConfig
from .judge.engine import grade_submission as judge_grade
from .results import empty_result

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 300.0
"""Seconds one submission may take under ``otter run`` (a normal one takes a few seconds)."""


class GradingError(Exception):
    """The batch cannot start (bad paths, nothing to grade)."""


@dataclass(frozen=True)
class GradeRun:
    """What a grading run wrote."""

    gradebook: pd.DataFrame
    """The collated gradebook, as written."""
    gradebook_path: Path
    """``OUT/gradebook.csv``."""
    results_dir: Path
    """``OUT/results/`` with one JSON per submission."""


def default_jobs() -> int:
    """The default parallelism: the number of cores."""
    return os.cpu_count() or 1


def grade_all(
    submissions: list[Submission],
    grade_one: Callable[[Submission], dict],
    *,
    jobs: int,
    on_done: Callable[[dict], None] = lambda result: None,
) -> list[dict]:
    """Grade submissions with ``jobs`` in parallel; an unexpected crash becomes an error row."""
    results = []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(grade_one, s): s for s in submissions}
        for future in as_completed(futures):
            submission = futures[future]
            try:
                result = future.result()
            except Exception as exc:
                log.exception("grading %s crashed", submission.student)
                result = empty_result(submission.student, "error", f"grader crashed: {exc!r}")
            results.append(result)
            on_done(result)
    return sorted(results, key=lambda r: r["student"])


ENGINES = ("judge", "otter")


def make_grader(engine: str, *, build_dir: Path, timeout: float) -> Callable[[Submission], dict]:
    """The function grading one submission with ``engine`` (building first for ``otter``)."""
    if engine == "otter":
        built = ensure_built(out=build_dir)
        return partial(otter_grade, autograder_zip=built.autograder_zip, timeout=timeout)
    if engine == "judge":
        return partial(judge_grade, config=JudgeConfig(submission_timeout=timeout))
    raise GradingError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")


def grade(
    *,
    submissions: Path,
    out: Path,
    build_dir: Path,
    jobs: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    roster: Path | None = None,
    engine: str = "judge",
    progress: Callable[[Iterable[Submission]], Callable[[dict], None]] | None = None,
) -> GradeRun:
    """Grade a folder of submissions and write the gradebook.

    Args:
        submissions: folder of ``<student>.ipynb``, ``<student>.zip`` or ``<student>/*.ipynb``.
        out: output folder for ``gradebook.csv`` and ``results/``.
        build_dir: where the built assignment lives (built or rebuilt when stale).
        jobs: parallel submissions (default: the number of cores).
        timeout: seconds per submission.
        roster: optional CSV with a ``student`` column.
        engine: ``judge`` or ``otter``.
        progress: given the submissions, returns a callback called after each one is graded.
    """
    roster_df = gradebook.read_roster(roster) if roster is not None else None
    found = discover(submissions)
    if not found and roster_df is None:
        raise GradingError(f"no submissions found in {submissions}")
    for s in found:
        if s.problem:
            log.warning("%s: %s (graded as invalid)", s.student, s.problem)
    grade_one = make_grader(engine, build_dir=build_dir, timeout=timeout)

    on_done = progress(found) if progress is not None else (lambda result: None)
    results = grade_all(found, grade_one, jobs=jobs or default_jobs(), on_done=on_done)
    gradebook.write_results(results, out)
    table = gradebook.collate(results, roster=roster_df)
    path = gradebook.write_gradebook(table, out)
    return GradeRun(table, path, out / "results")
