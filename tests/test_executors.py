"""The batch runner on other executors: a Dask cluster, and futures that fail the way a cluster's can.

The Dask test grades on a ``LocalCluster`` in this process (one worker, two threads), so it needs
no network set-up; the task graph is still pickled on its way to the scheduler.
"""

from __future__ import annotations

import pickle
import socket
import threading
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from pathlib import Path

import cloudpickle
import nbformat
import pandas as pd
import pytest
from distributed import KilledWorker, LocalCluster

from autograder.grading import GradingError, grade, grade_all, make_grader
from autograder.intake import Submission, discover
from helpers import CORRECT, MP, fill, write_notebooks

TIMEOUT = 60.0


@pytest.fixture()
def small_batch(template, tmp_path) -> Path:
    """One correct, one blank and one invalid submission."""
    folder = write_notebooks(tmp_path / "subs", {"ann": fill(template, CORRECT), "bob": template})
    (folder / "cleo.ipynb").write_text('{"cells": [ this is not json', encoding="utf-8")
    return folder


def _results(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(folder.glob("*.json"))}


def test_dask_cluster_gives_the_same_gradebook_as_local_threads(built, small_batch, tmp_path):
    """Does grading on a Dask cluster give the same gradebook and feedback as local threads?"""
    local = grade(
        submissions=small_batch,
        out=tmp_path / "local",
        build_dir=built.out,
        jobs=2,
        timeout=TIMEOUT,
        assignment="math_primer",
    )
    with LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        remote = grade(
            submissions=small_batch,
            out=tmp_path / "dask",
            build_dir=built.out,
            timeout=TIMEOUT,
            scheduler=cluster.scheduler_address,
            assignment="math_primer",
        )
        graded_on_cluster = cluster.scheduler.task_prefixes["grade_submission"].state_counts
    assert graded_on_cluster["memory"] == 3  # every submission was a task on the cluster
    assert list(remote.gradebook["status"]) == ["graded", "graded", "invalid"]
    assert list(remote.gradebook["total"]) == [12, 0, 0]
    pd.testing.assert_frame_equal(remote.gradebook, local.gradebook)
    assert _results(remote.results_dir) == _results(local.results_dir)


@pytest.mark.parametrize("engine", ["judge", "otter"])
def test_grader_and_submissions_survive_pickling(built, template, engine, tmp_path):
    """Do the grading function and a submission pickle, as a Dask cluster ships them?"""
    grade_one = make_grader(engine, build_dir=built.out, timeout=TIMEOUT, pack=MP)
    [submission] = discover(write_notebooks(tmp_path, {"ann": fill(template, CORRECT)}))
    assert pickle.loads(cloudpickle.dumps(submission)) == submission
    copy = pickle.loads(cloudpickle.dumps(grade_one))
    assert (copy.func, copy.keywords) == (grade_one.func, grade_one.keywords)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    "address,detail",
    [
        (f"tcp://127.0.0.1:{_closed_port()}", "Timed out trying to connect"),
        ("localhost", "missing port number"),
        ("foo://host:8786", "unknown address scheme 'foo'"),
    ],
    ids=["closed-port", "no-port", "bad-scheme"],
)
def test_unusable_scheduler_gives_a_clear_error(template, tmp_path, address, detail):
    """Does an unreachable or malformed scheduler address raise GradingError naming it?"""
    subs = write_notebooks(tmp_path / "subs", {"ann": template})
    with pytest.raises(GradingError) as info:
        grade(
            submissions=subs,
            out=tmp_path / "out",
            build_dir=tmp_path / "dist",
            scheduler=address,
            scheduler_timeout=1.0,
            assignment="math_primer",
        )
    assert str(info.value).startswith(f"cannot reach the Dask scheduler at {address}: ")
    assert detail in str(info.value)
    assert not (tmp_path / "out").exists()


class ScriptedExecutor(Executor):
    """Runs each task at once, but fails some the way a cluster can, by student id."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        student = args[0].student
        if student == "refused":
            raise TypeError("cannot pickle '_thread.lock' object")
        future: Future = Future()
        if student == "cancelled":
            future.cancel()
            future.set_running_or_notify_cancel()
        elif student == "lost":
            future.set_exception(KilledWorker("grade_one-lost", "tcp://10.0.0.7:40000", 3))
        else:
            try:
                future.set_result(fn(*args, **kwargs))
            except Exception as exc:  # noqa: BLE001 - a future carries any error
                future.set_exception(exc)
        return future


def submission_of(student: str) -> Submission:
    """A readable one-cell submission for ``student``."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    return Submission(student, Path(f"{student}.ipynb"), notebook, None)


def fake_grade_one(submission: Submission) -> dict:
    """A stand-in for an engine: 'crash' raises, everyone else gets a graded row."""
    if submission.student == "crash":
        raise RuntimeError("engine bug")
    return {"student": submission.student, "status": "graded", "total": 1.0}


def test_failed_futures_become_error_rows_and_the_rest_is_graded():
    """Does every submission get exactly one row when futures crash, die or are cancelled?"""
    students = ["ann", "cancelled", "crash", "lost", "refused", "zoe"]
    submissions = [submission_of(student) for student in students]
    seen: list[str] = []
    results = grade_all(
        submissions,
        fake_grade_one,
        jobs=1,
        executor=ScriptedExecutor(),
        on_done=lambda result: seen.append(result["student"]),
        pack=MP,
    )
    assert [r["student"] for r in results] == students
    assert sorted(seen) == students
    status = {r["student"]: r["status"] for r in results}
    assert status == {
        "ann": "graded",
        "cancelled": "error",
        "crash": "error",
        "lost": "error",
        "refused": "error",
        "zoe": "graded",
    }
    feedback = {
        r["student"]: r["questions"]["q1a"]["feedback"] for r in results if "questions" in r
    }
    assert "CancelledError" in feedback["cancelled"]
    assert "engine bug" in feedback["crash"]
    assert "KilledWorker" in feedback["lost"]
    assert "cannot pickle" in feedback["refused"]


class CountingExecutor(ThreadPoolExecutor):
    """Threads that count how many submissions were handed over and not yet finished."""

    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.pending = self.most = 0
        self.lock = threading.Lock()

    def submit(self, fn, /, *args, **kwargs):
        with self.lock:
            self.pending += 1
            self.most = max(self.most, self.pending)
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._done)
        return future

    def _done(self, _future) -> None:
        with self.lock:
            self.pending -= 1


@pytest.mark.parametrize(("ahead", "most"), [(3, 3), (None, 40)])
def test_ahead_bounds_what_the_executor_holds(ahead, most):
    """With ``ahead``, does the executor never hold more submissions than that (each collected
    result lets the next one in), and is every submission still graded, in order?"""
    students = [f"s{i:02d}" for i in range(40)]
    gate = threading.Event()

    def slow_grade_one(submission: Submission) -> dict:
        gate.wait(5)  # the first ones wait until every submission the loop will hand is handed
        return fake_grade_one(submission)

    with CountingExecutor() as executor:
        threading.Timer(0.5, gate.set).start()
        results = grade_all(
            [submission_of(s) for s in students],
            slow_grade_one,
            jobs=2,
            executor=executor,
            pack=MP,
            ahead=ahead,
        )
    assert [r["student"] for r in results] == students
    assert executor.most == most
