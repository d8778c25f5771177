"""The report's figures: drawn with matplotlib, here or in a painter process started ahead.

:mod:`autograder.report` describes each figure as plain data (a :data:`FigureSpec`: the numbers
and labels to plot) and gets it back as inline SVG from :func:`render`. Figures are drawn with
matplotlib's object-oriented API (no pyplot, so no GUI backend is ever selected) under
matplotlib's default style with a fixed SVG hash salt and no dates, so two runs on the same input
draw byte-identical SVG, wherever they are drawn.

Start-up (issue 11): importing matplotlib (~0.35 s) and drawing the three figures (~0.25 s) is
most of what ``grade`` of one submission spends after its result. :func:`painting` (the CLI's
``grade``) starts a *painter*: a child process on the otherwise idle second core that imports
matplotlib while the batch is read and graded, then draws the figures it is sent, on both cores
(forked after the import). :func:`render` uses it when it runs, and draws in this process
otherwise (a library caller, the review app, a painter that failed: the same SVG, only slower).

This module imports no matplotlib until it draws, so the grading process never does.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

FigureSpec = dict[str, Any]
"""A figure as JSON-able data: ``kind`` (``distribution``, ``questions`` or ``tags``), ``key``
(the prefix of its SVG ids) and the numbers and labels it plots (see the ``_draw_*`` functions)."""

BAR_COLOR = "#3a6ea5"
ACCENT_COLOR = "#d9822b"
SVG_SALT = "math-primer-report"
PAINTER_TIMEOUT = 120.0
"""Seconds the painter may take to draw; then the figures are drawn in this process."""
PAINT_AHEAD_LIMIT = 100
"""Batches of more submissions to grade stop the painter (its ~60 MB would be held for the whole
batch, whose outputs then take longer than the drawing anyway)."""

_CHILD = (
    "import sys; sys.path.insert(0, sys.argv[1]); from autograder.figures import serve; serve()"
)
_painter: Painter | None = None
_ahead: Painter | None = None


# --- drawing ----------------------------------------------------------------------------------


@contextmanager
def default_style() -> Iterator[None]:
    """Matplotlib's default style whatever the user's matplotlibrc says, and a fixed SVG salt."""
    import matplotlib as mpl

    with mpl.rc_context():
        mpl.rcdefaults()
        mpl.rcParams.update({"svg.hashsalt": SVG_SALT, "svg.fonttype": "path"})
        yield


def figure(width: float, height: float) -> Figure:
    """An empty figure with constrained layout, ``width`` x ``height`` inches."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def despine(ax: Any) -> None:
    """No top and right spines; a light horizontal grid behind the data."""
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", color="#dddddd", linewidth=0.8)
    ax.set_axisbelow(True)


def svg(fig: Figure, key: str) -> str:
    """The figure as inline SVG: deterministic, ids prefixed with ``key``, no external names.

    Called under :func:`default_style`. The XML prolog, the RDF metadata (which names URLs) and
    the namespace declarations (implied by HTML5 for inline SVG) are dropped.
    """
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, flags=re.DOTALL)
    text = re.sub(r'\s*<style type="text/css">.*?</style>', "", text, flags=re.DOTALL)
    text = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", text)
    text = re.sub(r'\bid="', f'id="{key}-', text)
    text = text.replace("url(#", f"url(#{key}-").replace('href="#', f'href="#{key}-')
    text = text.replace("<svg ", '<svg role="img" class="plot" ', 1)
    return f'<figure class="plot">{text.strip()}</figure>\n'


def draw(specs: list[FigureSpec]) -> list[str]:
    """The figures as inline SVG, drawn in this process, in the order of ``specs``."""
    with default_style():
        return [svg(_DRAW[spec["kind"]](spec), spec["key"]) for spec in specs]


def _draw_distribution(spec: FigureSpec) -> Figure:
    """Histogram of ``totals`` (graded submissions) in bins of one point, with their mean."""
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    total_points = spec["total_points"]
    totals = np.asarray(spec["totals"], dtype=float)
    fig = figure(8.5, 3.4)
    ax = fig.add_subplot()
    edges = np.arange(0, math.ceil(total_points) + 1, 1.0)
    ax.hist(np.clip(totals, 0, total_points), bins=list(edges), color=BAR_COLOR, edgecolor="white")
    mean = float(totals.mean())
    ax.axvline(mean, color=ACCENT_COLOR, linestyle="--", linewidth=2, label=f"mean {mean:.2f}")
    ax.set_xlim(0, total_points)
    ax.set_xticks(edges)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(
        f"total points (of {total_points:g}); bins of 1 point, the last one includes "
        f"{total_points:g}"
    )
    ax.set_ylabel("submissions")
    ax.set_title(f"Totals of {len(totals)} graded submission(s)")
    ax.legend(loc="upper left", frameon=False)
    despine(ax)
    return fig


def _draw_questions(spec: FigureSpec) -> Figure:
    """Two bar charts over the questions ``labels``: ``means`` and ``full_marks`` (percent)."""
    import numpy as np
    from matplotlib.ticker import PercentFormatter

    fig = figure(9.5, 3.4)
    left, right = fig.subplots(1, 2)
    labels = spec["labels"]
    x = np.arange(len(labels))
    for ax, values, heading, color in (
        (left, spec["means"], "Mean score (% of the points)", BAR_COLOR),
        (right, spec["full_marks"], "Full-marks rate (% of submissions)", ACCENT_COLOR),
    ):
        bars = ax.bar(x, values, color=color, width=0.7)
        ax.bar_label(bars, labels=[f"{v:.0f}" for v in values], padding=2, fontsize=9)
        ax.set_xticks(x, labels)
        ax.set_ylim(0, 112)
        ax.set_yticks([0, 25, 50, 75, 100])
        ax.yaxis.set_major_formatter(PercentFormatter(100))
        ax.set_title(heading)
        despine(ax)
    return fig


def _draw_tags(spec: FigureSpec) -> Figure:
    """Heat map of ``counts`` (one row per tag of ``tags``, one column per question of
    ``questions``); zero cells are left blank."""
    import matplotlib as mpl
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    names, seen = spec["questions"], spec["tags"]
    data = np.asarray(spec["counts"], dtype=np.int64).reshape(len(seen), len(names))
    fig = figure(8.5, 1.2 + 0.38 * len(seen))
    ax = fig.add_subplot()
    cmap = mpl.colormaps["Oranges"].with_extremes(bad="#f4f5f7")
    image = ax.imshow(
        np.ma.masked_equal(data, 0), cmap=cmap, vmin=0, vmax=max(int(data.max()), 1), aspect="auto"
    )
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks(range(len(seen)), seen)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    threshold = 0.6 * data.max()
    for (i, j), value in np.ndenumerate(data):
        if value:
            color = "white" if value > threshold else "black"
            ax.text(j, i, str(value), ha="center", va="center", color=color, fontsize=10)
    ax.set_xticks(np.arange(-0.5, len(names)), minor=True)
    ax.set_yticks(np.arange(-0.5, len(seen)), minor=True)
    ax.grid(which="minor", color="white", linewidth=2)
    ax.tick_params(which="minor", length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    colorbar = fig.colorbar(image, ax=ax, pad=0.02, fraction=0.04)
    colorbar.set_label("submissions")
    colorbar.locator = MaxNLocator(integer=True)
    colorbar.update_ticks()
    return fig


_DRAW = {"distribution": _draw_distribution, "questions": _draw_questions, "tags": _draw_tags}


# --- the painter --------------------------------------------------------------------------------


class Painter:
    """A child process that imports matplotlib now and draws one list of figures later."""

    def __init__(self) -> None:
        package_parent = str(Path(__file__).resolve().parents[1])
        self._process: subprocess.Popen[bytes] | None = None
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-c", _CHILD, package_parent],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        except (OSError, ValueError) as exc:  # no interpreter to start: drawn here
            log.debug("no painter (%r); the figures will be drawn here", exc)

    @property
    def running(self) -> bool:
        """Whether it can still draw (it draws once)."""
        return self._process is not None

    def draw(self, specs: list[FigureSpec]) -> list[str] | None:
        """The figures as inline SVG, or None if the painter is gone or fails (then it is)."""
        process, self._process = self._process, None
        if process is None:
            return None
        try:
            out, _ = process.communicate(json.dumps(specs).encode(), timeout=PAINTER_TIMEOUT)
            drawn = json.loads(out) if process.returncode == 0 else None
        except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
            log.debug("the painter failed (%r); drawing the figures here", exc)
            _stop(process)
            return None
        if not (isinstance(drawn, list) and len(drawn) == len(specs)):
            log.debug("the painter exited with %s; drawing the figures here", process.returncode)
            return None
        return [str(text) for text in drawn]

    def close(self) -> None:
        """Stop the painter if it has not drawn (it exits when its input closes)."""
        process, self._process = self._process, None
        if process is not None:
            _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    with suppress(OSError):
        process.kill()
    process.communicate()


def start_ahead() -> None:
    """Start the painter that the next :func:`painting` will use (``python -m autograder grade``
    starts it before the CLI's own imports, ~0.4 s earlier). Unused, it exits with this process
    (its input closes)."""
    global _ahead
    if _ahead is None:
        _ahead = Painter()


@contextmanager
def painting() -> Iterator[Painter]:
    """Start a painter for :func:`render` while the block runs (the CLI's ``grade``), or use
    the one started by :func:`start_ahead`; stop it at the end if it did not draw."""
    global _painter, _ahead
    painter, _ahead = _ahead or Painter(), None
    _painter = painter
    try:
        yield painter
    finally:
        _painter = None
        painter.close()


def painter_running() -> bool:
    """Whether a painter will draw the next :func:`render` (matplotlib is not needed here)."""
    return _painter is not None and _painter.running


def render(specs: list[FigureSpec]) -> list[str]:
    """The figures as inline SVG: by the painter if one runs, else in this process."""
    if not specs:
        return []
    drawn = _painter.draw(specs) if _painter is not None else None
    return drawn if drawn is not None else draw(specs)


def serve() -> None:
    """The painter's main: import matplotlib, then draw the specs read from stdin (a JSON list)
    and write the SVGs to stdout (a JSON list). The grading process waits for them, so two
    processes draw (:func:`_draw_forked`). (Drawing a figure first to warm matplotlib up saved
    ~10 ms of the ~130 ms a figure takes, for ~100 ms of CPU while the batch is graded: not done.)
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the grading process decides, and closes stdin
    import matplotlib.backends.backend_svg
    import matplotlib.figure  # noqa: F401

    data = sys.stdin.buffer.read()
    if not data:  # closed unused
        return
    sys.stdout.write(json.dumps(_draw_forked(json.loads(data))))
    sys.stdout.flush()
    os._exit(0)  # the grading process waits for the end of the output: skip the teardown (~0.1 s)


def _draw_forked(specs: list[FigureSpec]) -> list[str]:
    """The SVGs in order: the last spec (the tag map, the largest, when there is one) drawn in
    a forked process, the others here, so the two cores draw at once."""
    if len(specs) < 2:
        return draw(specs)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: draw, write, and leave without any cleanup of the parent's
        code = 1
        try:
            os.close(read)
            with os.fdopen(write, "wb") as pipe:
                pipe.write(draw(specs[-1:])[0].encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    drawn = draw(specs[:-1])
    with os.fdopen(read, "rb") as pipe:
        last = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise RuntimeError("the process drawing the last figure failed")
    return [*drawn, last]
