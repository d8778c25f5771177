"""Tests for autograder.studentfiles: a large batch's results/ and feedback/ written by a helper
process while grade writes the tables."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from autograder import gradebook, grading, studentfiles
from autograder.gradebook import GradebookError
from autograder.pack import Pack
from autograder.results import PackedResults, empty_result
from pack_support import first, graded, last


def batch(pack: Pack) -> list[dict]:
    """Results of every status, with mistakes, notes and ids that are not plain file names."""
    results = [
        graded(pack, f"s{i:03d}", {first(pack).id: ["edge_case"]} if i % 3 else None)
        for i in range(40)
    ]
    results[5] = graded(
        pack, "s005", {last(pack).id: ["shape"]}, notes=["cell 2 was interrupted after 10 s"]
    )
    results += [
        empty_result("hw 01/final", "invalid", "not a notebook: <b>", pack=pack),
        empty_result("=HYPERLINK(1)", "error", "grader crashed", pack=pack),
        empty_result("zoë\u202e", "timeout", "took too long", pack=pack),
    ]
    return sorted(results, key=lambda r: r["student"])


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` and its bytes (the review store aside)."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != "review.sqlite"
    }


@pytest.fixture
def helpers(monkeypatch: pytest.MonkeyPatch) -> list:
    """From 1 result, write_outputs uses a helper; the helpers' processes, as started."""
    started: list = []

    class Recorded(studentfiles.Helper):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            started.append(self._process)

    monkeypatch.setattr(grading, "HELPER_FROM", 1)
    monkeypatch.setattr(grading, "Helper", Recorded)
    return started


def both(pack: Pack, results: list[dict], tmp_path: Path, prepare=lambda out: None) -> tuple:
    """write_outputs of ``results`` in one process (a list) and with a helper (packed): what
    each wrote, or the exception each raised."""
    outcomes = []
    for name, given in (("alone", list(results)), ("helped", PackedResults(results))):
        out = tmp_path / name
        out.mkdir()
        prepare(out)
        try:
            grading.write_outputs(given, out, pack=pack)
        except Exception as exc:  # noqa: BLE001 - compared below
            outcomes.append((type(exc), str(exc).replace(name, "OUT"), tree(out)))
        else:
            outcomes.append((None, "", tree(out)))
    return tuple(outcomes)


def test_helper_writes_the_same_files(any_pack: Pack, tmp_path: Path, helpers: list) -> None:
    """Does a batch whose per-student files a helper writes give the same output folder, byte
    for byte, as one process writing everything?"""
    alone, helped = both(any_pack, batch(any_pack), tmp_path)
    assert len(helpers) == 1 and helpers[0].returncode == 0
    assert helped == alone
    assert alone[0] is None
    assert sum(name.startswith("feedback") for name in alone[2]) == 2 * len(batch(any_pack))


def test_a_full_disk_in_the_helper_is_the_same_error(
    tiny: Pack, tmp_path: Path, helpers: list
) -> None:
    """Does an OSError while the helper writes feedback/ (here: a file where the folder goes)
    surface as the same exception, after the tables are written?"""

    def blocked(out: Path) -> None:
        (out / "feedback").write_text("not a folder")

    alone, helped = both(tiny, batch(tiny), tmp_path, blocked)
    assert alone[0] is FileExistsError
    assert helped[:2] == alone[:2]
    assert "gradebook.csv" in helped[2] and "results/s000.json" in helped[2]


def test_an_error_writing_results_comes_first(tiny: Pack, tmp_path: Path, helpers: list) -> None:
    """Is an error of the helper's results/ raised (not the tables' later one), and is
    feedback/ then not written, as in one process?"""

    def blocked(out: Path) -> None:
        (out / "results" / "s007.json").mkdir(parents=True)

    alone, helped = both(tiny, batch(tiny), tmp_path, blocked)
    assert alone[0] is IsADirectoryError
    assert helped[:2] == alone[:2]
    assert not any(name.startswith("feedback") for name in helped[2])


def test_a_kit_error_of_the_helper_is_the_same(tiny: Pack, tmp_path: Path, helpers: list) -> None:
    """Does a writer's KitError in the helper (two results for one student) come back as the
    same class and one-line message, before the gradebook's own complaint about it?"""
    results = batch(tiny)
    results.insert(1, dict(results[0]))
    alone, helped = both(tiny, results, tmp_path)
    assert alone[0] is GradebookError and alone[1].startswith("several results for student(s)")
    assert helped[:2] == alone[:2]


def test_a_helper_that_dies_loses_no_file(
    tiny: Pack, tmp_path: Path, helpers: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the helper exits without writing (killed, crashed), are its files written by grade
    itself, the same as without a helper?"""
    monkeypatch.setattr(studentfiles, "_CHILD", "import os; os._exit(3)")
    alone, helped = both(tiny, batch(tiny), tmp_path)
    assert helpers[0].returncode == 3
    assert helped == alone


def test_no_helper_outlives_an_interrupt(
    tiny: Pack, tmp_path: Path, helpers: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the tables' writing is interrupted (a library caller's Ctrl-C), is the helper killed
    and waited for before the interrupt propagates?"""
    monkeypatch.setattr(studentfiles, "_CHILD", "import time; time.sleep(60)")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(gradebook, "collate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        grading.write_outputs(PackedResults(batch(tiny)), tmp_path, pack=tiny)
    assert helpers[0].returncode == -signal.SIGKILL


def test_ctrl_c_does_not_reach_the_helper(tiny: Pack, tmp_path: Path) -> None:
    """Is the helper out of grade's process group (a terminal's Ctrl-C, sent to the group, is
    grade's alone to handle), and does it finish its files after a SIGINT of its own?"""
    helper = studentfiles.Helper(PackedResults(batch(tiny)), tmp_path, pack=tiny)
    process = helper._process
    assert process is not None
    assert os.getpgid(process.pid) != os.getpgrp()
    deadline = time.monotonic() + 30
    while not (tmp_path / "results").exists() and time.monotonic() < deadline:
        time.sleep(0.01)  # started, its handlers set: it reads the results before writing
    os.kill(process.pid, signal.SIGINT)
    assert helper.finish() == {"results": True, "feedback": True}
    assert len(list((tmp_path / "feedback").iterdir())) == 2 * len(batch(tiny))


def test_small_or_unpacked_batches_need_no_helper(
    tiny: Pack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Are the review app's writes (a list, or a few students with ``only``) and batches
    below HELPER_FROM written in this process?"""

    def refused(*args, **kwargs):
        raise AssertionError("no helper expected")

    monkeypatch.setattr(grading, "Helper", refused)
    results = batch(tiny)
    grading.write_outputs(results, tmp_path, pack=tiny)
    grading.write_outputs(PackedResults(results), tmp_path, pack=tiny)
    monkeypatch.setattr(grading, "HELPER_FROM", 1)
    grading.write_outputs(PackedResults(results), tmp_path, pack=tiny, only={"s001"})
    assert (tmp_path / "feedback" / "s001.html").is_file()


@pytest.fixture
def tiny() -> Pack:
    from helpers import TINY

    return TINY


def test_grade_with_a_helper_writes_what_grade_alone_writes(
    tiny_template, tmp_path: Path, helpers: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through ``grade`` (packed results, an override, an unreadable notebook), is every output
    file the same with the helper as without it?"""
    from autograder.grading import grade
    from helpers import TINY, write_notebooks

    subs = write_notebooks(tmp_path / "subs", {"ann": tiny_template, "bob": tiny_template})
    (subs / "cid.ipynb").write_text("not a notebook")
    overrides = tmp_path / "overrides.csv"
    overrides.write_text(f"student,question,points,comment\nbob,{first(TINY).id},0.5,seen\n")
    outs = {}
    for name, limit in (("helped", 1), ("alone", 10**9)):
        monkeypatch.setattr(grading, "HELPER_FROM", limit)
        outs[name] = tmp_path / name
        grade(submissions=subs, out=outs[name], assignment=TINY, jobs=1, overrides=overrides)
    assert len(helpers) == 1 and helpers[0].returncode == 0

    def written(out: Path) -> dict[str, bytes]:
        return {k: v for k, v in tree(out).items() if not k.startswith((".cache", "assignment"))}

    assert written(outs["helped"]) == written(outs["alone"])
    assert "Manual override" in (outs["helped"] / "feedback" / "bob.md").read_text()


PARENT = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], str(os.getpid())])
print(child.pid, flush=True)
time.sleep(60)
"""
CHILD = """
import os, sys, time
from autograder.interrupts import helper_of
if not helper_of(int(sys.argv[1])):
    sys.exit(1)
open(sys.argv[1] + ".ready", "w").close()
time.sleep(60)
"""


def test_the_helper_dies_with_grade(tmp_path: Path) -> None:
    """If the grading process is killed outright (SIGKILL: no cleanup runs), does a helper
    still end with it instead of outliving it?"""
    import subprocess
    import sys

    from helpers import assert_all_end

    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, CHILD],
        stdout=subprocess.PIPE,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    deadline = time.monotonic() + 30
    while not (tmp_path / f"{parent.pid}.ready").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    parent.kill()
    parent.wait()
    assert_all_end([child], judge=parent.pid)
