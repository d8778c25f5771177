"""Ctrl-C and SIGTERM during `grade`: a quick stop that keeps what is graded, then a clean resume.

`python -m autograder grade` runs in a real pseudo-terminal (tmux) under a small wrapper that is a
child subreaper: every process the batch leaves behind (evaluators, a double-forked daemon) ends up
as the wrapper's child, so "nothing left behind" is read from the process table, not assumed.
Ctrl-C is a real ``tmux send-keys C-c`` (SIGINT to the terminal's foreground process group, as a
TA's keyboard sends it); SIGTERM is sent to the grade process alone, as ``kill PID`` does.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import nbformat
import psutil
import pytest
from distributed import Client

from autograder.cache import CACHE_DIR
from autograder.samples import write_samples
from helpers import CORRECT, MATH_PRIMER, fill, write_notebooks

REPO = Path(__file__).resolve().parents[1]
COPIES = 34
"""Copies of each of the 6 sample submissions: a batch of 204, graded in about a minute."""
STOP_BOUND = 5.0
"""Seconds from the signal to a stopped batch that the tests accept (the target is 2 s; the
machine running the tests is shared)."""
SLOW_CELL = "import time\ntime.sleep(0.5)\n"
"""Added to the correct copies, so that evaluators are busy in a cell when the signal comes."""

WRAPPER = '''
"""Run a command as a child subreaper; report its exit status, when it ended, what it left."""
import ctypes, json, os, signal, subprocess, sys, time

ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
signal.signal(signal.SIGINT, lambda *args: None)  # outlive Ctrl-C; the child gets SIG_DFL at exec
report, command = sys.argv[1], sys.argv[2:]
proc = subprocess.Popen(command)
with open(report + ".pid", "w") as f:
    f.write(str(proc.pid))
code = proc.wait()
ended = time.monotonic()


def children():
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == os.getpid() and fields[0] != "Z":
                found.append(int(entry))
    return found


clean_at, left = None, []
while time.monotonic() < ended + 10:
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass
    left = children()
    if not left:
        clean_at = time.monotonic()
        break
    time.sleep(0.02)
cmdlines = []
for pid in left:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdlines.append(f.read().replace(b"\\0", b" ").decode(errors="replace")[:300])
    except OSError:
        pass
with open(report + ".tmp", "w") as f:
    json.dump({"code": code, "ended": ended, "clean_at": clean_at, "left": cmdlines}, f)
os.replace(report + ".tmp", report)
'''
"""Runs inside the tmux pane, between the shell and `grade`."""

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux (Debian: tmux)")


def _batch(built, folder: Path) -> Path:
    """The sample submissions, each copied COPIES times under new student ids."""
    samples = write_samples(
        folder / "samples", pack=MATH_PRIMER, template_path=built.student_notebook
    )
    subs = folder / "submissions"
    subs.mkdir()
    for sample in samples:
        data = sample.read_bytes()
        if sample.stem == "ada_correct":
            nb = nbformat.reads(data.decode(), as_version=4)
            nb.cells.insert(1, nbformat.v4.new_code_cell(SLOW_CELL))
            data = nbformat.writes(nb).encode()
        for copy in range(COPIES):
            (subs / f"{sample.stem}_{copy:02d}{sample.suffix}").write_bytes(data)
    return subs


def _command(built, subs: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "autograder", "grade", str(subs), "--out", str(out),
        "--build-dir", str(built.out), "--jobs", "2", *extra,
    ]  # fmt: skip


def _cached(out: Path) -> int:
    folder = out / CACHE_DIR
    return len(list(folder.glob("*.json"))) if folder.is_dir() else 0


def _evaluators(grade_pid: int) -> int:
    """Live processes below the grade process's own children (the forkserver's: evaluators)."""
    busy = 0
    try:
        for process in psutil.Process(grade_pid).children(recursive=True):
            busy += process.ppid() != grade_pid  # not the forkserver itself
    except psutil.NoSuchProcess:
        pass
    return busy


def _interrupted_run(
    built,
    subs: Path,
    out: Path,
    tmp: Path,
    *,
    signum: int,
    extra: tuple[str, ...] = (),
    graded: int = 5,
    local_work: bool = True,
) -> dict:
    """Start `grade` in a tmux pane, wait until it has graded ``graded`` more submissions (with
    evaluators busy, if ``local_work``), send ``signum`` (SIGINT: Ctrl-C typed in the pane),
    and report."""
    session = f"mp-{uuid.uuid4().hex[:8]}"
    report = tmp / f"{session}.json"
    wrapper = tmp / "wrapper.py"
    wrapper.write_text(WRAPPER)
    command = [sys.executable, str(wrapper), str(report), *_command(built, subs, out, *extra)]
    shell = f"cd {REPO} && " + " ".join(map(str, command)) + "; sleep 600"
    before = _cached(out)
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "220", "-y", "50", shell], check=True
    )
    try:
        deadline = time.monotonic() + 240
        pid_file = Path(str(report) + ".pid")
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        grade_pid = int(pid_file.read_text())
        busy = 0
        while time.monotonic() < deadline:
            busy = _evaluators(grade_pid)
            if _cached(out) >= before + graded and (busy or not local_work):
                break
            time.sleep(0.05)
        sent = time.monotonic()
        if signum == signal.SIGINT:
            subprocess.run(["tmux", "send-keys", "-t", session, "C-c"], check=True)
        else:
            os.kill(grade_pid, signum)
        while not report.exists() and time.monotonic() < sent + 60:
            time.sleep(0.05)
        assert report.exists(), "grade did not stop within 60 s"
        cached_at_exit = _cached(out)
        time.sleep(1.0)
        pane = subprocess.run(
            ["tmux", "capture-pane", "-p", "-J", "-t", session],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)
    outcome = json.loads(report.read_text())
    outcome.update(
        signum=signum,
        before=before,
        busy=busy,
        stopped=outcome["ended"] - sent,
        clean=None if outcome["clean_at"] is None else outcome["clean_at"] - sent,
        cached_at_exit=cached_at_exit,
        cached_later=_cached(out),
        pane=pane,
    )
    name = signal.Signals(signum).name
    print(
        f"{name}: exit {outcome['code']} {outcome['stopped']:.2f} s after the signal, "
        f"no process left after {outcome['clean'] or float('nan'):.2f} s "
        f"({busy} processes below its children were busy); cache {before} -> {cached_at_exit}"
    )
    return outcome


def _grade(built, subs: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        _command(built, subs, out),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.fixture(scope="module")
def runs(built, tmp_path_factory) -> dict:
    """An uninterrupted run, and the same batch interrupted by Ctrl-C, then (resumed and)
    interrupted by SIGTERM, then resumed to the end."""
    tmp = tmp_path_factory.mktemp("interrupts")
    subs = _batch(built, tmp)
    reference = _grade(built, subs, tmp / "reference")
    assert reference.returncode == 0, reference.stderr[-2000:]
    out = tmp / "out"
    out.mkdir()
    previous = b"student,total\nfrom,an earlier run\n"
    (out / "gradebook.csv").write_bytes(previous)
    sigint = _interrupted_run(built, subs, out, tmp, signum=signal.SIGINT)
    outputs_after_sigint = sorted(p.name for p in out.iterdir())
    gradebook_after_sigint = (out / "gradebook.csv").read_bytes()
    sigterm = _interrupted_run(built, subs, out, tmp, signum=signal.SIGTERM)
    resumed = _grade(built, subs, out)
    return {
        "total": len(list(subs.iterdir())),
        "reference": (tmp / "reference" / "gradebook.csv").read_bytes(),
        "previous": previous,
        "sigint": sigint,
        "sigterm": sigterm,
        "outputs_after_sigint": outputs_after_sigint,
        "gradebook_after_sigint": gradebook_after_sigint,
        "resumed": resumed,
        "final": (out / "gradebook.csv").read_bytes(),
    }


@pytest.mark.parametrize(("which", "status"), [("sigint", 130), ("sigterm", 143)])
def test_signal_stops_grade_quickly_with_its_exit_status(runs, which, status):
    """Does Ctrl-C (SIGTERM) stop `grade` mid-batch within the bound, with exit status 130 (143)?"""
    outcome = runs[which]
    assert outcome["code"] == status, outcome["pane"][-2000:]
    assert outcome["stopped"] < STOP_BOUND, outcome["stopped"]
    assert outcome["cached_at_exit"] < runs["total"]  # caught mid-way


@pytest.mark.parametrize("which", ["sigint", "sigterm"])
def test_no_process_is_left_behind(runs, which):
    """Were evaluators busy when the signal came, and is every process the batch started gone
    (the process table holds nothing under the subreaper) within the bound?"""
    outcome = runs[which]
    assert outcome["busy"] > 0
    assert outcome["left"] == []
    assert outcome["clean"] is not None and outcome["clean"] < STOP_BOUND


@pytest.mark.parametrize("which", ["sigint", "sigterm"])
def test_cli_says_how_many_are_graded_and_how_to_resume(runs, which):
    """Does the CLI say how many submissions are graded and kept (the cache's count), and that
    the same command resumes?"""
    outcome = runs[which]
    text = " ".join(outcome["pane"].split())
    name = signal.Signals(outcome["signum"]).name
    match = re.search(rf"interrupted by {name}: (\d+) of (\d+) submission\(s\) graded", text)
    assert match, text[-2000:]
    assert int(match[1]) == outcome["cached_at_exit"]
    assert int(match[2]) == runs["total"]
    assert "Run the same command again to resume." in text


@pytest.mark.parametrize("which", ["sigint", "sigterm"])
def test_nothing_is_graded_after_the_stop(runs, which):
    """Once `grade` has exited, does the cache stay as it was (no grading goes on behind)?"""
    outcome = runs[which]
    assert outcome["cached_later"] == outcome["cached_at_exit"]
    assert outcome["cached_at_exit"] > outcome["before"]


def test_outputs_are_left_as_they_were(runs):
    """After the interrupted run, is the earlier gradebook.csv untouched and nothing else
    (results/, exports, feedback, report) written?"""
    assert runs["outputs_after_sigint"] == [CACHE_DIR, "gradebook.csv"]
    assert runs["gradebook_after_sigint"] == runs["previous"]


def test_rerun_resumes_and_matches_an_uninterrupted_run(runs):
    """Does the same command, run again, reuse every cached result, grade the rest and write the
    same gradebook, byte for byte, as an uninterrupted run?"""
    resumed = runs["resumed"]
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    reused = int(re.search(r"reused:\s+(\d+) cached", resumed.stdout)[1])
    assert reused == runs["sigterm"]["cached_at_exit"]
    assert runs["final"] == runs["reference"]


# --- the other engines and executors --------------------------------------------------------------


def test_ctrl_c_stops_the_otter_engine(built, template, tmp_path):
    """With `--engine otter`, does Ctrl-C stop within the bound (exit 130), kill the running
    `otter run` subprocesses and their kernels, and keep the finished results?"""
    subs = write_notebooks(tmp_path / "subs", {f"s{i}": fill(template, CORRECT) for i in range(6)})
    out = tmp_path / "out"
    outcome = _interrupted_run(
        built, subs, out, tmp_path, signum=signal.SIGINT, extra=("--engine", "otter"), graded=1
    )
    assert outcome["code"] == 130, outcome["pane"][-2000:]
    assert outcome["stopped"] < STOP_BOUND
    assert outcome["busy"] > 0  # kernels of `otter run` were running
    assert outcome["left"] == [] and outcome["clean"] < STOP_BOUND
    assert 1 <= outcome["cached_at_exit"] == outcome["cached_later"] < 6
    assert not (out / "gradebook.csv").exists()


@pytest.fixture()
def dask_cluster(tmp_path):
    """A Dask scheduler and one two-thread worker, started as the README says."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(REPO), "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    dask = [sys.executable, "-m", "dask"]  # the `dask` command of this environment
    scheduler = subprocess.Popen(
        [*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
         "--dashboard-address", ":0"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    worker = subprocess.Popen(
        [*dask, "worker", address, "--nthreads", "2", "--dashboard-address", ":0"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        with Client(address, timeout=60) as client:
            client.wait_for_workers(1, timeout=60)
        yield address
    finally:
        for process in (worker, scheduler):
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_ctrl_c_stops_grading_on_a_dask_cluster(built, template, tmp_path, dask_cluster):
    """With `--scheduler`, does Ctrl-C stop `grade` within the bound (exit 130), keep the finished
    results, and leave the cluster idle soon after (queued tasks cancelled; a task already running
    on a worker finishes its submission there, and its result is dropped)?"""
    nb = fill(template, CORRECT)
    subs = write_notebooks(tmp_path / "subs", {f"s{i:03d}": nb for i in range(60)})
    out = tmp_path / "out"
    outcome = _interrupted_run(
        built,
        subs,
        out,
        tmp_path,
        signum=signal.SIGINT,
        extra=("--scheduler", dask_cluster),
        local_work=False,
    )
    assert outcome["code"] == 130, outcome["pane"][-2000:]
    assert outcome["stopped"] < STOP_BOUND
    assert outcome["left"] == []
    assert 5 <= outcome["cached_at_exit"] == outcome["cached_later"] < 60
    with Client(dask_cluster, timeout=30) as client:
        deadline = time.monotonic() + 60
        while any(client.processing().values()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(client.processing().values())


def test_ctrl_c_of_a_small_batch_in_lanes_leaves_nothing_and_says_nothing_else(built, tmp_path):
    """A batch small enough for the report's painter and large enough for the judge's worker
    process (40 slow correct notebooks, `--jobs 2`): does Ctrl-C stop it with 130, leave no
    process, and print no Python warning or traceback (e.g. of leaked semaphores)?"""
    nb = fill(nbformat.read(str(built.student_notebook), as_version=4), CORRECT)
    nb.cells.insert(1, nbformat.v4.new_code_cell(SLOW_CELL))
    subs = write_notebooks(tmp_path / "subs", {f"s{i:02d}": nb for i in range(40)})
    out = tmp_path / "out"
    outcome = _interrupted_run(built, subs, out, tmp_path, signum=signal.SIGINT, graded=3)
    assert outcome["code"] == 130, outcome["pane"][-2000:]
    assert outcome["left"] == [] and outcome["clean"] < STOP_BOUND
    assert 3 <= outcome["cached_at_exit"] < 40
    for noise in ("Warning", "warnings.warn", "Traceback", "leaked"):
        assert noise not in outcome["pane"], outcome["pane"][-2000:]
