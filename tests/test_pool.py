"""The judge's worker processes (``autograder/judge/pool.py``): the same results as threads,
their evaluators from the one template, their logs in the grading process, and nothing left
when the grading process is killed."""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

import nbformat

from autograder import grading
from autograder.grading import grade
from autograder.judge.pool import JudgePool, Workers
from autograder.samples import write_samples
from helpers import (
    CORRECT,
    HANG,
    MATH_PRIMER,
    MP,
    assert_all_end,
    fill,
    kill_9_while_sandboxed,
    warn_and_tell_pid,
    write_notebooks,
)

REPO = Path(__file__).resolve().parents[1]


def _batch(built, folder: Path, copies: int) -> Path:
    """The sample submissions (correct, typical mistakes, blank, partial, broken, a zip), each
    ``copies`` times under new student ids."""
    samples = write_samples(
        folder / "samples", pack=MATH_PRIMER, template_path=built.student_notebook
    )
    subs = folder / "submissions"
    subs.mkdir()
    for sample in samples:
        for copy in range(copies):
            (subs / f"{sample.stem}_{copy}{sample.suffix}").write_bytes(sample.read_bytes())
    return subs


def test_workers_grade_as_threads_do(built, tmp_path, monkeypatch):
    """Is a batch judged in two worker processes graded exactly as in the grading process's
    own thread (same gradebook and results, byte for byte), and were workers really used?"""
    subs = _batch(built, tmp_path, copies=2)
    assert len(list(subs.iterdir())) >= grading.WORKERS_FROM
    pools = []
    real = grading.judge_workers

    def recording(engine, *, jobs, batch):
        pools.append(real(engine, jobs=jobs, batch=batch))
        return pools[-1]

    monkeypatch.setattr(grading, "judge_workers", recording)
    threads = grade(submissions=subs, out=tmp_path / "threads", build_dir=built.out, jobs=1)
    workers = grade(submissions=subs, out=tmp_path / "workers", build_dir=built.out, jobs=2)
    assert pools[0] is None and isinstance(pools[1], JudgePool)
    assert workers.gradebook_path.read_bytes() == threads.gradebook_path.read_bytes()
    for path in sorted(threads.results_dir.iterdir()):
        assert (workers.results_dir / path.name).read_bytes() == path.read_bytes(), path.name


def test_small_batches_and_one_job_use_threads():
    """Is a batch below the threshold, or one job, judged in the grading process (no worker to
    start), and another engine never in judge workers?"""
    assert grading.judge_workers("judge", jobs=2, batch=grading.WORKERS_FROM - 1) is None
    assert grading.judge_workers("judge", jobs=1, batch=1000) is None
    assert grading.judge_workers("otter", jobs=2, batch=1000) is None


def test_a_workers_log_reaches_the_grading_process(caplog):
    """Does a warning logged in a worker reach the grading process's log handlers (with its
    logger's name), not the worker's stderr?"""
    caplog.set_level(logging.WARNING)
    with Workers(1) as pool:
        pid = pool.submit(warn_and_tell_pid, "autograder.judge.engine", "from a worker").result()
    assert pid != os.getpid()
    deadline = time.monotonic() + 5
    while not caplog.records and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("autograder.judge.engine", "from a worker")
    ]


def test_nothing_survives_kill_9_of_a_batch_in_workers(template, tmp_path):
    """After `kill -9` of a `grade --jobs 2` judging hanging submissions in worker processes,
    is every process it started (template, workers, evaluators and their children) gone within
    5 s, and were the evaluators tagged with the batch's pid?"""
    hanging = fill(template, CORRECT)
    hanging.cells.append(nbformat.v4.new_code_cell(HANG))
    subs = write_notebooks(tmp_path / "subs", {f"hang{i}": hanging for i in range(8)})
    judge, inside, tree = kill_9_while_sandboxed(subs, tmp_path / "out", "--jobs", "2", sandboxed=6)
    assert len(inside) >= 6, inside  # two evaluators: each one, its PID 1 and the child
    parents_of_evaluators = {tree.get(pid) for pid in inside}
    workers = [  # the template's children that are not evaluators (inside or waiting outside)
        pid
        for pid, parent in tree.items()
        if tree.get(parent) == judge and pid not in inside and pid not in parents_of_evaluators
    ]
    assert len(workers) == 1, tree  # --jobs 2: one lane in the grading process, one worker

    assert_all_end(list(tree), judge)


def test_a_dead_worker_costs_no_submission(built, tmp_path, caplog):
    """If a judge worker process dies mid-batch (killed), is every submission still graded, as
    in the grading process's own thread, with one warning saying the lanes moved here?"""
    from autograder.grading import grade_all, make_grader
    from autograder.intake import discover

    subs = _batch(built, tmp_path, copies=2)
    found = sorted(discover(subs), key=lambda s: s.student)
    grade_one = make_grader("judge", build_dir=built.out, timeout=60, pack=MATH_PRIMER)
    alone = grade_all(found, grade_one, jobs=1, pack=MP)
    killed: list[int] = []
    with JudgePool(2) as pool:

        def kill_the_worker(_result) -> None:
            if not killed:
                for process in pool._workers._processes.values():
                    os.kill(process.pid, signal.SIGKILL)
                    killed.append(process.pid)

        lanes = grade_all(found, grade_one, jobs=2, pack=MP, executor=pool, on_done=kill_the_worker)
    assert killed
    assert [(r["student"], r["status"], r.get("total")) for r in lanes] == [
        (r["student"], r["status"], r.get("total")) for r in alone
    ]
    assert "a judge worker process died" in caplog.text
