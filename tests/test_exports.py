"""Tests for autograder.exports: the Canvas, Moodle and long-format CSVs."""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

import pandas as pd
import pytest

from autograder.exports import (
    CANVAS_ID_COLUMNS,
    LONG_COLUMNS,
    MOODLE_ID_COLUMNS,
    ExportError,
    write_exports,
)
from autograder.gradebook import collate
from autograder.pack import load
from autograder.results import CaseOutcome, empty_result, graded_result
from helpers import TINY, check_golden

PACK = load("math_primer")
CASES = PACK.cases

GOLDEN = Path(__file__).parent / "golden" / "exports"


def all_passed() -> dict[str, list[CaseOutcome]]:
    return {q: [CaseOutcome(c, p, True) for c, p in cases.items()] for q, cases in CASES.items()}


def batch() -> list[dict]:
    """Four results: full marks, two mistakes (one case / two cases failed), invalid, error."""
    outcomes = all_passed()
    outcomes["q1a"] = [
        CaseOutcome("typical", 0.75, True),
        CaseOutcome("edge", 0.25, False, ("edge_case", "wrong_shape"), "shape (1, 4) expected"),
    ]
    outcomes["q3"] = [
        CaseOutcome("typical", 2.0, False, ("transposed",), "got the transpose"),
        CaseOutcome("ill_conditioned", 0.5, False, ("wrong_value",), "far from w*"),
        CaseOutcome("edge", 0.5, True),
    ]
    return [
        graded_result("ben", outcomes, pack=PACK),
        graded_result("ann", all_passed(), pack=PACK),
        empty_result("cat", "invalid", "not a notebook", pack=PACK),
        empty_result("dan", "error", "grader crashed", pack=PACK),
    ]


def rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


@pytest.fixture()
def written(tmp_path: Path) -> dict[str, Path]:
    results = batch()
    paths = write_exports(collate(results, pack=PACK), results, tmp_path, pack=PACK)
    return {p.name: p for p in paths}


def test_files_are_written_next_to_the_gradebook(tmp_path: Path) -> None:
    """Are canvas.csv, moodle.csv and long.csv written into OUT, in that order?"""
    results = batch()
    paths = write_exports(collate(results, pack=PACK), results, tmp_path, pack=PACK)
    assert [p.name for p in paths] == ["canvas.csv", "moodle.csv", "long.csv"]
    assert all(p.parent == tmp_path for p in paths)


@pytest.mark.parametrize("name", ["canvas.csv", "moodle.csv", "long.csv"])
def test_matches_golden_file(
    written: dict[str, Path], name: str, request: pytest.FixtureRequest
) -> None:
    """Does each export match its golden file byte for byte?"""
    check_golden(request, GOLDEN / name, written[name].read_bytes())


def test_two_calls_give_byte_identical_files(tmp_path: Path) -> None:
    """Do two calls (results in a different order) write byte-identical files?"""
    results = batch()
    first = write_exports(collate(results, pack=PACK), results, tmp_path / "a", pack=PACK)
    shuffled = list(reversed(results))
    second = write_exports(collate(shuffled, pack=PACK), shuffled, tmp_path / "b", pack=PACK)
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_canvas_header_is_canvas_export_header(written: dict[str, Path]) -> None:
    """Does canvas.csv start with Canvas's documented columns, then the assignment column?"""
    header = rows(written["canvas.csv"])[0]
    assert header == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Math Primer"]
    assert tuple(header[:5]) == CANVAS_ID_COLUMNS


def test_canvas_has_no_points_possible_row(written: dict[str, Path]) -> None:
    """Is the second row a student, not Canvas's optional "Points Possible" row?"""
    body = rows(written["canvas.csv"])[1:]
    assert not any(row[0].strip().lower().startswith("points possible") for row in body)


def test_lms_files_hold_only_rows_the_kit_graded(written: dict[str, Path]) -> None:
    """Are invalid and error rows left out of canvas.csv and moodle.csv, graded ones kept?"""
    canvas = rows(written["canvas.csv"])[1:]
    moodle = rows(written["moodle.csv"])[1:]
    assert [(r[0], r[5]) for r in canvas] == [("ann", "12"), ("ben", "9.25")]
    assert [(r[0], r[2]) for r in moodle] == [("ann", "12"), ("ben", "9.25")]


def test_left_out_rows_are_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Does the log name each student left out of the LMS files, with the status?"""
    results = batch()
    with caplog.at_level(logging.WARNING, logger="autograder.exports"):
        write_exports(collate(results, pack=PACK), results, tmp_path, pack=PACK)
    assert "cat (invalid)" in caplog.text and "dan (error)" in caplog.text


def test_canvas_assignment_id_is_kept_in_the_header(tmp_path: Path) -> None:
    """Is an assignment given as "Name (id)" written as the header, as Canvas exports it?"""
    results = batch()
    write_exports(
        collate(results, pack=PACK), results, tmp_path, assignment="Math Primer (4711)", pack=PACK
    )
    assert rows(tmp_path / "canvas.csv")[0][5] == "Math Primer (4711)"
    assert rows(tmp_path / "moodle.csv")[0][2] == "Math Primer (4711)"


def test_roster_columns_map_to_canvas_and_moodle(tmp_path: Path) -> None:
    """Are the roster's name, canvas_id, sis ids, section, idnumber and email mapped?"""
    results = batch()
    roster = pd.DataFrame(
        {
            "student": ["ann", "ben", "cat", "dan"],
            "name": ["Lee, Ann", "Ng, Ben", "Cat", "Dan"],
            "canvas_id": ["101", "102", "103", "104"],
            "sis_user_id": ["S1", "S2", "S3", "S4"],
            "sis_login_id": ["ann.lee", "ben.ng", "cat", "dan"],
            "section": ["A", "B", "A", "B"],
            "idnumber": ["9001", "9002", "9003", "9004"],
            "email": ["ann@uni.example", "ben@uni.example", "c@x", "d@x"],
        }
    )
    table = collate(results, roster=roster[["student", "name", "email"]], pack=PACK)
    write_exports(table, results, tmp_path, roster=roster, pack=PACK)
    assert rows(tmp_path / "canvas.csv")[1:] == [
        ["Lee, Ann", "101", "S1", "ann.lee", "A", "12"],
        ["Ng, Ben", "102", "S2", "ben.ng", "B", "9.25"],
    ]
    assert rows(tmp_path / "moodle.csv") == [
        ["ID number", "Email address", "Math Primer"],
        ["9001", "ann@uni.example", "12"],
        ["9002", "ben@uni.example", "9.25"],
    ]


def test_without_roster_ids_fall_back_to_the_student_id(written: dict[str, Path]) -> None:
    """Without a roster, are Student, SIS Login ID and ID number the kit's student id?"""
    assert rows(written["canvas.csv"])[1] == ["ann", "", "", "ann", "", "12"]
    assert rows(written["moodle.csv"])[1] == ["ann", "", "12"]


def test_moodle_leaves_out_students_not_on_the_roster(tmp_path: Path) -> None:
    """Is a submission from a student not on the roster kept out of moodle.csv only?"""
    results = batch()
    roster = pd.DataFrame({"student": ["ann", "cat", "dan"], "email": ["a@x", "c@x", "d@x"]})
    write_exports(collate(results, roster=roster, pack=PACK), results, tmp_path, pack=PACK)
    assert [r[1] for r in rows(tmp_path / "moodle.csv")[1:]] == ["a@x"]
    assert [r[0] for r in rows(tmp_path / "canvas.csv")[1:]] == ["ann", "ben"]


def test_moodle_header_uses_moodle_user_fields(written: dict[str, Path]) -> None:
    """Does moodle.csv name its identifiers as Moodle's grade export does?"""
    assert tuple(rows(written["moodle.csv"])[0][:2]) == MOODLE_ID_COLUMNS


def test_long_columns_and_case_scores(written: dict[str, Path]) -> None:
    """Does long.csv have its columns, and do unique case scores sum to each total?"""
    long = pd.read_csv(written["long.csv"], dtype=str, keep_default_na=False)
    assert tuple(long.columns) == LONG_COLUMNS
    cases = long.drop_duplicates(["student", "question", "case"])
    totals = cases.assign(score=cases["score"].astype(float)).groupby("student")["score"].sum()
    assert totals.to_dict() == {"ann": 12.0, "ben": 9.25, "cat": 0.0, "dan": 0.0}
    assert len(cases) == 4 * sum(len(c) for c in CASES.values())


@pytest.mark.parametrize(
    ("question", "case", "passed", "tags", "source"),
    [
        ("q1a", "typical", "true", [""], ""),
        ("q1a", "edge", "false", ["edge_case", "wrong_shape"], "case"),
        ("q3", "typical", "false", ["transposed"], "case"),
        ("q3", "ill_conditioned", "false", ["wrong_value"], "case"),
        ("q3", "edge", "true", [""], ""),
    ],
)
def test_long_attributes_tags_to_cases(
    written: dict[str, Path], question: str, case: str, passed: str, tags: list[str], source: str
) -> None:
    """Does each failed case carry exactly its own tags (results record them per case)?"""
    long = pd.read_csv(written["long.csv"], dtype=str, keep_default_na=False)
    got = long[(long["student"] == "ben") & (long["question"] == question) & (long.case == case)]
    assert list(got["tag"]) == tags
    assert set(got["passed"]) == {passed}
    assert set(got["tag_source"]) == {source}


def test_long_uses_per_case_data_when_results_have_it(tmp_path: Path) -> None:
    """Does a question entry with a 'cases' list give exact per-case tags?"""
    result = graded_result("eve", all_passed(), pack=PACK)
    result["questions"]["q3"] = {
        "score": 2.5,
        "possible": 3.0,
        "tags": ["transposed", "wrong_value"],
        "feedback": "[ill_conditioned, 0.5 pt] far",
        "cases": [
            {"case": "typical", "points": 2.0, "passed": True, "tags": []},
            {"case": "ill_conditioned", "points": 0.5, "passed": False, "tags": ["wrong_value"]},
            {"case": "edge", "points": 0.5, "passed": True, "tags": []},
        ],
    }
    result["total"] = 11.5
    write_exports(collate([result], pack=PACK), [result], tmp_path, pack=PACK)
    long = pd.read_csv(tmp_path / "long.csv", dtype=str, keep_default_na=False)
    q3 = long[long["question"] == "q3"]
    assert list(zip(q3["case"], q3["tag"], q3["tag_source"])) == [
        ("typical", "", ""),
        ("ill_conditioned", "wrong_value", "case"),
        ("edge", "", ""),
    ]


def test_hostile_ids_are_quoted_not_split(tmp_path: Path) -> None:
    """Do ids with commas, quotes, newlines and formula-like text survive one CSV round trip?"""
    hostile = 'x,"y"\n<script>'
    results = [graded_result(hostile, all_passed(), pack=PACK)]
    write_exports(collate(results, pack=PACK), results, tmp_path, pack=PACK)
    canvas = rows(tmp_path / "canvas.csv")
    assert canvas[1][0] == hostile and len(canvas) == 2
    long = pd.read_csv(tmp_path / "long.csv", dtype=str, keep_default_na=False)
    assert set(long["student"]) == {hostile}


def test_files_are_utf8_with_unix_newlines(tmp_path: Path) -> None:
    """Are non-ASCII names written as UTF-8, with \\n line endings and no index column?"""
    results = [graded_result("zoë", all_passed(), pack=PACK)]
    roster = pd.DataFrame({"student": ["zoë"], "name": ["Zoë Ærø"]})
    write_exports(collate(results, roster=roster, pack=PACK), results, tmp_path, pack=PACK)
    raw = (tmp_path / "canvas.csv").read_bytes()
    assert "Zoë Ærø".encode() in raw and b"\r\n" not in raw
    assert raw.startswith(b"Student,")


def test_formula_cells_are_neutralised_but_lms_ids_never_changed(tmp_path, caplog) -> None:
    """Are formula-like names quoted, and rows whose LMS id looks like a formula left out?"""
    results = [graded_result(s, all_passed(), pack=PACK) for s in ("=HYPERLINK(1)", "ann", "bob")]
    roster = pd.DataFrame(
        {
            "student": ["=HYPERLINK(1)", "ann", "bob"],
            "name": ["Eve", "@SUM(1+1)", "Bob"],
            "canvas_id": ["1", "2", "3"],
            "sis_login_id": ["eve", "ann", "-bob"],
            "idnumber": ["e1", "+a2", "b3"],
        }
    )
    with caplog.at_level(logging.WARNING, logger="autograder.exports"):
        table = collate(results, roster=roster, pack=PACK)
        write_exports(table, results, tmp_path, roster=roster, pack=PACK)
    canvas = rows(tmp_path / "canvas.csv")
    assert [r[:4] for r in canvas[1:]] == [["Eve", "1", "", "eve"], ["'@SUM(1+1)", "2", "", "ann"]]
    assert rows(tmp_path / "moodle.csv")[1:] == [["e1", "", "12"], ["b3", "", "12"]]
    assert "not in canvas.csv" in caplog.text and "'-bob'" in caplog.text
    assert "not in moodle.csv" in caplog.text and "'+a2'" in caplog.text
    long = rows(tmp_path / "long.csv")
    assert {r[0] for r in long[1:]} == {"'=HYPERLINK(1)", "ann", "bob"}


@pytest.mark.parametrize(
    ("table", "assignment", "match"),
    [
        (pd.DataFrame({"student": ["a"]}), "Math Primer", "total, status"),
        (None, " ", "needs a name"),
        (None, "=Math Primer", "formula"),
    ],
)
def test_bad_input_raises_export_error(
    tmp_path: Path, table: pd.DataFrame | None, assignment: str, match: str
) -> None:
    """Does a table without the gradebook's columns, or an empty or formula name, raise?"""
    results = batch()
    table = collate(results, pack=PACK) if table is None else table
    with pytest.raises(ExportError, match=match):
        write_exports(table, results, tmp_path, assignment=assignment, pack=PACK)


def test_canvas_file_reads_back_with_pandas(written: dict[str, Path]) -> None:
    """Does canvas.csv read back with the grade as numbers (what Canvas parses)?"""
    text = written["canvas.csv"].read_text(encoding="utf-8")
    table = pd.read_csv(io.StringIO(text))
    assert table["Math Primer"].tolist() == [12.0, 9.25]


# --- any pack: the tiny fixture pack ----------------------------------------------------------


def test_exports_of_another_pack_use_its_title_and_cases(tmp_path):
    """For the tiny pack, is the LMS column its title and long.csv one row per its cases?"""
    outcomes = {
        "p1": [CaseOutcome("typical", 0.5, True), CaseOutcome("edge", 0.5, True)],
        "p2": [
            CaseOutcome("dX", 1.0, True),
            CaseOutcome("dW", 1.0, False, ("transposed",), "the transpose"),
        ],
    }
    results = [graded_result("ann", outcomes, pack=TINY)]
    write_exports(collate(results, pack=TINY), results, tmp_path, pack=TINY)
    assert rows(tmp_path / "canvas.csv")[0][-1] == "Tiny Sheet"
    assert rows(tmp_path / "canvas.csv")[1][-1] == "2"
    long = rows(tmp_path / "long.csv")[1:]
    assert [(r[2], r[3], r[5], r[6]) for r in long] == [
        ("p1", "typical", "true", ""),
        ("p1", "edge", "true", ""),
        ("p2", "dX", "true", ""),
        ("p2", "dW", "false", "transposed"),
    ]
