"""Red team, round 2: hostile data and file names, graded in one batch through ``grade``.

Each submission below once ended the whole run without a gradebook, made a spreadsheet evaluate a
cell, or let one student's file be graded as another's. Every one must now give a row with a
status, outputs under safe file names, and text that neither a terminal, a Markdown renderer nor a
spreadsheet interprets. Beside them, an honest notebook and a Canvas victim are graded normally.
"""

from __future__ import annotations

import csv
import json
import os
import zipfile
from html.parser import HTMLParser

import markdown_it
import mistune
import nbformat
import pandas as pd
import pytest

from autograder import samples
from autograder.grading import grade
from autograder.results import file_stem
from helpers import SOFFICE, TINY, TINY_SAMPLES, spreadsheet_cells, write_notebooks
from pack_support import answer, first, last, mistake

# The batch runs on the tiny fixture pack: it is about hostile files and text, not a sheet.
PACK = TINY
CORRECT = TINY_SAMPLES.correct
FIRST, LAST = first(PACK).id, last(PACK).id
"""The question whose feedback holds an invalid row's reason; the one the hostile code answers."""
TIMEOUT = 60.0
FULL = PACK.autograded_points
"""What a correct notebook scores (the manual derivation points are not marked yet)."""
SURROGATE_CELL = answer(PACK, LAST, "raise ValueError('bad \\ud800 text')")
"""The last question raising an exception whose message holds a lone surrogate."""
INJECTION = (
    "\x1b]0;pwned\x07\x1b[31mRED\x1b[0m ![x](https://evil.example/p.png) "
    "[link](https://evil.example) <img src=x onerror=alert(1)> ``![y](https://evil.example/y)`"
)
"""Terminal escapes, a Markdown image and link, raw HTML and a backtick trick, in one message."""
INJECTION_CELL = answer(PACK, LAST, f"raise ValueError({INJECTION!r})")
ESCAPE_NAME = "[red]x\x1b[31m\x07"
"""A file stem with rich markup, an escape sequence and a bell."""
WRONG = dict([mistake(PACK, "transposed")])
"""A wrong answer from the pack's sample mistakes."""


def fill(template: nbformat.NotebookNode, answers: dict[str, str]) -> nbformat.NotebookNode:
    return samples.fill(template, answers, pack=PACK)


def _deep_metadata_notebook(template: nbformat.NotebookNode) -> str:
    """A 200 KB notebook whose metadata nests a long list 500 deep (balloons 250x indented)."""
    value: object = [0] * 100_000
    for _ in range(497):
        value = [value]
    nb = fill(template, CORRECT)
    nb.metadata["deep"] = value
    return json.dumps(nb, separators=(",", ":"))


@pytest.fixture(scope="module")
def batch(tiny_built, tiny_template, tmp_path_factory) -> dict:
    """Every hostile file beside an honest one and a Canvas victim, graded in one batch."""
    root = tmp_path_factory.mktemp("redteam-files")
    built, template = tiny_built, tiny_template
    subs, out = root / "submissions", root / "out"
    write_notebooks(
        subs,
        {
            "honest": fill(template, CORRECT),
            "surrogate_message": fill(template, {**CORRECT, LAST: SURROGATE_CELL}),
            "injection": fill(template, {**CORRECT, LAST: INJECTION_CELL}),
            "back\\slash": fill(template, CORRECT),
            " ": fill(template, CORRECT),
            "=HYPERLINK(1)": fill(template, CORRECT),
            ESCAPE_NAME: fill(template, CORRECT),
            # Canvas: jdoe's own upload, and mallory's file named to read as jdoe's newer one.
            "doejane_12345_678901_hw": fill(template, CORRECT),
            "x_12345_999999_777_888_hw": fill(template, {**CORRECT, **WRONG}),
        },
    )
    text = nbformat.writes(fill(template, {**CORRECT, LAST: "x = 'SURROGATE'\n" + CORRECT[LAST]}))
    (subs / "surrogate_json.ipynb").write_bytes(text.replace("SURROGATE", "\\ud800").encode())
    (subs / "brackets.ipynb").write_bytes(b"[" * 100_000 + b"]" * 100_000)
    (subs / "deep_metadata.ipynb").write_text(_deep_metadata_notebook(template), encoding="utf-8")
    with zipfile.ZipFile(subs / ("z" * 251 + ".zip"), "w") as archive:
        archive.writestr(f"hw/{PACK.name}.ipynb", nbformat.writes(fill(template, CORRECT)))
    with open(os.path.join(os.fsencode(subs), b"bad\xff.ipynb"), "w", encoding="utf-8") as f:
        f.write(nbformat.writes(fill(template, CORRECT)))
    roster = root / "roster.csv"
    roster.write_text(
        "student,name,canvas_id\njdoe,Jane Doe,12345\nmallory,Mal Lory,777\n", encoding="utf-8"
    )

    def run():
        return grade(
            submissions=subs,
            out=out,
            build_dir=built.out,
            assignment=PACK,
            jobs=2,
            timeout=TIMEOUT,
            roster=roster,
        )

    first = run()
    second = run()  # a rerun on the same folder must not crash either (cached results reused)
    table = pd.read_csv(out / "gradebook.csv", dtype={"student": str}, keep_default_na=False)
    return {"run": first, "rerun": second, "out": out, "table": table}


def row(batch: dict, student: str) -> pd.Series:
    [match] = [r for _, r in batch["run"].gradebook.iterrows() if r["student"] == student]
    return match


def result(batch: dict, student: str) -> dict:
    [match] = [r for r in batch["run"].results if r["student"] == student]
    return match


EXPECTED = {
    "honest": "graded",
    "surrogate_message": "graded",
    "injection": "graded",
    "back\\slash": "graded",
    " .ipynb": "invalid",
    "=HYPERLINK(1)": "graded",
    "[red]x\\x1b[31m\\x07": "graded",
    "z" * 251: "graded",
    "bad\\xff": "graded",
    "surrogate_json": "invalid",
    "brackets": "invalid",
    "deep_metadata": "invalid",
    "jdoe": "graded",
    "x_12345_999999_777_888_hw.ipynb": "invalid",
    "mallory": "missing",
}


def test_every_file_has_a_row_in_the_gradebook(batch):
    """Does the run end with a gradebook holding one row per file, with the expected statuses?"""
    statuses = dict(zip(batch["run"].gradebook["student"], batch["run"].gradebook["status"]))
    assert statuses == EXPECTED
    assert len(batch["table"]) == len(EXPECTED)


def test_a_rerun_reuses_every_result_without_crashing(batch):
    """Does rerunning the same command succeed and reuse all results (no crash on rerun)?"""
    rerun = batch["rerun"]
    assert rerun.gradebook.equals(batch["run"].gradebook)
    assert rerun.reused == sum(status in ("graded", "invalid") for status in EXPECTED.values())


def test_lone_surrogate_in_an_exception_message_is_graded(batch):
    """Is code raising '\\ud800' an ordinary failed case, with its text written as valid UTF-8?"""
    entry = result(batch, "surrogate_message")["questions"][LAST]
    assert entry["score"] == 0 and "exception" in entry["tags"]
    assert "bad \ufffd text" in entry["feedback"]
    path = batch["out"] / "results" / "surrogate_message.json"
    assert json.loads(path.read_bytes().decode("utf-8"))["questions"][LAST] == entry
    assert row(batch, "surrogate_message")["total"] == FULL - PACK.question(LAST).points


@pytest.mark.parametrize(
    ("student", "reason"),
    [
        ("surrogate_json", "lone UTF-16 surrogate"),
        ("brackets", "nested more than 100 levels deep"),
        ("deep_metadata", "nested more than 100 levels deep"),
        (" .ipynb", "holds no student id"),
    ],
)
def test_hostile_files_are_invalid_rows_with_a_reason(batch, student, reason):
    """Do hostile JSON and a blank file name give invalid rows naming the reason?"""
    assert reason in result(batch, student)["questions"][FIRST]["feedback"]


def test_output_files_have_safe_names_one_per_row(batch):
    """Is every result and feedback file inside its folder, under 255 bytes, one per student?"""
    out = batch["out"]
    students = list(batch["run"].gradebook["student"])
    submitted = [s for s in students if s != "mallory"]
    results = sorted(p.name for p in (out / "results").iterdir())
    assert results == sorted(f"{file_stem(s)}.json" for s in submitted)
    feedback = sorted(p.name for p in (out / "feedback").iterdir())
    assert feedback == sorted(f"{file_stem(s)}{e}" for s in submitted for e in (".md", ".html"))
    assert all(len(name.encode()) <= 255 for name in results + feedback)
    for path in (out / "results").iterdir():
        assert json.loads(path.read_text(encoding="utf-8"))["student"] in submitted


def test_crafted_canvas_name_does_not_replace_the_victims_notebook(batch):
    """Is jdoe graded on her own upload (full marks), and the crafted file a row of its own?"""
    assert row(batch, "jdoe")["total"] == FULL
    crafted = result(batch, "x_12345_999999_777_888_hw.ipynb")
    assert "user 12345 (jdoe" in crafted["questions"][FIRST]["feedback"]


def test_lms_exports_leave_out_formula_ids(batch):
    """Is the id `=HYPERLINK(1)` left out of canvas.csv and moodle.csv rather than written?"""
    for name in ("canvas.csv", "moodle.csv"):
        text = (batch["out"] / name).read_text(encoding="utf-8")
        assert "HYPERLINK" not in text


@pytest.mark.skipif(
    not SOFFICE.exists(),
    reason="needs LibreOffice (apt-get install -y --no-install-recommends libreoffice-calc-nogui)",
)
@pytest.mark.parametrize("name", ["gradebook.csv", "long.csv", "canvas.csv", "moodle.csv"])
def test_spreadsheet_evaluates_no_cell_of_the_outputs(batch, tmp_path, name):
    """Opened in LibreOffice Calc, does every output CSV show exactly the text written?"""
    path = batch["out"] / name
    with path.open(newline="", encoding="utf-8") as handle:
        written = list(csv.reader(handle))
    shown = spreadsheet_cells(path, tmp_path)
    assert len(shown) == len(written)
    for got, want in zip(shown, written, strict=True):
        assert [g.strip() for g in got] == [_as_calc_value(w).strip() for w in want]


def _as_calc_value(cell: str) -> str:
    """How Calc writes back a number or boolean cell (``12.0`` as ``12``, ``true`` as ``TRUE``)."""
    if cell.lower() in ("true", "false"):
        return cell.upper()
    try:
        return f"{float(cell):.15g}"
    except ValueError:
        return cell


def test_feedback_shows_no_control_characters_links_or_images(batch):
    """Rendered by two Markdown engines, does the feedback hold no link, image or raw HTML?"""
    stem = file_stem("injection")
    md = (batch["out"] / "feedback" / f"{stem}.md").read_text(encoding="utf-8")
    page = (batch["out"] / "feedback" / f"{stem}.html").read_text(encoding="utf-8")
    assert "\x1b" not in md + page and "\x07" not in md + page
    commonmark = markdown_it.MarkdownIt("commonmark").render(md)
    gfm_like = mistune.create_markdown(plugins=["url", "strikethrough", "table"])(md)
    for rendered in (page, commonmark, gfm_like):
        tags = _Tags()
        tags.feed(rendered)
        assert "img" not in tags.names and "script" not in tags.names
        assert all(href.startswith("#") for href in tags.hrefs)  # only the page's own anchors
        assert "\\x1b[31mRED" in "".join(tags.text)  # the escape sequence is shown as text
        assert "![x](https://evil.example/p.png)" in "".join(tags.text)


class _Tags(HTMLParser):
    """The start tags, link targets and text of an HTML fragment."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []
        self.hrefs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.names.append(tag)
        self.hrefs += [value or "" for name, value in attrs if name == "href"]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_feedback_file_of_an_escape_sequence_name_is_clean(batch):
    """Does the student id with markup and escapes appear as text in its feedback files?"""
    stem = file_stem("[red]x\\x1b[31m\\x07")
    md = (batch["out"] / "feedback" / f"{stem}.md").read_text(encoding="utf-8")
    assert "\x1b" not in md and "\\\\x1b" in md
