"""Tests for the analytics report (autograder/report.py): content, determinism, edge cases, and a
real headless Chromium rendering."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib as mpl
import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from autograder.gradebook import collate
from autograder.pack import Pack, load
from autograder.report import (
    LIST_LIMIT,
    ReportError,
    render_report,
    summary_lines,
    tag_frequencies,
    write_report,
)
from autograder.results import CaseOutcome, empty_result, graded_result
from helpers import TINY, HtmlTables, chromium_screenshot
from pack_support import first, last


def graded(pack: Pack, student: str, mistakes: dict[str, list[str]] | None = None) -> dict:
    """A graded result: questions in ``mistakes`` fail their one case with those tags."""
    mistakes = mistakes or {}
    outcomes = {
        q.id: [
            CaseOutcome(
                "typical",
                float(q.points),
                passed=q.id not in mistakes,
                tags=tuple(mistakes.get(q.id, ())),
                text="wrong",
            )
        ]
        for q in pack.questions
    }
    return graded_result(student, outcomes, pack=pack)


def blank(pack: Pack, student: str) -> dict:
    """A graded result of a blank notebook: every question missing."""
    return graded(pack, student, {q: ["missing"] for q in pack.question_ids})


def second(pack: Pack) -> str:
    return pack.questions[1].id


@pytest.fixture()
def batch(any_pack: Pack) -> list[dict]:
    """A small class: two correct, three with mistakes, one blank, one invalid, one error. The
    first question is transposed twice (once with wrong_shape), the last one is not_finite once."""
    one, two, end = first(any_pack).id, second(any_pack), last(any_pack).id
    return [
        graded(any_pack, "ann"),
        graded(any_pack, "bob", {one: ["wrong_shape", "transposed"], two: ["transposed"]}),
        graded(any_pack, "cy", {one: ["transposed"], end: ["not_stable", "not_finite"]}),
        graded(any_pack, "dee", {two: ["missing_diag"], end: ["scaled"]}),
        graded(any_pack, "eve"),
        blank(any_pack, "fay"),
        empty_result("gus", "invalid", "submission unusable: not valid JSON", pack=any_pack),
        empty_result("hal", "error", "grader crashed: RuntimeError('boom')", pack=any_pack),
    ]


_Tables = HtmlTables


def parse(page: str) -> _Tables:
    parser = _Tables()
    parser.feed(page)
    return parser


def table_with(parsed: _Tables, first_header: str, second_header: str) -> list[list[str]]:
    return next(t for t in parsed.tables if t[0][:2] == [first_header, second_header])


# --- tag_frequencies ---------------------------------------------------------------------------


def test_tag_frequencies_count_each_tag_per_question(any_pack: Pack, batch: list[dict]) -> None:
    """Are tags counted per question over graded submissions, in the contract's order?"""
    freq = tag_frequencies(batch, pack=any_pack)
    assert list(freq.index) == list(any_pack.question_ids)
    assert list(freq.columns) == list(any_pack.vocabulary)
    one, two, end = first(any_pack).id, second(any_pack), last(any_pack).id
    assert freq.loc[one, "transposed"] == 2
    assert freq.loc[one, "wrong_shape"] == 1
    assert freq.loc[two, "transposed"] == 1
    assert freq.loc[end, "not_finite"] == 1
    assert (freq["missing"] == 1).all()  # the blank notebook, on every question
    expected = sum(len(e["tags"]) for r in batch for e in r["questions"].values())
    assert freq.to_numpy().sum() == expected


def test_tag_frequencies_skip_ungraded_and_keep_unknown_tags(any_pack: Pack) -> None:
    """Are non-graded results ignored, a repeated tag counted once, and unknown tags kept?"""
    end = last(any_pack).id
    odd = graded(any_pack, "zed", {end: ["scaled", "scaled", "new_tag"]})
    timeout = graded(any_pack, "tim", {end: ["timeout"]}) | {"status": "timeout"}
    freq = tag_frequencies([odd, timeout], pack=any_pack)
    assert list(freq.columns)[-1] == "new_tag"
    assert freq.loc[end, "scaled"] == 1
    assert freq.loc[end, "new_tag"] == 1
    assert freq["timeout"].sum() == 0


def test_tag_frequencies_of_nothing_is_all_zero(any_pack: Pack) -> None:
    """Does an empty batch give a zero table of the full shape?"""
    freq = tag_frequencies([], pack=any_pack)
    assert freq.shape == (len(any_pack.question_ids), len(any_pack.vocabulary))
    assert freq.to_numpy().sum() == 0


def test_malformed_tags_raise(any_pack: Pack) -> None:
    """Is a result whose tags are not a list of strings a ReportError naming it?"""
    bad = graded(any_pack, "ann")
    bad["questions"][first(any_pack).id]["tags"] = "transposed"
    with pytest.raises(ReportError, match=f"'ann'.*{first(any_pack).id}"):
        tag_frequencies([bad], pack=any_pack)


# --- the HTML ---------------------------------------------------------------------------------


def test_report_tag_table_matches_the_results(
    any_pack: Pack, batch: list[dict], tmp_path: Path
) -> None:
    """Does the report's tag table list every tag with its hint and the counts of the results?"""
    path = write_report(collate(batch, pack=any_pack), batch, tmp_path, pack=any_pack)
    assert path == tmp_path / "report.html"
    rows = table_with(parse(path.read_text(encoding="utf-8")), "tag", "hint")
    header, body = rows[0], rows[1:]
    assert header == ["tag", "hint", *any_pack.question_ids, "all"]
    assert sorted(r[0] for r in body) == sorted(any_pack.vocabulary)
    freq = tag_frequencies(batch, pack=any_pack)
    for tag, hint, *counts in body:
        assert hint == any_pack.vocabulary[tag]
        assert [int(c) for c in counts] == [*freq[tag], freq[tag].sum()], tag
    totals = [int(r[-1]) for r in body]
    assert totals == sorted(totals, reverse=True)  # most frequent first


def test_report_has_figures_stats_and_statuses(any_pack: Pack, batch: list[dict]) -> None:
    """Does the report hold the three figures, the per-question table and the status counts?"""
    page = render_report(collate(batch, pack=any_pack), batch, title="Exercise 2", pack=any_pack)
    parsed = parse(page)
    assert parsed.svgs == 3
    assert "<h1>Exercise 2: grading report</h1>" in page
    status = dict(r for r in table_with(parsed, "status", "submissions")[1:])
    assert status == {
        "graded": "6",
        "timeout": "0",
        "error": "1",
        "invalid": "1",
        "missing": "0",
        "all": "8",
    }
    questions = table_with(parsed, "question", "sheet")
    one = first(any_pack)
    row = next(r for r in questions if r[0] == one.id)
    # ann, dee, eve right; bob, cy, fay wrong: mean half the points, half at full marks.
    assert row[1] == one.sheet
    assert row[2:6] == [f"{one.points:g}", f"{one.points / 2:.2f}", "50%", "50%"]
    assert row[6] == "transposed (2)"
    attention = table_with(parsed, "student", "status")
    assert [r[:2] for r in attention[1:]] == [["gus", "invalid"], ["hal", "error"]]
    assert "grader crashed: RuntimeError(&#x27;boom&#x27;)" in page


def test_report_is_self_contained(any_pack: Pack, batch: list[dict]) -> None:
    """Does the report load nothing from outside: no URLs, scripts, links or external images?"""
    page = render_report(collate(batch, pack=any_pack), batch, pack=any_pack)
    assert "http" not in page
    assert 'src="//' not in page
    for needle in ("<script", "<link", "<img", "<iframe", "@import", "url(http"):
        assert needle not in page.lower()
    # Every in-page reference points at an id defined in the page.
    ids = set(re.findall(r'\bid="([^"]+)"', page))
    refs = set(re.findall(r'(?:href="#|url\(#)([^")]+)', page))
    assert refs and refs <= ids
    assert len(re.findall(r'\bid="', page)) == len(ids)  # ids unique across the figures


def test_html_special_characters_are_escaped(any_pack: Pack) -> None:
    """Are the title and student ids escaped, so they cannot inject markup?"""
    results = [empty_result("<b>x&y<b>", "invalid", "bad <script>", pack=any_pack)]
    page = render_report(
        collate(results, pack=any_pack), results, title="A <i>&</i>", pack=any_pack
    )
    assert "<b>x" not in page and "<script" not in page and "<i>" not in page
    assert "&lt;b&gt;x&amp;y&lt;b&gt;" in page


def test_report_is_deterministic(any_pack: Pack, batch: list[dict], tmp_path: Path) -> None:
    """Do two runs give byte-identical HTML, whatever matplotlib style the caller has set?"""
    first = write_report(
        collate(batch, pack=any_pack), batch, tmp_path / "a", pack=any_pack
    ).read_bytes()
    with mpl.rc_context({"font.size": 20, "axes.facecolor": "black", "svg.hashsalt": None}):
        second = write_report(
            collate(batch, pack=any_pack), batch, tmp_path / "b", pack=any_pack
        ).read_bytes()
    assert first == second


# --- edge cases ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "figures", "message"),
    [
        ("nothing", 0, "No graded submissions"),
        ("only-invalid", 0, "No graded submissions"),
        ("single-correct", 2, "No diagnosis tags: no mistakes found."),
        ("all-blank", 3, "3 graded submission"),
    ],
)
def test_edge_cases_render(any_pack: Pack, kind: str, figures: int, message: str) -> None:
    """Does the report render with no graded submissions, a single one, or only blanks?"""
    results = {
        "nothing": [],
        "only-invalid": [empty_result("gus", "invalid", "not a notebook", pack=any_pack)],
        "single-correct": [graded(any_pack, "ann")],
        "all-blank": [blank(any_pack, s) for s in "abc"],
    }[kind]
    table = collate(results, pack=any_pack)
    page = render_report(table, results, pack=any_pack)
    assert parse(page).svgs == figures
    assert message in page
    assert not re.search(r">\s*nan%?\s*<", page, flags=re.IGNORECASE)
    assert summary_lines(table, results, pack=any_pack)


def test_roster_students_without_submission_are_listed(any_pack: Pack) -> None:
    """Are roster students who submitted nothing counted as missing and listed?"""
    results = [graded(any_pack, "ann")]
    table = collate(results, roster=pd.DataFrame({"student": ["ann", "zoe"]}), pack=any_pack)
    rows = table_with(parse(render_report(table, results, pack=any_pack)), "student", "status")
    assert rows[1:] == [["zoe", "missing", "on the roster, nothing submitted"]]


def test_manual_overrides_are_listed(any_pack: Pack) -> None:
    """Are manual overrides shown as such, with the autograded points and the comment?"""
    end = last(any_pack).id
    result = graded(any_pack, "ann", {end: ["scaled"]})
    entry = result["questions"][end]
    entry["override"] = {"points": 2.5, "comment": "slip <ok>", "autograded": entry["score"]}
    entry["score"] = 2.5
    result["total"] += 2.5
    page = render_report(collate([result], pack=any_pack), [result], pack=any_pack)
    rows = table_with(parse(page), "student", "question")
    assert rows[1:] == [["ann", end, "0", "2.5", "slip <ok>"]]
    assert "No manual overrides." in render_report(
        collate([graded(any_pack, "bob")], pack=any_pack), [graded(any_pack, "bob")], pack=any_pack
    )


def test_a_table_without_gradebook_columns_is_refused(any_pack: Pack, tmp_path: Path) -> None:
    """Is a DataFrame that is not a gradebook a ReportError naming the missing columns?"""
    with pytest.raises(ReportError, match=f"lacks column.*{first(any_pack).id}"):
        write_report(pd.DataFrame({"student": ["a"]}), [], tmp_path, pack=any_pack)


# --- a large class ---------------------------------------------------------------------------


def test_report_of_10000_submissions_stays_small_and_readable() -> None:
    """At 10,000 submissions (500 not graded, 300 overrides), does the report keep its sections
    and figures, summarise the long lists instead of listing every student, link to
    gradebook.csv, and stay under 600 KB (without grading: results built as the engines do)?"""
    pack = load("math_primer")
    results = []
    for i in range(10_000):
        student = f"s{i:05d}"
        if i % 20 == 7:
            kind = ("error", "timeout", "invalid")[i % 3]
            results.append(empty_result(student, kind, f"{kind}: reason {i % 4}", pack=pack))
            continue
        result = graded(pack, student, {"q3": ["scaled"]} if i % 3 else {"q1a": ["transposed"]})
        if i % 33 == 0:
            entry = result["questions"]["q3"]
            entry["override"] = {"points": 2.0, "comment": "ok", "autograded": entry["score"]}
            result["total"] += 2.0 - entry["score"]
            entry["score"] = 2.0
        results.append(result)
    page = render_report(collate(results, pack=pack), results, pack=pack)
    assert len(page.encode()) < 600_000
    parsed = parse(page)
    assert parsed.svgs == 3
    for section in (
        "submissions-by-status",
        "score-distribution",
        "per-question",
        "needs-attention",
    ):
        assert f'<section id="{section}">' in page
    status = dict(r for r in table_with(parsed, "status", "submissions")[1:])
    assert status["graded"] == "9500" and status["all"] == "10000"
    reasons = table_with(parsed, "status", "reason")
    assert sum(int(r[2]) for r in reasons[1:]) == 500  # every ungraded one, counted by reason
    attention = table_with(parsed, "student", "status")
    assert len(attention) == 1 + LIST_LIMIT and attention[1][0] == "s00007"
    overrides = table_with(parsed, "student", "question")
    assert len(overrides) == 1 + LIST_LIMIT
    overridden = sum(1 for r in results if r.get("questions", {}).get("q3", {}).get("override"))
    assert dict(r for r in table_with(parsed, "question", "overrides")[1:]) == {
        "q3": str(overridden)
    }
    assert page.count('<a href="gradebook.csv">') == 2


# --- terminal summary ---------------------------------------------------------------------------


def test_summary_lines(any_pack: Pack, batch: list[dict]) -> None:
    """Do the summary lines give statuses, totals and each question's mean and top tags?"""
    lines = summary_lines(collate(batch, pack=any_pack), batch, pack=any_pack)
    assert lines[0] == "submissions: 8 (graded 6, error 1, invalid 1)"
    assert lines[1].startswith("total (graded): mean ")
    one = first(any_pack)
    line = next(line for line in lines if line.startswith(one.id))
    assert f"mean {one.points / 2:.2f}/{one.points:g}" in line
    assert "50%" in line and "transposed 2" in line
    assert len(lines) == 2 + len(any_pack.question_ids)


def test_summary_lines_without_graded_submissions(any_pack: Pack) -> None:
    """Does the summary say so when nothing was graded?"""
    results = [empty_result("gus", "invalid", "x", pack=any_pack)]
    assert summary_lines(collate(results, pack=any_pack), results, pack=any_pack) == [
        "submissions: 1 (invalid 1)",
        "no graded submissions: nothing to summarise",
    ]


# --- a real browser ------------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.parametrize("any_pack", [TINY], ids=["tiny"])  # slow: on the tiny pack only
def test_report_renders_in_headless_chromium(
    any_pack: Pack, batch: list[dict], tmp_path: Path
) -> None:
    """Does a real headless Chromium render the report offline to a non-blank page with plots?"""
    report = write_report(collate(batch, pack=any_pack), batch, tmp_path / "out", pack=any_pack)
    shot = tmp_path / "shot.png"
    done = chromium_screenshot(report, shot, profile=tmp_path / "profile", height=2000)
    assert shot.exists(), f"no screenshot (exit {done.returncode}): {done.stderr[-2000:]}"
    assert shot.stat().st_size > 20_000
    pixels = mpimg.imread(shot)[..., :3]
    assert pixels.shape[:2] == (2000, 1200)
    assert pixels.std() > 0.05  # not a single colour
    # The plots' bar colours (blue histogram and means, orange full-marks bars) are on screen.
    blue = np.array([0x3A, 0x6E, 0xA5]) / 255
    orange = np.array([0xD9, 0x82, 0x2B]) / 255
    for colour in (blue, orange):
        close = np.abs(pixels - colour).max(axis=-1) < 0.03
        assert close.sum() > 5_000, f"too few pixels of colour {colour}"
    # Text (near-black) is on screen too.
    assert (pixels.max(axis=-1) < 0.25).sum() > 2_000


# --- any pack: the tiny fixture pack ----------------------------------------------------------


def test_report_of_another_pack_uses_its_questions_tags_and_title():
    """For the tiny pack, does the report count its own tag, list its questions with their
    labels and carry its title?"""
    outcomes = {
        "p1": [
            CaseOutcome("typical", 0.5, False, ("missing_chain",), "f(x) only"),
            CaseOutcome("edge", 0.5, True),
        ],
        "p2": [CaseOutcome("dX", 1.0, True), CaseOutcome("dW", 1.0, True)],
    }
    results = [graded_result("ann", outcomes, pack=TINY), graded_result("bob", outcomes, pack=TINY)]
    table = collate(results, pack=TINY)
    freq = tag_frequencies(results, pack=TINY)
    assert list(freq.index) == ["p1", "p2"] and freq.loc["p1", "missing_chain"] == 2
    assert list(freq.columns) == list(TINY.vocabulary)
    page = render_report(table, results, pack=TINY)
    assert "<h1>Tiny Sheet: grading report</h1>" in page and ">T-2<" in page
    assert "by the chain rule" in page
    lines = summary_lines(table, results, pack=TINY)
    assert lines[1].startswith("total (graded): mean 2.50 / 4")  # p2's manual point counts
