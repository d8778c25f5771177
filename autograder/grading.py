"""The grading pipeline, readable in one place.

    read roster -> discover submissions -> [otter engine: build if stale] -> grade each in
    parallel with the chosen engine -> write results/<student>.json -> collate gradebook.csv

Engines: ``judge`` (default; the trusted judge with a sandboxed evaluator, ``judge/``),
``otter`` (``otter run`` per submission, ``engines/otter_engine.py``) and ``docker`` (the whole
batch in one real ``otter grade`` run in containers, ``engines/docker_engine.py``).

A submission that breaks anything becomes a row with a status; the batch never dies on one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd

from . import gradebook
from .build import ensure_built, source_fingerprint
from .cache import ResultCache
from .checks.runner import CALL_TIMEOUT_ENV
from .engines.docker_engine import DockerGrader, docker_problem
from .engines.otter_engine import grade_submission as otter_grade
from .intake import Submission, discover
from .judge.engine import JudgeConfig
from .judge.engine import grade_submission as judge_grade
from .overrides import apply_overrides, check_students, read_overrides
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
    reused: int = 0
    """Results reused from ``OUT/.cache`` instead of grading again."""


def default_jobs() -> int:
    """The default parallelism: the number of cores."""
    return os.cpu_count() or 1


def grade_all(
    submissions: list[Submission],
    grade_one: Callable[[Submission], dict],
    *,
    jobs: int,
    executor: Executor | None = None,
    on_done: Callable[[dict], None] = lambda result: None,
) -> list[dict]:
    """Grade every submission on an executor; each yields exactly one result.

    A crash of ``grade_one``, a submission the executor refuses, a lost worker or a cancelled
    future becomes an ``error`` row for that submission; the others are graded as usual.

    Args:
        submissions: what to grade.
        grade_one: grades one submission (picklable when the executor runs elsewhere).
        jobs: worker threads of the default executor (ignored when ``executor`` is given).
        executor: any ``concurrent.futures.Executor`` (e.g. a Dask ``ClientExecutor``); the
            caller owns it. Default: a ``ThreadPoolExecutor`` with ``jobs`` workers.
        on_done: called with each result as it arrives.

    A ``grade_one`` with a ``grade_batch`` method (the docker engine) grades all submissions in
    one call on this machine, ``jobs`` at a time; it cannot use an ``executor``.

    Returns:
        One result per submission, sorted by student.
    """
    if hasattr(grade_one, "grade_batch"):
        if executor is not None:
            raise GradingError("the docker engine grades on this machine: drop --scheduler")
        return _grade_batch(submissions, grade_one, jobs=jobs, on_done=on_done)
    if executor is None:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            return grade_all(submissions, grade_one, jobs=jobs, executor=pool, on_done=on_done)

    results = []

    def record(result: dict) -> None:
        results.append(result)
        on_done(result)

    futures = {}
    for submission in submissions:
        try:
            futures[executor.submit(grade_one, submission)] = submission
        except Exception as exc:  # e.g. the executor cannot serialise the task
            log.exception("submitting %s failed", submission.student)
            record(empty_result(submission.student, "error", f"grader crashed: {exc!r}"))
    for future in as_completed(futures):
        submission = futures[future]
        try:
            result = future.result()  # a cancelled future raises CancelledError, an Exception
        except Exception as exc:  # the grader's crash, or a lost worker (Dask: KilledWorker)
            log.exception("grading %s crashed", submission.student)
            result = empty_result(submission.student, "error", f"grader crashed: {exc!r}")
        record(result)
    return sorted(results, key=lambda r: r["student"])


def _grade_batch(
    submissions: list[Submission], grader, *, jobs: int, on_done: Callable[[dict], None]
) -> list[dict]:
    """Run a batch grader; if it crashes, every submission it did not report is an error row."""
    results = {}

    def record(result: dict) -> None:
        results[result["student"]] = result
        on_done(result)

    try:
        grader.grade_batch(submissions, jobs=max(1, jobs), on_done=record)
    except Exception as exc:
        log.exception("the batch grader crashed")
        for submission in submissions:
            if submission.student not in results:
                record(empty_result(submission.student, "error", f"grader crashed: {exc!r}"))
    return sorted(results.values(), key=lambda r: r["student"])


ENGINES = ("judge", "otter", "docker")


def make_grader(engine: str, *, build_dir: Path, timeout: float) -> Callable[[Submission], dict]:
    """The function grading one submission with ``engine`` (building first if it needs the zip).

    Raises:
        GradingError: an unknown engine, or (``docker``) no usable Docker or grading image.
    """
    if engine == "docker":
        problem = docker_problem()
        if problem is not None:
            raise GradingError(problem)
        built = ensure_built(out=build_dir)
        return DockerGrader(built.offline_zip, timeout=timeout)
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
    scheduler: str | None = None,
    scheduler_timeout: float = 10.0,
    force: bool = False,
    overrides: Path | None = None,
) -> GradeRun:
    """Grade a folder of submissions and write the gradebook.

    Args:
        submissions: folder of ``<student>.ipynb``, ``<student>.zip`` or ``<student>/*.ipynb``.
        out: output folder for ``gradebook.csv`` and ``results/``.
        build_dir: where the built assignment lives (built or rebuilt when stale).
        jobs: parallel submissions (default: the number of cores; unused with ``scheduler``).
        timeout: seconds per submission.
        roster: optional CSV with a ``student`` column.
        engine: ``judge`` or ``otter``.
        progress: given the submissions, returns a callback called after each one is graded.
        scheduler: a Dask scheduler address (``tcp://host:8786``): grade on its workers instead
            of ``jobs`` local threads. The scheduler and the workers must be able to import
            ``autograder``; with the judge engine, workers must not be daemonic processes.
        scheduler_timeout: seconds to wait for the scheduler before giving up.
        force: grade every submission again instead of reusing ``OUT/.cache`` (see ``cache.py``).
        overrides: optional CSV of manual points (``student, question, points, comment``),
            applied on top of the autograded scores (see ``overrides.py``).

    Raises:
        GradingError: nothing to grade, an unknown engine, an unreachable scheduler or a Dask
            cluster that cannot grade (checked before grading).
    """
    roster_df = gradebook.read_roster(roster) if roster is not None else None
    found = discover(submissions, roster=roster_df)  # maps LMS names; logs unmapped, superseded
    if not found and roster_df is None:
        raise GradingError(f"no submissions found in {submissions}")
    for s in found:
        if s.problem:
            log.warning("%s: %s (graded as invalid)", s.student, s.problem)
    manual = read_overrides(overrides) if overrides is not None else []
    check_students(manual, (s.student for s in found), path=overrides)
    grade_one = make_grader(engine, build_dir=build_dir, timeout=timeout)
    limits = {"timeout": timeout, "call_timeout": os.environ.get(CALL_TIMEOUT_ENV)}
    cache = ResultCache(out, assignment=source_fingerprint(), settings={"engine": engine, **limits})
    to_grade, reused = cache.split(found, force=force)
    if reused:
        log.info("reusing %d cached result(s) from %s", len(reused), cache.folder)

    client = None
    if scheduler is not None:
        try:  # only needed with a scheduler
            from distributed import Client
            from distributed.comm import get_address_host_port, parse_address
        except ImportError as exc:
            raise GradingError(
                f"grading on a Dask scheduler needs dask.distributed ({exc}); "
                "install it with `pip install -r requirements.txt`"
            ) from None
        try:
            if parse_address(scheduler)[0] != "inproc":  # inproc: a LocalCluster in this process
                get_address_host_port(scheduler)  # malformed: ValueError before any Client exists
            client = Client(scheduler, timeout=scheduler_timeout, set_as_default=False)
        except (OSError, ValueError) as exc:
            raise GradingError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None

    def cannot_grade_here() -> list[str]:
        """Why this Dask process cannot grade; run on the scheduler and every worker."""
        import importlib.util  # a local function: cloudpickle ships it by value
        import multiprocessing

        problems = []
        if importlib.util.find_spec("autograder") is None:
            problems.append("cannot import autograder")
        if engine == "judge" and multiprocessing.current_process().daemon:
            problems.append("is a daemonic process, which cannot start the judge's evaluators")
        return problems

    try:
        if client is not None:
            found_problems = {"scheduler": client.run_on_scheduler(cannot_grade_here)}
            found_problems |= {f"worker {w}": p for w, p in client.run(cannot_grade_here).items()}
            if any(found_problems.values()):
                raise GradingError(
                    f"the Dask cluster at {scheduler} cannot grade: "
                    + "; ".join(f"{k} {', '.join(p)}" for k, p in found_problems.items() if p)
                    + ". Start `dask scheduler` and `dask worker` from the repository root with "
                    "PYTHONPATH=$PWD and DASK_DISTRIBUTED__WORKER__DAEMON=False"
                )
            workers = len(client.scheduler_info().get("workers", {}))
            log.info("grading on the Dask scheduler at %s (%d workers)", scheduler, workers)
            if not workers:
                log.warning("no Dask workers at %s yet; grading starts when one joins", scheduler)
        on_done = progress(to_grade) if progress is not None else (lambda result: None)
        executor = client.get_executor(pure=False) if client is not None else None
        results = grade_all(
            to_grade,
            grade_one,
            jobs=jobs or default_jobs(),
            executor=executor,
            on_done=cache.recording(on_done),
        )
    finally:
        if client is not None:
            client.close()
    results = apply_overrides(sorted(results + reused, key=lambda r: r["student"]), manual)
    gradebook.write_results(results, out)
    table = gradebook.collate(results, roster=roster_df)
    path = gradebook.write_gradebook(table, out)
    cache.prune()
    return GradeRun(table, path, out / "results", reused=len(reused))
