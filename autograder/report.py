"""The analytics report: ``OUT/report.html`` and a terminal summary of a graded batch.

The report is one self-contained HTML file (inline CSS, figures as inline SVG, no scripts and no
external resources), so a TA can open it offline or mail it. It shows the submissions by status,
the distribution of totals, the mean and full-marks rate per question, and how often each
diagnosis tag (the pack's :attr:`~autograder.pack.spec.Pack.vocabulary`) occurred per question: which misconceptions the
class has. Scores and tags are taken from graded submissions only.

Figures are described here as data and drawn by :mod:`autograder.figures` (matplotlib's default
style, a fixed SVG hash salt, no dates), so two runs on the same input write byte-identical HTML,
whether a painter process or this one drew them; this module imports no matplotlib. A list of
students longer than :data:`LIST_LIMIT` rows is summarised, so the report stays readable at
10,000 submissions.
"""

from __future__ import annotations

import html
import logging
import math
import re
from collections import Counter
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from autograder.errors import KitError
from autograder.figures import FigureSpec, render
from autograder.gradebook import STATUSES
from autograder.pack.spec import Pack
from autograder.safetext import visible

logger = logging.getLogger(__name__)

REPORT_NAME = "report.html"
"""File name of the report inside the output folder."""

LIST_LIMIT = 100
"""Rows a per-student list shows (needs attention, manual overrides); a longer one is summarised
(counts per reason or question) and shows its first rows, with a link to ``gradebook.csv``, so
the report stays readable and small at 10,000 submissions."""
_POINTS_TOLERANCE = 1e-6


def _esc(text: object) -> str:
    """Text for the page: control characters shown as escapes (student ids, reasons, comments
    come from students and TAs), then HTML-escaped."""
    return html.escape(visible(str(text)))


class ReportError(KitError, ValueError):
    """The gradebook or the results cannot be reported on (the message names what is wrong)."""


def tag_frequencies(results: Iterable[dict], *, pack: Pack) -> pd.DataFrame:
    """Count the diagnosis tags per question over the graded submissions.

    A tag counts once per submission and question (the number of students whose answer to the
    question got the tag). Results with another status than ``graded`` are not counted.

    Args:
        results: Result dicts in the ``results/<student>.json`` format.
        pack: The assignment (its questions and tag vocabulary).

    Returns:
        An integer DataFrame with one row per question (index ``question``, in the pack's
        order) and one column per tag (index ``tag``): every tag of the pack's vocabulary in its
        order, then any unknown tag found in the results, sorted, so that none is dropped.

    Raises:
        ReportError: If a result or its questions are not dicts, or its tags are not a list of
            strings.
    """
    counts: Counter[tuple[str, str]] = Counter()
    unknown: set[str] = set()
    vocabulary, names = pack.vocabulary, pack.question_ids
    for index, result in enumerate(results):
        if not isinstance(result, dict):
            raise ReportError(f"result #{index} is a {type(result).__name__}, expected a dict")
        if result.get("status") != "graded":
            continue
        questions = result.get("questions") or {}
        if not isinstance(questions, dict):
            raise ReportError(f"result #{index}: 'questions' is not a dict")
        for question, entry in questions.items():
            if question not in names or not isinstance(entry, dict):
                continue
            tags = entry.get("tags") or []
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise ReportError(
                    f"result #{index} ({result.get('student')!r}), question {question}: tags "
                    f"must be a list of strings, got {tags!r}"
                )
            for tag in dict.fromkeys(tags):
                counts[question, tag] += 1
                if tag not in vocabulary:
                    unknown.add(tag)
    columns = [*vocabulary, *sorted(unknown)]
    frame = pd.DataFrame(
        [[counts[q, t] for t in columns] for q in names],
        index=pd.Index(names, name="question"),
        columns=pd.Index(columns, name="tag"),
        dtype=int,
    )
    return frame


def summary_lines(table: pd.DataFrame, results: list[dict], *, pack: Pack) -> list[str]:
    """The report's key numbers as plain lines for the terminal (the CLI prints them).

    Args:
        table: The gradebook from :func:`autograder.gradebook.collate`.
        results: The result dicts of the same batch.
        pack: The assignment graded.

    Returns:
        Lines: submissions by status, the totals of graded submissions, then one line per
        question with its mean, full-marks rate and most frequent tags.

    Raises:
        ReportError: If the gradebook lacks its fixed columns.
    """
    _check_table(table, pack)
    graded = _graded(table, pack)
    statuses = _status_counts(table)
    lines = [
        f"submissions: {len(table)} ("
        + ", ".join(f"{s} {n}" for s, n in statuses.items() if n)
        + ")"
        if len(table)
        else "submissions: 0"
    ]
    if graded.empty:
        lines.append("no graded submissions: nothing to summarise")
        return lines
    totals = graded["total"]
    lines.append(
        f"total (graded): mean {totals.mean():.2f} / {pack.total_points:g}, median "
        f"{totals.median():.2f}, min {totals.min():g}, max {totals.max():g}"
    )
    frequencies = tag_frequencies(results, pack=pack)
    width = max(len(q) for q in pack.question_ids)
    for row in _question_stats(graded, pack).itertuples(index=False):
        top = _top_tags(frequencies, row.question, 3)
        tags = ", ".join(f"{t} {n}" for t, n in top) if top else "none"
        lines.append(
            f"{row.question:<{width}}  mean {row.mean:.2f}/{row.points:g}  full marks "
            f"{row.full_marks_rate:4.0%}  tags: {tags}"
        )
    return lines


def write_report(
    table: pd.DataFrame, results: list[dict], out: Path, *, pack: Pack, title: str | None = None
) -> Path:
    """Write the analytics report ``out/report.html``.

    Args:
        table: The gradebook from :func:`autograder.gradebook.collate` (roster rows included).
        results: The result dicts of the same batch (tags and reasons come from them).
        out: The output folder (created if needed).
        pack: The assignment graded.
        title: The heading's name of the assignment; default the pack's title.

    Returns:
        The path of the written report.

    Raises:
        ReportError: If the gradebook lacks its fixed columns or a result is malformed.
    """
    _check_table(table, pack)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / REPORT_NAME
    path.write_text(render_report(table, results, pack=pack, title=title), encoding="utf-8")
    logger.info("wrote analytics report to %s", path)
    return path


def render_report(
    table: pd.DataFrame, results: list[dict], *, pack: Pack, title: str | None = None
) -> str:
    """The report's HTML as a string (see :func:`write_report`)."""
    _check_table(table, pack)
    graded = _graded(table, pack)
    frequencies = tag_frequencies(results, pack=pack)
    stats = _question_stats(graded, pack)
    specs = [
        spec
        for spec in (
            _distribution_figure(graded, pack),
            _questions_figure(graded, stats),
            _tags_figure(graded, frequencies, pack),
        )
        if spec is not None
    ]
    figures = dict(zip((spec["key"] for spec in specs), render(specs), strict=True))
    sections = [
        _status_section(table),
        _distribution_section(graded, figures.get("dist", "")),
        _questions_section(graded, stats, frequencies, pack, figures.get("questions", "")),
        _tags_section(graded, frequencies, pack, figures.get("tags", "")),
        _attention_section(table, results),
        _overrides_section(results, pack),
    ]
    heading = _esc(f"{title or pack.title}: grading report")
    overview = _overview(table, graded, pack)
    body = "\n".join(sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{heading}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        f'<h1>{heading}</h1>\n<p class="overview">{overview}</p>\n{body}\n</main>\n'
        "</body>\n</html>\n"
    )


# --- sections ---------------------------------------------------------------------------------


def _overview(table: pd.DataFrame, graded: pd.DataFrame, pack: Pack) -> str:
    if graded.empty:
        return f"{len(table)} submission(s), none graded."
    totals = graded["total"]
    return (
        f"{len(table)} submission(s), {len(graded)} graded. Mean total "
        f"<strong>{totals.mean():.2f}</strong> of {pack.total_points:g} points "
        f"({100 * totals.mean() / pack.total_points:.0f}%), median {totals.median():.2f}. "
        "Scores and tags below are over graded submissions only."
    )


def _status_section(table: pd.DataFrame) -> str:
    rows = [[_esc(s), str(n)] for s, n in _status_counts(table).items()]
    rows.append(["<strong>all</strong>", f"<strong>{len(table)}</strong>"])
    return _section(
        "Submissions by status",
        _html_table(["status", "submissions"], rows, numeric={1}),
        note="graded: scored by the autograder; timeout, error, invalid: see "
        "\u201cNeeds attention\u201d below; missing: on the roster, nothing submitted.",
    )


def _distribution_figure(graded: pd.DataFrame, pack: Pack) -> FigureSpec | None:
    if graded.empty:
        return None
    totals = graded["total"].to_numpy(dtype=float).tolist()
    return {
        "kind": "distribution",
        "key": "dist",
        "totals": totals,
        "total_points": pack.total_points,
    }


def _distribution_section(graded: pd.DataFrame, figure: str) -> str:
    if graded.empty:
        return _section("Score distribution", _empty("No graded submissions: nothing to plot."))
    totals = graded["total"].to_numpy(dtype=float)
    described = pd.Series(totals).describe()
    stats = _html_table(
        ["graded", "mean", "std", "min", "25%", "median", "75%", "max"],
        [
            [str(len(totals))]
            + [_fmt(described[k]) for k in ("mean", "std", "min", "25%", "50%", "75%", "max")]
        ],
        numeric=set(range(8)),
    )
    return _section("Score distribution", figure + stats)


def _questions_figure(graded: pd.DataFrame, stats: pd.DataFrame) -> FigureSpec | None:
    if graded.empty:
        return None
    return {
        "kind": "questions",
        "key": "questions",
        "labels": list(stats["question"]),
        "means": (100 * stats["mean"] / stats["points"]).tolist(),
        "full_marks": (100 * stats["full_marks_rate"]).tolist(),
    }


def _questions_section(
    graded: pd.DataFrame, stats: pd.DataFrame, frequencies: pd.DataFrame, pack: Pack, figure: str
) -> str:
    rows = []
    for row in stats.itertuples(index=False):
        top = _top_tags(frequencies, row.question, 1)
        rows.append(
            [
                _esc(row.question),
                _esc(pack.question(row.question).sheet),
                f"{row.points:g}",
                _fmt(row.mean),
                _pct(row.mean / row.points),
                _pct(row.full_marks_rate),
                f"{_esc(top[0][0])} ({top[0][1]})" if top else "\u2014",
            ]
        )
    table = _html_table(
        ["question", "sheet", "points", "mean", "mean %", "full marks", "most frequent tag"],
        rows,
        numeric={2, 3, 4, 5},
    )
    if graded.empty:
        return _section("Per question", _empty("No graded submissions: nothing to plot.") + table)
    return _section("Per question", figure + table)


def _tag_order(frequencies: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Every tag, most frequent first (ties, and the tags that never occurred, in the
    vocabulary's order), and those of them that occurred."""
    totals = frequencies.sum()
    order = sorted(frequencies.columns, key=lambda t: -int(totals[t]))  # stable
    return order, [t for t in order if totals[t] > 0]


def _tags_figure(graded: pd.DataFrame, frequencies: pd.DataFrame, pack: Pack) -> FigureSpec | None:
    _, seen = _tag_order(frequencies)
    if graded.empty or not seen:
        return None
    return {
        "kind": "tags",
        "key": "tags",
        "questions": list(pack.question_ids),
        "tags": seen,
        "counts": frequencies[seen].T.to_numpy().tolist(),
    }


def _tags_section(graded: pd.DataFrame, frequencies: pd.DataFrame, pack: Pack, figure: str) -> str:
    names, vocabulary = list(pack.question_ids), pack.vocabulary
    order, seen = _tag_order(frequencies)
    header = ["tag", "hint", *names, "all"]
    rows = []
    for tag in order:
        counts = frequencies[tag]
        rows.append(
            [
                f"<code>{_esc(tag)}</code>",
                _esc(vocabulary.get(tag, "(not a tag of the contract)")),
                *[str(n) if n else '<span class="zero">0</span>' for n in counts],
                f"<strong>{counts.sum()}</strong>",
            ]
        )
    table = _html_table(header, rows, numeric=set(range(2, len(header))), css="tags")
    note = (
        "How many graded submissions got each diagnosis tag on each question, most frequent "
        "first (a tag counts once per submission and question; one wrong answer can carry "
        "several tags)."
    )
    if graded.empty or not seen:
        why = "No graded submissions." if graded.empty else "No diagnosis tags: no mistakes found."
        return _section("Misconceptions: diagnosis tags per question", _empty(why) + table, note)
    omitted = len(frequencies.columns) - len(seen)
    caption = (
        f" Tags that never occurred ({omitted}) are left out of the figure." if omitted else ""
    )
    return _section("Misconceptions: diagnosis tags per question", figure + table, note + caption)


def _attention_section(table: pd.DataFrame, results: list[dict]) -> str:
    reasons = {r.get("student"): _reason(r) for r in results if isinstance(r, dict)}
    rows = [
        [
            _esc(str(row.student)),
            _esc(str(row.status)),
            _esc(reasons.get(row.student) or _DEFAULT_REASON.get(row.status, "")),
        ]
        for row in table.itertuples(index=False)
        if row.status != "graded"
    ]
    if not rows:
        return _section("Needs attention", _empty("Every submission was graded."))
    note = "Submissions that were not graded, with the reason from their result."
    listed = _html_table(["student", "status", "reason"], rows[:LIST_LIMIT], css="attention")
    if len(rows) <= LIST_LIMIT:
        return _section("Needs attention", listed, note=note)
    kinds = Counter((row[1], row[2]) for row in rows)
    summary = _html_table(
        ["status", "reason", "submissions"],
        [[status, reason, str(n)] for (status, reason), n in kinds.most_common(LIST_LIMIT)],
        numeric={2},
        css="attention",
    )
    return _section(
        "Needs attention",
        summary + _more(len(rows), "with their status") + listed,
        note=f"{len(rows)} submissions were not graded: how many for each reason (the "
        f"{LIST_LIMIT} most frequent), then the first {LIST_LIMIT} by student.",
    )


def _more(total: int, what: str) -> str:
    """Where the rest of a list that the report cuts at :data:`LIST_LIMIT` rows is."""
    return (
        f'<p class="note">The first {LIST_LIMIT} of {total}, by student; every student is in '
        f'<a href="gradebook.csv">gradebook.csv</a> {_esc(what)}, and in <code>results/</code>.'
        "</p>\n"
    )


_DEFAULT_REASON = {"missing": "on the roster, nothing submitted"}


def _overrides_section(results: list[dict], pack: Pack) -> str:
    """Scores a TA set by hand (``questions[q]["override"]``, see autograder/overrides.py)."""
    rows = []
    for result in results:
        questions = result.get("questions") if isinstance(result, dict) else None
        if not isinstance(questions, dict):
            continue
        for question in pack.question_ids:
            entry = questions.get(question)
            override = entry.get("override") if isinstance(entry, dict) else None
            if not isinstance(override, dict):
                continue
            rows.append(
                [
                    _esc(str(result.get("student"))),
                    _esc(question),
                    _points(override.get("autograded")),
                    _points(override.get("points")),
                    _esc(str(override.get("comment") or "")),
                ]
            )
    if not rows:
        return _section("Manual overrides", _empty("No manual overrides."))
    rows.sort(key=lambda row: (row[0], pack.question_ids.index(html.unescape(row[1]))))
    note = (
        "Points set by hand replace the autograded ones; every score and figure above includes "
        "them."
    )
    listed = _html_table(
        ["student", "question", "autograded", "points", "comment"],
        rows[:LIST_LIMIT],
        numeric={2, 3},
    )
    if len(rows) <= LIST_LIMIT:
        return _section("Manual overrides", listed, note=note)
    per_question = Counter(html.unescape(row[1]) for row in rows)
    summary = _html_table(
        ["question", "overrides"],
        [[_esc(q), str(per_question[q])] for q in pack.question_ids if per_question[q]],
        numeric={1},
    )
    return _section(
        "Manual overrides",
        summary + _more(len(rows), "with the overridden points") + listed,
        note=f"{note} {len(rows)} overrides: how many per question, then the first "
        f"{LIST_LIMIT} by student.",
    )


# --- data -------------------------------------------------------------------------------------


def _check_table(table: Any, pack: Pack) -> None:
    if not isinstance(table, pd.DataFrame):
        raise ReportError(f"the gradebook must be a DataFrame, got a {type(table).__name__}")
    missing = [c for c in pack.gradebook_columns if c not in table.columns]
    if missing:
        raise ReportError(
            f"the gradebook lacks column(s) {', '.join(missing)}; pass the DataFrame from "
            "autograder.gradebook.collate"
        )


def _graded(table: pd.DataFrame, pack: Pack) -> pd.DataFrame:
    graded = table[table["status"] == "graded"]
    points = [*pack.question_ids, "total"]
    return graded.assign(**{c: graded[c].astype(float) for c in points})


def _status_counts(table: pd.DataFrame) -> dict[str, int]:
    counts = Counter(str(s) for s in table["status"])
    ordered = {s: counts.pop(s, 0) for s in STATUSES}
    ordered.update(sorted(counts.items()))
    return ordered


def _question_stats(graded: pd.DataFrame, pack: Pack) -> pd.DataFrame:
    rows = []
    for question in pack.questions:
        name, points = question.id, float(question.possible)
        scores = graded[name]
        empty = scores.empty
        rows.append(
            {
                "question": name,
                "points": points,
                "mean": math.nan if empty else float(scores.mean()),
                "full_marks_rate": (
                    math.nan if empty else float((scores >= points - _POINTS_TOLERANCE).mean())
                ),
            }
        )
    return pd.DataFrame(rows, columns=["question", "points", "mean", "full_marks_rate"])


def _top_tags(frequencies: pd.DataFrame, question: str, n: int) -> list[tuple[str, int]]:
    counts = frequencies.loc[question]
    order = sorted(
        ((t, int(c)) for t, c in counts.items() if c), key=lambda item: (-item[1], item[0])
    )
    return order[:n]


def _reason(result: dict) -> str:
    questions = result.get("questions") or {}
    for entry in questions.values() if isinstance(questions, dict) else ():
        text = entry.get("feedback") if isinstance(entry, dict) else None
        if isinstance(text, str) and text.strip():
            first = text.strip().splitlines()[0]
            return first if len(first) <= 200 else first[:199] + "\u2026"
    return ""


# --- rendering --------------------------------------------------------------------------------


def _section(heading: str, content: str, note: str = "") -> str:
    anchor = re.sub(r"[^a-z]+", "-", heading.lower()).strip("-")
    note_html = f'<p class="note">{_esc(note)}</p>\n' if note else ""
    return f'<section id="{anchor}">\n<h2>{_esc(heading)}</h2>\n{note_html}{content}</section>'


def _html_table(
    header: list[str], rows: list[list[str]], *, numeric: Collection[int] = (), css: str = ""
) -> str:
    """A table from already-escaped cells; ``numeric`` columns are right-aligned."""

    def cells(values: list[str], tag: str) -> str:
        return "".join(
            f'<{tag} class="num">{v}</{tag}>' if i in numeric else f"<{tag}>{v}</{tag}>"
            for i, v in enumerate(values)
        )

    head = f"<thead><tr>{cells([_esc(h) for h in header], 'th')}</tr></thead>"
    body = "".join(f"<tr>{cells(row, 'td')}</tr>" for row in rows)
    klass = f' class="{css}"' if css else ""
    return f"<table{klass}>{head}<tbody>{body}</tbody></table>\n"


def _empty(text: str) -> str:
    return f'<p class="empty">{_esc(text)}</p>\n'


def _fmt(value: float) -> str:
    return "\u2014" if value is None or not math.isfinite(value) else f"{value:.2f}"


def _points(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "\u2014"
    return f"{value:g}"


def _pct(value: float) -> str:
    return "\u2014" if not math.isfinite(value) else f"{100 * value:.0f}%"


_CSS = """
:root { color-scheme: light; }
body { margin: 0; background: #f6f7f9; color: #1d232a;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1040px; margin: 0 auto; padding: 24px 28px 48px; background: #fff;
  min-height: 100vh; box-sizing: border-box; }
h1 { font-size: 26px; margin: 0 0 6px; }
h2 { font-size: 19px; margin: 30px 0 8px; padding-bottom: 4px; border-bottom: 2px solid #e3e6ea; }
.overview { margin: 0 0 8px; color: #333; }
.note { color: #555; margin: 4px 0 10px; font-size: 14px; }
.empty { padding: 14px 16px; background: #f3f4f6; border-left: 4px solid #9aa4ae; color: #444; }
figure.plot { margin: 8px 0 12px; }
svg.plot { display: block; max-width: 100%; height: auto; }
svg.plot * { stroke-linejoin: round; stroke-linecap: butt; }
table { border-collapse: collapse; margin: 6px 0 14px; font-size: 14px; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e3e6ea; text-align: left;
  vertical-align: top; }
thead th { background: #eef1f4; border-bottom: 2px solid #cfd5db; }
tbody tr:nth-child(even) { background: #fafbfc; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
table.tags td:nth-child(2) { max-width: 420px; color: #444; font-size: 13px; }
table.attention td:nth-child(3) { color: #444; }
.zero { color: #b8bec5; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 13px; }
"""
