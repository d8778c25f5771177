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
from autograder.pack import Pack, load
from helpers import TINY, check_golden
from pack_support import first, full_marks, last, scored

GOLDEN = Path(__file__).parent / "golden" / "gradebook.csv"

PACK = load("math_primer")
"""Exercise 2: the golden gradebook is its hand-checked content (its columns and points)."""


def result(student: str, status: str = "graded", **scores: float) -> dict:
    """An Exercise 2 result dict as the batch runner writes it (for the golden file)."""
    return scored(PACK, student, status, **scores)


def spread(pack: Pack, total: float) -> dict[str, float]:
    """Scores adding up to ``total``, filling each question up to its points in sheet order."""
    scores, left = {}, total
    for q in pack.questions:
        scores[q.id] = min(left, q.possible)
        left -= scores[q.id]
    return scores


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


def test_exact_columns_without_roster(any_pack):
    """Are the columns exactly the pack's gradebook columns, with no on_roster column, when no
    roster?"""
    df = collate([full_marks(any_pack, "ann")], pack=any_pack)
    assert list(df.columns) == list(any_pack.gradebook_columns)
    assert list(df.columns) == ["student", *any_pack.question_ids, "total", "percent", "status"]


def test_exact_columns_with_roster(any_pack, roster):
    """Do the roster's extra columns follow `status`, then a trailing `on_roster`?"""
    df = collate([full_marks(any_pack, "ann")], roster=roster, pack=any_pack)
    assert list(df.columns) == [*any_pack.gradebook_columns, "name", "email", "on_roster"]
    assert df["on_roster"].dtype == bool


def test_sorted_by_student_with_fresh_index(any_pack):
    """Are rows sorted by student id, whatever the order of the results?"""
    results = [full_marks(any_pack, s) for s in ("cid", "ann", "bob")]
    df = collate(results, pack=any_pack)
    assert list(df["student"]) == ["ann", "bob", "cid"]
    assert list(df.index) == [0, 1, 2]


def test_points_total_and_absent_questions(any_pack):
    """Are absent questions 0 and the total the sum of the question scores?"""
    one, other = first(any_pack).id, last(any_pack).id
    df = collate([scored(any_pack, "ann", **{one: 1.0, other: 1.5})], pack=any_pack)
    ann = row(df, "ann")
    assert ann[one] == 1.0 and ann[other] == 1.5
    assert all(ann[name] == 0.0 for name in any_pack.question_ids if name not in (one, other))
    assert ann["total"] == 2.5
    assert all(df[c].dtype == float for c in [*any_pack.question_ids, "total", "percent"])


def test_full_marks_is_100_percent(any_pack):
    """Does a full-marks result get exactly 100 percent?"""
    df = collate([full_marks(any_pack, "ann")], pack=any_pack)
    assert row(df, "ann")["total"] == any_pack.total_points
    assert row(df, "ann")["percent"] == 100.0


@pytest.mark.parametrize("share", [0.0, 1 / 12, 2.5 / 12, 7 / 12, 1 / 3])
def test_percent_rounded_to_two_decimals(any_pack, share):
    """Is percent 100 * total / the pack's points rounded to 2 decimals?"""
    total = share * any_pack.total_points
    df = collate([scored(any_pack, "ann", **spread(any_pack, total))], pack=any_pack)
    assert row(df, "ann")["percent"] == round(100 * total / any_pack.total_points, 2)


@pytest.mark.parametrize("status", [s for s in STATUSES if s != "graded"])
def test_non_graded_rows_keep_their_status_and_zeros(any_pack, status):
    """Does an invalid/error/timeout/missing result get a row with its status and zero points?"""
    bad = scored(any_pack, "bob", status)
    df = collate([full_marks(any_pack, "ann"), bad], pack=any_pack)
    bob = row(df, "bob")
    assert bob["status"] == status
    assert bob["total"] == 0.0 and bob["percent"] == 0.0
    assert all(bob[name] == 0.0 for name in any_pack.question_ids)


def test_empty_results(any_pack):
    """Do no results give an empty gradebook with the fixed columns?"""
    df = collate([], pack=any_pack)
    assert df.empty and list(df.columns) == list(any_pack.gradebook_columns)


# --- duplicates and malformed results --------------------------------------------------------


def test_duplicate_student_ids_raise_naming_them(any_pack):
    """Are duplicate student ids in the results an error naming them, never a lost row?"""
    results = [full_marks(any_pack, s) for s in ("ann", "bob", "ann", "cid", "cid")]
    with pytest.raises(GradebookError, match="ann, cid"):
        collate(results, pack=any_pack)


def _malformed(pack: Pack, kind: str) -> object:
    """A result of ``pack`` breaking the contract in one way (its first question is at fault)."""
    q = first(pack)
    p = q.possible
    base = scored(pack, "ann", **{q.id: p})
    changes = {
        "no_student": {"student": None, "status": "graded"},
        "empty_student": {"student": ""},
        "bad_status": {"status": "passed"},
        "unknown_question": {"questions": {"q_9": {"score": 1.0}}},
        "too_many": {"questions": {q.id: {"score": p + 4}}, "total": p + 4},
        "negative": {"questions": {q.id: {"score": -1.0}}, "total": -1.0},
        "nan": {"questions": {q.id: {"score": float("nan")}}},
        "string_score": {"questions": {q.id: {"score": "1"}}},
        "wrong_possible": {"questions": {q.id: {"score": p, "possible": p + 1}}},
        "wrong_total": {"total": p + 3},
        "questions_list": {"questions": [q.id]},
    }
    if kind == "not_a_dict":
        return "ann"
    if kind == "no_student":
        return changes[kind]
    return {**base, **changes[kind]}


@pytest.mark.parametrize(
    ("kind", "match"),
    [
        ("no_student", "no student id"),
        ("empty_student", "no student id"),
        ("bad_status", "status 'passed'"),
        ("unknown_question", "unknown question"),
        ("too_many", "between 0 and {p:g}"),
        ("negative", "between 0 and {p:g}"),
        ("nan", "not a number"),
        ("string_score", "not a number"),
        ("wrong_possible", "assignment gives {p:g}"),
        ("wrong_total", "add up to {p:g}"),
        ("questions_list", "expected a dict"),
        ("not_a_dict", "expected a dict"),
    ],
)
def test_malformed_results_raise(any_pack, kind, match):
    """Is a result that breaks the contract a GradebookError showing the bad value?"""
    with pytest.raises(GradebookError, match=match.format(p=first(any_pack).possible)):
        collate([_malformed(any_pack, kind)], pack=any_pack)


# --- roster ----------------------------------------------------------------------------------


def test_roster_student_without_submission_gets_missing_row(any_pack, roster):
    """Does a roster student with no submission get a `missing` row with zeros?"""
    df = collate([full_marks(any_pack, "ann")], roster=roster, pack=any_pack)
    assert list(df["student"]) == ["ann", "bob", "cid"]
    for student in ("bob", "cid"):
        r = row(df, student)
        assert r["status"] == "missing" and r["total"] == 0.0 and r["percent"] == 0.0
        assert all(r[name] == 0.0 for name in any_pack.question_ids)
        assert bool(r["on_roster"])
    assert row(df, "cid")["name"] == "Cid Ö"


def test_off_roster_submission_kept_and_flagged(any_pack, roster, caplog):
    """Is a submission not on the roster kept, flagged on_roster=False and warned about?"""
    df = collate(
        [full_marks(any_pack, "zed"), full_marks(any_pack, "ann")], roster=roster, pack=any_pack
    )
    assert list(df["student"]) == ["ann", "bob", "cid", "zed"]
    zed = row(df, "zed")
    assert zed["status"] == "graded" and zed["total"] == any_pack.total_points
    assert not bool(zed["on_roster"])
    assert pd.isna(zed["name"])
    assert list(df["on_roster"]) == [True, True, True, False]
    assert any("zed" in r.getMessage() for r in caplog.records)


def test_roster_ids_are_stripped_strings_and_input_untouched(any_pack):
    """Are roster ids compared as stripped strings, without changing the caller's roster?"""
    roster = pd.DataFrame({"student": [" ann ", 7]})
    df = collate(
        [full_marks(any_pack, "ann"), full_marks(any_pack, "7")], roster=roster, pack=any_pack
    )
    assert list(df["on_roster"]) == [True, True]
    assert list(roster["student"]) == [" ann ", 7]


def test_no_points_row(any_pack, roster):
    """Is there exactly one row per student, with no extra points/possible row?"""
    df = collate([full_marks(any_pack, "ann")], roster=roster, pack=any_pack)
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
def test_invalid_roster_raises(any_pack, bad_roster, match):
    """Is a roster without `student`, with duplicate/empty ids or clashing columns refused?"""
    with pytest.raises(GradebookError, match=match):
        collate([full_marks(any_pack, "ann")], roster=bad_roster, pack=any_pack)


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


def test_write_results_round_trip(any_pack, tmp_path):
    """Does write_results write one JSON per student under out/results/ that reads back equal?"""
    results = [full_marks(any_pack, "ann"), scored(any_pack, "bob", "error")]
    write_results(results, tmp_path / "out")
    files = sorted((tmp_path / "out" / "results").iterdir())
    assert [f.name for f in files] == ["ann.json", "bob.json"]
    assert json.loads(files[0].read_text(encoding="utf-8")) == results[0]
    assert files[1].read_text(encoding="utf-8").startswith('{\n  "student": "bob"')


@pytest.mark.parametrize(
    ("students", "nan", "match"),
    [(["ann", "ann"], False, "ann"), ([" "], False, "no student id"), (["ann"], True, "JSON")],
)
def test_write_results_refuses_unsafe_input(any_pack, tmp_path, students, nan, match):
    """Are duplicate ids, blank ids and NaN scores refused instead of written?"""
    results = [full_marks(any_pack, s) for s in students]
    if nan:
        results[0]["questions"][first(any_pack).id]["score"] = float("nan")
    with pytest.raises(GradebookError, match=match):
        write_results(results, tmp_path)


def test_write_gradebook_neutralises_formula_text_but_not_numbers(any_pack, tmp_path, roster):
    """Is a formula-like student id or roster cell written with an apostrophe, numbers as-is?"""
    roster = roster.assign(name=["=1+1", "-", "-2.5"])
    results = [full_marks(any_pack, "=HYPERLINK(1)"), full_marks(any_pack, "ann")]
    write_gradebook(collate(results, roster=roster, pack=any_pack), tmp_path)
    table = pd.read_csv(tmp_path / "gradebook.csv", dtype=str, keep_default_na=False)
    assert "'=HYPERLINK(1)" in set(table["student"])
    assert sorted(table["name"]) == ["", "'-", "'=1+1", "-2.5"]  # -2.5 stays a number
    assert set(table["total"]) <= {str(float(any_pack.total_points)), "0.0"}


def test_write_gradebook_has_no_float_noise(any_pack, tmp_path):
    """Are scores written rounded to 4 decimals, without float noise like 0.30000000000000004?"""
    one, other = first(any_pack).id, last(any_pack).id
    df = collate([scored(any_pack, "ann", **{one: 0.1 + 0.2, other: 1 / 3})], pack=any_pack)
    path = write_gradebook(df, tmp_path / "out")
    assert path == tmp_path / "out" / "gradebook.csv"
    between = ["0.0"] * (len(any_pack.questions) - 2)
    percent = round(100 * (0.3 + 1 / 3) / any_pack.total_points, 2)
    assert path.read_text(encoding="utf-8").splitlines()[1] == ",".join(
        ["ann", "0.3", *between, "0.3333", "0.6333", f"{percent}", "graded"]
    )


def golden_gradebook() -> pd.DataFrame:
    """The hand-checked input of the golden file (Exercise 2's: the file pins its columns and
    points as TAs see them, so it stays on that sheet).

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


def test_summary_table_over_graded_rows_only(any_pack):
    """Are mean and full-marks rate computed over graded rows only, with the pack's points?"""
    one, other = first(any_pack), last(any_pack)
    df = collate(
        [
            full_marks(any_pack, "ann"),
            scored(any_pack, "bob", **{one.id: one.possible / 2, other.id: other.possible}),
            scored(any_pack, "cid", "timeout", **{one.id: one.possible}),
            scored(any_pack, "dora", "error"),
        ],
        pack=any_pack,
    )
    summary = summary_table(df, pack=any_pack).set_index("question")
    assert list(summary.index) == [*any_pack.question_ids, "total"]
    assert list(summary.columns) == ["points", "mean", "full_marks_rate"]
    assert summary.loc[one.id, "points"] == one.possible
    assert summary.loc[one.id, "mean"] == pytest.approx(0.75 * one.possible)
    assert summary.loc[one.id, "full_marks_rate"] == 0.5
    assert summary.loc[other.id, "full_marks_rate"] == 1.0
    total = any_pack.total_points
    assert summary.loc["total", "points"] == total
    assert summary.loc["total", "mean"] == pytest.approx(
        (total + one.possible / 2 + other.possible) / 2
    )


def test_summary_table_with_nothing_graded(any_pack):
    """Does a gradebook without graded rows give NaN means instead of an error?"""
    table = collate([scored(any_pack, "ann", "error")], pack=any_pack)
    summary = summary_table(table, pack=any_pack)
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
        collate([full_marks(PACK, "ann")], pack=TINY)


def test_a_roster_column_named_like_a_question_of_the_pack_clashes():
    """Is a roster column named like one of the pack's questions a clash?"""
    roster = pd.DataFrame({"student": ["ann"], "p2": ["x"]})
    with pytest.raises(GradebookError, match="clash"):
        collate([_tiny_result("ann")], roster=roster, pack=TINY)
