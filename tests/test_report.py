"""Tests for the analytics report (autograder/report.py): content, determinism, edge cases, and a
real headless Chromium rendering."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import matplotlib as mpl
import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from autograder.gradebook import collate
from autograder.pack import load
from autograder.report import (
    LIST_LIMIT,
    ReportError,
    render_report,
    summary_lines,
    tag_frequencies,
    write_report,
)
from autograder.results import CaseOutcome, empty_result, graded_result
from conftest import TINY, HtmlTables

PACK = load("math_primer")
BY_NAME = PACK.by_id
QUESTION_NAMES = PACK.question_ids
TAGS = PACK.vocabulary

CHROMIUM = Path("/usr/bin/chromium")


def graded(student: str, mistakes: dict[str, list[str]] | None = None) -> dict:
    """A graded result: questions in ``mistakes`` fail their one case with those tags."""
    mistakes = mistakes or {}
    outcomes = {
        q: [
            CaseOutcome(
                "typical",
                float(BY_NAME[q].points),
                passed=q not in mistakes,
                tags=tuple(mistakes.get(q, ())),
                text="wrong",
            )
        ]
        for q in QUESTION_NAMES
    }
    return graded_result(student, outcomes, pack=PACK)


def blank(student: str) -> dict:
    """A graded result of a blank notebook: every question missing."""
    return graded(student, {q: ["missing"] for q in QUESTION_NAMES})


@pytest.fixture()
def batch() -> list[dict]:
    """A small class: two correct, three with mistakes, one blank, one invalid, one error."""
    return [
        graded("ann"),
        graded("bob", {"q1a": ["wrong_shape", "transposed"], "q1b": ["transposed"]}),
        graded("cy", {"q1a": ["transposed"], "q2a": ["not_stable", "not_finite"]}),
        graded("dee", {"q1c": ["missing_diag"], "q2b": ["dL_dyhat"], "q3": ["scaled"]}),
        graded("eve"),
        blank("fay"),
        empty_result("gus", "invalid", "submission unusable: not valid JSON", pack=PACK),
        empty_result("hal", "error", "grader crashed: RuntimeError('boom')", pack=PACK),
    ]


_Tables = HtmlTables


def parse(page: str) -> _Tables:
    parser = _Tables()
    parser.feed(page)
    return parser


def table_with(parsed: _Tables, first_header: str, second_header: str) -> list[list[str]]:
    return next(t for t in parsed.tables if t[0][:2] == [first_header, second_header])


# --- tag_frequencies ---------------------------------------------------------------------------


def test_tag_frequencies_count_each_tag_per_question(batch: list[dict]) -> None:
    """Are tags counted per question over graded submissions, in the contract's order?"""
    freq = tag_frequencies(batch, pack=PACK)
    assert list(freq.index) == list(QUESTION_NAMES)
    assert list(freq.columns) == list(TAGS)
    assert freq.loc["q1a", "transposed"] == 2
    assert freq.loc["q1a", "wrong_shape"] == 1
    assert freq.loc["q1b", "transposed"] == 1
    assert freq.loc["q2a", "not_finite"] == 1
    assert (freq["missing"] == 1).all()  # the blank notebook, on every question
    expected = sum(len(e["tags"]) for r in batch for e in r["questions"].values())
    assert freq.to_numpy().sum() == expected


def test_tag_frequencies_skip_ungraded_and_keep_unknown_tags() -> None:
    """Are non-graded results ignored, a repeated tag counted once, and unknown tags kept?"""
    odd = graded("zed", {"q3": ["scaled", "scaled", "new_tag"]})
    timeout = graded("tim", {"q3": ["timeout"]}) | {"status": "timeout"}
    freq = tag_frequencies([odd, timeout], pack=PACK)
    assert list(freq.columns)[-1] == "new_tag"
    assert freq.loc["q3", "scaled"] == 1
    assert freq.loc["q3", "new_tag"] == 1
    assert freq["timeout"].sum() == 0


def test_tag_frequencies_of_nothing_is_all_zero() -> None:
    """Does an empty batch give a zero table of the full shape?"""
    freq = tag_frequencies([], pack=PACK)
    assert freq.shape == (len(QUESTION_NAMES), len(TAGS))
    assert freq.to_numpy().sum() == 0


def test_malformed_tags_raise() -> None:
    """Is a result whose tags are not a list of strings a ReportError naming it?"""
    bad = graded("ann")
    bad["questions"]["q1a"]["tags"] = "transposed"
    with pytest.raises(ReportError, match="'ann'.*q1a"):
        tag_frequencies([bad], pack=PACK)


# --- the HTML ---------------------------------------------------------------------------------


def test_report_tag_table_matches_the_results(batch: list[dict], tmp_path: Path) -> None:
    """Does the report's tag table list every tag with its hint and the counts of the results?"""
    path = write_report(collate(batch, pack=PACK), batch, tmp_path, pack=PACK)
    assert path == tmp_path / "report.html"
    rows = table_with(parse(path.read_text(encoding="utf-8")), "tag", "hint")
    header, body = rows[0], rows[1:]
    assert header == ["tag", "hint", *QUESTION_NAMES, "all"]
    assert sorted(r[0] for r in body) == sorted(TAGS)
    freq = tag_frequencies(batch, pack=PACK)
    for tag, hint, *counts in body:
        assert hint == TAGS[tag]
        assert [int(c) for c in counts] == [*freq[tag], freq[tag].sum()], tag
    totals = [int(r[-1]) for r in body]
    assert totals == sorted(totals, reverse=True)  # most frequent first


def test_report_has_figures_stats_and_statuses(batch: list[dict]) -> None:
    """Does the report hold the three figures, the per-question table and the status counts?"""
    page = render_report(collate(batch, pack=PACK), batch, title="Exercise 2", pack=PACK)
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
    q1a = next(r for r in questions if r[0] == "q1a")
    # ann, dee, eve right; bob, cy, fay wrong: mean 0.5 of 1 point, half at full marks.
    assert q1a[2:6] == ["1", "0.50", "50%", "50%"]
    assert q1a[6] == "transposed (2)"
    attention = table_with(parsed, "student", "status")
    assert [r[:2] for r in attention[1:]] == [["gus", "invalid"], ["hal", "error"]]
    assert "grader crashed: RuntimeError(&#x27;boom&#x27;)" in page


def test_report_is_self_contained(batch: list[dict]) -> None:
    """Does the report load nothing from outside: no URLs, scripts, links or external images?"""
    page = render_report(collate(batch, pack=PACK), batch, pack=PACK)
    assert "http" not in page
    assert 'src="//' not in page
    for needle in ("<script", "<link", "<img", "<iframe", "@import", "url(http"):
        assert needle not in page.lower()
    # Every in-page reference points at an id defined in the page (the figures have none).
    ids = set(re.findall(r'\bid="([^"]+)"', page))
    refs = set(re.findall(r'(?:href="#|url\(#)([^")]+)', page))
    assert refs <= ids
    assert len(re.findall(r'\bid="', page)) == len(ids)  # ids unique across the figures


def test_html_special_characters_are_escaped() -> None:
    """Are the title and student ids escaped, so they cannot inject markup?"""
    results = [empty_result("<b>x&y<b>", "invalid", "bad <script>", pack=PACK)]
    page = render_report(collate(results, pack=PACK), results, title="A <i>&</i>", pack=PACK)
    assert "<b>x" not in page and "<script" not in page and "<i>" not in page
    assert "&lt;b&gt;x&amp;y&lt;b&gt;" in page


def test_report_is_deterministic(batch: list[dict], tmp_path: Path) -> None:
    """Do two runs give byte-identical HTML, whatever matplotlib style the caller has set?"""
    first = write_report(collate(batch, pack=PACK), batch, tmp_path / "a", pack=PACK).read_bytes()
    with mpl.rc_context({"font.size": 20, "axes.facecolor": "black", "svg.hashsalt": None}):
        second = write_report(
            collate(batch, pack=PACK), batch, tmp_path / "b", pack=PACK
        ).read_bytes()
    assert first == second


# --- edge cases ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("results", "figures", "message"),
    [
        ([], 0, "No graded submissions"),
        ([empty_result("gus", "invalid", "not a notebook", pack=PACK)], 0, "No graded submissions"),
        ([graded("ann")], 2, "No diagnosis tags: no mistakes found."),
        ([blank("a"), blank("b"), blank("c")], 3, "3 graded submission"),
    ],
    ids=["nothing", "only-invalid", "single-correct", "all-blank"],
)
def test_edge_cases_render(results: list[dict], figures: int, message: str) -> None:
    """Does the report render with no graded submissions, a single one, or only blanks?"""
    table = collate(results, pack=PACK)
    page = render_report(table, results, pack=PACK)
    assert parse(page).svgs == figures
    assert message in page
    assert not re.search(r">\s*nan%?\s*<", page, flags=re.IGNORECASE)
    assert summary_lines(table, results, pack=PACK)


def test_roster_students_without_submission_are_listed() -> None:
    """Are roster students who submitted nothing counted as missing and listed?"""
    results = [graded("ann")]
    table = collate(results, roster=pd.DataFrame({"student": ["ann", "zoe"]}), pack=PACK)
    rows = table_with(parse(render_report(table, results, pack=PACK)), "student", "status")
    assert rows[1:] == [["zoe", "missing", "on the roster, nothing submitted"]]


def test_manual_overrides_are_listed() -> None:
    """Are manual overrides shown as such, with the autograded points and the comment?"""
    result = graded("ann", {"q3": ["scaled"]})
    entry = result["questions"]["q3"]
    entry["override"] = {"points": 2.5, "comment": "slip <ok>", "autograded": entry["score"]}
    entry["score"] = 2.5
    result["total"] += 2.5
    page = render_report(collate([result], pack=PACK), [result], pack=PACK)
    rows = table_with(parse(page), "student", "question")
    assert rows[1:] == [["ann", "q3", "0", "2.5", "slip <ok>"]]
    assert "No manual overrides." in render_report(
        collate([graded("bob")], pack=PACK), [graded("bob")], pack=PACK
    )


def test_a_table_without_gradebook_columns_is_refused(tmp_path: Path) -> None:
    """Is a DataFrame that is not a gradebook a ReportError naming the missing columns?"""
    with pytest.raises(ReportError, match="lacks column.*q1a"):
        write_report(pd.DataFrame({"student": ["a"]}), [], tmp_path, pack=PACK)


# --- a large class ---------------------------------------------------------------------------


def test_report_of_10000_submissions_stays_small_and_readable() -> None:
    """At 10,000 submissions (500 not graded, 300 overrides), does the report keep its sections
    and figures, summarise the long lists instead of listing every student, link to
    gradebook.csv, and stay under 600 KB (without grading: results built as the engines do)?"""
    results = []
    for i in range(10_000):
        student = f"s{i:05d}"
        if i % 20 == 7:
            kind = ("error", "timeout", "invalid")[i % 3]
            results.append(empty_result(student, kind, f"{kind}: reason {i % 4}", pack=PACK))
            continue
        result = graded(student, {"q3": ["scaled"]} if i % 3 else {"q1a": ["transposed"]})
        if i % 33 == 0:
            entry = result["questions"]["q3"]
            entry["override"] = {"points": 2.0, "comment": "ok", "autograded": entry["score"]}
            result["total"] += 2.0 - entry["score"]
            entry["score"] = 2.0
        results.append(result)
    page = render_report(collate(results, pack=PACK), results, pack=PACK)
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


def test_summary_lines(batch: list[dict]) -> None:
    """Do the summary lines give statuses, totals and each question's mean and top tags?"""
    lines = summary_lines(collate(batch, pack=PACK), batch, pack=PACK)
    assert lines[0] == "submissions: 8 (graded 6, error 1, invalid 1)"
    assert lines[1].startswith("total (graded): mean ")
    q1a = next(line for line in lines if line.startswith("q1a"))
    assert "mean 0.50/1" in q1a and "50%" in q1a and "transposed 2" in q1a
    assert len(lines) == 2 + len(QUESTION_NAMES)


def test_summary_lines_without_graded_submissions() -> None:
    """Does the summary say so when nothing was graded?"""
    results = [empty_result("gus", "invalid", "x", pack=PACK)]
    assert summary_lines(collate(results, pack=PACK), results, pack=PACK) == [
        "submissions: 1 (invalid 1)",
        "no graded submissions: nothing to summarise",
    ]


# --- a real browser ------------------------------------------------------------------------------


@pytest.mark.browser
def test_report_renders_in_headless_chromium(batch: list[dict], tmp_path: Path) -> None:
    """Does a real headless Chromium render the report offline to a non-blank page with plots?"""
    report = write_report(collate(batch, pack=PACK), batch, tmp_path / "out", pack=PACK)
    shot = tmp_path / "shot.png"
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={shot}",
        "--window-size=1200,2000",
        report.resolve().as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
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
