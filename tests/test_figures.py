"""Tests for the report's figures (autograder/figures.py): drawn in a painter process or here,
are they the same, and does the grading process stay free of matplotlib?"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from autograder import figures
from autograder.cli import _progress_bar
from helpers import json_of_script, run_python

SPECS: list[figures.FigureSpec] = [
    {"kind": "distribution", "key": "dist", "totals": [0.0, 3.5, 7.0, 7.0], "total_points": 7.0},
    {
        "kind": "questions",
        "key": "questions",
        "labels": ["q1", "q2"],
        "means": [62.5, 100.0],
        "full_marks": [50.0, 100.0],
    },
    {
        "kind": "tags",
        "key": "tags",
        "questions": ["q1", "q2"],
        "tags": ["transposed", "scaled"],
        "counts": [[3, 0], [1, 2]],
    },
]


@pytest.fixture(scope="module")
def here() -> list[str]:
    """The figures drawn in this process."""
    return figures.draw(SPECS)


def test_the_painter_draws_what_this_process_draws(here: list[str]) -> None:
    """Are the figures a painter process draws (two of them in a forked process) byte-identical
    to those drawn here, in the same order?"""
    with figures.painting() as painter:
        assert figures.painter_running()
        drawn = figures.render(SPECS)
        assert not painter.running  # it draws once
    assert drawn == here
    assert [text.count("<svg") for text in drawn] == [1, 1, 1]
    assert all(f'id="{spec["key"]}-' in text for spec, text in zip(SPECS, drawn, strict=True))


@pytest.mark.parametrize("count", [1, 2])
def test_the_painter_draws_one_or_two_figures(here: list[str], count: int) -> None:
    """Does the painter draw fewer figures too (one: no fork)?"""
    with figures.painting():
        assert figures.render(SPECS[:count]) == here[:count]


def test_a_dead_painter_means_the_figures_are_drawn_here(here: list[str]) -> None:
    """When the painter died before it was asked, are the figures drawn here, the same?"""
    with figures.painting() as painter:
        assert painter._process is not None
        painter._process.kill()
        painter._process.wait()
        assert figures.render(SPECS) == here
    assert not figures.painter_running()


def test_a_failing_spec_in_the_painter_is_drawn_here_and_fails_here() -> None:
    """Does a spec the painter cannot draw fail here with the same error (nothing is hidden)?"""
    with figures.painting(), pytest.raises(KeyError):
        figures.render([{"kind": "nonsense", "key": "x"}])


PARENT = """
import json, sys
from autograder import figures
from autograder.report import render_report
from autograder.gradebook import collate
from autograder.pack import load
pack = load("math_primer")
results = []
with figures.painting():
    page = render_report(collate(results, pack=pack), results, pack=pack)
    svgs = figures.render(json.loads(sys.argv[1]))
print(json.dumps({"matplotlib": "matplotlib" in sys.modules, "svgs": len(svgs)}))
"""


def test_the_grading_process_never_imports_matplotlib_with_a_painter() -> None:
    """With a painter, do the report module and its figures leave matplotlib out of this
    process?"""
    import json

    seen = json_of_script(PARENT, json.dumps(SPECS))
    assert seen == {"matplotlib": False, "svgs": 3}


def test_a_large_batch_stops_the_painter() -> None:
    """Does a batch of more than PAINT_AHEAD_LIMIT submissions to grade stop the painter (its
    memory is not held for the whole batch), and a small one keep it?"""
    bars: list = []
    small, large = figures.Painter(), figures.Painter()
    try:
        _progress_bar([object()] * figures.PAINT_AHEAD_LIMIT, bars=bars, painter=small)
        _progress_bar([object()] * (figures.PAINT_AHEAD_LIMIT + 1), bars=bars, painter=large)
        assert small.running and not large.running
    finally:
        for bar in bars:
            bar.stop()
        small.close()


def test_the_painter_imports_the_kit_it_was_started_from() -> None:
    """Is the painter's code this checkout's (its folder first on the child's path)?"""
    painter = figures.Painter()
    try:
        assert painter._process is not None
        args = painter._process.args
        assert isinstance(args, list) and args[0] == sys.executable
        assert Path(args[-1]) == Path(figures.__file__).resolve().parents[1]
    finally:
        painter.close()


def test_grade_through_the_cli_writes_the_report_this_process_renders(tmp_path: Path) -> None:
    """Does ``python -m autograder grade`` (its figures drawn by the painter it starts ahead)
    write the report.html that this process renders from the same outputs, byte for byte?"""
    import json

    from autograder.gradebook import collate
    from autograder.pack import load
    from autograder.report import render_report
    from autograder.samples import write_samples

    write_samples(tmp_path / "all", pack="math_primer")
    subs = tmp_path / "subs"
    subs.mkdir()
    for name in ("ada_correct.ipynb", "ben_mistakes.ipynb"):  # the tag map needs a mistake
        (subs / name).write_bytes((tmp_path / "all" / name).read_bytes())
    out = tmp_path / "out"
    run_python("-m", "autograder", "grade", str(subs), "--out", str(out), "--jobs", "2")
    pack = load("math_primer")
    results = [json.loads(p.read_text()) for p in sorted((out / "results").glob("*.json"))]
    assert len(results) >= 2
    page = render_report(collate(results, pack=pack), results, pack=pack)
    assert (out / "report.html").read_text(encoding="utf-8") == page
    assert page.count("<svg") == 3


def test_no_painter_can_start_and_the_figures_are_drawn_here(
    here: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """When no interpreter can be started for the painter, does grading go on and draw the
    figures here?"""
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    with figures.painting() as painter:
        assert not painter.running
        assert figures.render(SPECS) == here
