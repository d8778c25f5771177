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
    LONG_CHUNK,
    LONG_COLUMNS,
    MOODLE_ID_COLUMNS,
    ExportError,
    long_table,
    write_exports,
    write_long,
)
from autograder.gradebook import collate
from autograder.pack import Pack, load
from autograder.results import CaseOutcome, empty_result, graded_result
from autograder.safecsv import write_csv
from helpers import TINY, check_golden
from pack_support import all_passed, failing, first, first_case_points, last

PACK = load("math_primer")
"""Exercise 2: the golden files pin its exports byte for byte (its columns, cases and title)."""

GOLDEN = Path(__file__).parent / "golden" / "exports"


def golden_batch() -> list[dict]:
    """Exercise 2's four hand-checked results of the golden files: full marks, two mistakes (one
    case / two cases failed), invalid, error."""
    outcomes = all_passed(PACK)
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
        graded_result("ann", all_passed(PACK), pack=PACK),
        empty_result("cat", "invalid", "not a notebook", pack=PACK),
        empty_result("dan", "error", "grader crashed", pack=PACK),
    ]


BEN_TAGS = {"first": ("edge_case", "wrong_shape"), "last": ("transposed",)}
"""ben's tags on the first case of the pack's first and last questions."""


def batch(pack: Pack) -> list[dict]:
    """Four results of any pack: full marks, two mistakes (the first case of the first and of the
    last question failed), invalid, error."""
    outcomes = all_passed(pack)
    outcomes[first(pack).id] = failing(pack, first(pack).id, BEN_TAGS["first"], "shape expected")
    outcomes[last(pack).id] = failing(pack, last(pack).id, BEN_TAGS["last"], "got the transpose")
    return [
        graded_result("ben", outcomes, pack=pack),
        graded_result("ann", all_passed(pack), pack=pack),
        empty_result("cat", "invalid", "not a notebook", pack=pack),
        empty_result("dan", "error", "grader crashed", pack=pack),
    ]


def full(pack: Pack) -> float:
    """ann's points: every autograded point."""
    return pack.autograded_points


def ben(pack: Pack) -> float:
    """ben's points: all but the first case of the first and the last question."""
    lost = first_case_points(pack, first(pack).id) + first_case_points(pack, last(pack).id)
    return pack.autograded_points - lost


def pts(points: float) -> str:
    """Points as the exports write them (``12``, ``9.25``)."""
    return f"{points:g}"


def rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


@pytest.fixture()
def written(any_pack: Pack, tmp_path: Path) -> dict[str, Path]:
    results = batch(any_pack)
    paths = write_exports(collate(results, pack=any_pack), results, tmp_path, pack=any_pack)
    return {p.name: p for p in paths}


def test_files_are_written_next_to_the_gradebook(any_pack: Pack, tmp_path: Path) -> None:
    """Are canvas.csv, moodle.csv and long.csv written into OUT, in that order?"""
    results = batch(any_pack)
    paths = write_exports(collate(results, pack=any_pack), results, tmp_path, pack=any_pack)
    assert [p.name for p in paths] == ["canvas.csv", "moodle.csv", "long.csv"]
    assert all(p.parent == tmp_path for p in paths)


@pytest.mark.parametrize("name", ["canvas.csv", "moodle.csv", "long.csv"])
def test_matches_golden_file(tmp_path: Path, name: str, request: pytest.FixtureRequest) -> None:
    """Does each export of Exercise 2's hand-checked batch match its golden file byte for byte?"""
    results = golden_batch()
    write_exports(collate(results, pack=PACK), results, tmp_path, pack=PACK)
    check_golden(request, GOLDEN / name, (tmp_path / name).read_bytes())


def test_two_calls_give_byte_identical_files(any_pack: Pack, tmp_path: Path) -> None:
    """Do two calls (results in a different order) write byte-identical files?"""
    results = batch(any_pack)
    first_files = write_exports(
        collate(results, pack=any_pack), results, tmp_path / "a", pack=any_pack
    )
    shuffled = list(reversed(results))
    second = write_exports(
        collate(shuffled, pack=any_pack), shuffled, tmp_path / "b", pack=any_pack
    )
    for a, b in zip(first_files, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_canvas_header_is_canvas_export_header(any_pack: Pack, written: dict[str, Path]) -> None:
    """Does canvas.csv start with Canvas's documented columns, then the assignment's title?"""
    header = rows(written["canvas.csv"])[0]
    assert header == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", any_pack.title]
    assert tuple(header[:5]) == CANVAS_ID_COLUMNS


def test_canvas_has_no_points_possible_row(written: dict[str, Path]) -> None:
    """Is the second row a student, not Canvas's optional "Points Possible" row?"""
    body = rows(written["canvas.csv"])[1:]
    assert not any(row[0].strip().lower().startswith("points possible") for row in body)


def test_lms_files_hold_only_rows_the_kit_graded(any_pack: Pack, written: dict[str, Path]) -> None:
    """Are invalid and error rows left out of canvas.csv and moodle.csv, graded ones kept?"""
    canvas = rows(written["canvas.csv"])[1:]
    moodle = rows(written["moodle.csv"])[1:]
    expected = [("ann", pts(full(any_pack))), ("ben", pts(ben(any_pack)))]
    assert [(r[0], r[5]) for r in canvas] == expected
    assert [(r[0], r[2]) for r in moodle] == expected


def test_left_out_rows_are_logged(
    any_pack: Pack, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Does the log name each student left out of the LMS files, with the status?"""
    results = batch(any_pack)
    with caplog.at_level(logging.WARNING, logger="autograder.exports"):
        write_exports(collate(results, pack=any_pack), results, tmp_path, pack=any_pack)
    assert "cat (invalid)" in caplog.text and "dan (error)" in caplog.text


def test_canvas_assignment_id_is_kept_in_the_header(any_pack: Pack, tmp_path: Path) -> None:
    """Is an assignment given as "Name (id)" written as the header, as Canvas exports it?"""
    results = batch(any_pack)
    table = collate(results, pack=any_pack)
    write_exports(table, results, tmp_path, assignment="Sheet 7 (4711)", pack=any_pack)
    assert rows(tmp_path / "canvas.csv")[0][5] == "Sheet 7 (4711)"
    assert rows(tmp_path / "moodle.csv")[0][2] == "Sheet 7 (4711)"


def test_roster_columns_map_to_canvas_and_moodle(any_pack: Pack, tmp_path: Path) -> None:
    """Are the roster's name, canvas_id, sis ids, section, idnumber and email mapped?"""
    results = batch(any_pack)
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
    table = collate(results, roster=roster[["student", "name", "email"]], pack=any_pack)
    write_exports(table, results, tmp_path, roster=roster, pack=any_pack)
    ann, ben_points = pts(full(any_pack)), pts(ben(any_pack))
    assert rows(tmp_path / "canvas.csv")[1:] == [
        ["Lee, Ann", "101", "S1", "ann.lee", "A", ann],
        ["Ng, Ben", "102", "S2", "ben.ng", "B", ben_points],
    ]
    assert rows(tmp_path / "moodle.csv") == [
        ["ID number", "Email address", any_pack.title],
        ["9001", "ann@uni.example", ann],
        ["9002", "ben@uni.example", ben_points],
    ]


def test_without_roster_ids_fall_back_to_the_student_id(
    any_pack: Pack, written: dict[str, Path]
) -> None:
    """Without a roster, are Student, SIS Login ID and ID number the kit's student id?"""
    ann = pts(full(any_pack))
    assert rows(written["canvas.csv"])[1] == ["ann", "", "", "ann", "", ann]
    assert rows(written["moodle.csv"])[1] == ["ann", "", ann]


def test_moodle_leaves_out_students_not_on_the_roster(any_pack: Pack, tmp_path: Path) -> None:
    """Is a submission from a student not on the roster kept out of moodle.csv only?"""
    results = batch(any_pack)
    roster = pd.DataFrame({"student": ["ann", "cat", "dan"], "email": ["a@x", "c@x", "d@x"]})
    table = collate(results, roster=roster, pack=any_pack)
    write_exports(table, results, tmp_path, pack=any_pack)
    assert [r[1] for r in rows(tmp_path / "moodle.csv")[1:]] == ["a@x"]
    assert [r[0] for r in rows(tmp_path / "canvas.csv")[1:]] == ["ann", "ben"]


def test_moodle_header_uses_moodle_user_fields(written: dict[str, Path]) -> None:
    """Does moodle.csv name its identifiers as Moodle's grade export does?"""
    assert tuple(rows(written["moodle.csv"])[0][:2]) == MOODLE_ID_COLUMNS


def test_long_columns_and_case_scores(any_pack: Pack, written: dict[str, Path]) -> None:
    """Does long.csv have its columns, and do unique case scores sum to each total?"""
    long = pd.read_csv(written["long.csv"], dtype=str, keep_default_na=False)
    assert tuple(long.columns) == LONG_COLUMNS
    cases = long.drop_duplicates(["student", "question", "case"])
    totals = cases.assign(score=cases["score"].astype(float)).groupby("student")["score"].sum()
    assert totals.to_dict() == pytest.approx(
        {"ann": full(any_pack), "ben": ben(any_pack), "cat": 0.0, "dan": 0.0}
    )
    assert len(cases) == 4 * sum(len(c) for c in any_pack.cases.values())


def test_long_attributes_tags_to_cases(any_pack: Pack, written: dict[str, Path]) -> None:
    """Does each failed case carry exactly its own tags (results record them per case), and each
    passed case none?"""
    long = pd.read_csv(written["long.csv"], dtype=str, keep_default_na=False)
    ben_rows = long[long["student"] == "ben"]
    failed = {first(any_pack).id: BEN_TAGS["first"], last(any_pack).id: BEN_TAGS["last"]}
    for question in any_pack.questions:
        for i, case in enumerate(question.cases):
            got = ben_rows[(ben_rows["question"] == question.id) & (ben_rows["case"] == case.name)]
            if i == 0 and question.id in failed:
                want = (sorted(failed[question.id]), {"false"}, {"case"})
            else:
                want = ([""], {"true"}, {""})
            assert (list(got["tag"]), set(got["passed"]), set(got["tag_source"])) == want, (
                question.id,
                case.name,
            )


def test_long_uses_per_case_data_when_results_have_it(any_pack: Pack, tmp_path: Path) -> None:
    """Does a question entry with a 'cases' list give exact per-case tags?"""
    question = last(any_pack)
    [head, second, *rest] = question.cases
    result = graded_result("eve", all_passed(any_pack), pack=any_pack)
    result["questions"][question.id] = {
        "score": question.points - second.points,
        "possible": question.possible,
        "tags": ["transposed", "wrong_value"],
        "feedback": f"[{second.name}, {second.points} pt] far",
        "cases": [
            {"case": head.name, "points": head.points, "passed": True, "tags": []},
            {
                "case": second.name,
                "points": second.points,
                "passed": False,
                "tags": ["wrong_value"],
            },
            *({"case": c.name, "points": c.points, "passed": True, "tags": []} for c in rest),
        ],
    }
    if question.derivation_points:
        result["questions"][question.id]["manual_possible"] = question.derivation_points
    result["total"] = any_pack.autograded_points - second.points
    write_exports(collate([result], pack=any_pack), [result], tmp_path, pack=any_pack)
    long = pd.read_csv(tmp_path / "long.csv", dtype=str, keep_default_na=False)
    got = long[long["question"] == question.id]
    assert list(zip(got["case"], got["tag"], got["tag_source"])) == [
        (head.name, "", ""),
        (second.name, "wrong_value", "case"),
        *((c.name, "", "") for c in rest),
    ]


def test_hostile_ids_are_quoted_not_split(any_pack: Pack, tmp_path: Path) -> None:
    """Do ids with commas, quotes, newlines and formula-like text survive one CSV round trip?"""
    hostile = 'x,"y"\n<script>'
    results = [graded_result(hostile, all_passed(any_pack), pack=any_pack)]
    write_exports(collate(results, pack=any_pack), results, tmp_path, pack=any_pack)
    canvas = rows(tmp_path / "canvas.csv")
    assert canvas[1][0] == hostile and len(canvas) == 2
    long = pd.read_csv(tmp_path / "long.csv", dtype=str, keep_default_na=False)
    assert set(long["student"]) == {hostile}


def test_files_are_utf8_with_unix_newlines(any_pack: Pack, tmp_path: Path) -> None:
    """Are non-ASCII names written as UTF-8, with \\n line endings and no index column?"""
    results = [graded_result("zoë", all_passed(any_pack), pack=any_pack)]
    roster = pd.DataFrame({"student": ["zoë"], "name": ["Zoë Ærø"]})
    table = collate(results, roster=roster, pack=any_pack)
    write_exports(table, results, tmp_path, pack=any_pack)
    raw = (tmp_path / "canvas.csv").read_bytes()
    assert "Zoë Ærø".encode() in raw and b"\r\n" not in raw
    assert raw.startswith(b"Student,")


def test_formula_cells_are_neutralised_but_lms_ids_never_changed(
    any_pack, tmp_path, caplog
) -> None:
    """Are formula-like names quoted, and rows whose LMS id looks like a formula left out?"""
    students = ("=HYPERLINK(1)", "ann", "bob")
    results = [graded_result(s, all_passed(any_pack), pack=any_pack) for s in students]
    roster = pd.DataFrame(
        {
            "student": list(students),
            "name": ["Eve", "@SUM(1+1)", "Bob"],
            "canvas_id": ["1", "2", "3"],
            "sis_login_id": ["eve", "ann", "-bob"],
            "idnumber": ["e1", "+a2", "b3"],
        }
    )
    with caplog.at_level(logging.WARNING, logger="autograder.exports"):
        table = collate(results, roster=roster, pack=any_pack)
        write_exports(table, results, tmp_path, roster=roster, pack=any_pack)
    canvas = rows(tmp_path / "canvas.csv")
    assert [r[:4] for r in canvas[1:]] == [["Eve", "1", "", "eve"], ["'@SUM(1+1)", "2", "", "ann"]]
    ann = pts(full(any_pack))
    assert rows(tmp_path / "moodle.csv")[1:] == [["e1", "", ann], ["b3", "", ann]]
    assert "not in canvas.csv" in caplog.text and "'-bob'" in caplog.text
    assert "not in moodle.csv" in caplog.text and "'+a2'" in caplog.text
    long = rows(tmp_path / "long.csv")
    assert {r[0] for r in long[1:]} == {"'=HYPERLINK(1)", "ann", "bob"}


@pytest.mark.parametrize(
    ("bad_table", "assignment", "match"),
    [
        (True, "Sheet 7", "total, status"),
        (False, " ", "needs a name"),
        (False, "=Sheet", "formula"),
    ],
)
def test_bad_input_raises_export_error(
    any_pack: Pack, tmp_path: Path, bad_table: bool, assignment: str, match: str
) -> None:
    """Does a table without the gradebook's columns, or an empty or formula name, raise?"""
    results = batch(any_pack)
    table = pd.DataFrame({"student": ["a"]}) if bad_table else collate(results, pack=any_pack)
    with pytest.raises(ExportError, match=match):
        write_exports(table, results, tmp_path, assignment=assignment, pack=any_pack)


def test_canvas_file_reads_back_with_pandas(any_pack: Pack, written: dict[str, Path]) -> None:
    """Does canvas.csv read back with the grade as numbers (what Canvas parses)?"""
    text = written["canvas.csv"].read_text(encoding="utf-8")
    table = pd.read_csv(io.StringIO(text))
    assert table[any_pack.title].tolist() == [full(any_pack), ben(any_pack)]


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


@pytest.mark.parametrize("count", [0, 1, LONG_CHUNK + 3])
def test_long_csv_row_by_row_is_the_table_written_whole(
    any_pack: Pack, tmp_path: Path, count: int
) -> None:
    """Is long.csv, written row by row, byte for byte what write_csv writes for long_table of
    the same results (formula-like ids and tags, a carriage return, every status, any size)?"""
    hostile = ["=HYPERLINK(1)", "-2", "a\rb", "@x", "zoë", "'=y"]
    results = [
        graded_result(
            hostile[i % len(hostile)] + f"{i:04d}" if i % 4 else f"s{i:04d}",
            {
                **all_passed(any_pack),
                first(any_pack).id: failing(any_pack, first(any_pack).id, ("=sum", "shape")),
            }
            if i % 3
            else all_passed(any_pack),
            pack=any_pack,
        )
        if i % 5
        else empty_result(f"e{i:04d}", ("invalid", "error", "timeout")[i % 3], "x", pack=any_pack)
        for i in range(count)
    ]
    write_long(results, tmp_path / "long.csv", pack=any_pack)
    write_csv(long_table(results, pack=any_pack), tmp_path / "whole.csv")
    assert (tmp_path / "long.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
