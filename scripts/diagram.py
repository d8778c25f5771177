"""Draw the kit's data-flow diagrams as SVG files in docs/images/ (used by the README and docs).

Usage: python scripts/diagram.py [--out DIR]

``dataflow.svg`` (README, docs home): from a pack to the gradebook. ``pipeline.svg`` (the
architecture page): what ``grade`` does with one folder. Drawn with matplotlib's object-oriented
API, so the files are static (no script, nothing fetched when viewed) and the same on every run.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import matplotlib as mpl
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

OUT = Path(__file__).resolve().parents[1] / "docs" / "images"
BOX_W, BOX_H = 2.4, 0.9
"""Size of a box, in the figure's inches (one data unit is one inch)."""
FILL = {"file": "#eef3fb", "step": "#fdf1dc", "choice": "#f3f3f3"}
EDGE = "#44546a"


@dataclass(frozen=True)
class Node:
    """A box: its text, its centre (inches) and its kind (a file, a step or a choice)."""

    text: str
    x: float
    y: float
    kind: str = "file"


def _anchor(a: Node, b: Node) -> tuple[tuple[float, float], tuple[float, float]]:
    """Where an arrow from ``a`` to ``b`` leaves and enters: the facing sides of the boxes."""
    dx, dy = b.x - a.x, b.y - a.y
    if abs(dx) * BOX_H >= abs(dy) * BOX_W:  # mostly horizontal
        sx = BOX_W / 2 if dx > 0 else -BOX_W / 2
        return (a.x + sx, a.y), (b.x - sx, b.y)
    sy = BOX_H / 2 if dy > 0 else -BOX_H / 2
    return (a.x, a.y + sy), (b.x, b.y - sy)


def draw(
    nodes: dict[str, Node], edges: list[tuple[str, str, str]], size: tuple[float, float]
) -> Figure:
    """A figure of ``size`` inches with the boxes and the labelled arrows between them."""
    fig = Figure(figsize=size)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, size[0])
    ax.set_ylim(0, size[1])
    ax.set_axis_off()
    for node in nodes.values():
        style = "round,pad=0.02,rounding_size=0.12" if node.kind != "choice" else "round4,pad=0.02"
        ax.add_patch(
            FancyBboxPatch(
                (node.x - BOX_W / 2, node.y - BOX_H / 2),
                BOX_W,
                BOX_H,
                boxstyle=style,
                facecolor=FILL[node.kind],
                edgecolor=EDGE,
                linewidth=1.2,
            )
        )
        ax.text(node.x, node.y, node.text, ha="center", va="center", fontsize=10, color="#1f2d3d")
    for start, end, label in edges:
        (x0, y0), (x1, y1) = _anchor(nodes[start], nodes[end])
        ax.add_patch(
            FancyArrowPatch(
                (x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=14, color=EDGE, linewidth=1.2
            )
        )
        if label:
            vertical = abs(x1 - x0) < 1e-9
            ax.text(
                (x0 + x1) / 2 + (0.08 if vertical else 0),
                (y0 + y1) / 2 + (0 if vertical else 0.1),
                label,
                ha="left" if vertical else "center",
                va="center" if vertical else "bottom",
                fontsize=8.5,
                color="#5b6b7f",
                style="italic",
            )
    return fig


def dataflow() -> Figure:
    """From a pack to the gradebook (README, docs home)."""
    nodes = {
        "pack": Node("pack:\nspec.py + master notebook", 1.4, 2.3, "file"),
        "nb": Node("student notebook", 5.1, 2.3),
        "zip": Node("autograder.zip\n(Gradescope, Docker)", 1.4, 0.7),
        "subs": Node("submissions /\nLMS download", 8.8, 2.3),
        "judge": Node("judge: a sandboxed\nevaluator per notebook", 12.5, 2.3, "step"),
        "gb": Node("gradebook.csv +\nresults/*.json", 12.5, 0.7),
        "out": Node("report.html, canvas.csv /\nmoodle.csv, feedback/", 8.8, 0.7),
    }
    edges = [
        ("pack", "nb", "autograder build"),
        ("pack", "zip", "autograder build"),
        ("nb", "subs", "students answer"),
        ("subs", "judge", "autograder grade"),
        ("judge", "gb", ""),
        ("gb", "out", ""),
    ]
    return draw(nodes, edges, (13.9, 3.0))


def pipeline() -> Figure:
    """What ``build`` and ``grade`` do (the architecture page)."""
    nodes = {
        "spec": Node("pack:\nspec.py + master .ipynb", 1.4, 4.0),
        "build": Node("build\n(Otter Assign)", 5.1, 4.0, "step"),
        "student": Node("dist/student/:\nnotebook + checks", 8.8, 4.0),
        "zip": Node("dist/autograder/\nautograder.zip", 5.1, 2.6),
        "subs": Node("submissions folder /\nLMS download", 12.5, 4.0),
        "intake": Node("intake", 12.5, 2.6, "step"),
        "cache": Node("cache hit?", 12.5, 1.2, "choice"),
        "engine": Node("engine:\njudge | otter | docker", 8.8, 2.6, "step"),
        "results": Node("results.py: one\nresult per submission", 8.8, 1.2, "step"),
        "overrides": Node("overrides", 5.1, 1.2, "step"),
        "gradebook": Node("gradebook.csv,\nresults/*.json", 1.4, 1.2),
        "outputs": Node("report.html, canvas /\nmoodle / long.csv, feedback/", 1.4, 2.6),
    }
    edges = [
        ("spec", "build", ""),
        ("build", "student", ""),
        ("build", "zip", ""),
        ("student", "subs", ""),
        ("subs", "intake", ""),
        ("intake", "cache", ""),
        ("cache", "engine", "no"),
        ("cache", "results", "yes"),
        ("engine", "results", ""),
        ("results", "overrides", ""),
        ("overrides", "gradebook", ""),
        ("gradebook", "outputs", ""),
    ]
    return draw(nodes, edges, (13.9, 4.7))


def save(fig: Figure, path: Path) -> None:
    """Write ``fig`` as SVG with text kept as text, no date and fixed ids (same bytes each run)."""
    with mpl.rc_context({"svg.fonttype": "none", "svg.hashsalt": "math-primer-diagram"}):
        fig.savefig(path, format="svg", metadata={"Date": None, "Creator": None})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the SVG files")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    for name, fig in (("dataflow", dataflow()), ("pipeline", pipeline())):
        save(fig, out / f"{name}.svg")
        print(out / f"{name}.svg")


if __name__ == "__main__":
    main()
