"""Isolation for a TA who is not root: the judge run by an unprivileged user, attacked.

The CI machine runs as root, so these tests make the TA: a normal user (``useradd -m``) with a
mode-600 secret in its home, its own course folder (submissions, output), a secret token in its
environment and a copy of the repository it can read. Root's pyenv Python is mode 700, so the user
gets a venv made from Debian's ``/usr/bin/python3`` (built once and cached under
``/var/cache/math-primer-tests``, keyed by the hash of ``requirements.txt``).

The same red-team batch (the notebook helpers of ``test_redteam.py``) is graded by
``python -m autograder grade`` twice: as that user (``runuser -u``) and as root. Every attack must
fail in both: reading the TA's files, environment or memory, other submissions, the output
folder, the host's ``/tmp``, the network.

A third run shows what replaces cgroups for a normal user: each submission's own process budget
(counted in its user namespace) and CPU fairness through the kernel's autogroup (no process of a
submission may start a session of its own).

A fourth run shows the refusal where namespaces are impossible: a seccomp filter, as Docker's
default profile has, makes ``unshare`` and ``clone`` with ``CLONE_NEWUSER`` fail with EPERM for
the grader; ``grade`` must then stop before running any student code, and
``--unsafe-no-isolation`` must grade with warnings and a note in every result and feedback file.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
from pathlib import Path

import pytest
from test_redteam import COPY_OTHERS, FAKE_RESULTS, PRELUDE
from test_sandbox import (
    FAIR_RATIO,
    FORKER,
    NEIGHBOUR,
    REPORT_EPILOGUE,
    SPINNER,
    WRONG,
    _with_cells,
    cpu_ratio,
    scores,
)

from autograder.judge.engine import UNSAFE_NOTE
from autograder.judge.sandbox import Limits
from helpers import CORRECT, MP, fill, write_notebooks
from pack_support import correct_source, forged_fields, leak_epilogue

# The red team's attack cells (tests/test_redteam.py) run here on Exercise 2, the pack a TA's
# repository copy grades by default, with test_sandbox.py's Exercise 2 answers and report cell.
QUESTION_NAMES, TOTAL_POINTS = MP.question_ids, MP.total_points
CORRECT_SOURCE = correct_source(MP)
LEAK_EPILOGUE = leak_epilogue(MP)
FAKE_ROW = forged_fields(MP)
"""The pack's side of the attacks' fields: the notebook's name, the line that marks one, and the
full-marks gradebook row and result the fake-results attack writes."""


pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0,
    reason="creates a user and runs the judge as that user: needs root (CI runs as root)",
)

REPO = Path(__file__).resolve().parents[1]
USER = "mp-ta-test"
VENV_CACHE = Path("/var/cache/math-primer-tests")
TIMEOUT = 60
"""Seconds per submission given to ``grade``."""

READ_TA_FILES = """
SECRET_FILE = {secret_file!r}
HOME = {home!r}
def _scan_memory():
    # the environment block the template process was started with lies after argv[0]
    import ctypes
    start = ctypes.c_void_p.in_dll(ctypes.CDLL(None), "program_invocation_name").value
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # read in a child: reading past the stack ends it, not the evaluator
        found = b"0"
        try:
            for offset in range(0, 256 * 1024, 4096):
                if b"TA_TOKEN=" in ctypes.string_at(start + offset, 4096):
                    found = b"1"
                    break
        finally:
            os.write(w, found)
            os._exit(0)
    os.close(w)
    seen = os.read(r, 1)
    os.waitpid(pid, 0)
    return seen == b"1"
attempts = [
    ("read the TA's secret file", lambda: "mp-secret" in open(SECRET_FILE).read()),
    ("list the TA's home", lambda: [n for n in os.listdir(HOME) if not n.startswith(".")]),
    ("TA_TOKEN in os.environ", lambda: [k for k in os.environ if "TOKEN" in k]),
    ("TA_TOKEN in memory", _scan_memory),
]
LEAKED = any([_try(label, action) for label, action in attempts])
"""

READ_OUTPUT = """
OUT = {out!r}
attempts = [
    ("list the output folder", lambda: os.listdir(OUT)),
    ("list results", lambda: os.listdir(os.path.join(OUT, "results"))),
    ("read the cache", lambda: os.listdir(os.path.join(OUT, ".cache"))),
]
LEAKED = any([_try(label, action) for label, action in attempts])
"""

READ_HOST_TMP = """
CANARY = {tmp_canary!r}
attempts = [
    ("read the canary in /tmp", lambda: "mp-canary" in open(CANARY).read()),
    ("list /tmp", lambda: [n for n in os.listdir("/tmp") if n.startswith("mp-user-canary")]),
]
LEAKED = any([_try(label, action) for label, action in attempts])
"""

NETWORK = """
import socket
PORT = {port!r}
def _connect(host):
    with socket.create_connection((host, PORT), timeout=2) as s:
        s.sendall(b"leak")
    return True
def _resolve():
    return socket.getaddrinfo("pypi.org", 443)
attempts = [
    ("connect to the host's 127.0.0.1", lambda: _connect("127.0.0.1")),
    ("resolve a name", _resolve),
]
LEAKED = any([_try(label, action) for label, action in attempts])
"""

ESCAPE = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
def _remount_rw():
    if libc.mount(None, b"/usr", None, ctypes.c_ulong(32 | 4096), None) != 0:  # MS_REMOUNT|BIND
        raise OSError(ctypes.get_errno(), "mount")
    return True
def _new_user_namespace():
    if libc.unshare(0x10000000) != 0:
        raise OSError(ctypes.get_errno(), "unshare")
    return True
attempts = [
    ("remount /usr writable", _remount_rw),
    ("new user namespace", _new_user_namespace),
    ("chroot escape", lambda: os.chroot("/tmp") or True),
    ("/proc", lambda: os.listdir("/proc")),
]
LEAKED = any([_try(label, action) for label, action in attempts])
"""
"""Ways back out of the sandbox: all need capabilities the evaluator gave up."""

LEAKS = ("read_ta_files", "copy_others", "read_output", "read_host_tmp", "network", "escape")
"""Read attacks: they score above the control only if their read (or escape) succeeded."""


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)


@pytest.fixture(scope="module")
def ta() -> dict:
    """An unprivileged user with a home, a mode-600 secret in it and a course folder."""
    try:
        pwd.getpwnam(USER)
    except KeyError:
        created = _run(["useradd", "--create-home", "--shell", "/bin/bash", USER])
        assert created.returncode == 0, created.stderr
    entry = pwd.getpwnam(USER)
    home = Path(entry.pw_dir)
    secret = home / "secret-token.txt"
    secret.write_text(f"mp-secret {uuid.uuid4().hex}\n")
    os.chown(secret, entry.pw_uid, entry.pw_gid)
    secret.chmod(0o600)
    course = home / f"course-{uuid.uuid4().hex[:8]}"
    course.mkdir()
    os.chown(course, entry.pw_uid, entry.pw_gid)
    yield {
        "name": USER,
        "uid": entry.pw_uid,
        "gid": entry.pw_gid,
        "home": home,
        "secret": secret,
        "course": course,
    }
    shutil.rmtree(course, ignore_errors=True)


@pytest.fixture(scope="module")
def user_venv() -> Path:
    """A venv of Debian's Python with requirements.txt, readable by everyone (cached)."""
    digest = hashlib.sha256((REPO / "requirements.txt").read_bytes()).hexdigest()[:16]
    venv = VENV_CACHE / f"venv-{digest}"
    VENV_CACHE.mkdir(parents=True, exist_ok=True)
    with open(VENV_CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time
        if not (venv / "bin" / "python").exists():
            partial = Path(tempfile.mkdtemp(prefix=venv.name + ".", dir=VENV_CACHE))
            made = _run(["/usr/bin/python3", "-m", "venv", str(partial)])
            assert made.returncode == 0, made.stderr
            installed = _run(
                [
                    str(partial / "bin" / "python"),
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "-r",
                    str(REPO / "requirements.txt"),
                ],
                timeout=1200,
            )
            assert installed.returncode == 0, installed.stderr[-3000:]
            partial.rename(venv)
            for stale in VENV_CACHE.glob("venv-*"):  # older requirements
                if stale != venv:
                    shutil.rmtree(stale, ignore_errors=True)
        _run(["chmod", "-R", "a+rX", str(venv)])
    return venv


@pytest.fixture(scope="module")
def repo_copy() -> Path:
    """The repository's sources in a folder everyone may read (pytest's own tmp is mode 700)."""
    folder = Path(tempfile.mkdtemp(prefix="mp-user-repo-"))
    copy = folder / "repo"
    shutil.copytree(
        REPO,
        copy,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "dist", "out", "__pycache__", ".pytest_cache", "*.egg-info"
        ),
    )
    _run(["chmod", "-R", "a+rX", str(folder)])
    yield copy
    shutil.rmtree(folder, ignore_errors=True)


class Listener:
    """A TCP server on the host's loopback that records whether anything connected."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            connection.close()


def _grade_command(venv: Path, subs: Path, out: Path, *extra: str) -> list[str]:
    return [
        str(venv / "bin" / "python"),
        "-m",
        "autograder",
        "grade",
        str(subs),
        "--out",
        str(out),
        "--jobs",
        "2",
        "--timeout",
        str(TIMEOUT),
        *extra,
    ]


def _environment(ta: dict, token: str) -> dict[str, str]:
    return {
        "HOME": str(ta["home"]),
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TA_TOKEN": token,
        "MATH_PRIMER_CALL_TIMEOUT": "2",
    }


def _as_ta(ta: dict, command: list[str]) -> list[str]:
    runuser = shutil.which("runuser", path="/usr/sbin:/sbin:/usr/bin:/bin") or "runuser"
    return [runuser, "-u", ta["name"], "--", *command]


def _chown_tree(ta: dict, folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        os.chown(path, ta["uid"], ta["gid"])


def _results(out: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (out / "results").glob("*.json")}


@pytest.fixture(scope="module")
def batches(ta, user_venv, repo_copy, template) -> dict:
    """The red-team batch graded by the CLI as the TA user and as root."""
    listener = Listener()
    tmp_canary = Path(tempfile.mkstemp(prefix="mp-user-canary-", dir="/tmp")[1])
    tmp_canary.write_text("mp-canary\n")
    tmp_canary.chmod(0o644)
    token = uuid.uuid4().hex
    runs = {}
    try:
        for who in ("user", "root"):
            course = ta["course"] / who
            subs, out = course / "submissions", course / "graded"
            paths = {
                "secret_file": str(ta["secret"]),
                "home": str(ta["home"]),
                "subs": str(subs),
                "out": str(out),
                "canary": str(course / "canary"),
                "host_tmp": f"/tmp/mp-user-{uuid.uuid4().hex}.json",
                "tmp_canary": str(tmp_canary),
                "port": listener.port,
                "students": [],
                **FAKE_ROW,
            }
            prelude = PRELUDE + f"\nCORRECT_SOURCE = {CORRECT_SOURCE!r}\n"
            attacks = {
                "read_ta_files": READ_TA_FILES,
                "copy_others": COPY_OTHERS,
                "read_output": READ_OUTPUT,
                "read_host_tmp": READ_HOST_TMP,
                "network": NETWORK,
                "escape": ESCAPE,
            }
            notebooks = {
                "honest": fill(template, CORRECT),
                "control": fill(template, WRONG),
                "fake_results": _with_cells(
                    template, WRONG, prelude, FAKE_RESULTS.format(**paths), REPORT_EPILOGUE
                ),
                **{
                    name: _with_cells(template, WRONG, prelude, code.format(**paths), LEAK_EPILOGUE)
                    for name, code in attacks.items()
                },
            }
            write_notebooks(subs, notebooks)
            (course / "canary").mkdir()
            _chown_tree(ta, ta["course"])
            command = _grade_command(user_venv, subs, out)
            if who == "user":
                command = _as_ta(ta, command)
            before = listener.connections
            run = _run(command, cwd=repo_copy, env=_environment(ta, token), timeout=900)
            runs[who] = {
                "run": run,
                "results": _results(out) if (out / "results").is_dir() else {},
                "out": out,
                "canary": course / "canary",
                "host_tmp": Path(paths["host_tmp"]),
                "connections": listener.connections - before,
            }
    finally:
        listener.server.close()
        tmp_canary.unlink()
    return runs


WHO = ["user", "root"]


@pytest.mark.parametrize("who", WHO)
def test_grading_runs_isolated(batches, who):
    """Does `grade` finish with a gradebook and no isolation note, as the TA user and as root?"""
    batch = batches[who]
    assert batch["run"].returncode == 0, batch["run"].stderr[-3000:]
    assert (batch["out"] / "gradebook.csv").is_file()
    for student, result in batch["results"].items():
        assert not any("isolation" in note for note in result.get("notes", [])), student


@pytest.mark.parametrize("who", WHO)
def test_honest_and_control_are_graded_normally(batches, who):
    """Do the honest notebook score 12/12 and the wrong answers lose points, so that an attack's
    gain would show?"""
    results = batches[who]["results"]
    assert (results["honest"]["status"], results["honest"]["total"]) == ("graded", TOTAL_POINTS)
    assert results["control"]["total"] < TOTAL_POINTS


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("attack", LEAKS)
def test_read_attack_fails(batches, who, attack):
    """Does every read attack (the TA's files, environment and memory, other submissions, the
    output folder, /tmp, the network, a way back out) score no more than the control, with its
    report in the feedback to prove its code ran?"""
    results = batches[who]["results"]
    result, control = results[attack], scores(results["control"])
    assert result["status"] == "graded", result
    gains = {q: s for q, s in scores(result).items() if s > control[q]}
    feedback = result["questions"]["q3"]["feedback"]
    assert not gains, (gains, feedback)
    assert "attack report:" in feedback, feedback


@pytest.mark.parametrize("who", WHO)
def test_nothing_reached_the_host(batches, who):
    """Did no attack write outside its sandbox (output folder, canary, /tmp) or connect to the
    host's loopback?"""
    batch = batches[who]
    assert batch["connections"] == 0
    assert not list(batch["canary"].iterdir())
    assert not batch["host_tmp"].exists()
    written = {p.name for p in (batch["out"] / "results").iterdir()}
    assert written == {f"{s}.json" for s in batch["results"]}
    assert "fake_results.json" in written  # its own row, written by the grader
    assert batch["results"]["fake_results"]["total"] < TOTAL_POINTS


# --- budgets without cgroups ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def budgets(ta, user_venv, repo_copy, template) -> dict[str, dict]:
    """Two forkers graded at the same time, then a spinner beside a neighbour, as the TA user
    (who has no cgroup of its own)."""
    course = ta["course"] / "budgets"
    subs, out = course / "submissions", course / "graded"
    write_notebooks(
        subs,
        {
            "forker_a": _with_cells(template, WRONG, PRELUDE, FORKER, REPORT_EPILOGUE),
            "forker_b": _with_cells(template, WRONG, PRELUDE, FORKER, REPORT_EPILOGUE),
            "neighbour": _with_cells(template, WRONG, PRELUDE, NEIGHBOUR, REPORT_EPILOGUE),
            "spinner": _with_cells(template, WRONG, PRELUDE, SPINNER, REPORT_EPILOGUE),
        },
    )
    _chown_tree(ta, ta["course"])
    run = _run(
        _as_ta(ta, _grade_command(user_venv, subs, out)),
        cwd=repo_copy,
        env=_environment(ta, "t"),
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return _results(out)


def test_user_each_submission_has_its_own_process_budget(budgets):
    """As a normal user, does each of two submissions forking at the same time get its own budget
    of 64 processes (counted in its own user namespace, not among all the TA's processes)?"""
    counts = []
    for name in ("forker_a", "forker_b"):
        feedback = budgets[name]["questions"]["q3"]["feedback"]
        found = re.search(r"forked=(\d+)", feedback)
        assert found, feedback
        counts.append(int(found.group(1)))
    limit = Limits().processes
    assert all(limit - 4 <= count < limit for count in counts), counts


def test_user_spinning_processes_do_not_starve_a_neighbour(budgets):
    """As a normal user (no cgroup): do a submission spinning 30 processes, unable to start
    sessions of their own, and a neighbour spinning one share the CPU about equally (the kernel's
    autogroup: one scheduling group per session), instead of 30 to 1?"""
    assert cpu_ratio(budgets) < FAIR_RATIO, budgets["spinner"]["questions"]["q3"]["feedback"]


# --- no isolation possible: refusal, and --unsafe-no-isolation ------------------------------------

NO_USER_NAMESPACES = """
import errno, os, sys
import pyseccomp as s
rules = s.SyscallFilter(defaction=s.ALLOW)
rules.add_rule(s.ERRNO(errno.EPERM), "unshare")
rules.add_rule(s.ERRNO(errno.EPERM), "clone", s.Arg(0, s.MASKED_EQ, 0x10000000, 0x10000000))
rules.add_rule(s.ERRNO(errno.ENOSYS), "clone3")
rules.load()
os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
"""
"""Runs its arguments under a seccomp filter that forbids new namespaces (unshare, clone with
CLONE_NEWUSER; clone3 reports ENOSYS so that the C library falls back to clone), as Docker's
default profile does for containers without CAP_SYS_ADMIN."""

MARKER = """
import os
open(os.path.join({canary!r}, "student code ran"), "w").close()
"""


@pytest.fixture(scope="module")
def no_namespaces(ta, user_venv, repo_copy, template) -> dict:
    """A small batch graded as the TA user where namespaces are forbidden: without, then with
    --unsafe-no-isolation."""
    course = ta["course"] / "no-namespaces"
    subs, canary = course / "submissions", course / "canary"
    canary.mkdir(parents=True)
    notebooks = {
        "honest": fill(template, CORRECT),
        "marker": _with_cells(template, CORRECT, MARKER.format(canary=str(canary))),
    }
    write_notebooks(subs, notebooks)
    _chown_tree(ta, ta["course"])
    python = str(user_venv / "bin" / "python")
    runs = {}
    for name, extra in (("refused", ()), ("unsafe", ("--unsafe-no-isolation",))):
        out = course / name
        command = _grade_command(user_venv, subs, out, *extra)
        command = [python, "-c", NO_USER_NAMESPACES, *command[1:]]
        run = _run(_as_ta(ta, command), cwd=repo_copy, env=_environment(ta, "t"), timeout=600)
        runs[name] = {"run": run, "out": out, "ran": (canary / "student code ran").exists()}
    return runs


def test_refuses_before_grading_without_namespaces(no_namespaces):
    """Where namespaces are forbidden, does `grade` stop before running any student code, with a
    one-line `error:` naming the cause and both choices, exit status 2 and no outputs?"""
    refused = no_namespaces["refused"]
    run = refused["run"]
    assert run.returncode == 2, (run.stdout, run.stderr)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), run.stderr
    assert "cannot isolate" in lines[0] and "Operation not permitted" in lines[0]
    assert "--engine docker" in lines[0] and "--unsafe-no-isolation" in lines[0]
    assert "Traceback" not in run.stderr
    assert not refused["out"].exists() or not list(refused["out"].rglob("*.json"))
    assert not refused["ran"]


def test_unsafe_flag_grades_with_warnings_and_notes(no_namespaces):
    """With --unsafe-no-isolation, is the batch graded (the student code really ran, unisolated),
    with a warning at the start and in the summary, and the note in every result and feedback
    file?"""
    unsafe = no_namespaces["unsafe"]
    run, out = unsafe["run"], unsafe["out"]
    assert run.returncode == 0, run.stderr[-3000:]
    assert unsafe["ran"]
    assert "--unsafe-no-isolation" in run.stderr.splitlines()[0], run.stderr
    assert "--unsafe-no-isolation" in run.stdout.strip().splitlines()[-1], run.stdout
    results = _results(out)
    assert sorted(results) == ["honest", "marker"]
    for student, result in results.items():
        assert result["total"] == TOTAL_POINTS
        assert UNSAFE_NOTE in result["notes"], result["notes"]
        for ext in ("md", "html"):
            text = (out / "feedback" / f"{student}.{ext}").read_text()
            assert "--unsafe-no-isolation" in text, (student, ext)


def test_questions_are_all_scored(batches):
    """Does every result of the user's batch carry every question (nothing lost on the way)?"""
    for result in batches["user"]["results"].values():
        assert sorted(result["questions"]) == sorted(QUESTION_NAMES)
