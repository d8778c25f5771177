"""Tests for autograder.gradebook: collating results, rosters and writing the gradebook."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from autograder.gradebook import (
    STATUSES,
    GradebookError,
    collate,
    read_roster,
    summary_table,
    write_gradebook,
    write_results,
)
from autograder.pack import load
from helpers import TINY, check_golden

GOLDEN = Path(__file__).parent / "golden" / "gradebook.csv"

PACK = load("math_primer")
BY_NAME = PACK.by_id
QUESTION_NAMES = PACK.question_ids
GRADEBOOK_COLUMNS = PACK.gradebook_columns
TOTAL_POINTS = PACK.total_points


def result(student: str, status: str = "graded", **scores: float) -> dict:
    """A result dict as the batch runner writes it, with the given question scores."""
    questions = {
        name: {"score": score, "possible": BY_NAME[name].points, "tags": [], "feedback": ""}
        for name, score in scores.items()
    }
    return {
        "student": student,
        "status": status,
        "total": sum(scores.values()),
        "possible": TOTAL_POINTS,
        "questions": questions,
    }


def full_marks(student: str) -> dict:
    return result(student, **{name: BY_NAME[name].points for name in QUESTION_NAMES})


def row(df: pd.DataFrame, student: str) -> pd.Series:
    matches = df[df["student"] == student]
    assert len(matches) == 1, matches
    return matches.iloc[0]


@pytest.fixture
def roster() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "student": ["ann", "bob", "cid"],
            "name": ["Ann Lee", "Bob Ma", "Cid Ö"],
            "email": ["ann@uni.de", "bob@uni.de", "cid@uni.de"],
        }
    )


# --- columns, sorting, points ----------------------------------------------------------------


def test_exact_columns_without_roster():
    """Are the columns exactly GRADEBOOK_COLUMNS, with no on_roster column, when no roster?"""
    df = collate([full_marks("ann")], pack=PACK)
    assert list(df.columns) == list(GRADEBOOK_COLUMNS)


def test_exact_columns_with_roster(roster):
    """Do the roster's extra columns follow `status`, then a trailing `on_roster`?"""
    df = collate([full_marks("ann")], roster=roster, pack=PACK)
    assert list(df.columns) == [*GRADEBOOK_COLUMNS, "name", "email", "on_roster"]
    assert df["on_roster"].dtype == bool


def test_sorted_by_student_with_fresh_index():
    """Are rows sorted by student id, whatever the order of the results?"""
    df = collate([full_marks("cid"), full_marks("ann"), full_marks("bob")], pack=PACK)
    assert list(df["student"]) == ["ann", "bob", "cid"]
    assert list(df.index) == [0, 1, 2]


def test_points_total_and_absent_questions():
    """Are absent questions 0 and the total the sum of the question scores?"""
    df = collate([result("ann", q1a=1.0, q3=2.5)], pack=PACK)
    ann = row(df, "ann")
    assert ann["q1a"] == 1.0 and ann["q3"] == 2.5
    assert all(ann[name] == 0.0 for name in QUESTION_NAMES if name not in ("q1a", "q3"))
    assert ann["total"] == 3.5
    assert all(df[c].dtype == float for c in [*QUESTION_NAMES, "total", "percent"])


def test_full_marks_is_100_percent():
    """Does a full-marks result get exactly 100 percent?"""
    df = collate([full_marks("ann")], pack=PACK)
    assert row(df, "ann")["total"] == TOTAL_POINTS
    assert row(df, "ann")["percent"] == 100.0


@pytest.mark.parametrize("total", [0.0, 1.0, 2.5, 7.0])
def test_percent_rounded_to_two_decimals(total):
    """Is percent 100 * total / TOTAL_POINTS rounded to 2 decimals?"""
    scores = {"q3": min(total, 3.0), "q1d": max(0.0, min(total - 3.0, 2.0))}
    scores["q2a"] = total - scores["q3"] - scores["q1d"]
    df = collate([result("ann", **scores)], pack=PACK)
    assert row(df, "ann")["percent"] == round(100 * total / TOTAL_POINTS, 2)


@pytest.mark.parametrize("status", [s for s in STATUSES if s != "graded"])
def test_non_graded_rows_keep_their_status_and_zeros(status):
    """Does an invalid/error/timeout/missing result get a row with its status and zero points?"""
    bad = {"student": "bob", "status": status, "total": 0, "possible": 12, "questions": {}}
    df = collate([full_marks("ann"), bad], pack=PACK)
    bob = row(df, "bob")
    assert bob["status"] == status
    assert bob["total"] == 0.0 and bob["percent"] == 0.0
    assert all(bob[name] == 0.0 for name in QUESTION_NAMES)


def test_empty_results():
    """Do no results give an empty gradebook with the fixed columns?"""
    df = collate([], pack=PACK)
    assert df.empty and list(df.columns) == list(GRADEBOOK_COLUMNS)


# --- duplicates and malformed results --------------------------------------------------------


def test_duplicate_student_ids_raise_naming_them():
    """Are duplicate student ids in the results an error naming them, never a lost row?"""
    results = [full_marks("ann"), full_marks("bob"), result("ann"), full_marks("cid")]
    results.append(result("cid"))
    with pytest.raises(GradebookError, match="ann, cid"):
        collate(results, pack=PACK)


def _with(change: dict) -> dict:
    base = result("ann", q1a=1.0)
    base.update(change)
    return base


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ({"student": None, "status": "graded"}, "no student id"),
        (_with({"student": ""}), "no student id"),
        (_with({"status": "passed"}), "status 'passed'"),
        (_with({"questions": {"q9": {"score": 1.0}}}), "unknown question"),
        (_with({"questions": {"q1a": {"score": 5.0}}, "total": 5.0}), "between 0 and 1"),
        (_with({"questions": {"q1a": {"score": -1.0}}, "total": -1.0}), "between 0 and 1"),
        (_with({"questions": {"q1a": {"score": float("nan")}}}), "not a number"),
        (_with({"questions": {"q1a": {"score": "1"}}}), "not a number"),
        (_with({"questions": {"q1a": {"score": 1.0, "possible": 2.0}}}), "assignment gives 1"),
        (_with({"total": 4.0}), "add up to 1"),
        (_with({"questions": ["q1a"]}), "expected a dict"),
        ("ann", "expected a dict"),
    ],
)
def test_malformed_results_raise(bad, match):
    """Is a result that breaks the contract a GradebookError showing the bad value?"""
    with pytest.raises(GradebookError, match=match):
        collate([bad], pack=PACK)


# --- roster ----------------------------------------------------------------------------------


def test_roster_student_without_submission_gets_missing_row(roster):
    """Does a roster student with no submission get a `missing` row with zeros?"""
    df = collate([full_marks("ann")], roster=roster, pack=PACK)
    assert list(df["student"]) == ["ann", "bob", "cid"]
    for student in ("bob", "cid"):
        r = row(df, student)
        assert r["status"] == "missing" and r["total"] == 0.0 and r["percent"] == 0.0
        assert all(r[name] == 0.0 for name in QUESTION_NAMES)
        assert bool(r["on_roster"])
    assert row(df, "cid")["name"] == "Cid Ö"


def test_off_roster_submission_kept_and_flagged(roster, caplog):
    """Is a submission not on the roster kept, flagged on_roster=False and warned about?"""
    df = collate([full_marks("zed"), full_marks("ann")], roster=roster, pack=PACK)
    assert list(df["student"]) == ["ann", "bob", "cid", "zed"]
    zed = row(df, "zed")
    assert zed["status"] == "graded" and zed["total"] == TOTAL_POINTS
    assert not bool(zed["on_roster"])
    assert pd.isna(zed["name"])
    assert list(df["on_roster"]) == [True, True, True, False]
    assert any("zed" in r.getMessage() for r in caplog.records)


def test_roster_ids_are_stripped_strings_and_input_untouched():
    """Are roster ids compared as stripped strings, without changing the caller's roster?"""
    roster = pd.DataFrame({"student": [" ann ", 7]})
    df = collate([full_marks("ann"), full_marks("7")], roster=roster, pack=PACK)
    assert list(df["on_roster"]) == [True, True]
    assert list(roster["student"]) == [" ann ", 7]


def test_no_points_row(roster):
    """Is there exactly one row per student, with no extra points/possible row?"""
    df = collate([full_marks("ann")], roster=roster, pack=PACK)
    assert len(df) == 3 and set(df["status"]) <= set(STATUSES)


@pytest.mark.parametrize(
    ("bad_roster", "match"),
    [
        (pd.DataFrame({"id": ["ann"]}), "no 'student' column"),
        (pd.DataFrame({"student": ["ann", "bob", "ann "]}), "ann more than once"),
        (pd.DataFrame({"student": ["ann", "  "]}), "empty student ids"),
        (pd.DataFrame({"student": ["ann", None]}), "empty student ids"),
        (pd.DataFrame({"student": ["ann"], "total": [3]}), "clash"),
    ],
)
def test_invalid_roster_raises(bad_roster, match):
    """Is a roster without `student`, with duplicate/empty ids or clashing columns refused?"""
    with pytest.raises(GradebookError, match=match):
        collate([full_marks("ann")], roster=bad_roster, pack=PACK)


def test_read_roster_keeps_ids_as_stripped_strings(tmp_path):
    """Does read_roster keep `007` as a string, strip ids and header names?"""
    path = tmp_path / "roster.csv"
    path.write_text(' student ,name,email\n 007 ,Bond,\nann,"Lee, Ann",ann@uni.de\n')
    roster = read_roster(path)
    assert list(roster.columns) == ["student", "name", "email"]
    assert list(roster["student"]) == ["007", "ann"]
    assert list(roster["name"]) == ["Bond", "Lee, Ann"]


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "does not exist"),
        ("", "cannot read roster"),
        ("id,name\nann,Ann\n", "no 'student' column"),
        ("student\nann\nbob\nann\n", "ann more than once"),
        ("student,name\nann,Ann\n,Nobody\n", "row\\(s\\) 3, counting the header"),
    ],
)
def test_read_roster_errors(tmp_path, content, match):
    """Is a missing, empty, student-less or duplicated roster a GradebookError naming the file?"""
    path = tmp_path / "roster.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(GradebookError, match=match) as info:
        read_roster(path)
    assert "roster.csv" in str(info.value)


# --- writing ---------------------------------------------------------------------------------


def test_write_results_round_trip(tmp_path):
    """Does write_results write one JSON per student under out/results/ that reads back equal?"""
    results = [full_marks("ann"), result("bob", "error")]
    write_results(results, tmp_path / "out")
    files = sorted((tmp_path / "out" / "results").iterdir())
    assert [f.name for f in files] == ["ann.json", "bob.json"]
    assert json.loads(files[0].read_text(encoding="utf-8")) == results[0]
    assert files[1].read_text(encoding="utf-8").startswith('{\n  "student": "bob"')


@pytest.mark.parametrize(
    ("results", "match"),
    [
        ([full_marks("ann"), full_marks("ann")], "ann"),
        ([full_marks(" ")], "no student id"),
        ([result("ann", q1a=float("nan"))], "cannot be written as JSON"),
    ],
)
def test_write_results_refuses_unsafe_input(tmp_path, results, match):
    """Are duplicate ids, blank ids and NaN scores refused instead of written?"""
    with pytest.raises(GradebookError, match=match):
        write_results(results, tmp_path)


def test_write_gradebook_neutralises_formula_text_but_not_numbers(tmp_path, roster):
    """Is a formula-like student id or roster cell written with an apostrophe, numbers as-is?"""
    roster = roster.assign(name=["=1+1", "-", "-2.5"])
    results = [full_marks("=HYPERLINK(1)"), full_marks("ann")]
    write_gradebook(collate(results, roster=roster, pack=PACK), tmp_path)
    table = pd.read_csv(tmp_path / "gradebook.csv", dtype=str, keep_default_na=False)
    assert "'=HYPERLINK(1)" in set(table["student"])
    assert sorted(table["name"]) == ["", "'-", "'=1+1", "-2.5"]  # -2.5 stays a number
    assert set(table["total"]) <= {"12.0", "0.0"}


def test_write_gradebook_has_no_float_noise(tmp_path):
    """Are scores written rounded to 4 decimals, without float noise like 0.30000000000000004?"""
    df = collate([result("ann", q1a=0.1 + 0.2, q3=1 / 3)], pack=PACK)
    path = write_gradebook(df, tmp_path / "out")
    assert path == tmp_path / "out" / "gradebook.csv"
    assert path.read_text(encoding="utf-8").splitlines()[1] == (
        "ann,0.3,0.0,0.0,0.0,0.0,0.0,0.3333,0.6333,5.28,graded"
    )


def golden_gradebook() -> pd.DataFrame:
    """The hand-checked input of the golden file.

    ann: 1 + 1 + 0 + 2 + 2/3 + 2 + 1.5 = 8.1667 points, 68.06 %; bob: timeout after q1a, 1 point,
    8.33 %; cid: on the roster, nothing submitted; dora: error; zed: invalid and not on the roster.
    """
    results = [
        result("zed", "invalid"),
        result("ann", q1a=1, q1b=1, q1c=0, q1d=2, q2a=2 / 3, q2b=2, q3=1.5),
        result("bob", "timeout", q1a=1),
        result("dora", "error"),
    ]
    roster = pd.DataFrame(
        {
            "student": ["ann", "bob", "cid", "dora"],
            "name": ["Lee, Ann", "Bob Ma", "Zoë Ö", "Dora"],
            "email": ["ann@uni.de", "bob@uni.de", "", "dora@uni.de"],
        }
    )
    return collate(results, roster=roster, pack=PACK)


def test_golden_gradebook_csv(tmp_path, request):
    """Is gradebook.csv byte-for-byte the golden file (--update-goldens rewrites it)?"""
    check_golden(request, GOLDEN, write_gradebook(golden_gradebook(), tmp_path).read_bytes())


# --- summary ---------------------------------------------------------------------------------


def test_summary_table_over_graded_rows_only():
    """Are mean and full-marks rate computed over graded rows only, with the contract's points?"""
    df = collate(
        [
            full_marks("ann"),
            result("bob", q1a=0.5, q3=3.0),
            result("cid", "timeout", q1a=1.0),
            result("dora", "error"),
        ],
        pack=PACK,
    )
    summary = summary_table(df, pack=PACK).set_index("question")
    assert list(summary.index) == [*QUESTION_NAMES, "total"]
    assert list(summary.columns) == ["points", "mean", "full_marks_rate"]
    assert summary.loc["q1a", "points"] == BY_NAME["q1a"].points
    assert summary.loc["q1a", "mean"] == pytest.approx(0.75)
    assert summary.loc["q1a", "full_marks_rate"] == 0.5
    assert summary.loc["q3", "full_marks_rate"] == 1.0
    assert summary.loc["total", "points"] == TOTAL_POINTS
    assert summary.loc["total", "mean"] == pytest.approx((TOTAL_POINTS + 3.5) / 2)


def test_summary_table_with_nothing_graded():
    """Does a gradebook without graded rows give NaN means instead of an error?"""
    summary = summary_table(collate([result("ann", "error")], pack=PACK), pack=PACK)
    assert all(math.isnan(v) for v in summary["mean"])
    assert all(math.isnan(v) for v in summary["full_marks_rate"])


# --- any pack: the tiny fixture pack ----------------------------------------------------------


def _tiny_result(student: str, status: str = "graded", **scores: float) -> dict:
    questions = {
        q.id: {"score": scores.get(q.id, 0.0), "possible": q.possible, "tags": [], "feedback": ""}
        for q in TINY.questions
    }
    return {
        "student": student,
        "status": status,
        "total": sum(scores.values()),
        "possible": TINY.total_points,
        "questions": questions,
    }


def test_collate_takes_columns_and_points_from_the_pack():
    """For another pack, are the question columns, totals and percent that pack's, with the
    manual derivation point of p2 counted in the points available?"""
    df = collate([_tiny_result("ann", p1=1.0, p2=1.0), _tiny_result("bob", "error")], pack=TINY)
    assert list(df.columns) == ["student", "p1", "p2", "total", "percent", "status"]
    assert row(df, "ann")["percent"] == round(100 * 2 / 4, 2)
    summary = summary_table(df, pack=TINY).set_index("question")
    assert list(summary.index) == ["p1", "p2", "total"]
    assert summary.loc["p2", "points"] == 3 and summary.loc["total", "points"] == 4


def test_results_of_another_pack_are_refused_by_name():
    """Is a result with Exercise 2's questions refused when collating the tiny pack, naming the
    pack's questions?"""
    with pytest.raises(
        GradebookError, match=r"unknown question\(s\) q1a.*expected p1, p2 \(tiny\)"
    ):
        collate([full_marks("ann")], pack=TINY)


def test_a_roster_column_named_like_a_question_of_the_pack_clashes():
    """Is a roster column named like one of the pack's questions a clash?"""
    roster = pd.DataFrame({"student": ["ann"], "p2": ["x"]})
    with pytest.raises(GradebookError, match="clash"):
        collate([_tiny_result("ann")], roster=roster, pack=TINY)
