"""Tests for LMS "Download all submissions" intake: Canvas and Moodle names, roster mapping."""

from __future__ import annotations

import logging
import os
import zipfile
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from autograder.intake import IntakeError, canvas_readings, discover, scan


def write_notebook(path: Path, source: str = "x = 1", *, mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    path.write_text(nbformat.writes(nb), encoding="utf-8")
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def source_of(submission) -> str:
    assert submission.notebook is not None, submission.problem
    return submission.notebook.cells[0].source


ROSTER = pd.DataFrame(
    {
        "student": ["jdoe", "rroe", "amiller"],
        "name": ["Jane Doe", "Richard Roe", "Ann Miller"],
        "canvas_id": ["12345", "23456", ""],
        "moodle_id": ["", "", "4711"],
    }
)


# --- naming schemes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "lms_id", "late"),
    [
        ("doejane_12345_678901_math_primer.ipynb", "12345", False),
        ("doejane_LATE_12345_678901_math_primer.ipynb", "12345", True),
        ("doejane_late_12345_678901_math_primer.ipynb", "12345", True),
        ("doejane_12345_678901_math_primer-2.ipynb", "12345", False),
        ("doejane_12345_678901_Exercise 2 (final).ipynb", "12345", False),
    ],
    ids=["plain", "LATE", "late-lowercase", "resubmission-suffix", "spaces-in-original"],
)
def test_canvas_names_map_by_canvas_id(tmp_path, name, lms_id, late):
    """Is a Canvas download file mapped to the roster student by canvas_id, with its late flag?"""
    write_notebook(tmp_path / name, "answer = 1")
    intake = scan(tmp_path, roster=ROSTER)
    [sub] = intake.submissions
    assert (sub.student, sub.platform, sub.lms_id, sub.late) == ("jdoe", "canvas", lms_id, late)
    assert sub.ok and source_of(sub) == "answer = 1"
    assert intake.unmapped == [] and intake.superseded == []


def test_canvas_student_zip(tmp_path):
    """Is a zip a student uploaded to Canvas read like a `<student>.zip`?"""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("z = 3")])
    with zipfile.ZipFile(tmp_path / "roerichard_23456_700001_hw2.zip", "w") as archive:
        archive.writestr("hw2/math_primer.ipynb", nbformat.writes(nb))
    [sub] = discover(tmp_path, roster=ROSTER)
    assert (sub.student, sub.platform) == ("rroe", "canvas")
    assert source_of(sub) == "z = 3"


def test_canvas_anonymous_grading(tmp_path):
    """Is an anonymised Canvas name (`anon_<id>`) kept under a fallback id and reported?"""
    write_notebook(tmp_path / "LATE_anon_Xy7Qz_678901_hw.ipynb")
    intake = scan(tmp_path, roster=ROSTER)
    [sub] = intake.submissions
    assert (sub.student, sub.late, sub.lms_id) == ("canvas-anon_Xy7Qz", True, "anon_Xy7Qz")
    assert [u.student for u in intake.unmapped] == ["canvas-anon_Xy7Qz"]


@pytest.mark.parametrize("trailing", ["_", ""], ids=["moodle<4.1", "moodle>=4.1"])
def test_moodle_folder_maps_by_moodle_id(tmp_path, trailing):
    """Is a Moodle folder `<Full Name>_<id>_assignsubmission_file_/` mapped by moodle_id?"""
    folder = tmp_path / f"Ann Miller_4711_assignsubmission_file{trailing}"
    path = write_notebook(folder / "Exercise 2.ipynb", "m = 1")
    write_notebook(folder / ".ipynb_checkpoints" / "Exercise 2-checkpoint.ipynb", "old")
    (folder / "notes.pdf").write_bytes(b"%PDF")
    intake = scan(tmp_path, roster=ROSTER)
    [sub] = intake.submissions
    assert (sub.student, sub.source, sub.platform, sub.lms_id) == (
        "amiller",
        path,
        "moodle",
        "4711",
    )
    assert source_of(sub) == "m = 1" and not sub.late
    assert intake.unmapped == []


def test_moodle_flattened_file_maps_by_name(tmp_path):
    """Is a flat Moodle file mapped through the roster's name when its id is not listed?"""
    write_notebook(tmp_path / "Jane Doe_99887_assignsubmission_file_math_primer.ipynb", "f = 2")
    intake = scan(tmp_path, roster=ROSTER)
    [sub] = intake.submissions
    assert (sub.student, sub.platform, sub.lms_id) == ("jdoe", "moodle", "99887")
    assert source_of(sub) == "f = 2" and intake.unmapped == []


def test_canvas_sortable_name_maps_by_name(tmp_path):
    """Does Canvas's `roerichard` (sortable name) match the roster's `Richard Roe` without ids?"""
    roster = ROSTER.drop(columns=["canvas_id"])
    write_notebook(tmp_path / "roerichard_55555_700001_hw.ipynb")
    [sub] = discover(tmp_path, roster=roster)
    assert sub.student == "rroe"


def test_moodle_onlinetext_folder_beside_file_folder_is_ignored(tmp_path):
    """Is a Moodle `onlinetext` folder ignored when the student also has a file folder?"""
    text = tmp_path / "Ann Miller_4711_assignsubmission_onlinetext_"
    text.mkdir()
    (text / "onlinetext.html").write_text("<p>see notebook</p>")
    write_notebook(tmp_path / "Ann Miller_4711_assignsubmission_file_" / "hw.ipynb")
    [sub] = discover(tmp_path, roster=ROSTER)
    assert sub.student == "amiller" and sub.ok


def test_moodle_folder_without_notebook_is_invalid_not_dropped(tmp_path):
    """Does a Moodle folder with no notebook give an invalid Submission instead of vanishing?"""
    folder = tmp_path / "Ann Miller_4711_assignsubmission_onlinetext_"
    folder.mkdir()
    (folder / "onlinetext.html").write_text("<p>answers</p>")
    [sub] = discover(tmp_path, roster=ROSTER)
    assert sub.student == "amiller" and not sub.ok
    assert sub.problem == "Moodle onlinetext submission without a .ipynb or .zip"


# --- unmapped --------------------------------------------------------------------------------


def test_unmapped_files_are_graded_and_reported(tmp_path, caplog):
    """Are files whose LMS id is not on the roster graded under a fallback id and reported?"""
    canvas = write_notebook(tmp_path / "smithbob_99999_700001_hw.ipynb")
    moodle = write_notebook(tmp_path / "Zoe Zed_31337_assignsubmission_file_" / "hw.ipynb")
    write_notebook(tmp_path / "doejane_12345_700002_hw.ipynb")
    with caplog.at_level(logging.WARNING, logger="autograder.intake"):
        intake = scan(tmp_path, roster=ROSTER)
    assert [s.student for s in intake.submissions] == ["canvas-99999", "jdoe", "moodle-31337"]
    assert all(s.ok for s in intake.submissions)
    assert [(u.path, u.platform, u.lms_id, u.lms_name, u.student) for u in intake.unmapped] == [
        (canvas, "canvas", "99999", "smithbob", "canvas-99999"),
        (moodle, "moodle", "31337", "Zoe Zed", "moodle-31337"),
    ]
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "smithbob_99999_700001_hw.ipynb" in messages and "canvas-99999" in messages
    assert "moodle-31337" in messages


def test_without_roster_every_lms_file_is_unmapped(tmp_path):
    """Without a roster, does an LMS file keep its fallback id and get reported?"""
    write_notebook(tmp_path / "doejane_12345_678901_hw.ipynb")
    intake = scan(tmp_path)
    assert [s.student for s in intake.submissions] == ["canvas-12345"]
    assert [u.student for u in intake.unmapped] == ["canvas-12345"]


def test_ambiguous_name_is_not_guessed(tmp_path):
    """Do two roster students with the same name leave a file unmapped rather than guessed?"""
    roster = pd.DataFrame({"student": ["jd1", "jd2"], "name": ["Jane Doe", "Jane Doe"]})
    write_notebook(tmp_path / "Jane Doe_5_assignsubmission_file_hw.ipynb")
    intake = scan(tmp_path, roster=roster)
    assert [s.student for s in intake.submissions] == ["moodle-5"]
    assert len(intake.unmapped) == 1


@pytest.mark.parametrize(
    ("roster", "expected"),
    [
        (pd.DataFrame({"name": ["Jane"]}), "'student' column"),
        (
            pd.DataFrame({"student": ["a", "b"], "canvas_id": ["1", "1"]}),
            "canvas_id 1 to both a and b",
        ),
    ],
)
def test_unusable_roster_raises(tmp_path, roster, expected):
    """Is a roster without `student`, or with one LMS id for two students, an IntakeError?"""
    with pytest.raises(IntakeError, match=expected):
        scan(tmp_path, roster=roster)


def test_numeric_roster_ids(tmp_path):
    """Does a roster with numeric (even float, from NaN gaps) canvas_id cells still match?"""
    roster = pd.DataFrame({"student": ["jdoe", "x"], "canvas_id": [12345.0, float("nan")]})
    write_notebook(tmp_path / "doejane_12345_678901_hw.ipynb")
    assert [s.student for s in discover(tmp_path, roster=roster)] == ["jdoe"]


# --- newest kept -----------------------------------------------------------------------------


def test_canvas_newest_by_file_id_then_suffix(tmp_path):
    """Of several Canvas files by one student, is the highest file id kept and the rest listed?"""
    # mtimes deliberately disagree: the file id (Canvas's upload order) decides.
    old = write_notebook(tmp_path / "doejane_12345_500000_hw.ipynb", "v1", mtime=3_000)
    new = write_notebook(tmp_path / "doejane_LATE_12345_600000_hw-1.ipynb", "v2", mtime=1_000)
    intake = scan(tmp_path, roster=ROSTER)
    [sub] = intake.submissions
    assert (sub.student, sub.source, sub.late, source_of(sub)) == ("jdoe", new, True, "v2")
    assert [(s.path, s.student, s.kept) for s in intake.superseded] == [(old, "jdoe", new)]


def test_canvas_resubmission_suffix_breaks_ties(tmp_path):
    """With equal file ids (two merged downloads), does `-2` beat `-1`?"""
    write_notebook(tmp_path / "doejane_12345_600000_hw-1.ipynb", "v1", mtime=5_000)
    newer = write_notebook(tmp_path / "doejane_12345_600000_hw-2.ipynb", "v2", mtime=1_000)
    intake = scan(tmp_path, roster=ROSTER)
    assert [source_of(s) for s in intake.submissions] == ["v2"]
    assert [s.kept for s in intake.superseded] == [newer]


def test_moodle_newest_by_mtime(tmp_path):
    """Of two notebooks in one Moodle folder, is the most recently modified graded?"""
    folder = tmp_path / "Ann Miller_4711_assignsubmission_file_"
    older = write_notebook(folder / "draft.ipynb", "draft", mtime=1_000)
    newer = write_notebook(folder / "final.ipynb", "final", mtime=2_000)
    intake = scan(tmp_path, roster=ROSTER)
    assert [(s.student, source_of(s)) for s in intake.submissions] == [("amiller", "final")]
    assert [(s.path, s.kept) for s in intake.superseded] == [(older, newer)]


def test_same_student_on_two_platforms_newest_by_mtime(tmp_path):
    """Does a Canvas and a Moodle file mapped to one student keep the newer by mtime?"""
    write_notebook(tmp_path / "doejane_12345_999999_hw.ipynb", "canvas", mtime=1_000)
    write_notebook(tmp_path / "Jane Doe_1_assignsubmission_file_hw.ipynb", "moodle", mtime=2_000)
    intake = scan(tmp_path, roster=ROSTER)
    assert [source_of(s) for s in intake.submissions] == ["moodle"]
    assert len(intake.superseded) == 1


# --- mixed folders ---------------------------------------------------------------------------


def test_mixed_folder_with_plain_notebooks(tmp_path):
    """Do plain `<student>.ipynb`, `<student>/` and LMS names work side by side?"""
    write_notebook(tmp_path / "zed.ipynb", "plain")
    write_notebook(tmp_path / "kim" / "work.ipynb", "folder")
    write_notebook(tmp_path / "doejane_LATE_12345_678901_hw.ipynb", "canvas")
    write_notebook(tmp_path / "Ann Miller_4711_assignsubmission_file_" / "hw.ipynb", "moodle")
    (tmp_path / "roerichard_23456_text.html").write_text("<p>text entry</p>")
    intake = scan(tmp_path, roster=ROSTER)
    by_student = {s.student: s for s in intake.submissions}
    assert list(by_student) == ["amiller", "jdoe", "kim", "zed"]
    assert [source_of(by_student[s]) for s in by_student] == ["moodle", "canvas", "folder", "plain"]
    assert by_student["jdoe"].late and not by_student["zed"].late
    assert by_student["zed"].platform is None and by_student["zed"].lms_id is None
    assert intake.unmapped == [] and intake.superseded == []


def test_plain_and_lms_file_for_same_student_is_never_picked_silently(tmp_path):
    """Does `jdoe.ipynb` beside a Canvas file mapped to jdoe give one problem naming both?"""
    write_notebook(tmp_path / "jdoe.ipynb")
    write_notebook(tmp_path / "doejane_12345_678901_hw.ipynb")
    [sub] = discover(tmp_path, roster=ROSTER)
    assert sub.student == "jdoe" and sub.problem == (
        "several submissions: doejane_12345_678901_hw.ipynb, jdoe.ipynb"
    )


def test_discover_is_scan_submissions(tmp_path):
    """Does discover() return exactly scan().submissions?"""
    write_notebook(tmp_path / "ann.ipynb")
    write_notebook(tmp_path / "doejane_12345_678901_hw.ipynb")
    assert discover(tmp_path, roster=ROSTER) == scan(tmp_path, roster=ROSTER).submissions


# --- crafted Canvas names (red team, round 2) ------------------------------------------------

MALLORY = pd.DataFrame(
    {
        "student": ["jdoe", "mallory"],
        "name": ["Jane Doe", "Mal Lory"],
        "canvas_id": ["12345", "777"],
    }
)


def test_canvas_readings_lists_every_split():
    """Does a name with digit runs on both sides list every reading, leftmost user id first?"""
    readings = canvas_readings("a_1_2_3_4_hw.ipynb")
    assert [(r.name, r.user, r.file_id, r.original) for r in readings] == [
        ("a", "1", 2, "3_4_hw.ipynb"),
        ("a_1", "2", 3, "4_hw.ipynb"),
        ("a_1_2", "3", 4, "hw.ipynb"),
    ]
    assert [r.user for r in canvas_readings("LATE_anon_Xy7Qz_678901_hw.ipynb")] == ["anon_Xy7Qz"]


@pytest.mark.parametrize(
    ("attack", "roster", "graded_as"),
    [
        # Sortable name "12345_999999" (Canvas keeps [[:word:]]): read from the right, the ids
        # Canvas appended are mallory's.
        ("12345_999999_777_888_hw.ipynb", MALLORY, "mallory"),
        # Sortable name "x_12345_999999": it also reads as jdoe's upload 999999.
        ("x_12345_999999_777_888_hw.ipynb", MALLORY, None),
        ("x_12345_999999_31337_888_hw.ipynb", MALLORY, None),  # uploader not on the roster
        ("x_12345_999999_31337_888_hw.ipynb", None, None),  # no roster: canvas-12345 both
        # A crafted original file name instead of a crafted sortable name.
        ("lorymal_777_888_12345_999999_hw.ipynb", MALLORY, None),
    ],
    ids=["digits-only-name", "name", "uploader-off-roster", "no-roster", "original-name"],
)
def test_crafted_canvas_name_never_displaces_a_students_file(
    tmp_path, caplog, attack, roster, graded_as
):
    """Is the victim graded on their own upload, and the crafted file a row of its own?"""
    victim = write_notebook(tmp_path / "doejane_12345_678901_hw.ipynb", "victim")
    crafted = write_notebook(tmp_path / attack, "attacker")
    with caplog.at_level(logging.WARNING, logger="autograder.intake"):
        intake = scan(tmp_path, roster=roster)
    by_source = {s.source: s for s in intake.submissions}
    victim_id = "jdoe" if roster is not None else "canvas-12345"
    assert by_source[victim].student == victim_id and source_of(by_source[victim]) == "victim"
    assert intake.superseded == [] and len(intake.submissions) == 2
    row = by_source[crafted]
    if graded_as is None:  # it reads as the victim's too: an invalid row under its file name
        assert (row.student, row.ok) == (attack, False)
        assert "user 12345" in row.problem and attack in caplog.text
    else:
        assert (row.student, source_of(row)) == (graded_as, "attacker")


def test_honest_original_name_with_digits_maps_to_its_uploader(tmp_path):
    """Does `doejane_12345_678901_ex_2_3_final.ipynb` still map to jdoe (one roster reading)?"""
    write_notebook(tmp_path / "doejane_12345_678901_ex_2_3_final.ipynb", "mine")
    [sub] = scan(tmp_path, roster=ROSTER).submissions
    assert (sub.student, source_of(sub)) == ("jdoe", "mine")
