"""Tests for the course gradebook (autograder/course.py, autograder/course_report.py).

Exercise 2 is graded for real (judge engine, through grade()). The second assignment is a small
synthetic folder ("toy", two questions) written in the format grade writes (results through the
kit's writer, the manifest through manifest.py), because today the kit grades one pack only; the
end-to-end test with two real packs is at the bottom and runs once a second pack exists.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import write_notebooks

from autograder.cli import main
from autograder.course import CourseError, course, parse_weights
from autograder.course_report import persistent_misconceptions, tag_summary
from autograder.gradebook import write_results
from autograder.grading import grade
from autograder.manifest import (
    MANIFEST_NAME,
    AssignmentInfo,
    QuestionInfo,
    make_manifest,
    write_manifest,
)
from autograder.samples import CORRECT, MISTAKES, fill

GOLDEN = Path(__file__).parent / "golden"
CHROMIUM = Path("/usr/bin/chromium")
ROSTER = (
    "student,name,email,canvas_id\n"
    "ann,Ann Lee,ann@uni.example,101\n"
    "bob,Bob Ray,bob@uni.example,102\n"
    "cy,Cy Noh,cy@uni.example,103\n"
    "dee,Dee Oak,dee@uni.example,104\n"
    "eve,Eve Sun,eve@uni.example,105\n"
    "fay,Fay Hill,fay@uni.example,106\n"
    "gus,Gus Moe,gus@uni.example,107\n"
)
TOY = AssignmentInfo(
    name="toy",
    title="Toy Sheet",
    questions=(QuestionInfo("t1", "3-1", 2.0), QuestionInfo("t2", "3-2", 3.0)),
)


def mistake(question: str, tag: str) -> dict[str, str]:
    return {question: next(src for q, t, src in MISTAKES if q == question and t == tag)}


@pytest.fixture(scope="module")
def primer(built, template, tmp_path_factory) -> Path:
    """Exercise 2 graded by the judge: right, two transposed answers, blank, ∂L/∂ŷ and a scaled
    minimiser, a scaled Jacobian, a broken file; eve (on the roster) submitted nothing."""
    root = tmp_path_factory.mktemp("primer")
    notebooks = {
        "ann": fill(template, CORRECT),
        "bob": fill(
            template, CORRECT | mistake("q1a", "transposed") | mistake("q1d", "transposed")
        ),
        "cy": template,
        "dee": fill(template, CORRECT | mistake("q2b", "dL_dyhat") | mistake("q3", "scaled")),
        "fay": fill(template, CORRECT | mistake("q1c", "scaled")),
    }
    subs = write_notebooks(root / "subs", notebooks)
    (subs / "gus.ipynb").write_text('{"cells": [ not json', encoding="utf-8")
    roster = root / "roster.csv"
    roster.write_text(ROSTER, encoding="utf-8")
    grade(submissions=subs, out=root / "out", build_dir=built.out, jobs=2, roster=roster)
    return root / "out"


def toy_result(student: str, status: str, scores: dict[str, tuple[float, list[str]]]) -> dict:
    """A result dict in the results/<student>.json format."""
    questions = {
        q.id: {
            "score": scores.get(q.id, (0.0, []))[0],
            "possible": q.points,
            "tags": scores.get(q.id, (0.0, []))[1],
            "feedback": "",
        }
        for q in TOY.questions
    }
    total = math.fsum(entry["score"] for entry in questions.values())
    return {
        "student": student,
        "status": status,
        "total": total,
        "possible": TOY.total_points,
        "questions": questions,
    }


TOY_RESULTS = [
    toy_result("ann", "graded", {"t1": (2, []), "t2": (3, [])}),
    toy_result("bob", "graded", {"t1": (2, []), "t2": (0, ["transposed", "wrong_value"])}),
    toy_result("dee", "graded", {"t1": (0, ["scaled", "missing"]), "t2": (3, [])}),
    toy_result("eve", "graded", {"t1": (1.5, ["edge_case"]), "t2": (3, [])}),
    toy_result("fay", "invalid", {}),
    toy_result("gus", "graded", {"t1": (2, []), "t2": (2.25, ["not_stable"])}),
]
"""cy submitted nothing for the toy sheet."""


def write_toy(out: Path, *, results=TOY_RESULTS, roster: str | None = ROSTER, info=TOY) -> Path:
    """A graded folder of the toy assignment, laid out as grade lays it out."""
    write_results(results, out)
    people = pd.read_csv(pd.io.common.StringIO(roster), dtype=str) if roster else None
    rows = []
    for r in results:
        row = {"student": r["student"]}
        row |= {q.id: float(r["questions"][q.id]["score"]) for q in info.questions}
        row |= {"total": r["total"], "percent": round(100 * r["total"] / info.total_points, 2)}
        rows.append(row | {"status": r["status"]})
    table = pd.DataFrame(rows)
    if people is not None:
        absent = [s for s in people["student"] if s not in set(table["student"])]
        zeros = {q.id: 0.0 for q in info.questions} | {"total": 0.0, "percent": 0.0}
        table = pd.concat(
            [table, pd.DataFrame([{"student": s, **zeros, "status": "missing"} for s in absent])]
        )
        table = table.merge(people, on="student", how="left")
        table["on_roster"] = table["student"].isin(set(people["student"]))
    table = table.sort_values("student")
    table.to_csv(out / "gradebook.csv", index=False, lineterminator="\n")
    write_manifest(make_manifest(assignment=info, roster=None, engine="judge"), out)
    return out


@pytest.fixture()
def toy(tmp_path: Path) -> Path:
    return write_toy(tmp_path / "toy")


@pytest.fixture()
def roster(tmp_path: Path) -> Path:
    path = tmp_path / "course-roster.csv"
    path.write_text(ROSTER, encoding="utf-8")
    return path


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


# --- course.csv -----------------------------------------------------------------------------------


def test_course_csv_matches_the_golden_file(primer: Path, toy: Path, tmp_path: Path) -> None:
    """Is course.csv, for a real Exercise 2 folder and the toy folder, exactly the golden file
    (fixed columns, missing as 0, equal weights)?"""
    run = course(folders=[primer, toy], out=tmp_path / "course")
    written = (tmp_path / "course" / "course.csv").read_text(encoding="utf-8")
    assert written == (GOLDEN / "course.csv").read_text(encoding="utf-8")
    assert run.paths["csv"] == tmp_path / "course" / "course.csv"


def test_course_csv_columns_and_arithmetic(primer: Path, toy: Path, tmp_path: Path) -> None:
    """Are the columns in the fixed order, every roster student present, a missing assignment
    0 points with status missing, and the weighted percent the weighted mean of the percents?"""
    course(folders=[primer, toy], out=tmp_path / "c", weights="math_primer=1,toy=3")
    table = pd.read_csv(tmp_path / "c" / "course.csv", dtype={"student": str})
    assert list(table.columns) == [
        "student",
        *("math_primer_points", "math_primer_percent", "math_primer_status"),
        *("toy_points", "toy_percent", "toy_status"),
        "weighted_percent",
        "on_roster",
    ]
    assert list(table["student"]) == ["ann", "bob", "cy", "dee", "eve", "fay", "gus"]
    rows = table.set_index("student")
    primer_book = pd.read_csv(primer / "gradebook.csv").set_index("student")
    for student, row in rows.iterrows():
        assert row["math_primer_points"] == pytest.approx(primer_book.loc[student, "total"])
        assert row["math_primer_status"] == primer_book.loc[student, "status"]
        expected = (row["math_primer_percent"] + 3 * row["toy_percent"]) / 4
        assert row["weighted_percent"] == pytest.approx(expected, abs=0.01)
    assert rows.loc["eve", "math_primer_status"] == "missing"  # on the roster, no submission
    assert rows.loc["eve", "math_primer_points"] == 0
    assert rows.loc["cy", "toy_status"] == "missing"
    assert rows.loc["eve", "weighted_percent"] == pytest.approx(3 * 90 / 4)  # 4.5 of 5 on toy
    assert rows.loc["gus", "math_primer_status"] == "invalid"
    assert rows["on_roster"].all()


def test_a_student_graded_in_one_folder_only_has_a_row(primer: Path, tmp_path: Path) -> None:
    """Without --roster, is a student graded in one folder only (toy graded without a roster)
    still a row, missing elsewhere, and flagged off the roster Exercise 2 was graded with?"""
    results = [*TOY_RESULTS, toy_result("zed", "graded", {"t1": (2, [])})]
    toy = write_toy(tmp_path / "toy", roster=None, results=results)
    run = course(folders=[primer, toy], out=tmp_path / "c")
    table = run.table.set_index("student")
    assert not table.loc["zed", "on_roster"] and table.loc["ann", "on_roster"]
    assert table.loc["zed", "math_primer_status"] == "missing"
    assert table.loc["zed", "toy_points"] == 2
    assert table.loc["zed", "weighted_percent"] == pytest.approx(20.0)


# --- LMS imports --------------------------------------------------------------------------------


def test_canvas_import_has_one_column_per_assignment(primer, toy, roster, tmp_path) -> None:
    """Does course-canvas.csv have Canvas's identity columns then one column per assignment
    (its title), with only students whose every assignment can be posted?"""
    run = course(folders=[primer, toy], out=tmp_path / "c", roster=roster)
    rows = read_csv(run.paths["canvas"])
    identity = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert rows[0] == [*identity, "Math Primer", "Toy Sheet"]
    body = {r[3]: r for r in rows[1:]}
    # cy: toy missing; eve: math_primer missing; fay: toy invalid; gus: math_primer invalid.
    assert sorted(body) == ["ann", "bob", "dee"]
    assert body["ann"] == ["Ann Lee", "101", "", "ann", "", "12", "5"]
    assert set(run.not_posted) == {"cy", "eve", "fay", "gus"}
    assert run.not_posted["fay"] == "toy invalid"
    moodle = read_csv(run.paths["moodle"])
    assert moodle[0] == ["ID number", "Email address", "Math Primer", "Toy Sheet"]
    assert [r[:2] for r in moodle[1:]] == [
        ["ann", "ann@uni.example"],
        ["bob", "bob@uni.example"],
        ["dee", "dee@uni.example"],
    ]


def test_moodle_leaves_out_students_off_the_roster(primer, roster, tmp_path) -> None:
    """Is a student graded but not on the course roster kept in course.csv and the Canvas file
    (flagged) but left out of the Moodle file, which would abort on them?"""
    toy = write_toy(
        tmp_path / "toy", roster=None, results=[toy_result("zed", "graded", {"t1": (2, [])})]
    )
    # zed is off the roster and has no Exercise 2 submission: give him one in a copy of primer.
    copy = tmp_path / "primer"
    shutil.copytree(primer, copy)
    book = pd.read_csv(copy / "gradebook.csv", dtype=str, keep_default_na=False)
    zed = book[book["student"] == "ann"].assign(student="zed", on_roster="False")
    zed = zed.assign(name="", email="", canvas_id="")
    pd.concat([book, zed]).to_csv(copy / "gradebook.csv", index=False, lineterminator="\n")
    ann = json.loads((copy / "results" / "ann.json").read_text())
    (copy / "results" / "zed.json").write_text(json.dumps(ann | {"student": "zed"}))
    run = course(folders=[copy, toy], out=tmp_path / "c", roster=roster)
    table = run.table.set_index("student")
    assert not table.loc["zed", "on_roster"]
    assert "zed" in {r[3] for r in read_csv(run.paths["canvas"])[1:]}
    assert "zed" not in {r[0] for r in read_csv(run.paths["moodle"])[1:]}


def test_csv_cells_cannot_start_a_formula(primer, toy, tmp_path) -> None:
    """Opened in a spreadsheet, can a roster name like =HYPERLINK(...) not run as a formula?"""
    evil = tmp_path / "roster.csv"
    evil.write_text(ROSTER.replace("Ann Lee", "=cmd|' /C calc'!A0"), encoding="utf-8")
    run = course(folders=[primer, toy], out=tmp_path / "c", roster=evil)
    for path in (run.paths["csv"], run.paths["canvas"]):
        cells = [cell for row in read_csv(path) for cell in row]
        assert not [c for c in cells if c[:1] in ("=", "+", "-", "@")], path
        assert "'=cmd|' /C calc'!A0" in cells


# --- validation ---------------------------------------------------------------------------------


def _unmanifested(primer: Path, tmp: Path) -> Path:
    copy = tmp / "old"
    shutil.copytree(primer, copy)
    (copy / MANIFEST_NAME).unlink()
    return copy


def _incomplete(primer: Path, tmp: Path) -> Path:
    copy = tmp / "half"
    shutil.copytree(primer, copy)
    (copy / "results" / "bob.json").unlink()
    return copy


def _other_roster(tmp: Path) -> Path:
    path = tmp / "short.csv"
    path.write_text("\n".join(ROSTER.splitlines()[:-1]) + "\n", encoding="utf-8")  # no gus
    return path


def _clashing_roster(tmp: Path) -> Path:
    path = tmp / "clash.csv"
    path.write_text("student,weighted_percent\nann,1\n", encoding="utf-8")
    return path


CASES = {
    "missing-folder": (lambda p, t, tmp: [tmp / "nope", t], "is not a folder"),
    "ungraded-folder": (lambda p, t, tmp: [tmp, t], "is not graded (no gradebook.csv)"),
    "no-manifest": (lambda p, t, tmp: [_unmanifested(p, tmp), t], "has no assignment.json"),
    "incomplete": (lambda p, t, tmp: [_incomplete(p, tmp), t], "bob is in gradebook.csv but"),
    "same-folder": (lambda p, t, tmp: [p, t, p], "is given twice"),
    "duplicate-assignment": (
        lambda p, t, tmp: [p, t, shutil.copytree(t, tmp / "toy2")],
        "assignment toy is given twice",
    ),
    "roster-mismatch": (
        lambda p, t, tmp: [p, t, "--roster", _other_roster(tmp)],
        "graded with a roster listing gus, not in --roster",
    ),
    "rosters-differ": (
        lambda p, t, tmp: [p, write_toy(tmp / "t3", roster="\n".join(ROSTER.splitlines()[:-1]))],
        "the rosters of math_primer and toy differ (gus on one only)",
    ),
    "identities-differ": (
        lambda p, t, tmp: [p, write_toy(tmp / "t4", roster=ROSTER.replace("bob@uni", "bobby@uni"))],
        "the rosters disagree on bob's email: 'bob@uni.example' (math_primer) vs "
        "'bobby@uni.example' (toy)",
    ),
    "roster-columns-clash": (
        lambda p, t, tmp: [p, t, "--roster", _clashing_roster(tmp)],
        "has column(s) weighted_percent that clash with course.csv's columns",
    ),
    "weight-unknown": (
        lambda p, t, tmp: [p, t, "--weights", "math_primer=1,toy=1,backprop=2"],
        "--weights names backprop, not among the assignments (math_primer, toy)",
    ),
    "weight-negative": (
        lambda p, t, tmp: [p, t, "--weights", "math_primer=1,toy=-2"],
        "the weight of toy is negative (-2)",
    ),
    "weight-nan": (
        lambda p, t, tmp: [p, t, "--weights", "math_primer=1,toy=nan"],
        "the weight of toy ('nan') is not a number",
    ),
    "weight-text": (
        lambda p, t, tmp: [p, t, "--weights", "math_primer=1,toy=heavy"],
        "the weight of toy ('heavy') is not a number",
    ),
    "weight-missing": (
        lambda p, t, tmp: [p, t, "--weights", "math_primer=2"],
        "--weights gives no weight for toy",
    ),
    "weight-zero": (
        lambda p, t, tmp: [p, t, "--weights", "math_primer=0,toy=0"],
        "--weights add up to 0",
    ),
    "weight-syntax": (
        lambda p, t, tmp: [p, t, "--weights", "math_primer:1"],
        "'math_primer:1' is not NAME=WEIGHT",
    ),
    "weight-twice": (
        lambda p, t, tmp: [p, t, "--weights", "toy=1,toy=2"],
        "--weights names toy twice",
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_is_one_error_line_and_writes_nothing(primer, toy, tmp_path, case) -> None:
    """Does each bad input (missing, ungraded or unfinished folders, duplicates, rosters that
    disagree, bad weights) end with one 'error:' line, exit code 2, and no course folder?"""
    make, message = CASES[case]
    args = make(primer, toy, tmp_path)
    out = tmp_path / "course"
    result = invoke("course", *args, "--out", out)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert message in lines[0]
    assert not out.exists()


def test_an_out_folder_that_is_an_input_is_refused(primer, toy) -> None:
    """Is writing the course into one of the graded folders refused?"""
    with pytest.raises(CourseError, match="is one of the graded folders"):
        course(folders=[primer, toy], out=toy)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("a=1,b=2", {"a": 1.0, "b": 2.0}), (" a = 0.5 , b=0 ", {"a": 0.5, "b": 0.0})],
)
def test_weights_parse(text: str, expected: dict) -> None:
    """Are well-formed weights parsed, spaces allowed and zero accepted?"""
    assert parse_weights(text) == expected


# --- persistent misconceptions ----------------------------------------------------------------


def test_persistent_misconceptions_table(primer: Path, toy: Path) -> None:
    """Are students tagged with the same misconception on both sheets listed with where, and are
    one-sheet tags and 'missing' left out?"""
    from autograder.course import load_folder

    folders = [load_folder(primer), load_folder(toy)]
    table = persistent_misconceptions(folders)
    assert list(table.columns) == ["student", "tag", "sheets", "where"]
    assert table.to_dict("records") == [
        {"student": "dee", "tag": "scaled", "sheets": 2, "where": "math_primer: q3; toy: t1"},
        {
            "student": "bob",
            "tag": "transposed",
            "sheets": 2,
            "where": "math_primer: q1a, q1d; toy: t2",
        },
    ]
    summary = tag_summary(folders)
    assert list(summary.columns) == ["math_primer", "toy", "persistent"]
    assert summary.loc["transposed"].to_dict() == {"math_primer": 1, "toy": 1, "persistent": 1}
    assert summary.loc["scaled"].to_dict() == {"math_primer": 2, "toy": 1, "persistent": 1}
    assert summary.loc["edge_case"].to_dict() == {"math_primer": 0, "toy": 1, "persistent": 0}
    assert "missing" not in summary.index  # cy's blank notebook: no answer, no misconception
    assert list(summary.index[:2]) == ["scaled", "transposed"]  # most persistent, then frequent


# --- course.html --------------------------------------------------------------------------------


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.svgs = 0
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "svg":
            self.svgs += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_course_html_shows_distributions_and_persistent_tags(primer, toy, tmp_path) -> None:
    """Does course.html hold the distributions and the persistent-misconception tables, load
    nothing from outside, and come out byte-identical on a rerun?"""
    first = course(folders=[primer, toy], out=tmp_path / "a").paths["html"].read_text()
    second = course(folders=[primer, toy], out=tmp_path / "b").paths["html"].read_text()
    assert first == second
    for needle in ("http", "<script", "<link", "<img", "<iframe", "@import"):
        assert needle not in first
    page = _Page()
    page.feed(first)
    assert page.svgs == 2  # the distributions and the persistent tags
    persistent = next(t for t in page.tables if t[0][:2] == ["student", "tag"])
    assert persistent[1:] == [
        ["dee", "scaled", "2", "math_primer: q3; toy: t1"],
        ["bob", "transposed", "2", "math_primer: q1a, q1d; toy: t2"],
    ]
    assignments = next(t for t in page.tables if t[0][0] == "assignment" and "weight" in t[0])
    assert [r[:4] for r in assignments[1:]] == [
        ["math_primer", "Math Primer", "12", "50%"],
        ["toy", "Toy Sheet", "5", "50%"],
    ]


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
)
def test_course_html_renders_in_headless_chromium(primer, toy, tmp_path) -> None:
    """Does a real headless Chromium render course.html offline, with its plots on screen?"""
    page = course(folders=[primer, toy], out=tmp_path / "c").paths["html"]
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
        "--window-size=1200,1800",
        page.resolve().as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert shot.exists(), f"no screenshot (exit {done.returncode}): {done.stderr[-2000:]}"
    pixels = mpimg.imread(shot)[..., :3]
    assert pixels.shape[:2] == (1800, 1200)
    blue = np.array([0x3A, 0x6E, 0xA5]) / 255
    orange = np.array([0xD9, 0x82, 0x2B]) / 255
    for colour in (blue, orange):  # assignment histograms; weighted percent and persistent bars
        close = np.abs(pixels - colour).max(axis=-1) < 0.03
        assert close.sum() > 2_000, f"too few pixels of colour {colour}"
    assert (pixels.max(axis=-1) < 0.25).sum() > 2_000  # text


# --- the command line ---------------------------------------------------------------------------


def test_cli_course_writes_the_four_files(primer, toy, roster, tmp_path) -> None:
    """Does `course` write the four files, say where, and count statuses per assignment?"""
    out = tmp_path / "course"
    weights = "toy=1,math_primer=2"
    result = invoke("course", primer, toy, "--out", out, "--roster", roster, "--weights", weights)
    assert result.exit_code == 0, result.output
    for name in ("course.csv", "course-canvas.csv", "course-moodle.csv", "course.html"):
        assert (out / name).is_file()
        assert str(out / name) in result.output
    assert "math_primer: weight 2; graded 5, invalid 1, missing 1" in result.output
    assert "toy: weight 1; graded 5, invalid 1, missing 1" in result.output
    assert "not posted:  4 student(s)" in result.output
