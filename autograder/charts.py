"""The report's figures as inline SVG, written directly (no plotting library).

Three kinds, all the report needs: a histogram with a mean line, panels of labelled bars, and a
heatmap of counts with a colour bar. Each figure is a self-contained ``<svg>`` whose ids start
with its key (so several can share a page), whose numbers are printed with fixed precision (two
runs write the same bytes) and whose text is escaped. Importing matplotlib and drawing the three
figures with it took about half a second, as long as grading one submission.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
TEXT = "#1d232a"
GRID = "#dddddd"
AXIS = "#444444"
EMPTY_CELL = "#f4f5f7"
ORANGES = (
    (0xFF, 0xF5, 0xEB),
    (0xFE, 0xE6, 0xCE),
    (0xFD, 0xD0, 0xA2),
    (0xFD, 0xAE, 0x6B),
    (0xFD, 0x8D, 0x3C),
    (0xF1, 0x69, 0x13),
    (0xD9, 0x48, 0x01),
    (0xA6, 0x36, 0x03),
    (0x7F, 0x27, 0x04),
)
"""The sequential colour scale of the heatmap (ColorBrewer's Oranges), light to dark."""
CHAR = 0.6
"""Approximate width of a character in font sizes (for the margins)."""


def _n(value: float) -> str:
    """A coordinate with at most two decimals, no trailing zeros."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _esc(text: object) -> str:
    return html.escape(str(text))


def _text(
    x: float,
    y: float,
    text: object,
    *,
    size: float = 12,
    anchor: str = "middle",
    color: str = TEXT,
    weight: str = "normal",
    rotate: bool = False,
    baseline: str = "auto",
) -> str:
    extra = f' transform="rotate(-90 {_n(x)} {_n(y)})"' if rotate else ""
    bold = ' font-weight="bold"' if weight != "normal" else ""
    shift = f' dominant-baseline="{baseline}"' if baseline != "auto" else ""
    return (
        f'<text x="{_n(x)}" y="{_n(y)}" font-size="{_n(size)}" text-anchor="{anchor}" '
        f'fill="{color}"{bold}{shift}{extra}>{_esc(text)}</text>'
    )


def _rect(x: float, y: float, w: float, h: float, fill: str, extra: str = "") -> str:
    return (
        f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(max(w, 0))}" height="{_n(max(h, 0))}" '
        f'fill="{fill}"{extra}/>'
    )


def _line(
    x1: float, y1: float, x2: float, y2: float, color: str, width: float = 1, dash: str = ""
) -> str:
    dashes = f' stroke-dasharray="{dash}"' if dash else ""
    return (
        f'<line x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}" stroke="{color}" '
        f'stroke-width="{_n(width)}"{dashes}/>'
    )


def _svg(key: str, width: float, height: float, title: str, parts: list[str]) -> str:
    return (
        f'<svg role="img" class="plot" width="{_n(width)}" height="{_n(height)}" '
        f'viewBox="0 0 {_n(width)} {_n(height)}" font-family="{FONT}">'
        f'<title id="{key}-title">{_esc(title)}</title>' + "".join(parts) + "</svg>"
    )


def _clip(key: str, x: float, y: float, w: float, h: float) -> str:
    return f'<defs><clipPath id="{key}-clip">{_rect(x, y, w, h, "#fff")}</clipPath></defs>'


def integer_ticks(top: float, most: int = 6) -> list[int]:
    """Integer ticks from 0 to at least ``top`` with a step of 1, 2, 5, 10, 20, ..., at most
    ``most`` + 1 of them."""
    top = max(top, 1.0)
    step = 1
    while math.ceil(top / step) > most:
        step = _next_step(step)
    return list(range(0, step * math.ceil(top / step) + 1, step))


def _next_step(step: int) -> int:
    digits = 10 ** int(math.log10(step))
    lead = step // digits
    return {1: 2, 2: 5, 5: 10}[lead] * digits


def histogram(
    values: Sequence[float],
    *,
    edges: Sequence[float],
    key: str,
    title: str,
    xlabel: str,
    ylabel: str,
    color: str,
    mean_color: str,
    mean_label: str,
    width: float = 850,
    height: float = 340,
) -> str:
    """Counts of ``values`` in the bins between ``edges`` (the last bin includes its right
    edge), with a dashed line at the values' mean."""
    counts = [0] * (len(edges) - 1)
    for value in values:
        for i in range(len(counts)):
            last = i == len(counts) - 1
            if edges[i] <= value < edges[i + 1] or (last and value == edges[i + 1]):
                counts[i] += 1
                break
    ticks = integer_ticks(max(counts, default=1) * 1.05)
    left, right, top, bottom = 62, 18, 40, 58
    pw, ph = width - left - right, height - top - bottom
    lo, hi = edges[0], edges[-1]

    def x(v: float) -> float:
        return left + (v - lo) / ((hi - lo) or 1) * pw

    def y(v: float) -> float:
        return top + ph - v / ticks[-1] * ph

    parts = [_clip(key, left, top, pw, ph)]
    parts += [_line(left, y(t), left + pw, y(t), GRID, 0.8) for t in ticks]
    bars = [
        _rect(x(edges[i]), y(c), x(edges[i + 1]) - x(edges[i]), y(0) - y(c), color)
        for i, c in enumerate(counts)
        if c
    ]
    parts.append(f'<g clip-path="url(#{key}-clip)" stroke="#fff" stroke-width="1">')
    parts += bars
    parts.append("</g>")
    if values:
        mean = sum(values) / len(values)
        parts.append(_line(x(mean), top, x(mean), top + ph, mean_color, 2, "7 4"))
        parts.append(_line(left + 10, top + 12, left + 34, top + 12, mean_color, 2, "7 4"))
        parts.append(_text(left + 40, top + 16, mean_label, anchor="start"))
    parts += _axes(left, top, pw, ph)
    for t in ticks:
        parts.append(_text(left - 6, y(t) + 4, t, anchor="end", size=11))
    for e in edges:
        parts.append(_text(x(e), top + ph + 16, f"{e:g}", size=11))
    parts.append(_text(left + pw / 2, height - 14, xlabel))
    parts.append(_text(16, top + ph / 2, ylabel, rotate=True))
    parts.append(_text(left + pw / 2, 22, title, size=14))
    return _svg(key, width, height, title, parts)


def _axes(left: float, top: float, pw: float, ph: float) -> list[str]:
    """The left and bottom spines (the top and right ones are left out)."""
    return [
        _line(left, top, left, top + ph, AXIS),
        _line(left, top + ph, left + pw, top + ph, AXIS),
    ]


def bar_panels(
    labels: Sequence[str],
    panels: Sequence[tuple[Sequence[float], str, str]],
    *,
    key: str,
    width: float = 950,
    height: float = 340,
) -> str:
    """Side-by-side panels of percentages (0 to 100) as bars, one per label, each bar labelled
    with its rounded value; ``panels`` holds (values, title, colour)."""
    gap, left, right, top, bottom = 40, 52, 12, 40, 40
    count = max(len(panels), 1)
    pw = (width - right - gap * (count - 1) - left * count) / count
    ph = height - top - bottom
    parts = []
    for p, (values, title, color) in enumerate(panels):
        x0 = left + p * (pw + left + gap)
        clip = f"{key}-{p}"

        def y(v: float) -> float:
            return top + ph - v / 112 * ph

        parts.append(_clip(clip, x0, top, pw, ph))
        for t in (0, 25, 50, 75, 100):
            parts.append(_line(x0, y(t), x0 + pw, y(t), GRID, 0.8))
            parts.append(_text(x0 - 6, y(t) + 4, f"{t}%", anchor="end", size=11))
        slot = pw / max(len(labels), 1)
        parts.append(f'<g clip-path="url(#{clip}-clip)">')
        for i, value in enumerate(values):
            if math.isfinite(value):
                bx = x0 + slot * (i + 0.15)
                parts.append(_rect(bx, y(value), slot * 0.7, y(0) - y(value), color))
        parts.append("</g>")
        for i, (label, value) in enumerate(zip(labels, values)):
            cx = x0 + slot * (i + 0.5)
            if math.isfinite(value):
                parts.append(_text(cx, y(value) - 4, f"{value:.0f}", size=10))
            parts.append(_text(cx, top + ph + 16, label, size=11))
        parts += _axes(x0, top, pw, ph)
        parts.append(_text(x0 + pw / 2, 22, title, size=14))
    return _svg(key, width, height, " / ".join(t for _, t, _ in panels), parts)


def _orange(fraction: float) -> str:
    """The colour of the heatmap's scale at ``fraction`` (0 light, 1 dark)."""
    f = min(max(fraction, 0.0), 1.0) * (len(ORANGES) - 1)
    i = min(int(f), len(ORANGES) - 2)
    t = f - i
    rgb = [round(a + (b - a) * t) for a, b in zip(ORANGES[i], ORANGES[i + 1])]
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def heatmap(
    data: Sequence[Sequence[int]],
    *,
    rows: Sequence[str],
    columns: Sequence[str],
    key: str,
    title: str,
    scale_label: str,
    width: float = 850,
) -> str:
    """Counts as coloured cells (rows x columns, zero cells grey), each non-zero one labelled,
    the column labels on top and a colour bar of the scale on the right."""
    top_value = max([max(r, default=0) for r in data] + [1])
    left = 16 + CHAR * 12 * max((len(r) for r in rows), default=1)
    cell_h, top, bottom, bar = 26.0, 44.0, 12.0, 70.0
    height = top + cell_h * len(rows) + bottom
    pw = width - left - bar - 12
    cell_w = pw / max(len(columns), 1)
    parts = [_clip(key, left, top, pw, cell_h * len(rows))]
    parts.append(f'<g clip-path="url(#{key}-clip)" stroke="#fff" stroke-width="2">')
    for i, row in enumerate(data):
        for j, value in enumerate(row):
            fill = _orange(value / top_value) if value else EMPTY_CELL
            parts.append(_rect(left + j * cell_w, top + i * cell_h, cell_w, cell_h, fill))
    parts.append("</g>")
    for i, row in enumerate(data):
        for j, value in enumerate(row):
            if value:
                color = "#ffffff" if value > 0.6 * top_value else "#000000"
                cx, cy = left + (j + 0.5) * cell_w, top + (i + 0.5) * cell_h + 4
                parts.append(_text(cx, cy, value, size=11, color=color))
    for j, name in enumerate(columns):
        parts.append(_text(left + (j + 0.5) * cell_w, top - 8, name, size=11))
    for i, name in enumerate(rows):
        parts.append(_text(left - 6, top + (i + 0.5) * cell_h + 4, name, anchor="end", size=11))
    # The colour bar: 24 steps of the scale, ticks at integers.
    bx, bw, bh = left + pw + 14, 12.0, cell_h * len(rows)
    steps = 24
    for s in range(steps):
        y0 = top + bh - (s + 1) * bh / steps
        parts.append(_rect(bx, y0, bw, bh / steps + 0.3, _orange((s + 0.5) / steps)))
    for t in integer_ticks(top_value, most=max(1, min(6, len(rows) * 2))):
        if t <= top_value:
            ty = top + bh - t / top_value * bh
            parts.append(_line(bx + bw, ty, bx + bw + 3, ty, AXIS))
            parts.append(_text(bx + bw + 5, ty + 4, t, anchor="start", size=10))
    parts.append(_text(bx + bw + 40, top + bh / 2, scale_label, size=11, rotate=True))
    return _svg(key, width, height, title, parts)
