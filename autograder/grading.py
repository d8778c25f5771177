"""The grading pipeline, readable in one place.

    read roster -> discover submissions -> [otter engine: build if stale] -> grade each in
    parallel with the chosen engine (local threads or a Dask cluster) -> note late submissions
    -> record the autograded results in OUT/review.sqlite -> apply manual overrides and the review
    app's marks -> write results/<student>.json -> collate gradebook.csv -> write the LMS
    exports, the students' feedback and report.html -> assignment.json

Engines: ``judge`` (default; the trusted judge with a sandboxed evaluator, ``judge/``),
``otter`` (``otter run`` per submission, ``engines/otter_engine.py``) and ``docker`` (the whole
batch in one real ``otter grade`` run in containers, ``engines/docker_engine.py``).

A submission that breaks anything becomes a row with a status; the batch never dies on one.

Ctrl-C or SIGTERM while grading (see ``interrupts.py``): no new submission starts, running ones
are abandoned (their evaluators or subprocesses killed), every finished result stays in
``OUT/.cache``, no output is written (the previous ``gradebook.csv`` etc. stay as they were), and
:class:`GradingInterrupted` says how far it got; the same command run again resumes.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import nullcontext, suppress
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from . import gradebook, interrupts
from .build import ensure_built, source_fingerprint
from .cache import ResultCache
from .checks.runner import CALL_TIMEOUT_ENV
from .errors import KitError
from .executors import ExecutorError, dask_executor
from .figures import PAINT_AHEAD_LIMIT
from .intake import Submission, discover
from .manifest import make_manifest, remove_manifest, write_manifest
from .overrides import apply_overrides, check_students, read_overrides
from .pack import registry
from .pack.infer import infer
from .pack.spec import Pack
from .results import PackedResults, Result, empty_result
from .studentfiles import HELPER_FROM, Helper

if TYPE_CHECKING:
    import pandas as pd

    from .regrade import RegradeReport

# Start-up: pandas, matplotlib, Otter, Dask and sympy are not needed before the first result, so
# the modules that bring them (the outputs, the review store, the regrade, the otter and docker
# engines) are imported where they are used (tests/test_cli_startup.py checks it).

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 300.0
"""Seconds one submission may take under ``otter run`` (a normal one takes a few seconds)."""
STOP_WAIT = 5.0
"""Seconds a stopping batch waits for its running submissions to be abandoned (about 0.3 s)."""


class GradingError(KitError):
    """The batch cannot start (bad paths, nothing to grade)."""


class GradingInterrupted(Exception):
    """A stop signal (Ctrl-C, SIGTERM) ended the batch before every submission was graded.

    Nothing but the cache was written. ``graded`` counts the results of this run, ``cached`` those
    of them stored in the cache (``error`` and ``timeout`` rows are not), ``reused`` the results
    taken from the cache at the start, ``total`` the submissions of the batch; ``settled`` says
    whether every running submission was abandoned in time (its evaluator or subprocess killed
    and cleaned up), so that nothing of the batch is left to clean up.
    """

    def __init__(
        self,
        *,
        signum: int,
        graded: int,
        total: int,
        cached: int = 0,
        reused: int = 0,
        settled: bool = True,
    ) -> None:
        name = signal.Signals(signum).name
        super().__init__(f"{name}: {graded} of {total} submission(s) graded in this run")
        self.signum, self.graded, self.total = signum, graded, total
        self.cached, self.reused, self.settled = cached, reused, settled


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
    results: list[dict] = field(default_factory=list)
    """One result per submission, as written to ``results/`` (a
    :class:`~autograder.results.PackedResults` from :func:`grade`)."""
    pack: Pack | None = None
    """The assignment graded."""
    regrade: RegradeReport | None = None
    """With ``questions``: what the regrade of those questions changed."""


def default_jobs() -> int:
    """The default parallelism: the number of cores."""
    return os.cpu_count() or 1


def grade_all(
    submissions: list[Submission],
    grade_one: Callable[[Submission], Result],
    *,
    jobs: int,
    pack: Pack,
    executor: Executor | None = None,
    on_done: Callable[[Result], None] = lambda result: None,
    keep: list[Result] | PackedResults | None = None,
    ahead: int | None = None,
) -> list[Result] | PackedResults:
    """Grade every submission on an executor; each yields exactly one result.

    A crash of ``grade_one``, a submission the executor refuses, a lost worker or a cancelled
    future becomes an ``error`` row for that submission; the others are graded as usual.
    A stop (``interrupts``; a ``KeyboardInterrupt`` here counts as one) cancels what has not
    started, waits up to :data:`STOP_WAIT` for the running submissions to be abandoned and raises
    :class:`GradingInterrupted`; every result that finished was passed to ``on_done`` first.

    Args:
        submissions: what to grade.
        grade_one: grades one submission (picklable when the executor runs elsewhere).
        jobs: worker threads of the default executor (ignored when ``executor`` is given).
        pack: the assignment (for the rows of submissions that crash the grader).
        executor: any ``concurrent.futures.Executor`` (e.g. a Dask ``ClientExecutor``); the
            caller owns it. Default: a ``ThreadPoolExecutor`` with ``jobs`` workers.
        on_done: called with each result as it arrives.
        keep: where the results are collected (default: a new list); ``grade`` passes a
            :class:`~autograder.results.PackedResults`, so a large batch stays small in memory.
        ahead: at most this many submissions handed to the executor and not yet collected
            (the next one is handed over as one is collected); None: all at once. A pending
            submission costs memory (its future, its task), so ``grade`` keeps a few per job
            on this machine.

    A ``grade_one`` with a ``grade_batch`` method (the docker engine) grades all submissions in
    one call on this machine, ``jobs`` at a time; it cannot use an ``executor``.

    Returns:
        One result per submission, sorted by student.

    Raises:
        GradingInterrupted: a stop signal arrived before every submission was graded.
    """
    if hasattr(grade_one, "grade_batch"):
        if executor is not None:
            raise GradingError("the docker engine grades on this machine: drop --scheduler")
        return _grade_batch(submissions, grade_one, jobs=jobs, on_done=on_done, pack=pack)
    if executor is None:
        pool = ThreadPoolExecutor(max_workers=max(1, jobs))
        try:
            return grade_all(
                submissions,
                grade_one,
                jobs=jobs,
                pack=pack,
                executor=pool,
                on_done=on_done,
                keep=keep,
                ahead=ahead,
            )
        finally:  # after a stop, a thread still abandoning its submission is not waited for
            pool.shutdown(wait=not interrupts.stop_requested(), cancel_futures=True)

    results: list[Result] | PackedResults = [] if keep is None else keep

    def record(result: Result) -> None:
        results.append(result)
        on_done(result)

    finished: queue.SimpleQueue[Future] = queue.SimpleQueue()
    futures: dict[Future, Submission] = {}
    waiting = iter(submissions)

    def hand_over() -> None:
        """Hand the next submission to the executor (none once a stop arrived)."""
        for submission in waiting:
            if interrupts.stop_requested():
                return
            try:
                future = executor.submit(grade_one, submission)
            except Exception as exc:  # e.g. the executor cannot serialise the task
                log.exception("submitting %s failed", submission.student)
                record(
                    empty_result(submission.student, "error", f"grader crashed: {exc!r}", pack=pack)
                )
                continue
            futures[future] = submission
            future.add_done_callback(finished.put)
            return

    try:
        for _ in range(len(submissions) if ahead is None else max(1, ahead)):
            hand_over()
        while futures and not interrupts.stop_requested():
            try:
                future = finished.get(timeout=interrupts.POLL_SECONDS)
            except queue.Empty:
                continue
            # Forget a collected future: it holds its result, and all of them a batch's worth.
            _collect(future, futures.pop(future), record, pack=pack)
            hand_over()
    except KeyboardInterrupt:  # no signal handler installed (a library caller): the same stop
        interrupts.request_stop(signal.SIGINT)
    if interrupts.stop_requested():
        abandon_running = getattr(executor, "abandon_running", None)
        if abandon_running is not None:  # workers of their own: tell them (judge.pool)
            abandon_running()
        settled = _abandon(futures, finished, record, pack=pack)
        raise GradingInterrupted(
            signum=interrupts.requested_signal() or signal.SIGINT,  # set: a stop arrived
            graded=len(results),
            total=len(submissions),
            settled=settled,
        )
    if isinstance(results, PackedResults):
        return results.sort_by_student()
    return sorted(results, key=lambda r: r["student"])


def _collect(
    future: Future, submission: Submission, record: Callable[[Result], None], *, pack: Pack
) -> None:
    """Record the result of a finished future (an ``error`` row if it crashed); an abandoned
    submission (the batch is stopping) records nothing."""
    try:
        result = future.result()  # a cancelled future raises CancelledError, an Exception
    except interrupts.Cancelled:
        return
    except Exception as exc:  # the grader's crash, or a lost worker (Dask: KilledWorker)
        if interrupts.stop_requested():
            return
        log.exception("grading %s crashed", submission.student)
        result = empty_result(submission.student, "error", f"grader crashed: {exc!r}", pack=pack)
    record(result)


def _abandon(
    futures: dict[Future, Submission],
    finished: queue.SimpleQueue,
    record: Callable[[Result], None],
    *,
    pack: Pack,
) -> bool:
    """Stop a batch: cancel what has not started, and give the running submissions a moment to
    be abandoned (each notices the stop within ``interrupts.POLL_SECONDS`` and kills its
    evaluator); a result that still finishes is recorded. Returns whether all are done."""
    for future in futures:
        future.cancel()
    deadline = time.monotonic() + STOP_WAIT
    while not all(f.done() for f in futures) and time.monotonic() < deadline:
        try:
            future = finished.get(timeout=interrupts.POLL_SECONDS)
        except queue.Empty:
            continue
        if not future.cancelled():
            _collect(future, futures[future], record, pack=pack)
    while True:  # results that finished while the loop was noticing the stop
        try:
            future = finished.get_nowait()
        except queue.Empty:
            break
        if not future.cancelled():
            _collect(future, futures[future], record, pack=pack)
    return all(f.done() for f in futures)


def _grade_batch(
    submissions: list[Submission],
    grader,
    *,
    jobs: int,
    on_done: Callable[[Result], None],
    pack: Pack,
) -> list[Result]:
    """Run a batch grader; if it crashes, every submission it did not report is an error row."""
    results = {}

    def record(result: Result) -> None:
        results[result["student"]] = result
        on_done(result)

    try:
        grader.grade_batch(submissions, jobs=max(1, jobs), on_done=record)
    except (interrupts.Cancelled, KeyboardInterrupt):
        interrupts.request_stop(signal.SIGINT)  # no-op after a signal: the first one is kept
        raise GradingInterrupted(
            signum=interrupts.requested_signal() or signal.SIGINT,  # set: a stop arrived
            graded=len(results),
            total=len(submissions),
        ) from None
    except Exception as exc:
        log.exception("the batch grader crashed")
        for submission in submissions:
            if submission.student not in results:
                record(
                    empty_result(submission.student, "error", f"grader crashed: {exc!r}", pack=pack)
                )
    return sorted(results.values(), key=lambda r: r["student"])


ENGINES = ("judge", "otter", "docker")


def make_grader(
    engine: str,
    *,
    build_dir: Path | None,
    timeout: float,
    pack: Pack | str | Path,
    unsafe_no_isolation: bool = False,
    questions: Sequence[str] = (),
) -> Callable[[Submission], Result]:
    """The function grading one submission of ``pack`` with ``engine`` (building first if it
    needs the zip; ``build_dir`` None: the pack's default build folder). With ``questions``, the
    judge judges only those questions (the other engines always grade whole notebooks).

    The function holds the pack's folder, not the pack, so it can be sent to Dask workers.

    Raises:
        GradingError: an unknown engine, or (``docker``) no usable Docker or grading image.
    """
    if unsafe_no_isolation and engine != "judge":
        raise GradingError("--unsafe-no-isolation applies to --engine judge only")
    name = registry.reference(registry.load(pack))
    if engine == "docker":
        from .engines.docker_engine import DockerGrader, docker_problem

        problem = docker_problem()
        if problem is not None:
            raise GradingError(problem)
        built = ensure_built(out=build_dir, pack=name)
        return DockerGrader(built.offline_zip, timeout=timeout, pack=name)
    if engine == "otter":
        from .engines.otter_engine import grade_submission as otter_grade

        built = ensure_built(out=build_dir, pack=name)
        return partial(otter_grade, autograder_zip=built.autograder_zip, timeout=timeout, pack=name)
    if engine == "judge":
        from .judge.engine import JudgeConfig
        from .judge.engine import grade_submission as judge_grade

        config = JudgeConfig(submission_timeout=timeout, isolate=not unsafe_no_isolation)
        if questions:
            return partial(judge_grade, config=config, pack=name, questions=tuple(questions))
        return partial(judge_grade, config=config, pack=name)
    raise GradingError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")


AHEAD_PER_JOB = 4
"""Submissions handed to a local executor per job ahead of their results (``grade_all``'s
``ahead``): enough that no lane waits for work, few enough that 10,000 pending futures and
their tasks are not held for the whole batch."""
WORKERS_FROM = 8
"""Batches of at least this many submissions to judge, with two jobs or more, are judged in lanes
of their own process each (``judge/pool.py``: one in this process, the others in worker
processes); a smaller one in threads of this process, which start at once (a worker's start
costs about a tenth of a second)."""


def judge_workers(engine: str, *, jobs: int, batch: int) -> Executor | None:
    """The judge's worker processes for a batch of ``batch`` submissions (None: threads)."""
    if engine != "judge" or jobs < 2 or batch < WORKERS_FROM:
        return None
    from .judge.pool import JudgePool

    return JudgePool(jobs)


def require_isolation() -> None:
    """Before the judge grades anything: start and stop one sandboxed evaluator, as grading will.

    Raises:
        GradingError: naming the cause and the choices, where student code cannot be isolated.
    """
    from .judge.engine import IsolationUnavailable, check_isolation

    try:
        check_isolation()
    except IsolationUnavailable as exc:
        raise GradingError(
            f"the judge cannot isolate student code on this machine ({exc}); grade with "
            "--engine docker, or pass --unsafe-no-isolation to run it with your own rights"
        ) from None


def grade(
    *,
    submissions: Path,
    out: Path,
    build_dir: Path | None = None,
    assignment: str | Path | Pack | None = None,
    jobs: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    roster: Path | None = None,
    engine: str = "judge",
    progress: Callable[[Iterable[Submission]], Callable[[Result], None]] | None = None,
    scheduler: str | None = None,
    scheduler_timeout: float = 10.0,
    force: bool = False,
    overrides: Path | None = None,
    unsafe_no_isolation: bool = False,
    questions: Sequence[str] = (),
) -> GradeRun:
    """Grade a folder of submissions and write the gradebook.

    Args:
        submissions: folder of ``<student>.ipynb``, ``<student>.zip`` or ``<student>/*.ipynb``.
        out: output folder for ``gradebook.csv`` and ``results/``.
        build_dir: where the built assignment lives (built or rebuilt when stale); default the
            pack's build folder (``dist/`` or ``dist/<name>/``).
        assignment: the pack (its name, its folder or the pack); by default inferred from the
            submissions' notebooks.
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
        unsafe_no_isolation: judge engine: run student code without the sandbox (where the
            machine cannot isolate it); every result gets a note saying so.
        questions: regrade only these questions for every submission (needs ``force``): the
            other questions keep their cached results, what changed goes to
            ``OUT/regrade-<qid>.csv``, and changed answers under a human mark are flagged for
            review (see ``regrade.py``).

    Raises:
        GradingError: nothing to grade, an unknown engine, an unreachable scheduler, a Dask
            cluster that cannot grade, or no isolation for the judge (checked before grading).
        PackNotFound: an unknown assignment, or one that cannot be inferred (a mixed folder).
        GradingInterrupted: a stop signal arrived while grading; only the cache was written.
    """
    interrupts.reset()
    if engine == "judge":  # the evaluators' template imports numpy while the batch is read
        from .judge.engine import warm_context

        warm_context()
    roster_df = gradebook.read_roster(roster) if roster is not None else None
    found = discover(submissions, roster=roster_df)  # maps LMS names; logs unmapped, superseded
    if not found and roster_df is None:
        raise GradingError(f"no submissions found in {submissions}")
    pack = registry.load(
        assignment or infer(s.notebook if s.marks is None else s.marks for s in found)
    )
    if questions:  # a mistyped option is said before anything about the submissions
        from .regrade import Regrade, check_questions
    chosen = check_questions(questions, pack=pack, force=force) if questions else ()
    for s in found:
        if s.problem:
            log.warning("%s: %s (graded as invalid)", s.student, s.problem)
    log.info("assignment: %s", pack.name)
    if roster_df is not None:
        gradebook.check_roster(roster_df, pack=pack)
    manual = read_overrides(overrides, pack=pack) if overrides is not None else []
    check_students(manual, (s.student for s in found), path=overrides)
    grade_one = make_grader(
        engine,
        build_dir=build_dir,
        timeout=timeout,
        pack=pack,
        unsafe_no_isolation=unsafe_no_isolation,
    )
    limits = {"timeout": timeout, "call_timeout": os.environ.get(CALL_TIMEOUT_ENV)}
    if unsafe_no_isolation:  # never reuse such results for an isolated run, nor the reverse
        limits["isolation"] = "none"
    cache = ResultCache(
        out, assignment=source_fingerprint(pack), settings={"engine": engine, **limits}
    )
    regrade = None
    reused: PackedResults
    if chosen:  # every submission again; other questions' entries kept from the cache
        regrade = Regrade(out=out, questions=chosen, pack=pack, cache=cache, submissions=found)
        to_grade, reused = found, PackedResults()
        if engine == "judge":
            only = make_grader(
                engine,
                build_dir=build_dir,
                timeout=timeout,
                pack=pack,
                unsafe_no_isolation=unsafe_no_isolation,
                questions=chosen,
            )
            grade_one = regrade.grader(grade_one, only)
    else:
        to_grade, reused = cache.split(found, force=force)
    # The outputs' libraries load while the isolation check waits for the evaluators' template.
    prefetch = prefetch_outputs() if len(to_grade) <= PREFETCH_LIMIT else None
    if engine == "judge" and to_grade and not unsafe_no_isolation:
        require_isolation()
    reused_count = len(reused)
    if reused:
        log.info("reusing %d cached result(s) from %s", len(reused), cache.folder)

    on_done = cache.recording(progress(to_grade) if progress else (lambda result: None))
    if regrade is not None:
        on_done = regrade.merging(on_done)
    jobs = jobs or default_jobs()
    place = (
        dask_executor(scheduler, engine=engine, timeout=scheduler_timeout)
        if scheduler
        else judge_workers(engine, jobs=jobs, batch=len(to_grade))
    )
    try:
        with place or nullcontext() as executor, interrupts.deferred():
            results = grade_all(
                to_grade,
                grade_one,
                jobs=jobs,
                pack=pack,
                executor=executor,
                on_done=on_done,
                keep=PackedResults(),  # the results of a large batch stay small in memory
                ahead=None if scheduler else AHEAD_PER_JOB * jobs,
            )
    except ExecutorError as exc:
        raise GradingError(str(exc)) from None
    except GradingInterrupted as exc:  # nothing written: the outputs stay as they were
        raise GradingInterrupted(
            signum=exc.signum,
            graded=exc.graded,
            total=len(found),
            cached=cache.stored,
            reused=len(reused),
            settled=exc.settled,
        ) from None
    finally:
        if engine == "judge":  # evaluators retired by this process's threads are gone
            from .judge.engine import finish_retired

            finish_retired()
    if prefetch is not None:  # the outputs' imports are done (or failed: imported again below)
        prefetch.join()
    from .regrade import Regrade
    from .review.hook import record_run

    if regrade is not None:
        results = regrade.merged(list(results))
    with interrupts.deferred():  # a signal now lets the outputs be completed first
        late = {s.student for s in found if s.late}
        del found, to_grade  # the submissions (their notebooks) are not needed any more
        autograded = PackedResults()  # packed results taken as they are
        autograded.extend(results)
        autograded.extend(reused)
        autograded = autograded.sort_by_student().changed(late, partial(_noted_late, late=late))
        del results, reused
        changes = regrade.changed(autograded) if regrade is not None else []
        remove_manifest(out)  # a run that dies while writing leaves no manifest (course refuses)
        # Human marks from the review app (OUT/review.sqlite) are layered over the autograde with
        # the --overrides rows, so a rerun never loses them (autograder/review/marks.py).
        human = record_run(
            out=out,
            autograded=autograded,
            pack=pack,
            run_overrides=manual,
            roster=roster_df,
            submissions=submissions,
            overrides_path=overrides,
            regraded=Regrade.flags(changes),
        )
        # A PackedResults: the writers only iterate over it and index it, as they do a list.
        final = cast("list[dict]", apply_overrides(autograded, human, pack=pack))
        table = write_outputs(final, out, pack=pack, roster=roster_df)
        report = regrade.report(changes, human=human, results=list(final)) if regrade else None
        manifest = make_manifest(pack=pack, roster=roster, engine=engine)
        write_manifest(manifest, out)  # last: a folder with a manifest is a finished run
        cache.prune()
    return GradeRun(
        table,
        out / "gradebook.csv",
        out / "results",
        reused=reused_count,
        results=final,
        pack=pack,
        regrade=report,
    )


PREFETCH_THREAD = "outputs-prefetch"
"""Name of the thread that imports the outputs' libraries while the batch is graded."""
PREFETCH_LIMIT = PAINT_AHEAD_LIMIT
"""Batches of up to this many submissions to grade import the outputs' libraries while they are
graded (a larger batch imports them at the end: their ~0.4 s is then a small part of the run,
and their ~40 MB would be held for all of it); the same bound as the report's painter's."""


def prefetch_outputs() -> threading.Thread:
    """Import the libraries of the outputs (pandas, matplotlib: ~0.4 s) in a thread while the
    batch is graded, where the judge mostly waits for its evaluators; after the last result they
    would delay a small batch by as much. Only third-party modules that import nothing of the kit
    are loaded there, so no import of the grading thread can wait on them in a cycle."""

    from .figures import painter_running

    figures_here = not painter_running()  # else a painter process draws the report's figures

    def load() -> None:
        with suppress(Exception):  # imported again, and reported, where used
            import pandas  # noqa: F401

            if figures_here:
                import matplotlib.figure  # noqa: F401

    thread = threading.Thread(target=load, name=PREFETCH_THREAD, daemon=True)
    thread.start()
    return thread


def write_outputs(
    results: list[dict],
    out: Path,
    *,
    pack: Pack,
    roster: pd.DataFrame | None = None,
    only: set[str] | None = None,
    report: bool = True,
    long: bool = True,
) -> pd.DataFrame:
    """Write every output of a graded folder from its final results (no grading).

    ``results/``, ``gradebook.csv``, the LMS exports, ``feedback/`` and ``report.html``; ``grade``
    calls it once per run and the review app after each change. From
    :data:`~autograder.studentfiles.HELPER_FROM` packed results (``grade``'s large batches), a
    helper process writes ``results/`` and ``feedback/`` while this one writes the rest: the
    same files, and the same first error.

    Args:
        results: One final result per submission (overrides applied).
        out: The graded folder.
        pack: The graded assignment.
        roster: The run's roster, if any.
        only: Write ``results/`` and ``feedback/`` files for these students only (the others
            are unchanged); the gradebook and exports always cover everyone.
        report: Also write ``report.html`` (the review app writes it in the background).
        long: Also write ``long.csv`` (per-case outcomes, which human marks never change).

    Returns:
        The collated gradebook.
    """
    from .exports import write_exports
    from .feedback import write_feedback
    from .report import write_report

    files = results if only is None else [r for r in results if r["student"] in only]
    if isinstance(files, PackedResults) and len(files) >= HELPER_FROM:
        return _write_outputs_helped(
            files,
            cast("list[dict]", files),
            out,
            pack=pack,
            roster=roster,
            report=report,
            long=long,
        )
    gradebook.write_results(files, out)
    table = gradebook.collate(results, roster=roster, pack=pack)
    gradebook.write_gradebook(table, out)
    write_exports(table, results, out, roster=roster, pack=pack, long=long)
    write_feedback(files, out, pack=pack)
    if report:
        write_report(table, results, out, pack=pack)
    return table


def _write_outputs_helped(
    packed: PackedResults,
    results: list[dict],
    out: Path,
    *,
    pack: Pack,
    roster: pd.DataFrame | None,
    report: bool,
    long: bool,
) -> pd.DataFrame:
    """:func:`write_outputs` of every student, the per-student files written by a helper
    process meanwhile (``studentfiles.py``): the same files, and the error the sequential order
    raises first (``results/``, the tables, ``feedback/``, the report)."""
    from .exports import write_exports
    from .feedback import write_feedback
    from .report import write_report

    helper = Helper(packed, out, pack=pack)
    tables: Exception | None = None  # after results/'s error, before feedback/'s
    last: Exception | None = None  # the report's, after feedback/'s
    try:
        try:
            table = gradebook.collate(results, roster=roster, pack=pack)
            gradebook.write_gradebook(table, out)
            write_exports(table, results, out, roster=roster, pack=pack, long=long)
        except Exception as exc:  # noqa: BLE001 - raised in its turn, below
            tables = exc
        else:
            try:
                if report:
                    write_report(table, results, out, pack=pack)
            except Exception as exc:  # noqa: BLE001 - raised in its turn, below
                last = exc
        done = helper.finish()
    finally:
        helper.close()
    _written(done["results"], lambda: gradebook.write_results(results, out))
    if tables is not None:
        raise tables
    _written(done["feedback"], lambda: write_feedback(results, out, pack=pack))
    _log_student_files(len(results), out)
    if last is not None:
        raise last
    return table


def _written(outcome: BaseException | bool | None, write: Callable[[], object]) -> None:
    """A helper's phase: done (True), its error raised here, or (None) written here."""
    if isinstance(outcome, BaseException):
        raise outcome
    if outcome is None:
        write()


def _log_student_files(count: int, out: Path) -> None:
    """The writers' log lines, for the files a helper wrote."""
    from .feedback import log_feedback_written

    gradebook.log_results_written(count, out)
    log_feedback_written(count, out)


def note_late(results: list[Result], submissions: list[Submission]) -> list[Result]:
    """Add a note to the results of submissions an LMS marked late (no deduction)."""
    late = {s.student for s in submissions if s.late}
    for result in results:
        _noted_late(result, late)
    return results


def _noted_late(result: Any, late: set[str]) -> Any:
    if result["student"] in late:
        result.setdefault("notes", []).append("submitted late (LMS late marker)")
    return result
