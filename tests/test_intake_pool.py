"""Reading a large batch on two cores (``autograder.intake_pool``): the same as reading it here."""

from __future__ import annotations

import json
import logging
import os
import signal
import time
import warnings
import zipfile
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from autograder import intake, intake_pool
from autograder.interrupts import Interrupted


def _notebook(source: str, **metadata: object) -> str:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    nb.metadata.update(metadata)
    return nbformat.writes(nb)


def _mixed_folder(folder: Path) -> Path:
    """Every layout and every kind of broken file, with many good notebooks among them."""
    folder.mkdir()
    for i in range(40):
        source = f"def jacobian_Wx(W, x):\n    return W * {i}\n"
        (folder / f"s{i:03d}.ipynb").write_text(_notebook(source))
    (folder / "b_json.ipynb").write_text("{not json")
    (folder / "b_empty.ipynb").write_text("")
    (folder / "b_utf8.ipynb").write_bytes(b'{"x": "\xff"}')
    (folder / "b_schema.ipynb").write_text(json.dumps({"nbformat": 4, "cells": 3}))
    invalid = json.loads(_notebook("y = 1"))
    invalid["cells"][0]["outputs"] = [{"output_type": "nonsense"}]
    (folder / "b_invalid.ipynb").write_text(json.dumps(invalid))  # nbformat logs an error
    no_ids = json.loads(_notebook("z = 1"))
    no_ids["nbformat_minor"] = 5
    del no_ids["cells"][0]["id"]
    (folder / "s_no_id.ipynb").write_text(json.dumps(no_ids))  # nbformat gives it an id
    (folder / "v3.ipynb").write_text(
        json.dumps({"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": []})
    )
    with zipfile.ZipFile(folder / "z_ok.zip", "w") as archive:
        archive.writestr("hw/z.ipynb", _notebook("w = 2", otter={"assignment_name": "x"}))
    (folder / "z_bad.zip").write_bytes(b"PK not a zip")
    (folder / "f_ok").mkdir()
    (folder / "f_ok" / "nb.ipynb").write_text(_notebook("f = 3"))
    (folder / "f_two").mkdir()
    for name in ("a.ipynb", "b.ipynb"):
        (folder / "f_two" / name).write_text(_notebook("t = 4"))
    (folder / "dup.ipynb").write_text(_notebook("d = 5"))
    (folder / "dup.zip").write_bytes(b"")
    (folder / "link.ipynb").symlink_to(folder / "s001.ipynb")
    (folder / "dangling.ipynb").symlink_to(folder / "nowhere.ipynb")
    moodle = folder / "Ann Lee_77_assignsubmission_file"
    moodle.mkdir()
    (moodle / "hw.ipynb").write_text(_notebook("m = 6"))
    (folder / "lee_12_345_hw.ipynb").write_text(_notebook("c = 7"))
    (folder / "lee_12_344_hw.ipynb").write_text(_notebook("c = 8"))  # superseded
    (folder / "notes.txt").write_text("skipped with a warning")
    return folder


def _scan(folder: Path, roster: pd.DataFrame, **options: int):
    """scan's result, and the log records and warnings it gave, in order."""
    handler = _Keep()
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.DEBUG)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            found = intake.scan(folder, roster=roster, **options)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    said = [(w.category, str(w.message), w.filename, w.lineno) for w in caught]
    return found, handler.lines, said


def _fields(found: intake.Intake) -> list[tuple]:
    """Every field of every submission; the packed bytes as they are, but for the notebook
    whose cell has no id, to which nbformat gives a random one (then the notebook without it)."""
    fields = []
    for s in found.submissions:
        packed: object = s.packed
        if s.student == "s_no_id":
            packed = [{k: v for k, v in cell.items() if k != "id"} for cell in s.notebook.cells]
        fields.append((s.student, s.source, packed, s.problem, s.late, s.platform, s.lms_id))
        fields.append((s.zdict, s.marks))
    return fields


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[str, int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.name, record.levelno, record.getMessage()))


@pytest.fixture()
def small_chunks(monkeypatch):
    """Chunks of two files, and this process slowed down, so that a folder of a few dozen is
    shared with the helper; how many files the helper read is counted."""
    monkeypatch.setattr(intake_pool, "CHUNK", 2)
    taken = []
    real = intake_pool._submission
    real_read = intake_pool._read_submission

    def slow_read(student, path, *, max_bytes):
        time.sleep(0.03)
        return real_read(student, path, max_bytes=max_bytes)

    monkeypatch.setattr(intake_pool, "_read_submission", slow_read)

    def counted(student, path, result):
        taken.append(student)
        return real(student, path, result)

    monkeypatch.setattr(intake_pool, "_submission", counted)
    return taken


def test_two_processes_read_a_mixed_folder_as_one_does(tmp_path, small_chunks):
    """Does reading with the helper give the same submissions (same packed bytes, marks,
    problems, LMS fields), log lines and warnings, in the same order, as reading here alone?"""
    folder = _mixed_folder(tmp_path / "subs")
    roster = pd.DataFrame({"student": ["ann"], "moodle_id": ["77"]})
    alone = _scan(folder, roster, parallel_from=10**9)
    shared = _scan(folder, roster, parallel_from=0)
    assert len(small_chunks) > 10  # the helper read some of them
    assert _fields(shared[0]) == _fields(alone[0])
    assert shared[0].unmapped == alone[0].unmapped and shared[0].superseded == alone[0].superseded
    assert all(s.zdict is intake._DICTIONARY[0] for s in shared[0].submissions if s.ok)
    assert shared[1] == alone[1]
    assert shared[2] == alone[2]
    problems = {s.student: s.problem for s in alone[0].submissions}
    assert problems["s001"] is None and problems["b_json"].startswith("not valid JSON")
    assert any("Notebook JSON is invalid" in line for _, _, line in alone[1])


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGSTOP], ids=["dies", "stalls"])
def test_a_helper_that_dies_or_stalls_leaves_its_files_here(
    tmp_path, small_chunks, monkeypatch, signum
):
    """When the helper is killed, or stopped, after its first chunk of results, is every
    submission still read, the same, with the same log, and without waiting for it?"""
    folder = _mixed_folder(tmp_path / "subs")
    roster = pd.DataFrame({"student": ["ann"]})
    alone = _scan(folder, roster, parallel_from=10**9)
    real = intake_pool.PoolReader._receive
    messages = []

    def receive_then_signal(self):
        real(self)
        messages.append(self._results.copy())
        if len(messages) == 2:  # "ready", then the first chunk
            os.kill(self._helper.pid, signum)

    monkeypatch.setattr(intake_pool.PoolReader, "_receive", receive_then_signal)
    started = time.monotonic()
    shared = _scan(folder, roster, parallel_from=0)
    assert time.monotonic() - started < 60
    assert messages[1]  # the helper read a chunk before
    assert _fields(shared[0]) == _fields(alone[0])
    assert shared[1] == alone[1]
    assert shared[2] == alone[2]


def test_a_stop_during_reading_ends_the_helper(tmp_path, small_chunks, monkeypatch):
    """Does a Ctrl-C while the batch is read reach the caller, with no helper left running?"""
    folder = _mixed_folder(tmp_path / "subs")
    helpers = []
    real_start, real_read = intake_pool.PoolReader._start, intake_pool._read_submission
    calls = []

    def start(self):
        real_start(self)
        helpers.append(self._helper)

    def read(student, path, *, max_bytes):
        calls.append(student)
        if len(calls) == 12:
            raise Interrupted(signal.SIGINT)
        return real_read(student, path, max_bytes=max_bytes)

    monkeypatch.setattr(intake_pool.PoolReader, "_start", start)
    monkeypatch.setattr(intake_pool, "_read_submission", read)
    with pytest.raises(Interrupted):
        intake.discover(folder, parallel_from=0)
    (helper,) = helpers
    assert helper.returncode == -signal.SIGKILL  # killed, and waited for


def test_small_batches_are_read_here_alone(tmp_path, monkeypatch):
    """Is a batch under ``PARALLEL_FROM`` read without starting a helper?"""
    for i in range(3):
        (tmp_path / f"s{i}.ipynb").write_text(_notebook("x = 1"))
    monkeypatch.setattr(intake_pool.PoolReader, "_start", pytest.fail)
    assert [s.student for s in intake.discover(tmp_path)] == ["s0", "s1", "s2"]
