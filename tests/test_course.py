"""Tests for the course gradebook (autograder/course.py, autograder/course_report.py).

Two assignments graded for real by the judge through grade(): Exercise 2 and the tiny fixture
pack (tests/fixtures/assignments/tiny), with a roster; the validation cases alter copies of these
folders or grade them again (from their caches) with other rosters. The end-to-end test at the
bottom grades the samples of two real course packs and merges them.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import matplotlib.image as mpimg
import nbformat
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from autograder import samples
from autograder.build import build
from autograder.cli import main
from autograder.course import CourseError, course, load_folder, parse_weights
from autograder.course_report import persistent_misconceptions, tag_summary
from autograder.grading import grade
from autograder.manifest import MANIFEST_NAME
from autograder.pack import registry
from helpers import (
    CHROMIUM,
    CORRECT,
    MISTAKES,
    TINY,
    HtmlTables,
    check_golden,
    chromium_screenshot,
    fill,
    write_notebooks,
)

GOLDEN = Path(__file__).parent / "golden"
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
"""zed submits both sheets but is not on the roster."""
TINY_SAMPLES = samples.load_samples(TINY)


def mistake(catalogue: list, question: str, tag: str) -> dict[str, str]:
    return {question: next(src for q, t, src in catalogue if q == question and t == tag)}


def _grade(subs: Path, out: Path, pack, build_dir: Path, roster: Path | None) -> Path:
    grade(submissions=subs, out=out, assignment=pack, build_dir=build_dir, jobs=2, roster=roster)
    return out


@pytest.fixture(scope="module")
def roster_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("roster") / "roster.csv"
    path.write_text(ROSTER, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def primer_run(built, template, roster_file, tmp_path_factory) -> dict:
    """Exercise 2 graded by the judge: right, two transposed answers, blank, ∂L/∂ŷ and a scaled
    minimiser, a scaled Jacobian, a broken file, zed (off the roster) right; eve submitted
    nothing."""
    root = tmp_path_factory.mktemp("primer")
    transposed = mistake(MISTAKES, "q1a", "transposed") | mistake(MISTAKES, "q1d", "transposed")
    notebooks = {
        "ann": fill(template, CORRECT),
        "bob": fill(template, CORRECT | transposed),
        "cy": template,
        "dee": fill(
            template,
            CORRECT | mistake(MISTAKES, "q2b", "dL_dyhat") | mistake(MISTAKES, "q3", "scaled"),
        ),
        "fay": fill(template, CORRECT | mistake(MISTAKES, "q1c", "scaled")),
        "zed": fill(template, CORRECT),
    }
    subs = write_notebooks(root / "subs", notebooks)
    (subs / "gus.ipynb").write_text('{"cells": [ not json', encoding="utf-8")
    args = {"subs": subs, "pack": "math_primer", "build_dir": built.out}
    return args | {"out": _grade(out=root / "out", roster=roster_file, **args)}


@pytest.fixture(scope="module")
def tiny_run(roster_file, tmp_path_factory) -> dict:
    """The tiny pack graded by the judge: right, a transposed backprop step, a scaled gradient,
    f(x) instead of the chain rule, a broken file, one question answered, zed right; cy submitted
    nothing."""
    root = tmp_path_factory.mktemp("tiny")
    tiny_build = build(out=root / "dist", pack=TINY)
    template = nbformat.read(str(tiny_build.student_notebook), as_version=4)
    right, catalogue = TINY_SAMPLES.correct, TINY_SAMPLES.mistakes

    def answers(extra: dict[str, str]) -> nbformat.NotebookNode:
        return samples.fill(template, right | extra, pack=TINY)

    notebooks = {
        "ann": answers({}),
        "bob": answers(mistake(catalogue, "p2", "transposed")),
        "dee": answers(mistake(catalogue, "p1", "scaled")),
        "eve": answers(mistake(catalogue, "p1", "missing_chain")),
        "gus": samples.fill(template, {"p1": right["p1"]}, pack=TINY),
        "zed": answers({}),
    }
    subs = write_notebooks(root / "subs", notebooks)
    (subs / "fay.ipynb").write_text("", encoding="utf-8")
    args = {"subs": subs, "pack": TINY, "build_dir": tiny_build.out}
    return args | {"out": _grade(out=root / "out", roster=roster_file, **args)}


@pytest.fixture()
def primer(primer_run: dict) -> Path:
    return primer_run["out"]


@pytest.fixture()
def tiny(tiny_run: dict) -> Path:
    return tiny_run["out"]


@pytest.fixture()
def roster(roster_file: Path) -> Path:
    return roster_file


def regrade(run: dict, tmp: Path, *, roster: str | None) -> Path:
    """The folder graded again (from a copy of its cache) with another roster, or none."""
    out = tmp / f"regraded-{len(list(tmp.glob('regraded-*')))}"
    shutil.copytree(run["out"], out)
    path = None
    if roster is not None:
        path = tmp / f"roster-{out.name}.csv"
        path.write_text(roster, encoding="utf-8")
    return _grade(run["subs"], out, run["pack"], run["build_dir"], path)


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


# --- course.csv -----------------------------------------------------------------------------------


def test_course_csv_matches_the_golden_file(
    primer: Path, tiny: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Is course.csv, for Exercise 2 and the tiny sheet graded for real, exactly the golden file
    (fixed columns, missing as 0, equal weights)?"""
    run = course(folders=[primer, tiny], out=tmp_path / "course")
    check_golden(request, GOLDEN / "course.csv", (tmp_path / "course" / "course.csv").read_bytes())
    assert run.paths["csv"] == tmp_path / "course" / "course.csv"


def test_course_csv_columns_and_arithmetic(primer: Path, tiny: Path, tmp_path: Path) -> None:
    """Are the columns in the fixed order, every roster student present, a missing assignment
    0 points with status missing, and the weighted percent the weighted mean of the percents?"""
    course(folders=[primer, tiny], out=tmp_path / "c", weights="math_primer=1,tiny=3")
    table = pd.read_csv(tmp_path / "c" / "course.csv", dtype={"student": str})
    assert list(table.columns) == [
        "student",
        *("math_primer_points", "math_primer_percent", "math_primer_status"),
        *("tiny_points", "tiny_percent", "tiny_status"),
        "weighted_percent",
        "on_roster",
    ]
    assert list(table["student"]) == ["ann", "bob", "cy", "dee", "eve", "fay", "gus", "zed"]
    rows = table.set_index("student")
    for folder in (primer, tiny):
        book = pd.read_csv(folder / "gradebook.csv").set_index("student")
        name = json.loads((folder / MANIFEST_NAME).read_text())["assignment"]
        assert (rows[f"{name}_points"] == book["total"].reindex(rows.index)).all()
        assert (rows[f"{name}_status"] == book["status"].reindex(rows.index)).all()
    expected = (rows["math_primer_percent"] + 3 * rows["tiny_percent"]) / 4
    assert np.allclose(rows["weighted_percent"], expected, atol=0.01)
    assert rows.loc["eve", "math_primer_status"] == "missing"  # on the roster, no submission
    assert rows.loc["eve", "math_primer_points"] == 0
    assert rows.loc["cy", "tiny_status"] == "missing"
    # eve: 2 of tiny's 4 possible points (3 autograded + 1 for the derivation, not yet marked)
    assert rows.loc["eve", "weighted_percent"] == pytest.approx(3 * 50 / 4, abs=0.01)
    assert rows.loc["gus", "math_primer_status"] == "invalid"
    assert list(rows["on_roster"]) == [True] * 7 + [False]


def test_without_rosters_there_is_no_roster_column(primer_run, tiny_run, tmp_path) -> None:
    """Graded without rosters, is every graded student a row (missing where they did not
    submit) and is there no on_roster column?"""
    primer = regrade(primer_run, tmp_path, roster=None)
    tiny = regrade(tiny_run, tmp_path, roster=None)
    run = course(folders=[primer, tiny], out=tmp_path / "c")
    assert list(run.table.columns)[-1] == "weighted_percent"
    table = run.table.set_index("student")
    assert sorted(table.index) == ["ann", "bob", "cy", "dee", "eve", "fay", "gus", "zed"]
    assert table.loc["eve", "math_primer_status"] == "missing"  # not graded there at all
    assert table.loc["cy", "tiny_status"] == "missing"


# --- LMS imports --------------------------------------------------------------------------------


def test_lms_imports_have_one_column_per_assignment(primer, tiny, roster, tmp_path) -> None:
    """Do the Canvas and Moodle imports have their identity columns then one column per
    assignment (its title), with only students whose every assignment can be posted, and is a
    student off the roster left out of the Moodle file only?"""
    run = course(folders=[primer, tiny], out=tmp_path / "c", roster=roster)
    rows = read_csv(run.paths["canvas"])
    identity = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert rows[0] == [*identity, "Math Primer", "Tiny Sheet"]
    body = {r[3]: r for r in rows[1:]}
    # cy: tiny missing; eve: math_primer missing; fay: tiny invalid; gus: math_primer invalid.
    assert sorted(body) == ["ann", "bob", "dee", "zed"]
    assert body["ann"] == ["Ann Lee", "101", "", "ann", "", "12", "3"]
    assert body["bob"][5:] == ["9", "2"]
    assert body["zed"] == ["zed", "", "", "zed", "", "12", "3"]
    assert set(run.not_posted) == {"cy", "eve", "fay", "gus", "zed"}
    assert run.not_posted["fay"] == "tiny invalid"
    assert run.not_posted["eve"] == "math_primer missing"
    moodle = read_csv(run.paths["moodle"])
    assert moodle[0] == ["ID number", "Email address", "Math Primer", "Tiny Sheet"]
    assert moodle[1:] == [
        ["ann", "ann@uni.example", "12", "3"],
        ["bob", "bob@uni.example", "9", "2"],
        ["dee", "dee@uni.example", "7", "2"],
    ]
    assert not run.table.set_index("student").loc["zed", "on_roster"]


def test_identity_columns_come_from_the_folders_without_roster(primer, tiny, tmp_path) -> None:
    """Without --roster, are the LMS identity columns taken from the folders' gradebooks?"""
    run = course(folders=[primer, tiny], out=tmp_path / "c")
    moodle = read_csv(run.paths["moodle"])
    assert moodle[1] == ["ann", "ann@uni.example", "12", "3"]


def test_csv_cells_cannot_start_a_formula(primer, tiny, tmp_path) -> None:
    """Opened in a spreadsheet, can a roster name like =cmd|...!A0 not run as a formula?"""
    evil = tmp_path / "roster.csv"
    evil.write_text(ROSTER.replace("Ann Lee", "=cmd|' /C calc'!A0"), encoding="utf-8")
    run = course(folders=[primer, tiny], out=tmp_path / "c", roster=evil)
    for path in (run.paths["csv"], run.paths["canvas"]):
        cells = [cell for row in read_csv(path) for cell in row]
        assert not [c for c in cells if c[:1] in ("=", "+", "-", "@")], path
        assert "'=cmd|' /C calc'!A0" in cells


# --- validation ---------------------------------------------------------------------------------


def _copy_without(folder: Path, tmp: Path, relative: str) -> Path:
    copy = tmp / f"copy-of-{folder.name}"
    shutil.copytree(folder, copy)
    (copy / relative).unlink()
    return copy


def _short_roster(tmp: Path) -> Path:
    path = tmp / "short.csv"
    path.write_text("\n".join(ROSTER.splitlines()[:-1]) + "\n", encoding="utf-8")  # no gus
    return path


def _clashing_roster(tmp: Path) -> Path:
    path = tmp / "clash.csv"
    path.write_text("student,weighted_percent\nann,1\n", encoding="utf-8")
    return path


CASES = {
    "missing-folder": (lambda r, tmp: [tmp / "nope", r["tiny"]], "is not a folder"),
    "ungraded-folder": (
        lambda r, tmp: [r["primer"], r["tiny_run"]["subs"]],
        "is not graded (no gradebook.csv)",
    ),
    "no-manifest": (
        lambda r, tmp: [_copy_without(r["primer"], tmp, MANIFEST_NAME), r["tiny"]],
        "has no assignment.json: it was graded before the kit wrote one",
    ),
    "incomplete": (
        lambda r, tmp: [_copy_without(r["primer"], tmp, "results/bob.json"), r["tiny"]],
        "is incomplete: bob is in gradebook.csv but has no bob.json",
    ),
    "same-folder": (lambda r, tmp: [r["primer"], r["tiny"], r["primer"]], "is given twice"),
    "duplicate-assignment": (
        lambda r, tmp: [r["primer"], r["tiny"], shutil.copytree(r["tiny"], tmp / "tiny2")],
        "assignment tiny is given twice",
    ),
    "roster-mismatch": (
        lambda r, tmp: [r["primer"], r["tiny"], "--roster", _short_roster(tmp)],
        "graded with a roster listing gus, not in --roster",
    ),
    "rosters-differ": (
        lambda r, tmp: [
            r["primer"],
            regrade(r["tiny_run"], tmp, roster="\n".join(ROSTER.splitlines()[:-1]) + "\n"),
        ],
        "the rosters of math_primer and tiny differ (gus on one only)",
    ),
    "identities-differ": (
        lambda r, tmp: [
            r["primer"],
            regrade(r["tiny_run"], tmp, roster=ROSTER.replace("bob@uni", "bobby@uni")),
        ],
        (
            "the rosters disagree on bob's email: 'bob@uni.example' (math_primer) vs "
            "'bobby@uni.example' (tiny)"
        ),
    ),
    "roster-columns-clash": (
        lambda r, tmp: [r["primer"], r["tiny"], "--roster", _clashing_roster(tmp)],
        "has column(s) weighted_percent that clash with course.csv's columns",
    ),
    "weight-unknown": (
        lambda r, tmp: [r["primer"], r["tiny"], "--weights", "math_primer=1,tiny=1,backprop=2"],
        "--weights names backprop, not among the assignments (math_primer, tiny)",
    ),
    "weight-negative": (
        lambda r, tmp: [r["primer"], r["tiny"], "--weights", "math_primer=1,tiny=-2"],
        "the weight of tiny is negative (-2)",
    ),
    "weight-nan": (
        lambda r, tmp: [r["primer"], r["tiny"], "--weights", "math_primer=1,tiny=nan"],
        "the weight of tiny ('nan') is not a number",
    ),
    "weight-text": (
        lambda r, tmp: [r["primer"], r["tiny"], "--weights", "math_primer=1,tiny=heavy"],
        "the weight of tiny ('heavy') is not a number",
    ),
    "weight-missing": (
        lambda r, tmp: [r["primer"], r["tiny"], "--weights", "math_primer=2"],
        "--weights gives no weight for tiny",
    ),
    "weight-zero": (
        lambda r, tmp: [r["primer"], r["tiny"], "--weights", "math_primer=0,tiny=0"],
        "--weights add up to 0",
    ),
    "weight-syntax": (
        lambda r, tmp: [r["primer"], r["tiny"], "--weights", "math_primer:1"],
        "'math_primer:1' is not NAME=WEIGHT",
    ),
    "weight-twice": (
        lambda r, tmp: [r["primer"], r["tiny"], "--weights", "tiny=1,tiny=2"],
        "--weights names tiny twice",
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_is_one_error_line_and_writes_nothing(
    primer_run, tiny_run, tmp_path, case
) -> None:
    """Does each bad input (missing, ungraded or unfinished folders, duplicates, rosters that
    disagree, bad weights) end with one 'error:' line, exit code 2, and no course folder?"""
    make, message = CASES[case]
    runs = {"primer": primer_run["out"], "tiny": tiny_run["out"], "tiny_run": tiny_run}
    args = make(runs, tmp_path)
    out = tmp_path / "course"
    result = invoke("course", *args, "--out", out)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert message in lines[0]
    assert not out.exists()


def test_an_out_folder_that_is_an_input_is_refused(primer, tiny) -> None:
    """Is writing the course into one of the graded folders refused?"""
    with pytest.raises(CourseError, match="is one of the graded folders"):
        course(folders=[primer, tiny], out=tiny)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("a=1,b=2", {"a": 1.0, "b": 2.0}), (" a = 0.5 , b=0 ", {"a": 0.5, "b": 0.0})],
)
def test_weights_parse(text: str, expected: dict) -> None:
    """Are well-formed weights parsed, spaces allowed and zero accepted?"""
    assert parse_weights(text) == expected


# --- persistent misconceptions ----------------------------------------------------------------


def test_persistent_misconceptions_table(primer: Path, tiny: Path) -> None:
    """Are students tagged with the same misconception on both sheets listed with where, and are
    one-sheet tags and 'missing' left out?"""
    folders = [load_folder(primer), load_folder(tiny)]
    table = persistent_misconceptions(folders)
    assert list(table.columns) == ["student", "tag", "sheets", "where"]
    both = "math_primer: q1a, q1d; tiny: p2"  # bob's transposed answers are also misshapen
    assert table.to_dict("records") == [
        {"student": "dee", "tag": "scaled", "sheets": 2, "where": "math_primer: q3; tiny: p1"},
        {"student": "bob", "tag": "transposed", "sheets": 2, "where": both},
        {"student": "bob", "tag": "wrong_shape", "sheets": 2, "where": both},
    ]
    summary = tag_summary(folders)
    assert list(summary.columns) == ["math_primer", "tiny", "persistent"]
    assert summary.loc["transposed"].to_dict() == {"math_primer": 1, "tiny": 1, "persistent": 1}
    assert summary.loc["scaled"].to_dict() == {"math_primer": 2, "tiny": 1, "persistent": 1}
    assert summary.loc["missing_chain"].to_dict() == {"math_primer": 0, "tiny": 1, "persistent": 0}
    assert "missing" not in summary.index  # cy's blank notebook: no answer, no misconception
    # Most persistent first, then most frequent, then by name.
    assert list(summary.index[:3]) == ["scaled", "transposed", "wrong_shape"]


# --- course.html --------------------------------------------------------------------------------


_Page = HtmlTables


def test_course_html_shows_distributions_and_persistent_tags(primer, tiny, tmp_path) -> None:
    """Does course.html hold the distributions and the persistent-misconception tables (with the
    packs' hints), load nothing from outside, and come out byte-identical on a rerun?"""
    first = course(folders=[primer, tiny], out=tmp_path / "a").paths["html"].read_text()
    second = course(folders=[primer, tiny], out=tmp_path / "b").paths["html"].read_text()
    assert first == second
    for needle in ("http", "<script", "<link", "<img", "<iframe", "@import"):
        assert needle not in first
    page = _Page()
    page.feed(first)
    assert page.svgs == 2  # the distributions and the persistent tags
    persistent = next(t for t in page.tables if t[0][:2] == ["student", "tag"])
    assert persistent[1:] == [
        ["dee", "scaled", "2", "math_primer: q3; tiny: p1"],
        ["bob", "transposed", "2", "math_primer: q1a, q1d; tiny: p2"],
        ["bob", "wrong_shape", "2", "math_primer: q1a, q1d; tiny: p2"],
    ]
    tags = {r[0]: r for r in next(t for t in page.tables if t[0][:2] == ["tag", "hint"])[1:]}
    assert tags["transposed"][1] == registry.load("math_primer").vocabulary["transposed"]
    assert tags["dL_dyhat"][1] == registry.load("math_primer").vocabulary["dL_dyhat"]
    assert tags["missing_chain"][1] == "(a tag of a pack this kit does not have)"  # tiny: a fixture
    assignments = next(t for t in page.tables if t[0][0] == "assignment" and "weight" in t[0])
    assert [r[:4] for r in assignments[1:]] == [
        ["math_primer", "Math Primer", "12", "50%"],
        ["tiny", "Tiny Sheet", "4", "50%"],  # 3 autograded + 1 derivation point
    ]


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
)
def test_course_html_renders_in_headless_chromium(primer, tiny, tmp_path) -> None:
    """Does a real headless Chromium render course.html offline, with its plots on screen?"""
    page = course(folders=[primer, tiny], out=tmp_path / "c").paths["html"]
    shot = tmp_path / "shot.png"
    done = chromium_screenshot(page, shot, profile=tmp_path / "profile", height=1800)
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


def test_cli_course_writes_the_four_files(primer, tiny, roster, tmp_path) -> None:
    """Does `course` write the four files, say where, and count statuses per assignment?"""
    out = tmp_path / "course"
    weights = "tiny=1,math_primer=2"
    result = invoke("course", primer, tiny, "--out", out, "--roster", roster, "--weights", weights)
    assert result.exit_code == 0, result.output
    for name in ("course.csv", "course-canvas.csv", "course-moodle.csv", "course.html"):
        assert (out / name).is_file()
        assert str(out / name) in result.output
    assert "math_primer: weight 2; graded 6, invalid 1, missing 1" in result.output
    assert "tiny: weight 1; graded 6, invalid 1, missing 1" in result.output
    assert "not posted:  5 student(s)" in result.output


# --- end to end: every pack of the course ---------------------------------------------------------

COURSE_PACKS = registry.names()


@pytest.mark.skipif(len(COURSE_PACKS) < 2, reason="the course has fewer than two packs")
def test_demo_samples_of_every_pack_merge_into_one_course(tmp_path: Path) -> None:
    """Graded through grade() (judge engine), do the demo samples of every pack of the course
    merge into one gradebook: one row per sample student, the right answers at 100% everywhere,
    the blank at 0, the broken file invalid, and the persistent tags exactly those a student got
    on two or more sheets?"""
    outs = []
    for name in COURSE_PACKS:
        built = build(out=tmp_path / name / "dist", pack=name)
        subs = tmp_path / name / "subs"
        samples.write_samples(subs, pack=name, template_path=built.student_notebook)
        out = tmp_path / name / "out"
        grade(submissions=subs, out=out, assignment=name, build_dir=built.out, jobs=2)
        outs.append(out)
    result = invoke("course", *outs, "--out", tmp_path / "course")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "course" / "course.csv").set_index("student")
    assert sorted(table.index) == sorted(
        p.stem for p in (tmp_path / COURSE_PACKS[0]).glob("subs/*")
    )
    for name in COURSE_PACKS:
        assert table.loc["ada_correct", f"{name}_percent"] == 100
        assert table.loc["cleo_blank", f"{name}_points"] == 0
        assert table.loc["eli_broken", f"{name}_status"] == "invalid"
    assert table.loc["ada_correct", "weighted_percent"] == 100

    tagged: dict[tuple[str, str], set[str]] = {}
    for name, out in zip(COURSE_PACKS, outs, strict=True):
        for path in (out / "results").glob("*.json"):
            result = json.loads(path.read_text(encoding="utf-8"))
            if result["status"] != "graded":
                continue
            for entry in result["questions"].values():
                for tag in set(entry["tags"]) - {"missing", "exception", "timeout"}:
                    tagged.setdefault((result["student"], tag), set()).add(name)
    expected = sorted((tag, s) for (s, tag), names in tagged.items() if len(names) >= 2)
    persistent = persistent_misconceptions([load_folder(out) for out in outs])
    assert sorted(zip(persistent["tag"], persistent["student"])) == expected
    assert expected, "the demo's mistakes share no tag across sheets"


def test_a_formula_like_lms_id_keeps_its_row_out_of_that_file(primer, tiny, tmp_path) -> None:
    """Is a row whose Moodle identifier looks like a formula left out of the Moodle file (the id
    cannot be altered: Moodle matches it exactly) but kept in the Canvas file, and said why?"""
    odd = tmp_path / "roster.csv"
    odd.write_text(ROSTER.replace("bob@uni.example", "=bob@uni.example"), encoding="utf-8")
    run = course(folders=[primer, tiny], out=tmp_path / "c", roster=odd)
    assert "bob" in {r[3] for r in read_csv(run.paths["canvas"])[1:]}
    assert "bob" not in {r[0] for r in read_csv(run.paths["moodle"])[1:]}
    assert run.not_posted["bob"] == (
        "Email address '=bob@uni.example' looks like a formula: not in course-moodle.csv"
    )
