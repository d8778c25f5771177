"""The command line, as a TA meets it: help, clear errors, a small grading run, the demo."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import CORRECT, MP, fill, write_notebooks

from autograder.cli import main


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
