"""Tests for autograder.intake: finding and reading submissions without running them."""

from __future__ import annotations

import json
import logging
import os
import pickle
import tempfile
import zipfile
from pathlib import Path

import nbformat
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autograder.intake import MAX_DEPTH, IntakeError, Submission, discover, notebook_bytes


def notebook_text(source: str = "x = 1") -> str:
    """A small valid notebook as JSON text."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    return nbformat.writes(nb)


def write_notebook(path: Path, source: str = "x = 1") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(notebook_text(source), encoding="utf-8")
    return path


def write_zip(path: Path, members: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def only(submissions: list[Submission]) -> Submission:
    assert len(submissions) == 1, submissions
    return submissions[0]


def source_of(submission: Submission) -> str:
    assert submission.notebook is not None, submission.problem
    return submission.notebook.cells[0].source


class _Trap:
    """Pickled into a fake .OTTER_LOG: unpickling it creates the file ``sentinel``."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return (open, (str(self.sentinel), "w"))


# --- layouts ---------------------------------------------------------------------------------


def test_plain_notebook():
    """Is `<student>.ipynb` read as that student's notebook?"""
    with tempfile.TemporaryDirectory() as tmp:
        path = write_notebook(Path(tmp) / "ann.ipynb", "answer = 42")
        sub = only(discover(Path(tmp)))
    assert sub.student == "ann"
    assert sub.source == path
    assert sub.problem is None and sub.ok
    assert source_of(sub) == "answer = 42"


def test_zip_with_notebook_in_subfolder(tmp_path):
    """Is the one notebook anywhere inside `<student>.zip` found, ignoring macOS and checkpoints?"""
    path = write_zip(
        tmp_path / "bob.zip",
        {
            "hw2/Exercise 2.ipynb": notebook_text("y = 2"),
            "hw2/data.csv": "a,b\n1,2\n",
            "__MACOSX/hw2/._Exercise 2.ipynb": b"\x00\x05\x16\x07 not json",
            "hw2/.ipynb_checkpoints/Exercise 2-checkpoint.ipynb": notebook_text("old"),
        },
    )
    sub = only(discover(tmp_path))
    assert (sub.student, sub.source, sub.problem) == ("bob", path, None)
    assert source_of(sub) == "y = 2"


def test_folder_per_student(tmp_path):
    """Is `<student>/<any name>.ipynb` read, ignoring `.ipynb_checkpoints`?"""
    path = write_notebook(tmp_path / "cid" / "my work.ipynb", "z = 3")
    write_notebook(tmp_path / "cid" / ".ipynb_checkpoints" / "my work-checkpoint.ipynb", "old")
    (tmp_path / "cid" / "README.md").write_text("hi")
    sub = only(discover(tmp_path))
    assert (sub.student, sub.source, sub.problem) == ("cid", path, None)
    assert source_of(sub) == "z = 3"


def test_mixed_layouts_sorted_by_student(tmp_path):
    """Are all layouts found together, sorted by student id?"""
    write_notebook(tmp_path / "dora.ipynb")
    write_zip(tmp_path / "bob.zip", {"bob.ipynb": notebook_text()})
    write_notebook(tmp_path / "cid" / "nb.ipynb")
    write_notebook(tmp_path / "ann.ipynb")
    subs = discover(tmp_path)
    assert [s.student for s in subs] == ["ann", "bob", "cid", "dora"]
    assert all(s.ok for s in subs)


def test_empty_folder_returns_empty_list(tmp_path):
    """Does an empty folder give [] rather than an error?"""
    assert discover(tmp_path) == []


@pytest.mark.parametrize("make", ["missing", "file"])
def test_unusable_folder_raises(tmp_path, make):
    """Is a missing folder, or a file given as folder, an IntakeError naming the path?"""
    target = tmp_path / "submissions"
    if make == "file":
        target.write_text("not a folder")
    with pytest.raises(IntakeError, match="submissions"):
        discover(target)


# --- skipped and broken inputs ---------------------------------------------------------------


def test_hidden_files_skipped(tmp_path):
    """Are hidden files and folders (`.DS_Store`, `.ipynb_checkpoints/`, `.x.ipynb`) skipped?"""
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x00")
    write_notebook(tmp_path / ".ipynb_checkpoints" / "ann-checkpoint.ipynb")
    write_notebook(tmp_path / ".ann.ipynb")
    (tmp_path / ".broken.zip").write_bytes(b"nope")
    write_notebook(tmp_path / "ann.ipynb")
    assert [s.student for s in discover(tmp_path)] == ["ann"]


def test_other_files_warned_and_skipped(tmp_path, caplog):
    """Is `notes.txt` at the top skipped with a warning that names it?"""
    (tmp_path / "notes.txt").write_text("grade carefully")
    write_notebook(tmp_path / "ann.ipynb")
    with caplog.at_level(logging.WARNING, logger="autograder.intake"):
        subs = discover(tmp_path)
    assert [s.student for s in subs] == ["ann"]
    assert any("notes.txt" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "empty file"),
        (b"  \n", "empty file"),
        (b'{"cells": [', "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not UTF-8 text"),
        (b'{"a": 1}', "not a Jupyter notebook"),
        (b"[1, 2, 3]", "not a Jupyter notebook"),
        (b'{"nbformat": 99, "nbformat_minor": 0}', "not a Jupyter notebook (nbformat:"),
        (b'{"nbformat": 4, "nbformat_minor": 5, "cells": []}', "not a Jupyter notebook"),
    ],
)
def test_broken_notebook_is_a_problem_not_dropped(tmp_path, content, expected):
    """Does a broken `bob.ipynb` yield a Submission with a problem (never dropped)?"""
    (tmp_path / "bob.ipynb").write_bytes(content)
    sub = only(discover(tmp_path))
    assert (sub.student, sub.notebook) == ("bob", None)
    assert sub.problem is not None and sub.problem.startswith(expected), sub.problem
    assert not sub.ok


def test_schema_invalid_notebook(tmp_path):
    """Does a notebook that fails nbformat validation say so, without quoting a whole cell?"""
    raw = json.loads(notebook_text("secret = 1\n" * 500))
    raw["cells"][0]["cell_type"] = "bogus"
    (tmp_path / "bob.ipynb").write_text(json.dumps(raw))
    sub = only(discover(tmp_path))
    assert sub.problem is not None
    assert sub.problem.startswith("not a Jupyter notebook (nbformat validation: ")
    assert len(sub.problem) < 300


@pytest.mark.parametrize("valid", [True, False])
def test_a_notebook_is_validated_once(tmp_path, monkeypatch, valid):
    """Is each notebook run through nbformat's validator at most once (an invalid one once, its
    verdict kept; a valid one never: its cells are checked against their own type's schema)?"""
    raw = json.loads(notebook_text())
    if not valid:
        raw["cells"][0]["cell_type"] = "bogus"
    (tmp_path / "bob.ipynb").write_text(json.dumps(raw))
    calls = []
    validate = nbformat.validate
    monkeypatch.setattr(nbformat, "validate", lambda *a, **k: calls.append(1) or validate(*a, **k))
    sub = only(discover(tmp_path))
    assert len(calls) == (0 if valid else 1)
    assert sub.ok is valid


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        ({"readme.txt": "hi"}, "zip holds no .ipynb"),
        ({}, "zip holds no .ipynb"),
        ({"__MACOSX/._a.ipynb": b"\x00"}, "zip holds no .ipynb"),
        (
            {"b/c.ipynb": notebook_text(), "a.ipynb": notebook_text()},
            "zip holds 2 notebooks: a.ipynb, b/c.ipynb",
        ),
        ({"hw/bob.ipynb": "{oops"}, "hw/bob.ipynb: not valid JSON"),
        ({"bob.ipynb": ""}, "bob.ipynb: empty file"),
    ],
)
def test_broken_zip_contents(tmp_path, members, expected):
    """Does a zip with zero, two or a broken notebook give a clear problem?"""
    write_zip(tmp_path / "bob.zip", members)
    sub = only(discover(tmp_path))
    assert (sub.student, sub.notebook) == ("bob", None)
    assert sub.problem is not None and sub.problem.startswith(expected), sub.problem


def test_bad_zip_bytes(tmp_path):
    """Is a `.zip` that is not a zip archive a `bad zip file` problem?"""
    (tmp_path / "bob.zip").write_bytes(b"PK\x03\x04 this is not really a zip")
    sub = only(discover(tmp_path))
    assert (sub.student, sub.notebook, sub.problem) == ("bob", None, "bad zip file")


@pytest.mark.parametrize(
    ("count", "expected"), [(0, "folder holds no .ipynb"), (2, "folder holds 2 notebooks: ")]
)
def test_folder_without_exactly_one_notebook(tmp_path, count, expected):
    """Does a student folder with zero or several notebooks give a problem naming them?"""
    folder = tmp_path / "cid"
    folder.mkdir()
    (folder / "notes.md").write_text("no notebook here")
    for i in range(count):
        write_notebook(folder / f"part{i}" / "nb.ipynb")
    sub = only(discover(tmp_path))
    assert (sub.student, sub.notebook) == ("cid", None)
    assert sub.problem is not None and sub.problem.startswith(expected), sub.problem
    if count:
        assert "part0/nb.ipynb, part1/nb.ipynb" in sub.problem


def test_oversized_notebook(tmp_path):
    """Is a notebook over `max_bytes` refused with its size and the limit?"""
    write_notebook(tmp_path / "ann.ipynb", "x = 1\n" * 100)
    write_zip(tmp_path / "bob.zip", {"bob.ipynb": notebook_text("x = 1\n" * 100)})
    write_notebook(tmp_path / "cid" / "nb.ipynb", "x = 1\n" * 100)
    write_notebook(tmp_path / "dora.ipynb", "")
    limit = len(notebook_text("")) + 10
    subs = {s.student: s for s in discover(tmp_path, max_bytes=limit)}
    for student in ("ann", "bob", "cid"):
        problem = subs[student].problem
        assert problem is not None and "file is" in problem, problem
        assert problem.endswith(f"over the {limit} bytes limit"), problem
    assert subs["dora"].ok


def test_oversized_message_in_megabytes(tmp_path):
    """Is a large file's size reported in MB?"""
    path = tmp_path / "ann.ipynb"
    with path.open("wb") as f:
        f.truncate(3 * 1024 * 1024)  # sparse: cheap to create
    sub = only(discover(tmp_path, max_bytes=2 * 1024 * 1024))
    assert sub.problem == "file is 3 MB, over the 2 MB limit"


# --- duplicates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("zip", "several submissions: ann.ipynb, ann.zip"),
        ("folder", "several submissions: ann.ipynb, ann/"),
    ],
)
def test_duplicate_student_ids_never_pick_one(tmp_path, extra, expected):
    """Do two sources for the same student give one Submission with a problem naming both?"""
    write_notebook(tmp_path / "ann.ipynb")
    if extra == "zip":
        write_zip(tmp_path / "ann.zip", {"ann.ipynb": notebook_text()})
    else:
        write_notebook(tmp_path / "ann" / "nb.ipynb")
    write_notebook(tmp_path / "bob.ipynb")
    subs = discover(tmp_path)
    assert [s.student for s in subs] == ["ann", "bob"]
    assert (subs[0].notebook, subs[0].problem) == (None, expected)
    assert subs[1].ok


# --- safety ----------------------------------------------------------------------------------


def test_otter_log_in_zip_is_never_read(tmp_path, monkeypatch):
    """Is a pickled `.OTTER_LOG` in a zip never opened, unpickled or extracted?"""
    sentinel = tmp_path / "UNPICKLED"
    submissions = tmp_path / "subs"
    submissions.mkdir()
    write_zip(
        submissions / "ann.zip",
        {
            "hw/ann.ipynb": notebook_text("ok = True"),
            "hw/.OTTER_LOG": pickle.dumps(_Trap(sentinel)),
        },
    )
    opened: list[str] = []
    real_open = zipfile.ZipFile.open

    def recording_open(self, name, *args, **kwargs):
        opened.append(name if isinstance(name, str) else name.filename)
        return real_open(self, name, *args, **kwargs)

    def forbidden(*args, **kwargs):
        raise AssertionError("must not unpickle or extract")

    monkeypatch.setattr(zipfile.ZipFile, "open", recording_open)
    monkeypatch.setattr(zipfile.ZipFile, "extract", forbidden)
    monkeypatch.setattr(zipfile.ZipFile, "extractall", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)

    sub = only(discover(submissions))
    assert sub.ok and source_of(sub) == "ok = True"
    assert opened == ["hw/ann.ipynb"]
    assert not sentinel.exists()
    assert sorted(p.name for p in submissions.iterdir()) == ["ann.zip"]


def test_submission_needs_notebook_or_problem(tmp_path):
    """Is a Submission with neither (or both) a notebook and a problem refused?"""
    with pytest.raises(ValueError, match="exactly one"):
        Submission("ann", tmp_path / "ann.ipynb", None, None)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=st.binary(max_size=300), suffix=st.sampled_from([".ipynb", ".zip"]))
def test_any_bytes_give_exactly_one_submission(content, suffix):
    """Do arbitrary bytes in a `.ipynb` or `.zip` give one Submission, never an exception?"""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / f"eve{suffix}").write_bytes(content)
        sub = only(discover(Path(tmp)))
    assert sub.student == "eve"
    assert (sub.notebook is None) != (sub.problem is None)


# --- hostile data and file names (red team, round 2) -------------------------------------------


def deep_notebook_text(depth: int, width: int) -> str:
    """A valid notebook whose metadata nests a list of ``width`` zeros ``depth`` levels deep."""
    value: object = [0] * width
    for _ in range(depth - 3):  # the notebook and its metadata are two levels, the list a third
        value = [value]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    nb.metadata["deep"] = value
    return json.dumps(nb, separators=(",", ":"))


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested more than 100 levels deep"),
        (deep_notebook_text(500, 10_000).encode(), "nested more than 100 levels deep"),
        (notebook_text("s = 'SURROGATE'").replace("SURROGATE", "\\ud800").encode(), "surrogate"),
    ],
    ids=["100k-brackets", "metadata-500-deep", "lone-surrogate-escape"],
)
def test_hostile_json_is_an_invalid_row(tmp_path, content, expected):
    """Do deeply nested JSON and a lone surrogate escape give an invalid Submission, no crash?"""
    (tmp_path / "eve.ipynb").write_bytes(content)
    sub = only(discover(tmp_path))
    assert sub.student == "eve" and not sub.ok
    assert expected in sub.problem


def test_nesting_up_to_the_limit_is_read(tmp_path):
    """Is a notebook nested exactly MAX_DEPTH levels deep still read (the limit is not too low)?"""
    write = tmp_path / "ann.ipynb"
    write.write_text(deep_notebook_text(MAX_DEPTH, 10), encoding="utf-8")
    assert only(discover(tmp_path)).ok


def test_notebook_bytes_cost_is_linear_in_the_file(tmp_path):
    """Is the kit's copy of a deep notebook about its own size, where nbformat's balloons?"""
    text = deep_notebook_text(MAX_DEPTH, 100_000)
    (tmp_path / "ann.ipynb").write_text(text, encoding="utf-8")
    sub = only(discover(tmp_path))
    assert len(notebook_bytes(sub.notebook)) <= 1.1 * len(text)
    assert len(nbformat.writes(sub.notebook)) > 20 * len(text)  # what the kit used to hash


@pytest.mark.parametrize(
    ("name", "student"),
    [
        (b"back\\slash.ipynb", "back\\slash"),
        (b"bad\xff.ipynb", "bad\\xff"),
        (b"x\x1b[31m\x07.ipynb", "x\\x1b[31m\\x07"),
        (b"=HYPERLINK(1).ipynb", "=HYPERLINK(1)"),
        (b"z" * 251 + b".zip", "z" * 251),
    ],
    ids=["backslash", "undecodable-byte", "escape-sequence", "formula", "251-characters"],
)
def test_odd_file_names_give_printable_student_ids(tmp_path, name, student):
    """Does a file with an odd name give a graded Submission whose id is printable text?"""
    path = os.path.join(os.fsencode(tmp_path), name)
    if name.endswith(b".zip"):
        write_zip(Path(os.fsdecode(path)), {"hw.ipynb": notebook_text()})
    else:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(notebook_text())
    sub = only(discover(tmp_path))
    assert sub.student == student and sub.ok
    assert sub.student.encode("utf-8") and sub.student.isprintable()


def test_blank_stem_is_an_invalid_row_under_its_file_name(tmp_path):
    """Does ` .ipynb` give an invalid row named after the file instead of a blank student id?"""
    write_notebook(tmp_path / " .ipynb")
    sub = only(discover(tmp_path))
    assert sub.student == " .ipynb" and not sub.ok
    assert "holds no student id" in sub.problem
