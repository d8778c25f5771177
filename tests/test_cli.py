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

import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import write_notebooks
from rich.console import Console

import autograder
from autograder.cli import _VisibleRichHandler, main
from autograder.samples import CORRECT, fill


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
        [sys.executable, "-m", "autograder", "grade", str(subs), "--out", str(tmp_path / "out")],
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
