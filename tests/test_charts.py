"""Tests for the report's SVG figures (autograder/charts.py): counts, scales, escaping, ids."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from autograder import charts


def bars(svg: str) -> list[dict[str, str]]:
    """The data rectangles of a figure (inside its clipped group)."""
    root = ET.fromstring(svg)
    return [r.attrib for g in root.iter("g") for r in g.iter("rect")]


def test_histogram_counts_the_last_edge_in_the_last_bin() -> None:
    """Does a value equal to the last edge fall in the last bin, and are empty bins left out?"""
    svg = charts.histogram(
        [0.0, 0.5, 3.0, 3.0],
        edges=[0.0, 1.0, 2.0, 3.0],
        key="h",
        title="t",
        xlabel="x",
        ylabel="y",
        color="#3a6ea5",
        mean_color="#d9822b",
        mean_label="mean 1.62",
    )
    drawn = bars(svg)
    assert len(drawn) == 2  # bins [0, 1) and [2, 3]
    assert drawn[0]["height"] == drawn[1]["height"]  # two values each
    assert "mean 1.62" in svg and 'stroke-dasharray="7 4"' in svg


@pytest.mark.parametrize(
    ("top", "ticks"),
    [(0, [0, 1]), (1, [0, 1]), (5.2, [0, 1, 2, 3, 4, 5, 6]), (7, [0, 2, 4, 6, 8]), (9500, None)],
)
def test_integer_ticks_cover_the_top_with_few_round_steps(top: float, ticks: list | None) -> None:
    """Do the ticks start at 0, reach the top, and stay few and round?"""
    got = charts.integer_ticks(top)
    if ticks is not None:
        assert got == ticks
    assert got[0] == 0 and got[-1] >= top and len(got) <= 7
    step = got[1] - got[0]
    assert str(step).strip("0") in ("1", "2", "5")


def test_heatmap_colours_scale_with_counts_and_grey_out_zeros() -> None:
    """Is a zero cell grey, the largest count the darkest, and its label white?"""
    svg = charts.heatmap(
        [[0, 1], [4, 2]], rows=["a", "b"], columns=["q1", "q2"], key="m", title="t", scale_label="n"
    )
    cells = [r["fill"] for r in bars(svg)]
    assert cells[0] == charts.EMPTY_CELL
    assert cells[2] == "#7f2704"  # the top of the scale
    assert re.search(r'fill="#ffffff"[^>]*>4<', svg)
    assert re.search(r'fill="#000000"[^>]*>1<', svg)


def test_text_is_escaped_and_ids_carry_the_key() -> None:
    """Are labels escaped, and is every id prefixed with the figure's key and referenced?"""
    svg = charts.bar_panels(
        ["<q&1>"], [([50.0], "A <b>", "#3a6ea5"), ([float("nan")], "B", "#d9822b")], key="k"
    )
    ET.fromstring(svg)  # well-formed
    assert "<q&1>" not in svg and "&lt;q&amp;1&gt;" in svg
    ids = re.findall(r'\bid="([^"]+)"', svg)
    assert ids and all(i.startswith("k-") for i in ids)
    assert set(re.findall(r"url\(#([^)]+)\)", svg)) <= set(ids)
