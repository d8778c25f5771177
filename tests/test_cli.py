"""The command line, as a TA meets it: help, clear errors, a small grading run, the demo."""

from __future__ import annotations

import io
import logging
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from click.testing import CliRunner
from rich.console import Console

import autograder
from autograder.cli import _VisibleRichHandler, main
from autograder.pack import load, registry
from helpers import CORRECT, fill, write_notebooks


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_help_lists_the_commands():
    """Does --help list build, grade and demo?"""
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("build", "grade", "demo"):
        assert command in result.output


@pytest.mark.parametrize(
    "setup,message",
    [
        (lambda tmp: ["grade", str(tmp / "nope"), "--out", str(tmp / "o")], "does not exist"),
        (lambda tmp: ["grade", str(tmp), "--out", str(tmp / "o")], "no submissions found"),
        (
            lambda tmp: [
                "grade",
                str(tmp),
                "--out",
                str(tmp / "o"),
                "--roster",
                str(tmp / "r.csv"),
            ],
            "r.csv",
        ),
    ],
    ids=["missing-folder", "empty-folder", "missing-roster"],
)
def test_bad_input_gives_a_clear_error_not_a_traceback(tmp_path, setup, message):
    """Does bad input exit with code 2 and a one-line message naming the problem?"""
    result = invoke(*setup(tmp_path))
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_grade_writes_gradebook_and_results(built, template, tmp_path):
    """Does `grade` on a folder of notebooks write gradebook.csv and results/<student>.json?"""
    subs = write_notebooks(tmp_path / "subs", {"ann": fill(template, CORRECT), "bob": template})
    out = tmp_path / "out"
    result = invoke(
        "grade", str(subs), "--out", str(out), "--jobs", "2", "--build-dir", str(built.out)
    )
    assert result.exit_code == 0, result.output
    book = pd.read_csv(out / "gradebook.csv")
    assert list(book["student"]) == ["ann", "bob"]
    assert list(book["total"]) == [12, 0]
    assert (out / "results" / "ann.json").is_file() and (out / "results" / "bob.json").is_file()
    assert "gradebook.csv" in result.output


def test_demo_grades_the_embedded_batch(tmp_path, monkeypatch):
    """Does `demo` build, grade the sample batch and report one row per sample?"""
    monkeypatch.chdir(tmp_path)
    result = invoke("demo", "--jobs", "2")
    assert result.exit_code == 0, result.output
    book = pd.read_csv(tmp_path / "out" / "demo" / "gradebook.csv").set_index("student")
    assert book.loc["ada_correct", "total"] == 12
    assert book.loc["cleo_blank", "total"] == 0
    assert book.loc["eli_broken", "status"] == "invalid"
    assert 0 < book.loc["ben_mistakes", "total"] < 12


# --- several assignments ------------------------------------------------------------------------

FIXTURES = Path(__file__).parent / "fixtures" / "assignments"


@pytest.fixture()
def with_tiny(monkeypatch):
    """The tiny fixture pack on the search path, next to Exercise 2."""
    from autograder.pack import registry

    monkeypatch.setenv(registry.SEARCH_ENV, str(FIXTURES))


def test_unknown_assignment_is_one_error_line(tmp_path):
    """Is --assignment with an unknown name an `error:` naming the available assignments?"""
    for command in (["build", "--out", str(tmp_path)], ["demo", "--out", str(tmp_path)]):
        result = invoke(*command, "--assignment", "nope")
        assert result.exit_code == 2
        available = ", ".join(registry.names())
        assert f"error: no assignment 'nope' (available: {available})" in result.output
        assert "Traceback" not in result.output


def test_grade_infers_the_assignment_and_refuses_a_mixed_folder(with_tiny, template, tmp_path):
    """Does `grade` without --assignment grade a folder of one assignment (inferred from the
    notebooks), and stop a folder mixing two with one `error:` line naming them?"""
    tiny = tmp_path / "tiny-dist"
    result = invoke("build", "--assignment", "tiny", "--out", str(tiny))
    assert result.exit_code == 0, result.output
    assert (tiny / "student" / "tiny.ipynb").is_file()
    tiny_template = nbformat.read(str(tiny / "student" / "tiny.ipynb"), as_version=4)
    answers = {"p1": "def chain_gradient(f, f_prime, x):\n    return f(x) * f_prime(x)\n"}
    subs = write_notebooks(
        tmp_path / "subs", {"ann": fill(tiny_template, answers, load("tiny")), "bob": tiny_template}
    )
    out = tmp_path / "out"
    result = invoke("grade", str(subs), "--out", str(out), "--jobs", "2")
    assert result.exit_code == 0, result.output
    book = pd.read_csv(out / "gradebook.csv")
    assert list(book.columns[:6]) == ["student", "p1", "p2", "total", "percent", "status"]
    assert list(book["total"]) == [1, 0]
    write_notebooks(subs, {"cat": fill(template, CORRECT)})
    result = invoke("grade", str(subs), "--out", str(tmp_path / "mixed"))
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [
        (
            "error: mixed submissions (1 look like math_primer, 2 look like tiny); grade each "
            "assignment with --assignment NAME"
        )
    ]
    assert not (tmp_path / "mixed").exists()


def test_new_scaffolds_a_pack_that_builds(monkeypatch, tmp_path):
    """Does `new NAME` write assignments/NAME and solutions/NAME, refuse to overwrite them, and
    does the result build with --assignment?"""
    from autograder.pack import registry

    monkeypatch.setattr(registry, "REPO_ASSIGNMENTS", tmp_path / "assignments")
    result = invoke("new", "week_four", "--title", "Week Four")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "assignments" / "week_four" / "spec.py").is_file()
    assert (tmp_path / "solutions" / "week_four" / "samples.py").is_file()
    again = invoke("new", "week_four")
    assert again.exit_code == 2 and "exists already" in again.output
    built = invoke("build", "--assignment", "week_four", "--out", str(tmp_path / "dist"))
    assert built.exit_code == 0, built.output
    assert (tmp_path / "dist" / "student" / "week_four.ipynb").is_file()


# --- student text on the terminal ---------------------------------------------------------------

HOSTILE_STEM = "[red]x\x1b]0;pwned\x07\x1b[31m"
"""A file stem with rich markup, an escape sequence that sets the terminal's title, and red."""


def _run_in_pty(args: list[str], cwd: Path, timeout: float = 120) -> bytes:
    """Run a command on a real pseudo-terminal (as a TA would) and return every byte it printed."""
    controller, terminal = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "160", "LINES": "50"}
    proc = subprocess.Popen(
        args, cwd=cwd, stdin=terminal, stdout=terminal, stderr=terminal, env=env
    )
    os.close(terminal)
    chunks, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal closed: the process has exited
                break
            if not chunk:
                break
            chunks.append(chunk)
        elif proc.poll() is not None:
            break
    proc.wait(timeout=10)
    os.close(controller)
    return b"".join(chunks)


def test_student_file_names_are_shown_not_interpreted_on_a_terminal(tmp_path):
    """On a real terminal, is a file name's markup printed and its escape sequence inert?"""
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / f"{HOSTILE_STEM}.ipynb").write_text("not json", encoding="utf-8")
    repo = Path(autograder.__file__).resolve().parents[1]
    shown = _run_in_pty(
        [
            sys.executable,
            "-m",
            "autograder",
            "grade",
            str(subs),
            "--out",
            str(tmp_path / "out"),
            "--assignment",
            "math_primer",
        ],  # nothing to infer it from: the file is not JSON
        cwd=repo,
    )
    assert b"\x07" not in shown and b"\x1b]0;" not in shown  # no bell, no title change
    assert b"x\x1b[31m" not in shown  # the student's red never reaches the terminal
    progress = [line for line in shown.split(b"\n") if b"grading" in line and b": inv" in line]
    assert progress and all(b"[red]x" in line for line in progress)  # markup shown as text


def test_log_lines_show_control_characters_as_escapes():
    """Does the CLI's log handler print a message's ESC and BEL as text, not as controls?"""
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=200, record=True)
    handler = _VisibleRichHandler(console=console, show_path=False, markup=False)
    args = ("[red]ann", "\x1b[31mX\x07")
    handler.emit(logging.LogRecord("t", logging.WARNING, "", 0, "%s: %s", args, None))
    assert "\x1b[31mX" not in out.getvalue() and "\x07" not in out.getvalue()
    assert "[red]ann: \\x1b[31mX\\x07" in console.export_text()
