"""The report's three figures as inline SVG written directly: a histogram, bar charts and a heat
map with counts.

Matplotlib took a second to import and draw them, most of what ``grade`` of one submission spent
after its result (``report.py``). The SVG here has no ids, scripts or external references, and
depends on nothing but its input, so two runs write the same bytes. Text is plain SVG text in the
page's font.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Sequence

FONT = 12
"""Font size of tick labels and legends (px); titles are 2 px larger."""
GRID = "#dddddd"
AXIS = "#333333"
EMPTY_CELL = "#f4f5f7"
ORANGES = ((0.0, (254, 230, 206)), (0.5, (253, 141, 60)), (1.0, (166, 54, 3)))
"""Stops of the heat map's colour scale, from 1 to the largest count."""


def _t(text: object) -> str:
    return html.escape(str(text))


def _n(value: float) -> str:
    """A coordinate: 2 decimals at most, no trailing zeros."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _text(x: float, y: float, text: object, *, anchor: str = "middle", size: int = FONT, **kw):
    extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in kw.items())
    return (
        f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}" font-size="{size}"{extra}>'
        f"{_t(text)}</text>"
    )


def _svg(width: int, height: int, label: str, parts: list[str]) -> str:
    body = "\n".join(parts)
    return (
        f'<figure class="plot"><svg role="img" class="plot" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" aria-label="{_t(label)}" '
        f'font-family="system-ui, sans-serif" fill="{AXIS}">\n{body}\n</svg></figure>\n'
    )


def nice_ticks(top: float, *, count: int = 5, integer: bool = True) -> list[float]:
    """Round tick values from 0 to at least ``top``, about ``count`` of them (1, 2 or 5 times a
    power of ten apart; whole numbers when ``integer``)."""
    top = max(top, 1.0 if integer else 1e-9)
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    if integer:
        step = max(1.0, math.ceil(step))
    stops = math.ceil(top / step - 1e-9)
    return [i * step for i in range(stops + 1)]


def _frame(
    x0: float, y0: float, w: float, h: float, ticks: Sequence[float], top: float, fmt
) -> list[str]:
    """Horizontal grid lines with their labels, and the left and bottom axes."""
    parts = []
    for tick in ticks:
        y = y0 + h - h * tick / top
        parts.append(
            f'<line x1="{_n(x0)}" x2="{_n(x0 + w)}" y1="{_n(y)}" y2="{_n(y)}" stroke="{GRID}"/>'
        )
        parts.append(_text(x0 - 6, y + 4, fmt(tick), anchor="end"))
    parts.append(
        f'<path d="M{_n(x0)} {_n(y0)}V{_n(y0 + h)}H{_n(x0 + w)}" fill="none" stroke="{AXIS}"/>'
    )
    return parts


def histogram(
    values: Sequence[float],
    *,
    top_value: float,
    bar: str,
    accent: str,
    title: str,
    xlabel: str,
    width: int = 850,
    height: int = 340,
) -> str:
    """Counts of ``values`` in bins of 1 from 0 to ``top_value`` (the last bin includes its
    right edge, values outside are clipped into the end bins), with a dashed line at the mean."""
    edges = math.ceil(top_value)
    counts = [0] * max(edges, 1)
    for value in values:
        counts[min(math.floor(min(max(value, 0.0), top_value)), len(counts) - 1)] += 1
    x0, y0, w, h = 56.0, 40.0, width - 76.0, height - 96.0
    ticks = nice_ticks(max(counts))
    top = ticks[-1]
    parts = [_text(width / 2, 22, title, size=FONT + 2)]
    parts += _frame(x0, y0, w, h, ticks, top, lambda t: f"{t:g}")
    scale = w / max(top_value, 1e-9)
    for i, count in enumerate(counts):
        if count:
            left, right = x0 + i * scale, x0 + min(i + 1, top_value) * scale
            y = y0 + h - h * count / top
            parts.append(
                f'<rect x="{_n(left)}" y="{_n(y)}" width="{_n(right - left)}" '
                f'height="{_n(y0 + h - y)}" fill="{bar}" stroke="#ffffff"/>'
            )
    every = max(1, math.ceil(edges / 25))
    for edge in range(0, edges + 1, every):
        x = x0 + min(edge, top_value) * scale
        parts.append(_text(x, y0 + h + 16, f"{min(edge, top_value):g}"))
    mean = sum(values) / len(values) if values else 0.0
    xm = x0 + min(max(mean, 0.0), top_value) * scale
    parts.append(
        f'<line x1="{_n(xm)}" x2="{_n(xm)}" y1="{_n(y0)}" y2="{_n(y0 + h)}" stroke="{accent}" '
        'stroke-width="2" stroke-dasharray="7 4"/>'
    )
    parts.append(
        f'<line x1="{_n(x0 + 12)}" x2="{_n(x0 + 36)}" y1="{_n(y0 + 8)}" y2="{_n(y0 + 8)}" '
        f'stroke="{accent}" stroke-width="2" stroke-dasharray="7 4"/>'
    )
    parts.append(_text(x0 + 42, y0 + 12, f"mean {mean:.2f}", anchor="start"))
    parts.append(_text(x0 + w / 2, height - 14, xlabel))
    parts.append(_text(16, y0 + h / 2, "submissions", transform=f"rotate(-90 16 {_n(y0 + h / 2)})"))
    return _svg(width, height, title, parts)


def bar_panels(
    labels: Sequence[str],
    panels: Sequence[tuple[str, Sequence[float], str]],
    *,
    width: int = 950,
    height: int = 340,
) -> str:
    """Side-by-side bar charts of percentages (0 to 100) per label: one panel per
    ``(title, values, colour)``, each bar labelled with its value."""
    gap = 30.0
    pw = (width - gap * (len(panels) - 1)) / len(panels)
    parts: list[str] = []
    ticks = [0.0, 25.0, 50.0, 75.0, 100.0]
    for index, (title, values, colour) in enumerate(panels):
        left = index * (pw + gap)
        x0, y0, w, h = left + 52.0, 40.0, pw - 64.0, height - 76.0
        parts.append(_text(left + pw / 2, 22, title, size=FONT + 2))
        parts += _frame(x0, y0, w, h, ticks, 112.0, lambda t: f"{t:g}%")
        slot = w / max(len(labels), 1)
        for i, (label, value) in enumerate(zip(labels, values, strict=True)):
            finite = value if math.isfinite(value) else 0.0
            y = y0 + h - h * max(0.0, min(finite, 112.0)) / 112.0
            x = x0 + slot * (i + 0.15)
            parts.append(
                f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(slot * 0.7)}" '
                f'height="{_n(y0 + h - y)}" fill="{colour}"/>'
            )
            shown = f"{value:.0f}" if math.isfinite(value) else "\u2014"
            parts.append(_text(x + slot * 0.35, y - 4, shown, size=FONT - 1))
            parts.append(_text(x + slot * 0.35, y0 + h + 16, label))
    return _svg(width, height, " / ".join(p[0] for p in panels), parts)


def _orange(fraction: float) -> str:
    """The colour of a cell at ``fraction`` (0 to 1) of the heat map's scale."""
    for (a, ca), (b, cb) in itertools.pairwise(ORANGES):
        if fraction <= b:
            f = (fraction - a) / (b - a)
            rgb = [round(x + (y - x) * f) for x, y in zip(ca, cb, strict=True)]
            return "#" + "".join(f"{c:02x}" for c in rgb)
    return "#" + "".join(f"{c:02x}" for c in ORANGES[-1][1])


def heatmap(
    columns: Sequence[str], rows: Sequence[str], counts: Sequence[Sequence[int]], *, label: str
) -> str:
    """A grid of counts (``counts[row][column]``), cells coloured by count (empty cells grey),
    with a colour key."""
    largest = max([max(r, default=0) for r in counts] + [1])
    left = 16.0 + 7.2 * max((len(r) for r in rows), default=4)
    cell_w = max(48.0, min(90.0, (800.0 - left) / max(len(columns), 1)))
    cell_h = 30.0
    top = 34.0
    width = int(left + cell_w * len(columns) + 120)
    height = int(top + cell_h * len(rows) + 14)
    parts = [_text(left + cell_w * (j + 0.5), top - 10, c) for j, c in enumerate(columns)]
    for i, name in enumerate(rows):
        y = top + i * cell_h
        parts.append(_text(left - 8, y + cell_h / 2 + 4, name, anchor="end"))
        for j, value in enumerate(counts[i]):
            x = left + j * cell_w
            fraction = (value - 1) / max(largest - 1, 1)
            fill = _orange(fraction) if value else EMPTY_CELL
            parts.append(
                f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(cell_w)}" height="{_n(cell_h)}" '
                f'fill="{fill}" stroke="#ffffff" stroke-width="2"/>'
            )
            if value:
                colour = "#ffffff" if value > 0.6 * largest else "#000000"
                parts.append(_text(x + cell_w / 2, y + cell_h / 2 + 4, value, fill=colour))
    key_x, steps = left + cell_w * len(columns) + 16, 5
    key_h = min(cell_h * len(rows), 150.0)
    for k in range(steps):
        parts.append(
            f'<rect x="{_n(key_x)}" y="{_n(top + key_h * (steps - 1 - k) / steps)}" width="12" '
            f'height="{_n(key_h / steps)}" fill="{_orange(k / (steps - 1))}"/>'
        )
    parts.append(_text(key_x + 16, top + 10, largest, anchor="start"))
    parts.append(_text(key_x + 16, top + key_h, 1, anchor="start"))
    parts.append(_text(key_x + 16, top + key_h + 14, "submissions", anchor="start", size=FONT - 1))
    return _svg(width, max(height, int(top + key_h + 22)), label, parts)
